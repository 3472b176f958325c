"""Hostile input files for `test_hostile_inputs.py`: hypothesis strategies that write every format
dataprep reads, and the checks a run's outcome and outputs must pass whatever the input.

A strategy returns a `HostileFile`: its name, its bytes and how many rows it holds *by
construction* (each JSON Lines line, array item, CSV record, Parquet row or transcript
conversation written), so the accounting identity is checked against what was written, not
against what the reader says it read. The files are built by hand rather than with `json.dumps`
alone because the interesting inputs are the ones a serializer refuses to make: lone surrogate
escapes, 5,000-digit integers, `1e400`, 5,000-deep nesting, repeated keys, bytes that are not
UTF-8.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import strategies as st

#: Rows per generated file: small, so one example is a fraction of a second in-process.
MAX_ROWS = 12
BOM = "\ufeff"

# ---------------------------------------------------------------------------------------------
# JSON text beyond what json.dumps writes


@dataclass(frozen=True)
class Raw:
    """A JSON fragment written verbatim (numbers and nesting Python cannot round-trip)."""

    text: str

    def __repr__(self) -> str:
        return f"Raw({shorten(self.text, 60)!r})"


@dataclass(frozen=True)
class Obj:
    """A JSON object as ordered pairs, so that a key may appear twice."""

    pairs: tuple[tuple[str, Any], ...]


_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Style:
    """How JSON text is laid out: what goes between tokens (maybe something JSON does not call
    whitespace, such as a BOM or NUL, which makes the text invalid on purpose), whether every
    non-ASCII character is escaped, and whether lone surrogates are escaped (`\\ud800`, valid
    JSON) or left raw (written as the invalid UTF-8 bytes a broken encoder makes)."""

    ws: str = ""
    ascii_only: bool = False
    raw_surrogates: bool = False


def _json_string(text: str, style: Style) -> str:
    dumped = json.dumps(text, ensure_ascii=style.ascii_only)
    if style.raw_surrogates:
        return dumped
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


def to_json(value: Any, style: Style = Style()) -> str:  # noqa: B008 (a frozen default)
    """JSON text of a value built from str, numbers, None, lists, dicts, `Obj` and `Raw`."""
    ws = style.ws
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, str):
        return _json_string(value, style)
    if isinstance(value, dict):
        value = Obj(tuple(value.items()))
    if isinstance(value, Obj):
        items = [f"{_json_string(k, style)}{ws}:{ws}{to_json(v, style)}" for k, v in value.pairs]
        return "{" + ws + f"{ws},{ws}".join(items) + ws + "}"
    if isinstance(value, list | tuple):
        return "[" + ws + f"{ws},{ws}".join(to_json(v, style) for v in value) + ws + "]"
    return json.dumps(value)  # None, bool, int, float (NaN and Infinity as Python writes them)


def as_cell(value: Any) -> str:
    """How a value is written in a CSV/TSV cell or a transcript line."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, Raw):
        return value.text
    return to_json(value)


def encode(text: str) -> bytes:
    """UTF-8 bytes; a lone surrogate becomes the invalid bytes a broken encoder writes."""
    return text.encode("utf-8", "surrogatepass")


