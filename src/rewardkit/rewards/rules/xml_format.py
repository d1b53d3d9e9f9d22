"""``rule:xml_format`` — partial-credit XML layout score of verifiers' ``XMLParser``, in [0.2, 1].

The format reward of willccbb/verifiers' ``XMLParser(fields).get_format_reward_func()``, on the
response text (one assistant message). With ``k`` field sets (``fields=think,answer``; a set
may list alternative tag names, ``think,code|answer``)::

    0.4 · (sets present) / k     when some field of some set is complete (<t> … </t>)
  + 0.2                          the peer's spacing term, which never fails (see below)
  + 0.2                          the stripped response starts with <t> of a first-set tag
  + 0.2                          the stripped response ends with </t> of a last-set tag

A set is *present* when one of its tags is complete (an opening ``<t>`` followed later by
``</t>``) or merely written (a stray ``<t>`` or ``</t>``). Worked example, ``fields=think,answer``:
``"<think>a</think>\\n<answer>b</answer>"`` → 0.4 + 0.2 + 0.2 + 0.2 = 1.0; ``"<think>a</think>"``
→ 0.4·½ + 0.2 + 0.2 = 0.6; ``"hello"`` → 0.2.

Kept as the peer computes it: the spacing term compares the peer's parse with and without
stripping, which find the same fields, so every response gets 0.2, even an empty one (the
floor is 0.2, not 0). Order, duplicates and text between fields are not checked (use
``rule:format`` for a strict layout). Tags are matched as written (``<think>``, not
``<Think>`` or ``<think >``). Never NaN; linear in the response (the peer's regex search is
quadratic on many unclosed tags; the presence test here is two ``str.find`` per tag).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.rewards.rules._common import RuleReward, as_text
from rewardkit.rewards.rules.tag_count import tag_names
from rewardkit.types import Query

DEFAULT_FIELDS = (("think",), ("answer",))


def _complete(text: str, tag: str) -> bool:
    """Whether ``<tag>`` occurs with a ``</tag>`` somewhere after it (what the peer's
    ``<tag>\\s*(.*?)\\s*</tag>`` search finds, in linear time)."""
    start = text.find(f"<{tag}>")
    return start >= 0 and text.find(f"</{tag}>", start + len(tag) + 2) >= 0


def xml_format_score(text: str, fields: Sequence[Sequence[str]] = DEFAULT_FIELDS) -> float:
    """The verifiers ``XMLParser`` format score of one message (module docstring)."""
    any_complete = False
    present = 0
    for alternatives in fields:
        found = False
        for tag in alternatives:
            if _complete(text, tag):
                any_complete = found = True
            elif f"<{tag}>" in text or f"</{tag}>" in text:
                found = True
        present += found
    stripped = text.strip()
    score = 0.4 * (present / len(fields)) if any_complete else 0.0
    score += 0.2  # the peer's spacing term: always met
    if any(stripped.startswith(f"<{t}>") for t in fields[0]):
        score += 0.2
    if any(stripped.endswith(f"</{t}>") for t in fields[-1]):
        score += 0.2
    return score


def field_sets(fields: Any) -> tuple[tuple[str, ...], ...]:
    """``fields=`` as field sets: ``"think,code|answer"`` or a list whose items are a name, a
    ``a|b`` text or a list of alternatives; a SpecError for a bad or repeated tag name."""
    if isinstance(fields, list | tuple):
        items = [
            f if isinstance(f, list | tuple) else as_text("fields", "xml_format", f) for f in fields
        ]
    else:
        items = [f for f in as_text("fields", "xml_format", fields).split(",") if f.strip()]
    sets = tuple(
        tag_names("xml_format", list(i) if isinstance(i, list | tuple) else i, sep="|")
        for i in items
    )
    if not sets:
        raise SpecError("rule:xml_format needs at least one field")
    flat = [t for s in sets for t in s]
    if len(set(flat)) != len(flat):
        raise SpecError(f"rule:xml_format field names must differ, got {flat}")
    return sets


class XmlFormatReward(RuleReward):
    """``rule:xml_format`` — option ``fields`` (ordered field sets, default ``think,answer``;
    ``|`` separates alternative tag names of one set)."""

    rule = "xml_format"

    def __init__(self, fields: str | Sequence[Any] | None = None) -> None:
        sets = DEFAULT_FIELDS if fields is None else field_sets(fields)
        super().__init__(fields=[list(s) for s in sets])
        self._fields = sets

    def score_one(self, query: Query) -> float:
        return xml_format_score(query.response, self._fields)


def compute_score(solution: str, ground_truth: Any = None, fields: Any = None) -> float:
    """verl-style ``compute_score``: the ``XMLParser`` format score of ``solution`` (default
    fields think, answer); ``ground_truth`` is ignored."""
    return XmlFormatReward(fields=fields).score_one(Query(prompt="", response=solution))
