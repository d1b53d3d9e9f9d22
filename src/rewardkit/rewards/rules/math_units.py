"""Numbers and their units in a response (docs/rules.md, ``rule:math``, "Plain-text answers" and
"Another unit is another answer"): a last box holding a number and its unit
(:func:`read_units`: ``\\boxed{\\text{5 cm}}``, which math-verify read as no number), what a unit
is (:func:`number_unit`, :func:`unit_symbol`) and an answer in another unit than the gold's
(:func:`unit_mismatch`). Split out of :mod:`.math_reading`, which applies them.
"""

from __future__ import annotations

import re
import unicodedata

# -- numerals as models and LaTeX write them (both rule:gsm8k and rule:math read through this) --

# A separator between thousands groups: LaTeX's "{,}", ",\!", "\,", "\ ", "~", "\;", "\:",
# "\!"; a no-break, thin or narrow no-break space; the Arabic thousands sign; an apostrophe
_GROUP_SEP = r"(?:\{,\}|,\\!|\\[,;:! ]|~|[\u00a0\u2009\u202f\u066c'\u2019])"
# A grouped number: 1-3 leading digits (not a leading 0), then only groups of exactly three
# ("10{,}000", "1\,234\,567"; not the decimal commas "3{,}14", "0{,}125", nor "1234\,567")
_GROUPED = re.compile(
    rf"(?<![\w.,])[1-9][0-9]{{0,2}}(?:{_GROUP_SEP}[0-9]{{3}})+(?![0-9]|{_GROUP_SEP}[0-9])"
)
_SEP = re.compile(_GROUP_SEP)
_SEP_BETWEEN_DIGITS = re.compile(rf"[0-9]{_GROUP_SEP}[0-9]")  # a cheap test before _GROUPED
# With a plain space too ("#### 10 000"): read so only inside a marked answer (a box, a "####"
# line), where "3 100" is not "3 hundred-dollar bills"
_SPACED = re.compile(r"(?<![\w.,])[1-9][0-9]{0,2}(?: [0-9]{3})+(?![0-9/]| [0-9])")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_MINUS_SIGNS = {"\u2212": "-", "\uff0d": "-"}
# Wrappers around a bare number ("\textbf{10,000}", "\num{10000}"): math-verify read no number
_PLAIN = r"-?[0-9](?:[0-9,.]|\{,\})*(?:[eE][-+]?[0-9]+)?"
_WRAPPED = re.compile(rf"\\(?:textbf|mathbf|boldsymbol|bm|num)\s*\{{\s*({_PLAIN})\s*\}}")
# siunitx: "\SI{5}{m}", "\qty{5}{\meter\per\second}", "\SI{50}{\percent}"
_QUANTITY = re.compile(rf"\\(?:SI|qty)\s*\{{\s*({_PLAIN})\s*\}}\s*\{{([A-Za-z\\ ]*)\}}")


def _quantity(m: re.Match[str]) -> str:
    unit = " ".join(m.group(2).replace("\\", " ").split())
    if unit == "percent":
        return f"{m.group(1)}\\%"
    return f"{m.group(1)}\\text{{ {unit}}}" if unit else m.group(1)