def shorten(data, limit: int = 400):
    """`data` (str or bytes) with its middle left out past `limit`, for readable reports."""
    if len(data) <= limit:
        return data
    gap = f"...<{len(data) - limit} more>..."
    return data[: limit // 2] + (gap if isinstance(data, str) else gap.encode()) \
        + data[-limit // 2:]


def unsurrogate(text: str) -> str:
    """Text with lone surrogates replaced, for the formats whose writers refuse them."""
    return _SURROGATE.sub("\ufffd", text)


# ---------------------------------------------------------------------------------------------
# Values

#: Characters and sequences a hostile or careless file carries: C0/C1 controls, terminal escape
#: sequences, BOM and zero-width characters, bidi embeddings/overrides/isolates/marks, line and
#: paragraph separators, lone surrogates, rich markup, the classification prompt's placeholders.
HOSTILE_PIECES = (
    "\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\r", "\x1b", "\x1b[31m", "\x1b]0;t\x07",
    "\x1c", "\x7f", "\x85", "\x9b", "\x9f", "\t", "\n", "\r\n",
    BOM, "\u200b", "\u200d", "\u00ad", "\u200e", "\u200f", "\u061c",
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
    "\u2028", "\u2029",
    "\ud800", "\udfff", "\udc80", "\ud83d",
    "[bold]", "[/]", "[/red]", "[link=file:///etc/passwd]x[/link]", "{text}", "{labels}",
    "\\", '"', "'", ",", ";", "#", ":", "\u00a0", "\u3000", "\ufffd", "e\u0301", "<b>", "&amp;",
)
WORDS = ("refund", "order", "please", "thanks", "delivery", "account", "the", "late", "broken",
         "café", "naïve", "日本語のテキスト", "مرحبا", "שלום", "😀", "Ünïcödé", "password")


@st.composite
def hostile_text(draw, max_pieces: int = 10) -> str:
    """Mostly words (so that rows pass the quality filters and reach the output) with hostile
    characters and arbitrary unicode mixed in."""
    piece = st.one_of(st.sampled_from(WORDS), st.sampled_from(WORDS),
                      st.sampled_from(HOSTILE_PIECES), st.text(max_size=3))
    return " ".join(draw(st.lists(piece, min_size=1, max_size=max_pieces)))


def line_text(max_pieces: int = 10) -> st.SearchStrategy[str]:
    """Hostile text without CR or LF, for formats where those end a line."""
    return hostile_text(max_pieces).map(lambda s: s.replace("\r", " ").replace("\n", " "))


#: Values no string field should hold, written as JSON: big and special numbers, deep nesting.
HUGE = (
    Raw("9" * 5000), Raw("-" + "7" * 5000), Raw("1e400"), Raw("-1e400"),
    Raw("1" + "0" * 400 + ".5"), Raw("[" * 5000 + "]" * 5000),
    Raw('{"a":' * 5000 + "0" + "}" * 5000), Raw("[" * 100 + '"deep"' + "]" * 100),
)
BLANK = ("", " ", "\t", "   \t ", "\u3000", "\u00a0", "\u2028", BOM, "\r\n", "\u200b")


def hostile_key() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["note", "customer", "intent", "meta", "id", "", " ",
                                      "text", "label", "messages"]),
                     hostile_text(max_pieces=2))


def wrong_value() -> st.SearchStrategy[Any]:
    """Anything but a usable string: wrong JSON types, specials, empties, deep and huge values."""
    return st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(),
        st.sampled_from(HUGE), st.sampled_from(BLANK),
        st.lists(hostile_text(3), max_size=3),
        st.dictionaries(hostile_key(), hostile_text(3), max_size=2),
        st.builds(lambda k, a, b: Obj(((k, a), (k, b))), hostile_key(), hostile_text(2),
                  st.integers()),
    )


def text_value() -> st.SearchStrategy[Any]:
    """A string field's value: usually hostile text, sometimes any wrong value."""
    return st.one_of(hostile_text(), hostile_text(), hostile_text(), wrong_value())


LABELS = ("pos", "neg", "neutral", " pos ", "POS", "pos\x00\x1b[31m", "neg\u202e", BOM + "pos",
          "[red]pos", "[/red]", "pos\u2028", "pos\r\n", "neg\x85", "\ud800", "{text}")


def label_value() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(LABELS), st.sampled_from(LABELS), st.integers(-3, 3),
                     hostile_text(3), wrong_value())


ROLES = ("user", "assistant", "system", "tool", "human", "gpt", " Customer ", "AGENT",
         "banana", "user\x00", "assistant\u202e", "\u200fassistant", "")


