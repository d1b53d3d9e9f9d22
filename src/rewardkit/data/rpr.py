"""Reasonable Preference Reversal rows (RPR; ``microsoft/rpr``, Pitis et al., "Improving
Context-Aware Preference Modeling for Language Models", arXiv 2407.14916;
docs/methods/A11-context-aware.md).

One row holds one prompt, two responses and the two contexts under which the preference
reverses: ``prompt``, ``response_a``, ``response_b``, ``criteria_x`` / ``criteria_y`` (the
contexts as criteria), ``scenario_x`` / ``scenario_y`` (the same contexts as scenarios),
``category_x`` / ``category_y``, ``id`` and ``profile_0`` … ``profile_4`` (the dataset card's
schema). Under context x ``response_a`` is preferred, under context y ``response_b``: a row gives
two examples, the same pair of responses in file order (``chosen=[0]`` under x, ``[1]`` under
y), each with its context in front of the prompt (:func:`rewardkit.data.context.with_context`,
the one place a context enters a prompt) and kept as ``meta["criterion"]``, so ``rewardkit eval``
measures the pair's reversal consistency. Format ``rpr`` reads the criteria, ``rpr-scenario``
the scenarios; the other kind's fields, the profiles and the row's other fields stay in
``meta``. Ids are ``"<id>:x"`` and ``"<id>:y"``; the subset is the side's category.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rewardkit.data import checks
from rewardkit.data.context import CRITERION, context_key, context_text, with_context
from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.types import Example

#: Each context of a row and the index of the response it prefers (x: response_a, y: response_b).
SIDES = (("x", 0), ("y", 1))
#: Format name → the kind of context it reads.
KINDS = {"rpr": "criteria", "rpr-scenario": "scenario"}


def convert_criteria(rec: Record) -> list[Example]:
    """An RPR row as its two examples under ``criteria_x`` and ``criteria_y``."""
    return _convert(rec, "rpr")


def convert_scenario(rec: Record) -> list[Example]:
    """An RPR row as its two examples under ``scenario_x`` and ``scenario_y``."""
    return _convert(rec, "rpr-scenario")


def _context(rec: Record, name: str) -> str:
    """Required context field ``name`` as its text (stripped); located errors otherwise."""
    rec.require(name)
    text = context_text(rec, name)
    if text is None:  # NaN (a missing pandas cell, JSON's NaN) or an empty CSV cell
        value = rec.peek(name)
        got = "an empty CSV cell" if value == "" else f"{describe(value)} (a missing value)"
        raise rec.error(name, f"expected a context text, got {got}")
    return text


def _category(rec: Record, side: str) -> str | None:
    """``category_<side>`` as the side's subset (marked used), when it is text."""
    value: Any = rec.peek(f"category_{side}")
    if not isinstance(value, str) or not value.strip():
        return None
    rec.used.add(f"category_{side}")
    return value.strip()


def _convert(rec: Record, fmt: str) -> list[Example]:
    kind = KINDS[fmt]
    prompt = checks.prompt(rec)
    responses = [checks.response(rec, k, rec.require(k)) for k in ("response_a", "response_b")]
    if responses[0] == responses[1]:
        raise rec.error(
            "response_b",
            "expected a response other than response_a (the preference between them reverses), "
            "got the same one",
        )
    contexts = [_context(rec, f"{kind}_{side}") for side, _ in SIDES]
    if context_key(contexts[0]) == context_key(contexts[1]):
        raise rec.error(
            f"{kind}_y",
            f"expected a context other than {kind}_x (the preference reverses between the two), "
            "got the same text (spacing and case aside)",
        )
    base = rec.example_id()
    subsets = [_category(rec, side) for side, _ in SIDES]
    out = []
    for (side, chosen), text, subset in zip(SIDES, contexts, subsets, strict=True):
        meta = {CRITERION: text, "rpr_side": side, "rpr_context": kind}
        ex = rec.finish(fmt, with_context(prompt, text), responses, [chosen], meta=meta)
        out.append(replace(ex, id=f"{base}:{side}", subset=ex.subset or subset))
    return out
