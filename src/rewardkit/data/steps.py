"""Step-labelled solutions (``format="steps"``): one reasoning trace per record with a label per
step and/or the index of the first wrong step — the ProcessBench layout, extended with PRM800K-style
per-step labels (``docs/methods/B4-orm-vs-prm.md``, ``docs/prm-and-token-rewards.md``)::

    {"id": "gsm8k-3-6b", "problem": "...", "steps": ["...", "..."],
     "labels": [1, 0, -1], "label": 2, "final_answer_correct": false}

``problem`` (or ``question`` / ``prompt``) is the question; ``steps`` the list of step texts;
``labels`` one of +1 (right), 0 (neutral: not checkable), −1 (wrong) per step (``"+"``,
``"-"``, ``"0"`` and booleans are read too); ``label`` the 0-based index of the first wrong step,
−1 for a solution with no wrong step (ProcessBench). With only ``labels``, ``label`` is the first
−1; with only ``label``, the steps before it are +1, it and the steps after it −1.

The example has the solution as its one response (steps joined by a blank line, so the ``auto``
step split gives the steps back), no chosen response, and ``meta``: ``steps``,
``step_labels`` and ``first_error``.
"""

from __future__ import annotations

from typing import Any

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.record import Record, csv_number
from rewardkit.types import Example

#: Text joining steps into a response: the ``auto`` split rule's paragraph break.
STEP_JOIN = "\n\n"
_LABELS = {"+": 1, "-": -1, "0": 0, "neutral": 0, "1": 1, "-1": -1, True: 1, False: -1}


def looks_like(rec: Record) -> bool:
    """A record with a list of ``steps`` and ``labels`` or a ProcessBench ``label``."""
    steps = rec.peek("steps", structured=True)
    label = csv_number(rec.peek("label")) if rec.loc.kind == "csv" else rec.peek("label")
    return isinstance(steps, list) and (
        rec.has("labels") or (isinstance(label, int) and not isinstance(label, bool))
    )


def _label(rec: Record, value: Any, i: int) -> int:
    key = value.strip().lower() if isinstance(value, str) else value
    if isinstance(key, (bool, str)):
        if key in _LABELS:
            return _LABELS[key]
    elif isinstance(key, int | float) and key in (-1, 0, 1):
        return int(key)
    raise rec.error(
        "labels", f"expected +1, 0 or -1 (or '+', '-', '0'), got {describe(value)}", f"[{i}]"
    )


def first_error(labels: list[int]) -> int:
    """Index of the first −1 label, or −1 when no step is wrong."""
    return next((i for i, v in enumerate(labels) if v < 0), -1)


def convert(rec: Record) -> Example:
    """See the module docstring."""
    name = next((k for k in ("problem", "question", "prompt") if rec.has(k)), "problem")
    prompt = checks.prompt(rec, name)
    steps = checks.text_list(rec, "steps", rec.require("steps", structured=True), blank_ok=False)
    n = len(steps)
    labels: list[int] | None = None
    if rec.has("labels"):
        raw = rec.get("labels", structured=True)
        if not isinstance(raw, list) or len(raw) != n:
            raise rec.error(
                "labels", f"expected {n} step labels (one per step), got {describe(raw)}"
            )
        labels = [_label(rec, v, i) for i, v in enumerate(raw)]
    first = None
    if rec.has("label") and rec.number("label") is not None:
        first = rec.number("label")
        if isinstance(first, bool) or not isinstance(first, int) or not -1 <= first < n:
            raise rec.error(
                "label", f"expected -1 or a step index below {n}, got {describe(first)}"
            )
    if labels is None and first is None:
        raise rec.error("labels", "a step-labelled record needs 'labels' (per step) or 'label'")
    if labels is None:
        labels = [1] * n if first == -1 else [1] * first + [-1] * (n - first)  # type: ignore[operator]
    if first is None:
        first = first_error(labels)
    elif first != first_error(labels):
        raise rec.error(
            "label", f"first wrong step is {first} but the step labels say {first_error(labels)}"
        )
    meta = {"steps": steps, "step_labels": labels, "first_error": first}
    return rec.finish("steps", prompt, [STEP_JOIN.join(steps)], [], meta=meta)