@st.composite
def message(draw) -> Any:
    """One turn, under the OpenAI or ShareGPT keys, or something that is not a turn at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(wrong_value())
    role_key = draw(st.sampled_from(["role", "role", "from", "speaker", "author"]))
    content_key = draw(st.sampled_from(["content", "content", "value", "text", "message"]))
    role = draw(st.one_of(st.sampled_from(ROLES), st.sampled_from(ROLES), wrong_value()))
    pairs = [(role_key, role), (content_key, draw(text_value()))]
    if draw(st.integers(0, 5)) == 0:
        pairs.append((draw(hostile_key()), draw(text_value())))
    if draw(st.integers(0, 7)) == 0:
        pairs.pop(draw(st.integers(0, len(pairs) - 1)))
    return Obj(tuple(pairs))


@st.composite
def messages_value(draw) -> Any:
    if draw(st.integers(0, 7)) == 0:
        return draw(wrong_value())
    turns = draw(st.lists(message(), max_size=4))
    if draw(st.booleans()):  # a usable conversation more often than chance would give one
        turns += [Obj((("role", "user"), ("content", draw(hostile_text())))),
                  Obj((("role", "assistant"), ("content", draw(hostile_text()))))]
    return turns


#: Per kind: (names the field may go by, its value strategy), from schemas/*.schema.json.
KIND_FIELDS = {
    "classification": ((("text",), text_value), (("label",), label_value)),
    "instruction": ((("prompt", "instruction"), text_value),
                    (("response", "output", "completion"), text_value),
                    (("input",), text_value)),
    "chat": ((("messages", "conversations", "conversation", "turns"), messages_value),),
}
KINDS = tuple(KIND_FIELDS)
#: The extra field a recipe's `split.group_by` names in some runs (its values reach `group`).
GROUP_FIELD = "customer"
RECIPES = (None, f"split:\n  group_by: {GROUP_FIELD}\n")


@st.composite
def record(draw, kind: str) -> Obj:
    """One input object of `kind`: each field usually present (under any of its names),
    sometimes missing or wrong; maybe an id of any type, extra fields and a repeated key."""
    pairs: list[tuple[str, Any]] = []
    if draw(st.integers(0, 3)) == 0:
        pairs.append(("id", draw(st.one_of(hostile_text(3), st.integers(), wrong_value()))))
    for names, values in KIND_FIELDS[kind]:
        if draw(st.integers(0, 11)):  # else missing
            pairs.append((draw(st.sampled_from(names)), draw(values())))
    if draw(st.booleans()):
        pairs.append((GROUP_FIELD, draw(st.one_of(hostile_text(3), wrong_value()))))
    for _ in range(draw(st.integers(0, 2))):
        pairs.append((draw(hostile_key()), draw(text_value())))
    if pairs and draw(st.integers(0, 5)) == 0:  # a repeated key: JSON parsers keep the last
        key = draw(st.sampled_from([k for k, _ in pairs]))
        pairs.insert(0, (key, draw(wrong_value())))
    return Obj(tuple(draw(st.permutations(pairs))))


# ---------------------------------------------------------------------------------------------
# Files


@dataclass(frozen=True)
class HostileFile:
    """A generated input: file name, content, rows written (None where that cannot be known, as
    in a damaged container) and the recipe the run uses (None: the default one). A `.gz` name
    holds the content gzipped unless `as_is` (a damaged file is written byte for byte)."""

    name: str
    content: bytes
    rows: int | None
    recipe: str | None = None
    as_is: bool = False

    @property
    def data(self) -> bytes:
        if self.name.endswith(".gz") and not self.as_is:
            return gzip.compress(self.content, mtime=0)
        return self.content

    def write(self, folder: Path) -> tuple[Path, Path | None]:
        path = folder / self.name
        path.write_bytes(self.data)
        recipe = None
        if self.recipe is not None:
            recipe = folder / "recipe.yaml"
            recipe.write_text(self.recipe, encoding="utf-8")
        return path, recipe

    def __repr__(self) -> str:
        return (f"HostileFile(name={self.name!r}, rows={self.rows}, recipe={self.recipe!r}, "
                f"as_is={self.as_is}, content={shorten(self.content, 1500)!r})")


JSON_WS = ("", " ", "\t", "\r", " \r\t")
#: Between JSON tokens on a JSON Lines line: JSON whitespace, or what looks like it but is not.
LINE_WS = (*JSON_WS, BOM, "\u00a0", "\u2028", "\x00", "\x0c")
LINE_ENDS = ("\n", "\r\n")
#: Lines a JSON Lines reader must skip as layout: ASCII whitespace only.
BLANK_LINES = (b"", b" ", b"\t", b"\r", b" \t ")


@st.composite
def style(draw, spaces=LINE_WS) -> Style:
    return Style(draw(st.sampled_from(spaces)), draw(st.booleans()), draw(st.integers(0, 5)) == 0)


@st.composite
def jsonl_line(draw, kind: str) -> bytes:
    """One non-blank JSON Lines row: an object (maybe with odd whitespace, raw surrogate bytes,
    a BOM in front) or junk (another JSON type, a cut object, text, bytes that are not UTF-8)."""
    text = to_json(draw(record(kind)), draw(style()))
    fate = draw(st.integers(0, 11))
    if fate == 0:
        text = to_json(draw(st.one_of(wrong_value(), st.lists(hostile_text(2), max_size=2))))
    elif fate == 1:
        text = text[: max(1, len(text) // 2)]
    elif fate == 2:
        text = "x" + draw(line_text(4))
    elif fate == 3:
        text = BOM + text
    data = encode(text)
    return b"\xff\xfe" + data if fate == 4 else data


@st.composite
def lines_file(draw, lines: list[bytes], blank: bool = True) -> bytes:
    """Lines joined by LF or CRLF, with blank lines between some, a BOM in front maybe and
    maybe no final line end."""
    end = draw(st.sampled_from(LINE_ENDS)).encode()
    body = b""
    for line in lines:
        if blank:
            body += b"".join(b + end for b in draw(st.lists(st.sampled_from(BLANK_LINES),
                                                            max_size=1)))
        body += line + end
    if draw(st.booleans()):
        body = body[: -len(end)]
    return (encode(BOM) if draw(st.integers(0, 3)) == 0 else b"") + body


@st.composite
def jsonl_file(draw, gz: bool = False) -> HostileFile:
    kind = draw(st.sampled_from(KINDS))
    lines = draw(st.lists(jsonl_line(kind), min_size=1, max_size=MAX_ROWS))
    data = draw(lines_file(lines))
    return HostileFile("in.jsonl" + ".gz" * gz, data, len(lines), draw(st.sampled_from(RECIPES)))


@st.composite
def json_array_file(draw, gz: bool = False) -> HostileFile:
    """A `.json` array of objects and other values, laid out on one line or many. Maybe cut
    inside item k (an interrupted download): then k items and one reject for the rest."""
    kind = draw(st.sampled_from(KINDS))
    items = draw(st.lists(st.one_of(record(kind), record(kind), record(kind), wrong_value()),
                          min_size=1, max_size=MAX_ROWS))
    ws = (*JSON_WS, "\n", "\r\n", "\n\t")
    texts = [to_json(item, draw(style(ws))) for item in items]
    sep = draw(st.sampled_from([",", ", ", ",\n", ",\r\n", "\n,\t"]))
    rows = len(texts)
    cut = draw(st.one_of(st.none(), st.integers(0, len(texts) - 1)))
    if cut is not None and len(texts[cut]) >= 2:
        texts = [*texts[:cut], texts[cut][: draw(st.integers(1, len(texts[cut]) - 1))]]
        rows = cut + 1
        text = "[" + draw(st.sampled_from(ws)) + sep.join(texts)
    else:
        text = "[" + draw(st.sampled_from(ws)) + sep.join(texts) + draw(st.sampled_from(ws)) + "]"
        text += draw(st.sampled_from(["", "\n", "\r\n", "  \n"]))
    if draw(st.integers(0, 3)) == 0:
        text = BOM + text
    return HostileFile("in.json" + ".gz" * gz, encode(text), rows, draw(st.sampled_from(RECIPES)))


@st.composite
def columns(draw, kind: str) -> list[tuple[str, Any]]:
    """A table's columns for `kind`: each field usually there under one of its names, maybe the
    group field, extra columns with hostile names, a repeated name."""
    out = [(draw(st.sampled_from(names)), values) for names, values in KIND_FIELDS[kind]
           if draw(st.integers(0, 11))]
    if draw(st.booleans()):
        out.append((GROUP_FIELD, text_value))
    for _ in range(draw(st.integers(0, 2))):
        out.append((draw(hostile_key()), text_value))
    if out and draw(st.integers(0, 7)) == 0:
        out.append(out[draw(st.integers(0, len(out) - 1))])
    return out or [("text", text_value)]


def _csv_record(cells: list[str], delimiter: str) -> str:
    """One record, with every cell holding CR or LF quoted: the csv writer quotes only the
    characters of its own line terminator, so with LF ends a bare CR would end the record."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerow(cells)
    return out.getvalue().removesuffix("\r\n")


