"""The generic record format (also TRL's standard string form).

``prompt`` plus either ``chosen``/``rejected`` texts (a pair, chosen=[0]) or ``responses`` with
``chosen`` indices and/or ``ratings``. The prompt may be named as other published pair files name
it (``question``, ``instruction`` + ``input``, ShareGPT ``conversations``…:
:mod:`rewardkit.data.prompt_fields`), and ``chosen``/``rejected`` may each be one message. A
``criterion`` (the context the preference holds under) goes in front of the prompt
(:mod:`rewardkit.data.context`).
"""

from __future__ import annotations

from rewardkit.data import checks, prompt_fields
from rewardkit.data.context import criterion_prompt
from rewardkit.data.record import Record
from rewardkit.types import Example


def convert(rec: Record, fmt: str = "generic") -> Example:
    """Validate a generic record and build its :class:`Example`."""
    if rec.sniffed and fmt == "generic":
        _unknown_format(rec)
    prompt = criterion_prompt(rec, checks.with_system(rec, prompt_fields.read_prompt(rec)))
    if rec.has("responses"):
        return _listed(rec, fmt, prompt)
    good, bad = prompt_fields.side_fields(rec)
    rec.require(good)
    chosen = checks.response(rec, good, prompt_fields.side(rec, good))
    rec.require(bad)
    rejected_v = prompt_fields.side(rec, bad)
    if isinstance(rejected_v, list):
        rejected = checks.text_list(rec, bad, rejected_v)
    else:
        rejected = [checks.response(rec, bad, rejected_v)]
    responses = [chosen, *rejected]
    ratings = None
    if rec.has("ratings"):
        ratings, _ = checks.ratings(rec, "ratings", rec.get("ratings", structured=True), 2)
    chosen_idx, meta = checks.score_tie(rec, [0]) if len(responses) == 2 else ([0], {})
    return rec.finish(fmt, prompt, responses, chosen_idx, ratings, meta=meta)


def _unknown_format(rec: Record) -> None:
    """A record sniffed as generic that lacks generic's own fields: say that no known format
    matched, and how to name one or map the columns (instead of only 'missing prompt')."""
    if prompt_fields.prompt_field(rec) is None:
        missing = "prompt"
    elif "responses" not in rec.data and prompt_fields.side_fields(rec)[0] not in rec.data:
        missing = prompt_fields.side_fields(rec)[0]
    elif "responses" not in rec.data and prompt_fields.side_fields(rec)[1] not in rec.data:
        missing = prompt_fields.side_fields(rec)[1]
    else:
        return
    if missing in rec.data:  # there but null: the field's own error says so, not "missing"
        return
    from rewardkit.data.proxysets import refused_layout
    from rewardkit.data.sniff import FORMATS

    refused = refused_layout(rec)
    if refused is not None:
        raise rec.error(missing, f"cannot be read: {refused[1]}; see docs/data-formats.md")

    found = ", ".join(repr(k) for k in rec.data) or "none"
    raise rec.error(
        missing,
        f"missing required field (fields found: {found}). The data was sniffed as format "
        "'generic' because no known format matched these fields; name the format with "
        f"--format (format= in Python; one of: {', '.join(FORMATS)}) or map your columns with "
        "--columns prompt=COLUMN,chosen=COLUMN,rejected=COLUMN (columns= in Python)"
        + (
            "; for TRL's implicit-prompt form (texts that start with the prompt) pass --format trl"
            if missing == "prompt" and "chosen" in rec.data and "rejected" in rec.data
            else ""
        )
        + "; see docs/data-formats.md",
    )


def _listed(rec: Record, fmt: str, prompt: list) -> Example:
    responses = checks.text_list(rec, "responses", rec.get("responses", structured=True))
    n = len(responses)
    if rec.has("rejected"):
        raise rec.error("rejected", "expected no 'rejected' field together with 'responses'")
    ratings, scalar = None, False
    if rec.has("ratings"):
        ratings, scalar = checks.ratings(rec, "ratings", rec.get("ratings", structured=True), n)
    meta = None
    if rec.has("chosen"):
        chosen = checks.indices(rec, "chosen", rec.get("chosen", structured=True), n)
    elif ratings is not None and scalar:  # a null rating: neither chosen nor rejected
        from rewardkit.data.prefsets import rated_preference

        values = [r["rating"] for r in ratings]
        responses, ratings, chosen, meta = rated_preference(
            values, responses, ratings, [None] * n, "response_models"
        )
        meta.pop("response_models")
    elif ratings is not None:
        chosen = []
    else:
        found = ", ".join(repr(k) for k in rec.data)
        raise rec.error(
            "chosen", f"missing required field 'chosen' or 'ratings' (fields found: {found})"
        )
    return rec.finish(fmt, prompt, responses, chosen, ratings, meta=meta)
