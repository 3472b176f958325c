"""WordNet 3.0 for NLTK, from Debian's `wordnet-base` and `wordnet-sense-index` packages.

NLTK cannot download here, and it refuses symlinked corpus files, so the Debian files are copied
into `<data dir>/corpora/wordnet/`, with the `lexnames` file (absent from Debian) written from the
WordNet man page that lists it. `dataprep setup wordnet` does this; the synonym augmenter does it
on first use.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
from pathlib import Path

from ..errors import DataprepError

DEBIAN_WORDNET = Path("/usr/share/wordnet")
LEXNAMES_MAN = Path("/usr/share/man/man5/lexnames.5WN.gz")
REQUIRED = ("data.noun", "index.noun", "data.verb", "index.verb", "data.adj", "index.adj",
            "data.adv", "index.adv", "index.sense")
CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
INSTALL = "apt-get install wordnet-base wordnet-sense-index"


def nltk_data_dir() -> Path:
    """Where the NLTK corpus is set up: $DATAPREP_NLTK_DATA, else ~/.cache/dataprep/nltk_data."""
    default = Path.home() / ".cache" / "dataprep" / "nltk_data"
    return Path(os.environ.get("DATAPREP_NLTK_DATA", default))


def lexnames(man_page: Path = LEXNAMES_MAN) -> str:
    """The `lexnames` file: `NN<TAB>name<TAB>category` lines, from the man page's table."""
    if not man_page.is_file():
        raise DataprepError(f"{man_page} is missing: {INSTALL}")
    text = gzip.decompress(man_page.read_bytes()).decode("utf-8", "replace")
    rows = re.findall(r"^(\d\d)\t(\w+)\.(\w+)\s*\t", text, flags=re.MULTILINE)
    if len(rows) < 40:
        raise DataprepError(f"{man_page}: could not read the lexicographer file table")
    return "".join(f"{num}\t{pos}.{name}\t{CATEGORY[pos]}\n" for num, pos, name in rows)


def setup_wordnet(target: Path | None = None, source: Path = DEBIAN_WORDNET) -> Path:
    """Copy Debian's WordNet into an NLTK data dir (idempotent); returns the data dir."""
    data_dir = target or nltk_data_dir()
    corpus = data_dir / "corpora" / "wordnet"
    if (corpus / "lexnames").is_file() and all((corpus / f).is_file() for f in REQUIRED):
        return data_dir
    missing = [f for f in REQUIRED if not (source / f).is_file()]
    if missing:
        raise DataprepError(f"WordNet files missing from {source} ({', '.join(missing)}): "
                            f"{INSTALL}")
    corpus.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file():
            shutil.copyfile(path, corpus / path.name)  # copies: NLTK rejects symlinks
    (corpus / "lexnames").write_text(lexnames(), encoding="utf-8")
    return data_dir


def load_wordnet():
    """NLTK's WordNet reader over the set-up corpus."""
    import nltk

    data_dir = str(setup_wordnet())
    if data_dir not in nltk.data.path:
        nltk.data.path.insert(0, data_dir)
    from nltk.corpus import wordnet

    wordnet.ensure_loaded()
    return wordnet