#: A CSV cell over Python's default 128 KB field limit.
HUGE_CELL = "refund " * 20000


@st.composite
def delimited_file(draw, delimiter: str, gz: bool = False) -> HostileFile:
    """CSV or TSV with a header: cells of any text (quoted where the writer must), numbers and
    JSON where strings belong, empty cells, rows with too many or too few cells, a huge cell;
    LF, CRLF or CR record ends; maybe a BOM in front."""
    kind = draw(st.sampled_from(["classification", "classification", "instruction", "chat"]))
    cols = draw(columns(kind))
    n = draw(st.integers(1, MAX_ROWS))
    records = []
    for _ in range(n):
        cells = [as_cell(draw(st.one_of(values(), values(), values(), st.just(HUGE_CELL))
                              if draw(st.integers(0, 30)) == 0 else values()))
                 for _, values in cols]
        fate = draw(st.integers(0, 9))
        if fate == 0:
            cells.append(draw(line_text(2)))
        elif fate == 1 and len(cells) > 1:
            cells.pop()
        records.append(cells)
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = "".join(_csv_record(cells, delimiter) + end
                   for cells in [[name for name, _ in cols], *records])
    if draw(st.integers(0, 3)) == 0:
        text = BOM + text
    name = "in." + ("tsv" if delimiter == "\t" else "csv") + ".gz" * gz
    return HostileFile(name, encode(text), n, draw(st.sampled_from(RECIPES)))