def plain_numerals(text: str, spaces: bool = False) -> str:
    """``text`` with its numbers in plain ASCII digits: thousands separators between groups of
    three dropped (``10{,}000``, ``1\\,000``, ``1\\ 000``, ``1~000``, ``1\\;000``, ``10,\\!000``,
    a no-break or thin space U+00A0 / U+2009 / U+202F, U+066C, ``1'000`` → ``10000``;
    ``spaces``: ``10 000`` too), other scripts' digits as ASCII (``４２`` → 42), the minus sign
    U+2212 as ``-``, ``\\num{…}``, ``\\textbf{…}``, ``\\mathbf{…}`` around a number unwrapped and
    ``\\SI{5}{m}`` as ``5\\text{ m}``. Plain commas stay (``1,234``); idempotent."""
    if not text.isascii():
        odd = set(_NON_ASCII.findall(text))
        table = {c: str(unicodedata.digit(c)) for c in odd if c.isdecimal()}
        table.update((c, _MINUS_SIGNS[c]) for c in odd.intersection(_MINUS_SIGNS))
        if table:
            text = text.translate(str.maketrans(table))
    if "\\" in text and "{" in text:
        text = _QUANTITY.sub(_quantity, _WRAPPED.sub(r"\1", text))
    if _SEP_BETWEEN_DIGITS.search(text):
        text = _GROUPED.sub(lambda m: _SEP.sub("", m.group()), text)
    if spaces and " " in text:
        text = _SPACED.sub(lambda m: m.group().replace(" ", ""), text)
    return text


# A number in running text ("1,234", "-3.5"; not glued to a word)
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\w)")


def last_number(view: str) -> tuple[re.Match[str], str] | None:
    """The last number of ``view`` and the sentence holding it (from its previous end)."""
    last = None
    for last in _NUMBER.finditer(view):  # noqa: B007 - we want the last match
        pass
    if last is None:
        return None
    start = max(view.rfind("\n", 0, last.start()), view.rfind(". ", 0, last.start())) + 1
    return last, view[start : last.end()]


# Units: "\text{5 cm}", "5\text{ cm}^2", "5 \mbox{ meters}", "18 \text{ dollars}", "\$18"
_TEXT_WRAP = re.compile(r"\\(?:text(?:rm|normal)?|mbox|mathrm|rm)\b\s*")
_TEX_SPACE = re.compile(r"\\[,;:! ]|~")
_NUMBER_UNIT = re.compile(
    r"\s*(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s*((?:[A-Za-z]+(?![A-Za-z])[\s./-]*){0,4}?)"
    r"\s*(?:\^\s*([23]))?\s*\.?\s*"
)
# Words after a number that change what it says: alternatives, comparisons, scale, fractions,
# negation, operations ("5 million", "5 less than x", "5 thirds", "5 is wrong", "5 squared")
_NOT_UNIT = re.compile(
    r"n?or|and|not?|is(?:nt)?|are|was|were|wrong|incorrect|false|than|less|more|fewer|greater"
    r"|least|most|at|to|from|between|plus|minus|times|over|divided|by|up|approx(?:imately)?"
    r"|about|around|roughly|nearly|almost|maybe|possibly|perhaps|probably|dozens?|hal(?:f|ves)"
    r"|(?:hundred|thousand|million|billion|trillion)(?:th)?s?|thirds?|quarters?|fourths?"
    r"|(?:fif|six|seven|eigh|nin|ten)ths?|squared|cubed|factorial|percent(?:age)?|pct|cent",
    re.IGNORECASE,
)
_ONE_LETTER_UNITS = frozenset("mgshlLKVWJN")
#: Known units (for telling "5 cm" from "5 m"); their written-out names map to one symbol.
_UNITS = {
    name: symbol
    for symbol, names in {
        "mm": "millimeter millimeters millimetre millimetres",
        "cm": "centimeter centimeters centimetre centimetres",
        "m": "meter meters metre metres",
        "km": "kilometer kilometers kilometre kilometres",
        "inch": "inches",  # not "in": "5 in total"
        "ft": "foot feet",
        "yd": "yard yards",
        "mi": "mile miles",
        "mg": "milligram milligrams",
        "g": "gram grams",
        "kg": "kilogram kilograms kilo kilos",
        "lb": "lbs pound pounds",
        "oz": "ounce ounces",
        "s": "sec secs second seconds",
        "min": "mins minute minutes",
        "h": "hr hrs hour hours",
        "day": "days",
        "week": "weeks",
        "year": "yr yrs years",
        "ml": "milliliter milliliters millilitre millilitres",
        "l": "liter liters litre litres",
        "dollar": "dollars",
        "cent": "cents",
        "degree": "degrees",
        "radian": "radians",
    }.items()
    for name in (symbol, *names.split())
}


