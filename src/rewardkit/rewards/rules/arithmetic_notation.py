"""How ``rule:arithmetic`` reads the notations of a claim (:func:`normalise`).

Each notation below was a way to write a false claim that the claim finder never saw: LaTeX
(``\\times \\cdot \\div \\frac \\sqrt ^{} \\left \\right \\approx \\boxed \\text``), Unicode
operators (``× · ⋅ ÷ − — ＝ ²``), invisible characters, no-break spaces, percent-of, mixed numbers
and implicit products. :func:`normalise` rewrites a line into ``0-9 . + - * / % ^ ( ) = ≈`` and
prose; what is left unread stays prose.
"""

from __future__ import annotations

import re
import unicodedata

_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_SQRT = re.compile(r"\\sqrt\s*(?:\[([^\[\]{}]*)\])?\s*\{([^{}]*)\}")
_LATEX_POWER = re.compile(r"\^\s*\{([^{}]*)\}")
_GROUPS = re.compile(r"\)[ \t]*\(")  # "(3+4)(2)", "\\frac{1}{2} \\left(…\\right)": a product
_MIXED_FRAC = re.compile(r"(?<![\d.])(\d+)[ \t]*\\[dt]?frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}")
_ROOT = re.compile(r"√\s*(\d+(?:\.\d+)?|\([^()]*\))")
_TIMES_X = re.compile(r"(?<=[\d)])[ \t]*[xX×][ \t]*(?=\$?[\d(])")
# "15 pages x 1/3": a unit word between a number and a spaced ``x``/``×`` (the word is dropped)
_UNIT_TIMES_X = re.compile(r"(?<=\d)[ \t]+[A-Za-z]{2,}[ \t]+[xX×][ \t]*(?=\$?[\d(])")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# "350 000", "1\,000" (a thin space): digit groups of three after a space
_SPACE_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?: \d{3})+(?![\d,/])")
_MIXED_NUMBER = re.compile(r"(?<![\d.])(\d+) (\d+)/(\d+)(?![\d.])")  # "3 1/2"
# "27(1/3)", "12 (1+1/2)": a number before a parenthesised piece of arithmetic
_IMPLICIT_TIMES = re.compile(r"(?<=\d)[ \t]?\((?=[\d.+\-*/%^ \t(]{0,200}\))")
# "(1/2) 278", "(1/4)24": a parenthesised operation before a number (not a label "(2) 3")
_TIMES_AFTER = re.compile(r"(\([\d.+\-*/%^ \t]{1,200}\))[ \t]?(?=\d)")
_OPERATION = re.compile(r"\d[ \t]*[+\-*/]")
_CURRENCY = re.compile(r"\\?\$(?=[ \t]*[\d(.])")
_PERCENT_OF = re.compile(r"(?<=%)[ \t]+of[ \t]+(?=\$?[\d(.])")
# Minus signs and dashes between numbers: U+2212, hyphens, figure and en dashes
_DASH = re.compile(r"(?<=[\d)\s])[\u2010-\u2013\u2212\ufe58](?=[\s\d(.])")
# An em dash or bar after a number is a minus ("12 — 7 = 6") unless what follows it is a true
# claim on its own ("Step 1 — 3 + 4 = 7"): it is kept as EM until the claim is checked.
EM = "\ue000"
_EM_DASH = re.compile(r"(?<=[\d)])([ \t]*)[\u2014\u2015](?=[ \t]*[\d(.])")
_MINUS = re.compile(r"[\u2212\u2796]")
# Invisible format characters (zero-width space / joiners, word joiner, BOM, soft hyphen, bidi
# marks): dropped, so "1\u200b3" is 13 and a claim cannot be split by something not seen.
_INVISIBLE = re.compile(r"[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")
# Markdown bold around a claim ("**12 * 7 = 84**"), told apart from a power ("2**3", "2 ** 3").
_BOLD_OPEN = re.compile(r"(?<![\w).*])\*\*(?=[\d(])")
_BOLD_CLOSE = re.compile(r"(?<=[\d)])\*\*(?![\d(\-+*]|\.\d)")
_VULGAR = {"½": "1/2", "⅓": "1/3", "⅔": "2/3", "¼": "1/4", "¾": "3/4", "⅕": "1/5", "⅛": "1/8"}
_SUPERSCRIPT = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻]+")
_SUPER_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-")
# LaTeX and Unicode spellings of an operator, before NFKC (which would read "²" as "2")
_LATEX_OPS = (
    ("\\times", "*"), ("\\cdot", "*"), ("\\ast", "*"), ("\\div", "/"), ("÷", "/"), ("∕", "/"),
    ("⁄", "/"), ("\\thickapprox", "≈"), ("\\approx", "≈"), ("\\simeq", "≈"), ("≃", "≈"),
    ("·", "×"), ("⋅", "×"), ("∙", "×"), ("✕", "×"), ("⨉", "×"), ("⨯", "×"), ("{,}", ","),
    ("\\!", ""), ("\\,", " "), ("\\;", " "), ("\\:", " "), ("\\ ", " "), ("~", " "),
    ("\\(", " "), ("\\)", " "), ("\\[", " "), ("\\]", " "), ("&", " "),
)  # fmt: skip
_SIZERS = re.compile(
    r"\\(?:left|right|[bB]igg?[lr]?|displaystyle|textstyle|color\s*\{[^{}]*\})(?![A-Za-z])"
)
# Formatting that does not change a number: "= \boxed{12}", "\text{13}", "\mathbf{3}"
_WRAPPER = re.compile(
    r"\\(?:boxed|fbox|text|textbf|textrm|textnormal|mathrm|mathbf|mathit|mathsf|mathtt|"
    r"underline|bm|boldsymbol|emph|mbox|hbox)\s*\{([^{}]*)\}"
)