def _strings(values: list[Any]) -> pa.Array:
    """A string column that may hold invalid UTF-8 (a surrogate written as its raw bytes), as
    a broken writer leaves it: built as binary and viewed as string, which Arrow allows."""
    data = [None if v is None else encode(v) for v in values]
    return pa.array(data, pa.binary()).view(pa.string())


_MESSAGE_BYTES = pa.list_(pa.struct([("role", pa.binary()), ("content", pa.binary())]))
_MESSAGE_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


@st.composite
def parquet_column(draw, n: int, messages: bool) -> pa.Array:
    """One Parquet column of one type (Parquet has no mixed columns): strings that may not be
    UTF-8, ints, floats with NaN/inf, bools, lists, structs, all-null; nulls anywhere."""
    def maybe(strategy):
        return [None if draw(st.integers(0, 7)) == 0 else draw(strategy) for _ in range(n)]

    kinds = ["string", "string", "string", "int", "float", "bool", "list", "struct", "null"]
    if messages:
        kinds += ["messages"] * 4
    kind = draw(st.sampled_from(kinds))
    if kind == "string":
        return _strings(maybe(hostile_text()))
    if kind == "int":
        return pa.array(maybe(st.integers(-(2**63), 2**63 - 1)), pa.int64())
    if kind == "float":
        return pa.array(maybe(st.floats()), pa.float64())
    if kind == "bool":
        return pa.array(maybe(st.booleans()), pa.bool_())
    if kind == "list":
        return pa.array(maybe(st.lists(hostile_text(3).map(unsurrogate), max_size=3)),
                        pa.list_(pa.string()))
    if kind == "struct":
        texts = maybe(hostile_text(3).map(unsurrogate))
        return pa.array([None if t is None else {"a": t} for t in texts],
                        pa.struct([("a", pa.string())]))
    if kind == "null":
        return pa.nulls(n)
    turn = st.fixed_dictionaries({"role": st.sampled_from(ROLES).map(encode),
                                  "content": hostile_text().map(encode)})
    return pa.array(maybe(st.lists(turn, max_size=4)), _MESSAGE_BYTES).view(_MESSAGE_TYPE)


