"""Back-translation through Debian's rule-based Apertium (`apertium -u eng-spa`, then back).

Fully offline once the Debian packages are installed. One `apertium` process per direction per
batch, the batch's texts one line each (multi-line texts are split into lines and re-joined), so
the round trip of a whole batch costs two process starts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from ..errors import DataprepError
from ..settings import Augment
from .base import Augmenter

MODES_DIR = Path("/usr/share/apertium/modes")
#: ISO 639-1 pivot codes -> the three-letter codes Apertium's newer pairs use.
ISO3 = {"es": "spa", "ca": "cat", "gl": "glg", "eo": "epo", "pt": "por", "it": "ita",
        "fr": "fra", "de": "deu", "nl": "nld", "sv": "swe", "da": "dan", "nb": "nob"}
ENGLISH = ("eng", "en")
#: PII placeholders (<PHONE>) would be translated ("<TELEPHONE>"); they travel as unknown words
#: (Apertium passes those through untouched) and are restored afterwards.
PLACEHOLDER = re.compile(r"<([A-Z]+)>")
PROTECTED = re.compile(r"Zqxph([A-Z]+)qz")


def installed_pairs(modes_dir: Path = MODES_DIR) -> set[str]:
    return {p.stem for p in modes_dir.glob("*.mode")} if modes_dir.is_dir() else set()


def find_pair(pivot: str, modes_dir: Path = MODES_DIR) -> tuple[str, str]:
    """The (English->pivot, pivot->English) mode names installed for a pivot language."""
    pairs = installed_pairs(modes_dir)
    for p in (pivot, ISO3.get(pivot, pivot)):
        for e in ENGLISH:
            if f"{e}-{p}" in pairs and f"{p}-{e}" in pairs:
                return f"{e}-{p}", f"{p}-{e}"
    english = sorted(m for m in pairs if m.split("-")[0] in ENGLISH)
    raise DataprepError(
        f"augment backtranslation/apertium: no English<->{pivot} pair installed (have: "
        f"{', '.join(english) or 'none'}); install one, e.g. apt-get install apertium "
        f"apertium-eng-{ISO3.get(pivot, pivot)}")


def run_apertium(mode: str, lines: list[str], timeout: float = 600) -> list[str]:
    """Translate lines in one process; Apertium keeps one output line per input line."""
    text = "".join(line.replace("\r", " ") + "\n" for line in lines)
    done = subprocess.run(["apertium", "-u", mode], input=text, capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout, check=False)
    if done.returncode != 0:
        raise DataprepError(f"apertium {mode} failed: {done.stderr.strip()[:200]}")
    out = done.stdout.split("\n")
    if out and out[-1] == "":
        out.pop()
    if len(out) != len(lines):
        raise DataprepError(f"apertium {mode}: {len(out)} lines back for {len(lines)} sent")
    return out


class ApertiumBackTranslation(Augmenter):
    origin = "backtranslation"
    default_batch_size = 1000

    def __init__(self, spec: Augment, seed: int) -> None:
        super().__init__(spec, seed)
        if shutil.which("apertium") is None:
            raise DataprepError("augment backtranslation/apertium needs Apertium: apt-get "
                                "install apertium apertium-eng-spa")
        self.forward, self.backward = find_pair(spec.pivot)

    @property
    def name(self) -> str:
        return f"apertium:{self.forward}+{self.backward}"

    def transform_batch(self, texts: list[str]) -> list[str]:
        lines, owners = [], []
        for i, text in enumerate(texts):
            for line in PLACEHOLDER.sub(r"Zqxph\1qz", text).split("\n"):
                lines.append(line)
                owners.append(i)
        back = run_apertium(self.backward, run_apertium(self.forward, lines))
        out: list[list[str]] = [[] for _ in texts]
        for i, line in zip(owners, back, strict=True):
            out[i].append(PROTECTED.sub(r"<\1>", line).strip())
        return ["\n".join(parts) for parts in out]
