"""Text from the data in a report: subset, section, language and reward names, example ids and
error messages, shown as what they are in every format.

Control and invisible format characters (newlines, tabs, bidi overrides such as U+202E,
zero-width spaces) are written as visible escapes (``\\n``, ``\\u202e``), so a name can neither
break a table row nor reorder or hide the text around it. Markdown gets the characters that
would turn text into markup (HTML, links, code spans, emphasis, table pipes) backslash-escaped;
code spans get a fence longer than any backtick run inside; matplotlib labels get ``$`` escaped
(no mathtext) and a length bound. HTML is escaped by :func:`html.escape` after :func:`visible`."""

from __future__ import annotations

import html
import re
import unicodedata

#: Unicode categories written as escapes: controls, invisible format characters (bidi controls,
#: zero-width characters, soft hyphen), line and paragraph separators.
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp"})
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: Characters that make Markdown markup in inline text, and how they are written: HTML tags and
#: autolinks need ``<``; code spans a backtick; emphasis ``*``; links and images ``](``, ``][`` or
#: ``]:`` (so ``]`` is escaped only before those: ``71.4 [58.2, 83.1]`` stays as it is); a table
#: cell ends at ``|``. ``_`` and ``~`` are left alone: inside words they make no markup, and at
#: worst they italicise or strike a name, which cannot hide or inject anything.
_MD_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\\": "\\\\", "`": "\\`", "*": "\\*"}
#: Longest label in a plot (more is cut, with an ellipsis): a 100,000-character subset name
#: would otherwise make a figure too wide to render.
PLOT_LABEL_CHARS = 60


def visible(text: object) -> str:
    """``text`` with every control, invisible format and line-separator character written as an
    escape (``\\n``, ``\\t``, ``\\u202e``); other text unchanged."""
    s = str(text)
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if unicodedata.category(ch) in _HIDDEN:
            out.append(_SHORT.get(ch) or f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def md_text(text: object, *, pipes: bool = True) -> str:
    """``text`` as literal inline Markdown: :func:`visible`, then every character that could
    start markup escaped (``<``, ``>``, ``&`` as entities); ``pipes`` False leaves ``|`` alone
    (outside a table it is text)."""
    s = visible(text)
    out = []
    for i, ch in enumerate(s):
        if ch in _MD_ESCAPES:
            out.append(_MD_ESCAPES[ch])
        elif (ch == "|" and pipes) or (ch == "]" and s[i + 1 : i + 2] in ("(", "[", ":")):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def md_plain(text: str) -> str:
    """The text that :func:`md_text` escaped, back (its backslash escapes and entities undone)."""
    return html.unescape(re.sub(r"\\(.)", r"\1", text))


def code_span(text: object) -> str:
    """``text`` as one Markdown code span, whatever backticks it holds: the fence is one
    backtick longer than its longest backtick run, padded with a space where the text starts
    or ends with a backtick (CommonMark); ``name`` gives `` `name` ``."""
    s = visible(text)
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s.strip(" ") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def md_inline(text: object, *, pipes: bool = False) -> str:
    """A note as Markdown: its code spans (a backtick run closed by a run of the same length,
    as CommonMark reads them; their content is literal) kept, the text between them
    :func:`md_text`-escaped; an unclosed backtick run is escaped."""
    s = visible(text)
    out, i = [], 0
    for m in re.finditer(r"`+", s):
        if m.start() < i:
            continue
        close = re.compile(rf"(?<!`){m.group()}(?!`)").search(s, m.end())
        if close is None:
            continue
        out.append(md_text(s[i : m.start()], pipes=pipes))
        span = s[m.start() : close.end()]
        out.append(span.replace("|", "\\|") if pipes else span)
        i = close.end()
    out.append(md_text(s[i:], pipes=pipes))
    return "".join(out)


def html_text(text: object) -> str:
    """``text`` for HTML: :func:`visible`, then :func:`html.escape` (quotes too)."""
    return html.escape(visible(text))


def plot_label(text: object, limit: int = PLOT_LABEL_CHARS) -> str:
    """``text`` for a matplotlib label: :func:`visible`, cut to ``limit`` characters (an
    ellipsis marks the cut), ``$`` escaped (no mathtext), and a leading ``_`` kept visible
    (matplotlib drops legend labels that start with one)."""
    s = visible(text)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    s = s.replace("$", r"\$")
    return "\u2009" + s if s.startswith("_") else s