@st.composite
def parquet_file(draw) -> HostileFile:
    kind = draw(st.sampled_from(KINDS))
    cols, names = [], set()
    for name, _ in draw(columns(kind)):
        name = unsurrogate(name)
        if name not in names:  # a Parquet file cannot repeat a column name
            names.add(name)
            cols.append(name)
    n = draw(st.integers(1, MAX_ROWS))
    arrays = [draw(parquet_column(n, name in KIND_FIELDS["chat"][0][0])) for name in cols]
    out = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, names=cols), out)
    return HostileFile("in.parquet", out.getvalue(), n, draw(st.sampled_from(RECIPES)))


SPEAKERS = ("User", "Agent", "Customer", "Assistant", "Bot", "System", "Human", "GPT",
            "Support", "tool", "Zed", "A")


@st.composite
def transcript_block(draw) -> list[str]:
    """One conversation: `# key: value` lines, `Speaker: text` turns and continuation lines
    (a block that starts with one has no speaker). Every line has a visible character."""
    lines = [f"# {draw(st.sampled_from(['id', 'lang', 'topic', GROUP_FIELD, 'label']))}: "
             f"{draw(line_text(3))}" for _ in range(draw(st.integers(0, 2)))]
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.integers(0, 4)):
            lines.append(f"{draw(st.sampled_from(SPEAKERS))}: {draw(line_text())}")
        else:
            lines.append("x" + draw(line_text(4)))
    return lines or [f"User: {draw(line_text())}"]


@st.composite
def transcript_file(draw, gz: bool = False) -> HostileFile:
    """Plain-text conversations separated by blank (or ASCII-whitespace) lines."""
    blocks = draw(st.lists(transcript_block(), min_size=1, max_size=MAX_ROWS))
    end = draw(st.sampled_from(LINE_ENDS))
    text = ""
    for i, block in enumerate(blocks):
        if i:
            text += draw(st.sampled_from(["", " ", "\t ", ""])) + end
        text += "".join(line + end for line in block)
    if draw(st.integers(0, 3)) == 0:
        text = BOM + text
    return HostileFile("in.txt" + ".gz" * gz, encode(text), len(blocks),
                   draw(st.sampled_from(RECIPES)))


def input_file(fmt: str) -> st.SearchStrategy[HostileFile]:
    """The strategy for one format name as the tests spell it (`jsonl.gz`, `parquet`, ...)."""
    base, gz = fmt.removesuffix(".gz"), fmt.endswith(".gz")
    return {
        "jsonl": lambda: jsonl_file(gz),
        "json": lambda: json_array_file(gz),
        "csv": lambda: delimited_file(",", gz),
        "tsv": lambda: delimited_file("\t", gz),
        "parquet": parquet_file,
        "txt": lambda: transcript_file(gz),
    }[base]()


FORMATS = ("jsonl", "jsonl.gz", "json", "json.gz", "csv", "csv.gz", "tsv", "tsv.gz",
           "parquet", "txt", "txt.gz")


