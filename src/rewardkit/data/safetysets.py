"""Safety-labelled single responses: BeaverTails (``PKU-Alignment/BeaverTails``, splits
``330k_train``/``330k_test``/``30k_train``/``30k_test``): ``prompt``, ``response``, ``category``
(an object of the 14 harm categories, each true or false) and ``is_safe`` (the annotators' overall
verdict on the QA pair).

A row is one response with a 0/1 rating, not a preference: it is read like TRL's unpaired rows
(:func:`rewardkit.data.ratings.convert_unpaired`), but the rating keeps the dataset's own name
(``is_safe``, 1.0 safe) because it grades harmlessness only, not overall desirability. Sources of
the layout: docs/data-formats.md.
"""

from __future__ import annotations

from typing import Any

from rewardkit.data import checks
from rewardkit.data.location import describe
from rewardkit.data.record import Record
from rewardkit.types import Example

#: ``is_safe`` as JSON/Parquet booleans, pandas' CSV ``True``/``False`` and 0/1.
_VERDICTS = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}


def _is_safe(rec: Record) -> float:
    """``is_safe`` as 1.0 (safe) or 0.0 (unsafe)."""
    v = rec.require("is_safe")
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float) and v in (0, 1):
        return float(v)
    if isinstance(v, str) and v.strip().lower() in _VERDICTS:
        return _VERDICTS[v.strip().lower()]
    raise rec.error("is_safe", f"expected true or false (safe or not), got {describe(v)}")


def _harms(rec: Record) -> dict[str, bool] | None:
    """``category`` as ``{harm: bool}`` (None: absent); a CSV cell holds pandas' repr of it."""
    value: Any = rec.get("category", structured=True)
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise rec.error(
            "category", f"expected an object of harm categories (true/false), got {describe(value)}"
        )
    marks = {k: _VERDICTS.get(str(v).strip().lower()) for k, v in value.items()}
    bad = [k for k, m in marks.items() if m is None]
    if bad:
        raise rec.error(
            "category", f"expected true or false, got {describe(value[bad[0]])}", f".{bad[0]}"
        )
    return {k: m == 1.0 for k, m in marks.items()}


def convert_beavertails(rec: Record) -> Example:
    """A BeaverTails QA pair: ``prompt``, one ``response`` and ``is_safe``. One response with the
    rating ``is_safe`` 1.0 (safe) or 0.0 (unsafe), chosen ``[]`` (evaluation reports AUROC for
    the 0/1 rating beside the correlations); the categories marked true go to
    ``meta["harm_categories"]`` (the ``category`` object stays in ``meta``)."""
    prompt = checks.prompt(rec)
    response = checks.response(rec, "response", rec.require("response"))
    safe = _is_safe(rec)
    harms = _harms(rec)
    meta: dict[str, Any] = {}
    if harms is not None:
        meta = {"category": harms, "harm_categories": [k for k, v in harms.items() if v]}
    return rec.finish("beavertails", prompt, [response], [], ratings=[{"is_safe": safe}], meta=meta)
