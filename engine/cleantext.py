"""Text from the input, made safe for where it is shown: a terminal, a Markdown or HTML page, or any
UTF-8 file.

Case ids, file names, problems and labels come from whoever wrote the input. Shown as they are, a
newline in a case id starts a Markdown heading, `<img onerror=...>` runs in an HTML report, and an
escape sequence retitles or clears the terminal that shows the table. So every report writes such
text through one of these:

- `printable`: every control character (C0 but, where a line break is legitimate, the newline;
  DEL; C1, which some terminals obey as escape sequences), every bidirectional-text control (which
  can make text display in another order than it reads: U+061C, U+200E, U+200F, U+202A..U+202E,
  U+2066..U+2069), the line and paragraph separators and every lone surrogate written as a visible
  backslash escape (`\\x1b`, `\\n`, `\\u202e`). ESC itself is escaped, so no escape sequence
  survives. A backslash in the input is left as it is.
- `no_surrogates`: the text encodes as UTF-8. A file name with bytes that are not UTF-8 reaches
  Python with each such byte as a lone surrogate (U+DC80..U+DCFF, the "surrogateescape" error
  handler), which no UTF-8 writer accepts: each is written as the backslash escape of its byte
  (`\\xff`), any other lone surrogate as `\\udXXX`. The name shown is then no longer the exact bytes
  (a name could hold a real backslash), which a report does not need.
- `markdown`: `printable`, line breaks as spaces, `&`, `<` and `>` as HTML entities (no HTML gets
  through, not even inside a table), and every character Markdown could read as markup escaped
  with a backslash: \\ ` * _ | ~ $ anywhere, the ] of "](" (so no link or image forms; a
  reference link needs a definition, which must start a line), and at the start what could open a
  heading or a list (# - + 1. 1) ). The text goes after something on its line, never at its start,
  so no other block can open.
- `code_span`: inline code that no backtick in the text can close early; `markdown_code`: inline
  code for plain text (an id of letters, digits, spaces and . _ - : / @ + # = ,), `markdown` for
  anything else: a code span shows `<img ...>` literally, but the raw file would still hold the
  tag, which some renderers and every search for HTML take as such.
- `html_text`: `printable` (newlines kept), then `html.escape` with quotes, so it is safe in an
  element and in an attribute alike; `url_part` for a link target or an element id made of text
  (percent-encoded: no whitespace, no quote).
- `terminal_text`: a rich `Text` of `printable` text, which rich never reads as markup.

JSON needs none of this: json.dumps escapes control characters, and a string cannot end early; only
lone surrogates must go (`no_surrogates`).
"""

from __future__ import annotations

import html
import re
import urllib.parse

from rich.text import Text

_SURROGATE = re.compile("[\ud800-\udfff]")
_BIDI_AND_SEPARATORS = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}\ud800-\udfff]")
_UNSAFE_BUT_NEWLINE = re.compile(
    f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def printable(text: str, newlines: bool = False) -> str:
    """The text with every control character, bidirectional control and lone surrogate written
    as its backslash escape; newlines kept when `newlines` is true."""
    unsafe = _UNSAFE_BUT_NEWLINE if newlines else _UNSAFE
    if unsafe.search(text) is None:
        return text
    return unsafe.sub(lambda m: _escape(m.group()), text)


def no_surrogates(text: str) -> str:
    """The text with every lone surrogate written as a backslash escape (see the module's
    docstring), so that it can be written as UTF-8; other characters as they are."""
    if _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub(lambda m: _escape(m.group()), text)


_MARKUP = {c: "\\" + c for c in "\\`*_|~$"}
_MARKUP.update({"&": "&amp;", "<": "&lt;", ">": "&gt;", "](": "\\]("})
_MARKDOWN = re.compile(r"[\\`*_|~$&<>]|\]\(")
_LEADING = re.compile(r"^(\s*)(#|[-+]|\d{1,9}[.)])(?=\s|$|[-+#])")  # a heading or a list
_LINE_BREAK = re.compile(r"\r\n|\r|\n|\u2028|\u2029")


# what GitHub-flavoured Markdown would turn into a link on its own: a scheme's "://", "www." and
# the "@" of an e-mail address; a backslash before the punctuation keeps each plain text
_AUTOLINK = re.compile(r"(?i)(?<=[a-z])(:)(?=//)|(?<![\w.])(www)(\.)|(@)")


def markdown(text: str) -> str:
    """The text as literal Markdown inline text: on one line, no HTML, no markup, no link."""
    text = printable(_LINE_BREAK.sub(" ", text))
    text = _MARKDOWN.sub(lambda m: _MARKUP[m.group()], text)
    text = _AUTOLINK.sub(lambda m: m.group(2) + "\\." if m.group(2) else "\\" + m.group(), text)
    return _LEADING.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], text)


_PLAIN = re.compile(r"[\w .:/@+#=,-]*")


def markdown_code(text: str) -> str:
    """Inline code for plain text (see the module's docstring), else literal Markdown text."""
    return code_span(text) if _PLAIN.fullmatch(text) else markdown(text)


def code_span(text: str) -> str:
    """The text as a Markdown code span: fenced by more backticks than it has in a row, and on
    one line."""
    text = printable(_LINE_BREAK.sub(" ", text))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def terminal_text(text: str, style: str = "", newlines: bool = False) -> Text:
    """Text for a terminal: shown as written (control characters escaped), never read as rich
    markup."""
    return Text(printable(text, newlines=newlines), style=style)


def html_text(text: object) -> str:
    """Text for HTML, in an element or in an attribute: escaped, control characters written out."""
    return html.escape(printable(str(text), newlines=True), quote=True)


_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


def url_part(text: str) -> str:
    """Text as part of a URL or an element id: printable ASCII but %, the rest percent-encoded."""
    return urllib.parse.quote(printable(text), safe=_URL_SAFE)
