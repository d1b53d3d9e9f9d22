"""Auto-J pairwise test rows (Li et al., "Generative Judge for Evaluating Alignment", 2023)."""

from __future__ import annotations

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.types import Example


def response_text(rec: Record, name: str) -> str:
    """A response text; empty text is allowed (Auto-J and PandaLM rate some empty model
    outputs), and a bare JSON number or boolean (PandaLM has a few) is read as its text."""
    value = rec.require(name)
    if isinstance(value, bool | int | float):
        return str(value)
    if not isinstance(value, str):
        raise rec.error(name, f"expected a response text, got {describe(value)}")
    return value


def convert(rec: Record) -> Example:
    """``prompt``, ``"response 1"``, ``"response 2"``, ``label`` (0: first better, 1: second
    better, 2: tie) and ``scenario`` (the subset). A tie keeps both responses chosen (skipped by
    pairwise accuracy, counted by accuracy-with-ties)."""
    prompt = checks.prompt(rec, allow_messages=False)
    r1, r2 = (response_text(rec, k) for k in ("response 1", "response 2"))
    label = rec.require_number("label")
    whole = isinstance(label, int) or (isinstance(label, float) and label.is_integer())
    chosen = {0: [0], 1: [1], 2: [0, 1]}.get(int(label) if whole else -1)  # 1.0: pandas float
    if chosen is None or isinstance(label, bool):
        raise rec.error("label", f"expected 0, 1 or 2, got {describe(label)}")
    scenario = rec.opt_text("scenario") or "all"
    rec.data.setdefault("subset", scenario)
    return rec.finish("autoj", prompt, [r1, r2], chosen)