def number_unit(text: str) -> tuple[str, str] | None:
    """(number, unit words) when ``text`` is a number with at most a unit after it ("5 cm",
    ``\\text{5 cm}``, ``5\\,\\mathrm{kg}``, ``\\$18``), else None: words that change the
    number ("5 million", "5 or 6 cm", "5 less than x") or any other LaTeX are not a unit."""
    plain = _TEX_SPACE.sub(" ", _TEXT_WRAP.sub("", text)).replace("\\$", "").replace("$", "")
    plain = plain.replace("{", "").replace("}", "")
    m = _NUMBER_UNIT.fullmatch(plain)
    if m is None:
        return None
    words = re.findall(r"[A-Za-z]+", m.group(2))
    if m.group(3) and not words:
        return None  # "42^2" is not 42
    if any(_NOT_UNIT.fullmatch(w) or (len(w) == 1 and w not in _ONE_LETTER_UNITS) for w in words):
        return None
    unit = " ".join(words) + (f"^{m.group(3)}" if m.group(3) else "")
    if words and plain[m.end(1)].isalpha() and unit_symbol(unit) is None:
        return None  # "1OO cm" (look-alike digits), "4O": letters glued on are no unit; "5cm" is
    return m.group(1), unit


def unit_symbol(unit: str) -> str | None:
    """The known unit that ``unit`` (a unit's words, "square meters", "cm^2") begins with, as
    its symbol with its power ("m^2"); None when it begins with no known unit."""
    words = unit.lower().replace("^", " ^").split()
    power = {"square": "^2", "sq": "^2", "cubic": "^3"}.get(words[0], "") if words else ""
    words = words[1:] if power else words
    symbol = _UNITS.get(words[0]) if words else None
    if symbol is None:
        return None
    if len(words) > 1 and words[1].startswith("^"):
        power = words[1]
    return symbol + power


_UNIT_AFTER = re.compile(r"[ \t]*(?:\\text\{\s*)?([A-Za-z]+(?:[ \t]*\^\s*[23]|[ \t]+[A-Za-z]+)?)")


def read_units(response: str, boxed: str | None, golds: list[str]) -> tuple[str, str | None]:
    """The response with a last box holding a number and its unit (``\\boxed{\\text{5 cm}}``,
    which math-verify read as no number) as ``5\\text{ cm}``, unless it is a gold as
    written (the fast path's string match), and the unit the answer is given in (that box's, or
    the words after the last number of a response without a box)."""
    if boxed is None:
        found = last_number(response)
        after = _UNIT_AFTER.match(response, found[0].end()) if found else None
        return response, after.group(1) if after else None
    read = number_unit(boxed)
    if read is None:
        return response, None
    start = response.rfind("\\boxed{")
    if "".join(boxed.split()) in ("".join(g.split()) for g in golds):
        return response, read[1] or None
    if start < 0 or not response.startswith(boxed, start + 7):
        return response, read[1] or None  # "\boxed 5": a box without braces
    end = start + 7 + len(boxed)
    # "5\text{ cm}", which math-verify reads as 5; the unit stays for a re-reading (the worker)
    number = read[0] + (f"\\text{{ {read[1]}}}" if read[1] else "")
    return response[: start + 7] + number + response[end:], read[1] or None


def unit_mismatch(unit: str | None, gold: str) -> bool:
    """Whether the answer's unit and the gold's are different known units ("5 m" against the
    gold "5 cm"; math-verify drops both units and matched them)."""
    if not unit:
        return False
    read = number_unit(gold)
    ours, theirs = unit_symbol(unit), unit_symbol(read[1]) if read and read[1] else None
    return ours is not None and theirs is not None and ours != theirs