def _latex(text: str) -> str:
    """``\\sqrt``, ``\\frac`` and ``^{…}`` as plain arithmetic, innermost first (a few rounds)."""
    for _ in range(4):
        before = text
        text = _LATEX_SQRT.sub(
            lambda m: f"{_times(m)}(({m.group(2)})^(1/({m.group(1) or 2})))", text
        )
        text = _MIXED_FRAC.sub(r"(\1+(\2)/(\3))", text)  # "2\frac{1}{2}": two and a half
        text = _LATEX_FRAC.sub(lambda m: f"{_times(m)}(({m.group(1)})/({m.group(2)}))", text)
        text = _LATEX_POWER.sub(r"^(\1)", text)
        text = _WRAPPER.sub(r" \1 ", text)
        if text == before:
            break
    return _ROOT.sub(lambda m: f"{_times(m)}(({m.group(1)})^(1/2))", text)


def _times(m: re.Match[str]) -> str:
    """``*`` when a number or ``)`` stands before the match: ``10\\sqrt{2}`` is 10·√2."""
    before = m.string[max(0, m.start() - 8) : m.start()].rstrip()[-1:]
    return "*" if before.isdigit() or before == ")" else ""


def normalise(text: str) -> str:
    """The notations of a claim as ``0-9 . + - * / % ^ ( ) = ≈`` (see the module docstring).
    Each rewrite runs only where its trigger character occurs (linear time throughout)."""
    if not text.isascii():
        text = _INVISIBLE.sub("", text)
        for char, frac in _VULGAR.items():
            if char in text:
                text = text.replace(char, f"({frac})")
        if _SUPERSCRIPT.search(text):
            text = _SUPERSCRIPT.sub(lambda m: f"^({m.group(0).translate(_SUPER_DIGITS)})", text)
    if "\\" in text:
        text = _SIZERS.sub("", text)
    for latex, op in _LATEX_OPS:
        if latex in text:
            text = text.replace(latex, op)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)  # fullwidth "＝", "３", no-break spaces
        text = _MINUS.sub("-", _DASH.sub("-", _EM_DASH.sub(rf"\1{EM}", text)))
    if "\\" in text or "√" in text or "{" in text:
        text = _latex(text)
    if "**" in text:
        text = _BOLD_CLOSE.sub("", _BOLD_OPEN.sub("", text))
    if "x" in text or "X" in text or "×" in text:
        text = _TIMES_X.sub("*", _UNIT_TIMES_X.sub("*", text))
    if "," in text:
        text = _THOUSANDS.sub("", text)
    text = _SPACE_THOUSANDS.sub(lambda m: m.group(0).replace(" ", ""), text)
    if "/" in text:
        text = _MIXED_NUMBER.sub(r"(\1+\2/\3)", text)
    if "(" in text:
        text = _IMPLICIT_TIMES.sub("*(", text)
        text = _TIMES_AFTER.sub(lambda m: m[1] + ("*" if _OPERATION.search(m[1]) else " "), text)
        text = _GROUPS.sub(")*(", text)
    if "%" in text:
        text = _PERCENT_OF.sub(" * ", text)
    return _CURRENCY.sub("", text) if "$" in text else text
