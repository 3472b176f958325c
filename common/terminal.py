"""Text from the data, made safe to show on a terminal.

A row, a label, a file name or a reject's detail may hold escape sequences (`\\x1b[2J` clears
the screen, OSC 52 writes the clipboard), bidi overrides that make a terminal show text in
another order, or rich markup (`[red]`, `[/]`) that a rich console would interpret. What comes
from the data is printed through these helpers: invisible and control characters are shown as
visible escapes, and rich consoles get `rich.text.Text`, which never parses markup.

Hand-written rather than a library's: what counts as unsafe here (C0/C1 controls, bidi and
line-separator characters) is a short fixed list, and no small package does exactly that.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 (but tab and newline, decided per call), DEL, C1, zero-width space, bidi marks, embeddings,
# overrides and isolates, line and paragraph separators, BOM.
_UNSAFE = ("\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069"
           "\u2028\u2029\ufeff")
_UNSAFE_LINE = re.compile(f"[\t\n{_UNSAFE}]")
_UNSAFE_TEXT = re.compile(f"[{_UNSAFE}]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: Any, keep_newlines: bool = False) -> str:
    """`text` (made a string) with every control, bidi and separator character shown as a
    visible escape (`\\x1b`, `\\u202e`); tab and newline too unless `keep_newlines`, so a
    message stays on one line."""
    pattern = _UNSAFE_TEXT if keep_newlines else _UNSAFE_LINE
    return pattern.sub(_escape, str(text))


def plain(text: Any) -> Any:
    """A `rich.text.Text` of `printable(text)`: a table cell or console line that shows
    `[bold red]x[/]` as those characters, never as markup."""
    from rich.text import Text

    return Text(printable(text))


def json_line(obj: Any, indent: int | None = None) -> str:
    """`obj` as JSON (one line unless `indent`), non-ASCII kept readable, with the characters
    JSON leaves raw but a terminal acts on (C1 controls, bidi, U+2028/9) written as `\\uXXXX`
    escapes: the same JSON value, safe to print."""
    text = json.dumps(obj, ensure_ascii=False, indent=indent)
    return _UNSAFE_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
