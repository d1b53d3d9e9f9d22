"""``rule:tag_count`` — partial credit for each layout tag written exactly once, in [0, 1].

open-r1's ``tag_count_reward`` (its default reward list is accuracy, format, tag_count; adapted
from willccbb's GRPO demo): a shaping reward that pays for the pieces of the R1 layout before
the whole layout (``rule:format``) is right. With tags ``t1 … tk`` (default ``think,answer``)
each tag has two markers::

    opening  "<t>\\n"     preceded by "\\n" unless t is the first tag
    closing  "\\n</t>\\n"  without the trailing "\\n" when t is the last tag

and every marker that occurs exactly once in the response earns ``1 / (2k)``. The default
markers are open-r1's: ``"<think>\\n"``, ``"\\n</think>\\n"``, ``"\\n<answer>\\n"``,
``"\\n</answer>"``, 0.25 each. ``newlines=false`` counts the bare tags ``<t>`` and ``</t>``
instead (any spacing).

A shaping reward only: an empty layout (``"<think>\\n\\n</think>\\n<answer>\\n\\n</answer>"``)
scores 1.0, and a marker written twice earns nothing for it. Pair it with ``rule:format`` and
a correctness rule. Never NaN (a layout always applies); linear in the response.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.rewards.rules._common import RuleReward, as_bool, as_text
from rewardkit.types import Query

DEFAULT_TAGS = ("think", "answer")
_TAG_NAME = re.compile(r"[A-Za-z_][\w\-.:]*")


def tag_names(rule: str, tags: Any, sep: str = ",") -> tuple[str, ...]:
    """``tags=`` as distinct tag names: a ``sep`` list, or a list of names (never true/false);
    a :class:`SpecError` naming ``rule`` for an empty list, a name that is no tag name
    (``a b``, ``<x>``) or a repeated one."""
    if isinstance(tags, list | tuple):
        names = tuple(as_text("tags", rule, t).strip() for t in tags)
    else:
        names = tuple(t.strip() for t in as_text("tags", rule, tags).split(sep) if t.strip())
    if not names:
        raise SpecError(f"rule:{rule} needs at least one tag")
    for name in names:
        if not _TAG_NAME.fullmatch(name):
            raise SpecError(f"rule:{rule} tag {name!r} is not a tag name")
    if len(set(names)) != len(names):
        raise SpecError(f"rule:{rule} tags must differ, got {list(names)}")
    return names


def tag_markers(tags: Sequence[str], newlines: bool = True) -> list[str]:
    """The markers whose single occurrence earns credit (see the module docstring)."""
    if not newlines:
        return [m for t in tags for m in (f"<{t}>", f"</{t}>")]
    last = len(tags) - 1
    out: list[str] = []
    for i, t in enumerate(tags):
        out.append(("" if i == 0 else "\n") + f"<{t}>\n")
        out.append(f"\n</{t}>" + ("" if i == last else "\n"))
    return out


def tag_count(text: str, tags: Sequence[str] = DEFAULT_TAGS, newlines: bool = True) -> float:
    """Fraction of the tags' markers that occur exactly once in ``text``."""
    markers = tag_markers(tags, newlines)
    return sum(1 for m in markers if text.count(m) == 1) / len(markers)


class TagCountReward(RuleReward):
    """``rule:tag_count`` — options ``tags`` (ordered tag names, default ``think,answer``) and
    ``newlines`` (default true: open-r1's markers with their line breaks; false: bare tags)."""

    rule = "tag_count"

    def __init__(self, tags: str | Sequence[str] | None = None, newlines: bool = True) -> None:
        names = DEFAULT_TAGS if tags is None else tag_names(self.rule, tags)
        super().__init__(tags=list(names), newlines=as_bool("newlines", self.rule, newlines))

    def score_one(self, query: Query) -> float:
        return tag_count(query.response, self.options["tags"], self.options["newlines"])


def compute_score(
    solution: str, ground_truth: Any = None, tags: Any = None, newlines: bool = True
) -> float:
    """verl-style ``compute_score``: the tag-count credit of ``solution`` (default open-r1's
    four markers); ``ground_truth`` is ignored."""
    return TagCountReward(tags=tags, newlines=newlines).score_one(
        Query(prompt="", response=solution)
    )