@st.composite
def damaged_file(draw) -> HostileFile:
    """A container or encoding broken below the row level, where no row count can be known:
    a cut, padded, corrupted or fake gzip; a cut or corrupted Parquet file; a `.json` array
    with a bad byte (also past the reader's first 64 KB)."""
    how = draw(st.sampled_from(["gz-cut", "gz-trailing", "gz-flip", "not-gz", "parquet-cut",
                                "parquet-flip", "json-bad-byte", "json-bad-byte-late"]))
    if how.startswith("parquet"):
        data = draw(parquet_file()).data
        name = "in.parquet"
    elif how.startswith("json"):
        late = how.endswith("late")  # 8 items of ~10 KB: the last starts past 64 KB
        items = [to_json(Obj((("text", "refund please " * (700 if late else 1)),
                              ("label", "pos")))) for _ in range(8 if late else draw(
                                  st.integers(1, 8)))]
        at = len(items) - 1 if late else draw(st.integers(0, len(items) - 1))
        items[at] = items[at][:3] + "\udcff" + items[at][3:]
        return HostileFile("in.json", b"[\n" + ",\n".join(items).encode(
            "utf-8", "surrogateescape") + b"\n]\n", None, as_is=True)
    else:
        inner = draw(st.one_of(jsonl_file(), json_array_file(), delimited_file(","),
                               transcript_file()))
        name, data = inner.name + ".gz", gzip.compress(inner.content, mtime=0)
        if how == "not-gz":
            data = inner.content
    if how.endswith("-cut"):
        data = data[: draw(st.integers(1, len(data) - 1))]
    elif how == "gz-trailing":
        data += draw(st.sampled_from([b"\x00", b"garbage", b"\x1f\x8b", b"\n\n"]))
    elif how.endswith("-flip"):
        at = draw(st.integers(len(data) // 4, len(data) - 9))
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
    return HostileFile(name, data, None, as_is=True)


# ---------------------------------------------------------------------------------------------
# Checks

#: What no output string may hold: C0 controls but TAB and LF, DEL, C1 controls, bidi
#: embeddings/overrides/isolates/marks (U+202A-E, U+2066-9, U+200E/F, U+061C) and the line and
#: paragraph separators U+2028/9.
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f"
                       "\u061c\u2028\u2029]")
#: What no terminal output may hold: the same, less nothing (a TAB is harmless there too).
FORBIDDEN_ON_TERMINAL = FORBIDDEN


_INDEX = re.compile(r"\[[0-9]+\]")


def forbidden_strings(value: Any, where: str = "") -> list[tuple[str, str]]:
    """(path, string) for every string inside a row's value holding a forbidden character."""
    if isinstance(value, str):
        return [(where, value)] if FORBIDDEN.search(value) else []
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in forbidden_strings(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in forbidden_strings(v, f"{where}[{i}]")]
    return []


def jsonl_records(path: Path) -> list[dict[str, Any]]:
    """The records of an output JSON Lines file; each line must be one JSON object."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@dataclass
class Outcome:
    """A command's exit code and streams as the `dataprep` entry point leaves them
    (`common.errors.run_command` turns a UserError into `error: ...` and exit 1), and the
    exception that escaped it, which a user would see as a traceback."""

    exit_code: int
    stdout: str
    stderr: str
    user_error: str | None
    crash: BaseException | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke(args: list[str]) -> Outcome:
    """Run `dataprep ARGS` in-process (a subprocess costs seconds of imports per example)."""
    from typer.testing import CliRunner

    from common.errors import UserError, error_line
    from dataprep.cli import app

    result = CliRunner().invoke(app, args)
    exc = result.exception
    if isinstance(exc, UserError):
        return Outcome(1, result.stdout, f"{result.stderr}{error_line(exc)}\n", str(exc), None)
    crash = None if exc is None or isinstance(exc, SystemExit) else exc
    return Outcome(result.exit_code, result.stdout, result.stderr, None, crash)


def check_no_traceback(outcome: Outcome, command: str) -> None:
    """Property 1, first half: nothing escapes as a traceback. Raised *from* the escaped
    exception, so hypothesis tells crashes at different places apart as different bugs."""
    if outcome.crash is not None:
        raise AssertionError(
            f"property 1: `dataprep {command}` raised {shorten(repr(outcome.crash), 300)}, "
            "a traceback for the user"
        ) from outcome.crash
    assert "Traceback" not in outcome.output, f"property 1: a traceback in the output of " \
        f"`dataprep {command}`: {shorten(outcome.output, 600)!r}"


def check_one_line_error(outcome: Outcome, command: str) -> None:
    """Property 1, second half: a failure is one line, `error: ...` (what `run_command` prints
    for a user's mistake, not click's bare `Aborted!`), and prints the data it quotes as text."""
    lines = [line for line in outcome.output.split("\n") if line.strip()]
    assert len(lines) == 1, f"property 1: `dataprep {command}` failed (exit " \
        f"{outcome.exit_code}) with {len(lines)} lines of output, not one: {lines[:8]!r}"
    assert lines[0].startswith("error: "), f"property 1: `dataprep {command}` failed (exit " \
        f"{outcome.exit_code}) without the one-line `error: ...` message: {lines[0]!r}"
    assert not FORBIDDEN.search(lines[0]), f"property 1: the error line of `dataprep " \
        f"{command}` holds control/bidi characters from the data: {lines[0]!r}"


def check_terminal_text(outcome: Outcome, command: str) -> None:
    """What the data puts on a terminal is text: no escape sequences, controls or bidi marks
    reach it raw (rich writes no styling to a non-terminal, so anything found came from data)."""
    found = FORBIDDEN.findall(outcome.output)
    assert not found, f"`dataprep {command}` printed control/bidi characters from the data " \
        f"{sorted(set(found))!r}: {shorten(outcome.output, 800)!r}"


def store_entries(store: Path) -> list[str]:
    """Everything under the store (a fresh one per example), as relative paths."""
    return sorted(str(p.relative_to(store)) for p in store.rglob("*")) if store.exists() else []


def check_run(sample: HostileFile, folder: Path) -> dict[str, Any] | None:
    """`dataprep run FILE --name h --store STORE` on `sample`: properties 1-4 (see the test
    module). Returns the report of the version made, None after a one-line error."""
    path, recipe = sample.write(folder)
    store = folder / "store"
    args = ["run", str(path), "--name", "h", "--store", str(store)]
    outcome = invoke(args + (["--recipe", str(recipe)] if recipe else []))
    check_no_traceback(outcome, "run")
    if outcome.exit_code != 0:
        check_one_line_error(outcome, "run")
        left = store_entries(store)
        assert left in ([], ["h"]), f"property 1: a failed run left {left} in the store"
        return None
    check_terminal_text(outcome, "run")
    version = outcome.stdout.strip().split("\n")[-1]
    return check_version(store, version, sample.rows)


def check_version(store: Path, version: str, rows: int | None) -> dict[str, Any]:
    """Properties 2-4 on a published version, computed from its files."""
    import datasets

    base = store / "h"
    assert (base / "latest").read_text(encoding="utf-8").strip() == version
    assert sorted(p.name for p in base.iterdir()) == [version, "latest"], \
        f"the run left {sorted(p.name for p in base.iterdir())} beside its version"
    path = base / version
    report = json.loads((path / "report.json").read_text(encoding="utf-8"))
    counts = report["counts"]
    rejected = jsonl_records(path / "rejected.jsonl")
    removed = jsonl_records(path / "removed.jsonl")
    splits = datasets.load_from_disk(str(path))  # property 4
    assert list(splits) == ["train", "validation", "test"]
    original = sum(a is None for split in splits.values() for a in split["augmenter"])
    if rows is not None:
        assert counts["input"] == rows, f"property 2: {rows} rows written, report.json says " \
            f"{counts['input']} read"
    assert counts["input"] == original + len(rejected) + len(removed), \
        f"property 2: {counts['input']} rows read, but {original} in the splits + " \
        f"{len(rejected)} in rejected.jsonl + {len(removed)} in removed.jsonl"
    assert counts["rejected"] == len(rejected)
    dropped = sum(counts["filtered_by_reason"].values()) + sum(counts["duplicates"].values())
    assert dropped == len(removed)
    assert counts["output"] == {name: split.num_rows for name, split in splits.items()}
    assert report["accounting_ok"]
    for name, split in splits.items():  # property 3
        for row in split.to_list():
            hits = forbidden_strings(row)
            chars = sorted({c for _, s in hits for c in FORBIDDEN.findall(s)})
            fields = sorted({_INDEX.sub("", where) for where, _ in hits})
            assert not hits, f"property 3: control/bidi characters {chars!r} in {fields} of " \
                f"{name} row {row['source']}: {[(w, shorten(s, 200)) for w, s in hits]!r}"
    return report


def check_validate(sample: HostileFile, folder: Path) -> None:
    """`dataprep validate FILE`: a report of what it read (every row written counted) or a
    one-line error; never a traceback."""
    path, recipe = sample.write(folder)
    outcome = invoke(["validate", str(path)] + (["--recipe", str(recipe)] if recipe else []))
    check_no_traceback(outcome, "validate")
    first = re.match(r"(\d+) rows read", outcome.stdout)
    if outcome.user_error is not None or outcome.exit_code not in (0, 1) or not first:
        check_one_line_error(outcome, "validate")
        return
    check_terminal_text(outcome, "validate")
    if sample.rows is not None:
        assert int(first.group(1)) == sample.rows, f"`dataprep validate` read " \
            f"{first.group(1)} rows of the {sample.rows} written"
