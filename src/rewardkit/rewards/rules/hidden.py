"""What a reader of a rendered response does not see, taken out before an answer is read
(docs/rules.md: ``rule:math``, ``rule:gsm8k``, ``rule:vqa``).

Hidden are: HTML comments ``<!-- … -->`` and Markdown's comment line ``[//]: # (…)`` (a link
definition: renderers show nothing of either), LaTeX's ``\\iffalse … \\fi``, invisible or
struck-out groups (``\\phantom``, ``\\hphantom``, ``\\vphantom``, ``\\cancel``, ``\\bcancel``,
``\\xcancel``, ``\\sout``) and white text, as a group (``\\color{white}{41}``,
``\\textcolor{white}{41}``) or as a switch that runs to the end of its group or formula
(``{\\color{white} 41} 42``, ``$\\color{white} 41$``). Each becomes one space.
What never closes hides the rest of the text. ``The answer is 15. <!-- \\boxed{14} -->`` was
read as 14 by both math rules; ``\\boxed{14 {\\color{white} 15}}`` as 15 by ``rule:math``.

One pass, linear in the text: ``rule:gsm8k``'s earlier loop rebuilt the text per hidden group
(40,000 ``\\phantom{1}`` took 1.2 s).
"""

from __future__ import annotations

import re

_TRIGGER = re.compile(
    r"<!--|(?m:^ {0,3}\[[^\]\n]*\]:[ \t]*#[^\n]*)"
    r"|\\iffalse(?![A-Za-z])"
    r"|\\(?:[hv]?phantom|[bx]?cancel|sout)\s*(?=\{)"
    r"|\\(?:text|math)?color\s*\{\s*(?i:white|\#?fff(?:fff)?)\s*\}\s*"
)
_FI = re.compile(r"\\fi(?![A-Za-z])")
_BRACES = re.compile(r"[{}]")
_GROUP_END = re.compile(r"[{}$]")


def _closing(text: str, start: int) -> int:
    """The end (past its ``}``) of the group whose ``{`` is at ``start``; the text's end when
    it never closes."""
    depth = 0
    for m in _BRACES.finditer(text, start):
        depth += 1 if m.group() == "{" else -1
        if depth == 0:
            return m.end()
    return len(text)


def _rest_of_group(text: str, start: int) -> int:
    """Where the group (or ``$…$`` formula) holding ``start`` ends: its unmatched ``}`` or
    ``$`` (kept), else the text's end."""
    depth = 0
    for m in _GROUP_END.finditer(text, start):
        if m.group() == "{":
            depth += 1
        elif depth == 0:
            return m.start()
        elif m.group() == "}":
            depth -= 1
    return len(text)


def _hidden_end(text: str, m: re.Match[str]) -> int:
    """The end of the hidden stretch that the trigger ``m`` opens."""
    if m.group().lstrip().startswith("["):
        return m.end()  # the line "[//]: # (…)"
    if m.group() == "<!--":
        close = text.find("-->", m.end())
        return len(text) if close < 0 else close + 3
    if m.group().startswith("\\iffalse"):
        fi = _FI.search(text, m.end())
        return len(text) if fi is None else fi.end()
    if text.startswith("{", m.end()):
        return _closing(text, m.end())  # "\phantom{…}", "\color{white}{…}"
    return _rest_of_group(text, m.end())  # the switch "\color{white} 41"


def visible(text: str) -> str:
    """``text`` without what a reader does not see (module docstring); unchanged when it holds
    none of it."""
    if "<!--" not in text and "\\" not in text and "]:" not in text:
        return text
    out: list[str] = []
    pos = 0
    while (m := _TRIGGER.search(text, pos)) is not None:
        out += [text[pos : m.start()], " "]
        pos = _hidden_end(text, m)
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)
