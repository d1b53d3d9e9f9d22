"""``rewardkit curate condition``: card E8, multi-reward conditioning
(docs/methods/E8-multi-reward-conditioning.md); registered on
:data:`rewardkit.curate.cli.curate_app`."""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli_errors import user_errors
from rewardkit.curate.cli import (
    DataOpt,
    DeviceOpt,
    FormatOpt,
    LimitOpt,
    NoCacheOpt,
    NoProgressOpt,
    OutOpt,
    curate_app,
)
from rewardkit.curate.cli_helpers import (
    STATE,
    TO_FORMATS,
    choices,
    held_targets,
    load_examples,
    load_rewards,
    name_list,
    naming_data,
    summary,
    target_notes,
    write_examples,
)

#: ``NAME=SPEC``: a name holds no ``:``, ``?``, ``=``, ``/``, braces or quotes, so a spec's own
#: ``=`` (``rule:length?unit=words``) is never read as a name.
_NAMED = re.compile(r"\s*([^:?=&/\\{}\"'\[\]]+?)\s*=(.+)", re.S)
_RANGE = re.compile(r"(?:(.+)=)?([^=:]+):([^=:]+)")


def reward_option(text: str) -> tuple[str | None, str]:
    """``-r [NAME=]SPEC`` as (attribute name or None, spec)."""
    m = _NAMED.fullmatch(text)
    if m and m.group(2).strip():
        return m.group(1), m.group(2).strip()
    return None, text.strip()


def range_options(texts: list[str]) -> tuple[tuple[float, float] | None, dict[str, Any]]:
    """``--range [ATTR=]LO:HI`` (repeatable): the range of every attribute (no ``ATTR=``) and
    those of named attributes; finite, ``LO < HI``; an attribute given twice is refused."""
    every: tuple[float, float] | None = None
    named: dict[str, tuple[float, float]] = {}
    for text in texts:
        m = _RANGE.fullmatch(text.strip())
        lo = hi = math.nan
        if m:
            with contextlib.suppress(ValueError):
                lo, hi = float(m.group(2)), float(m.group(3))
        if not (m and math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise typer.BadParameter(
                f"expected [ATTRIBUTE=]LO:HI with finite LO < HI, got {text!r}",
                param_hint="--range",
            )
        key = m.group(1).strip() if m.group(1) else None
        if (key is None and every is not None) or key in named:
            raise typer.BadParameter(f"a range given twice: {text!r}", param_hint="--range")
        if key is None:
            every = (lo, hi)
        else:
            named[key] = (lo, hi)
    return every, named


def _rated(examples: list[Any], attributes: list[str]) -> tuple[list[Any], list[Any]]:
    """Each example's ratings matrix; under ``--on-error skip`` an example whose ratings this
    step cannot use is dropped (one warning counts them, as ``skipped_malformed``)."""
    from rewardkit.curate.condition import rating_matrix
    from rewardkit.errors import DataError

    kept, mats, bad = [], [], []
    for ex in examples:
        try:
            mats.append(rating_matrix(ex, attributes))
            kept.append(ex)
        except DataError as exc:
            if STATE["on_error"] != "skip":
                raise
            bad.append(exc)
    if bad:
        STATE["malformed"] += len(bad)
        warnings.warn(
            f"skipped {len(bad)} example(s) without a usable rating (first: {bad[0].reason})",
            stacklevel=2,
        )
    return kept, mats


def _reward_names(name: str | None, spec: str, reward: Any) -> list[str]:
    """The attributes ``-r [NAME=]SPEC`` scores, known before scoring: NAME for a scalar
    reward (required), the objectives of a multi-objective one (NAME refused)."""
    if reward.objectives and name:
        raise typer.BadParameter(
            f"{spec!r} returns {len(reward.objectives)} objectives "
            f"({', '.join(reward.objectives)}), which name its attributes; give it without "
            f"{name!r}=",
            param_hint="--reward",
        )
    if not reward.objectives and not name:
        raise typer.BadParameter(
            f"{spec!r} is a scalar reward: name the attribute it scores, e.g. -r quality={spec}",
            param_hint="--reward",
        )
    return [name] if name else list(reward.objectives)


def _check_names(names: list[str], fixed: dict[str, Any]) -> None:
    """Refuse an attribute given twice (a rating and a reward, two rewards), a name that
    cannot be printed in a condition, and a ``--range`` for no attribute, before scoring."""
    from rewardkit.curate.condition import attribute_labels

    twice = sorted({a for a in names if names.count(a) > 1})
    if twice:
        raise typer.BadParameter(f"attribute(s) {twice} given twice", param_hint="--reward")
    try:
        attribute_labels(names)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--attributes/--reward") from None
    if fixed.keys() - set(names):
        raise typer.BadParameter(
            f"a range for {sorted(fixed.keys() - set(names))}, not an attribute ({names})",
            param_hint="--range",
        )


def _check_columns(examples: list[Any], attributes: list[str], issues: str | None) -> None:
    """Refuse an ``--attributes`` rating or an ``--issues-column`` no example has (a typo)."""
    from rewardkit.curate.condition import rating_attributes

    present = rating_attributes(examples)
    missing = [a for a in attributes if a not in present]
    if examples and missing:
        have = ", ".join(present) if present else "none (no example has ratings)"
        raise typer.BadParameter(
            f"rating {', '.join(map(repr, missing))} is in no example; ratings present: {have}",
            param_hint="--attributes",
        )
    if examples and issues and not any(issues in ex.meta for ex in examples):
        raise typer.BadParameter(
            f"column {issues!r} is in no example", param_hint="--issues-column"
        )


def _check_infinite(examples: list[Any], raw: list[Any], names: list[str], given: dict) -> None:
    """Refuse a ±inf rating of an attribute whose range comes from the data (a given range
    clips it), naming the example, the response and the attribute."""
    import numpy as np

    from rewardkit.errors import DataError

    for ex, mat in zip(examples, raw, strict=True):
        for i, j in zip(*np.nonzero(np.isinf(mat)), strict=True):
            if names[j] not in given:
                raise DataError(
                    f"example {ex.id!r}, response {i}: {names[j]!r} is {mat[i, j]}; a range "
                    f"from the data needs finite values (give --range {names[j]}=LO:HI, or "
                    "null where it does not apply)",
                    field=names[j],
                )


@curate_app.command("condition")
def condition_command(
    data: DataOpt,
    out: OutOpt,
    shape: Annotated[
        str,
        typer.Option(
            help="sft (every response, conditioned on its own scores) or pairs (two "
            "conditioned DPO pairs per labelled pair)."
        ),
    ] = "sft",
    attributes: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated ratings to condition on (default: every rating, unless "
            "-r gives the attributes)."
        ),
    ] = None,
    reward: Annotated[
        list[str] | None,
        typer.Option(
            "--reward",
            "-r",
            help="NAME=SPEC: a reward scoring attribute NAME (repeatable); a multi-objective "
            "reward, given as SPEC, scores one attribute per objective.",
        ),
    ] = None,
    scale: Annotated[int, typer.Option(min=1, help="Top score S (scores are 0..S).")] = 5,
    ranges: Annotated[
        list[str] | None,
        typer.Option(
            "--range",
            help="[ATTR=]LO:HI raw values mapped onto 0..S (repeatable; default: each "
            "attribute's min and max in the data).",
        ),
    ] = None,
    issues_column: Annotated[
        str | None,
        typer.Option(
            help="Column with each response's failure text (a text, or one per response)."
        ),
    ] = None,
    nosys: Annotated[
        bool,
        typer.Option(
            "--nosys", help="Prepend the condition to the user turn instead of a system message."
        ),
    ] = False,
    fmt: FormatOpt = None,
    limit: LimitOpt = None,
    to: Annotated[
        str,
        typer.Option(
            "--to", help="jsonl; trl (SFT: messages rows, pairs: DPO rows); openrlhf (pairs)."
        ),
    ] = "jsonl",
    device: DeviceOpt = None,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Card E8: keep imperfect responses, conditioned on their integer scores per attribute."""
    import numpy as np

    from rewardkit.curate import condition as cd

    choices(to=(to, TO_FORMATS), shape=(shape, cd.SHAPES))
    if shape == "sft" and to == "openrlhf":
        raise typer.BadParameter("openrlhf rows are pairs: use --shape pairs", param_hint="--to")
    named = [reward_option(r) for r in reward or []]
    columns = name_list(attributes) if attributes is not None else None
    every, fixed = range_options(ranges or [])
    with user_errors(), naming_data(data), held_targets(data, out=out):
        examples = load_examples(data, fmt, limit)
        if columns is None and not named:
            columns = cd.rating_attributes(examples)
            if examples and not columns:
                raise typer.BadParameter(
                    "the data has no ratings: give -r NAME=SPEC rewards (or --attributes)",
                    param_hint="--attributes",
                )
        columns = columns or []
        _check_columns(examples, columns, issues_column)
        examples, mats = _rated(examples, columns) if columns else (examples, None)
        specs = [s for _, s in named]
        rewards = load_rewards(specs, device, no_cache, no_progress) if named else []
        names = list(columns)
        for (name, spec), r in zip(named, rewards, strict=True):
            names += _reward_names(name, spec, r)
        _check_names(names, fixed)
        if examples and not names:
            raise typer.BadParameter(
                "no attribute to condition on: name ratings or give -r NAME=SPEC",
                param_hint="--attributes",
            )
        parts = [mats] if mats is not None else []
        for (name, _), r in zip(named, rewards, strict=True):
            parts.append(cd.reward_matrix(examples, r, name)[1])
        raw = [np.hstack(p) for p in zip(*parts, strict=True)] if parts else []
        given = {a: fixed.get(a, every) for a in names if fixed.get(a, every) is not None}
        _check_infinite(examples, raw, names, given)
        scores, mapping = cd.quantize_all(raw, names, scale, given)
        texts = [cd.issue_texts(ex, issues_column) for ex in examples] if issues_column else None
        counts: dict[str, int] = {}
        res = cd.condition_examples(
            examples,
            names,
            scores,
            scale,
            shape=shape,
            issues=texts,
            as_system=not nosys,
            counts=counts,
        )
        n = _write(res, out, to, shape)
    if examples and not n:
        _warn_empty(counts)
    summary(
        examples=len(examples),
        attributes=names,
        mapping={a: list(v) for a, v in mapping.items()},
        **counts,
        written=n,
        **(target_notes(res, to) if shape == "pairs" else {}),
        inference_condition=cd.inference_condition(names, scale) if names else None,
        out=out,
    )


def _warn_empty(counts: dict[str, int]) -> None:
    """Say why a run over examples wrote nothing (every response unscored: a reward that does
    not apply, e.g. a rule without references; every pair a tie or contradicting its label)."""
    why = ", ".join(f"{k} {v}" for k, v in counts.items() if v and k not in ("pairs", "responses"))
    why = why or "every row left out by --to; see the summary"
    warnings.warn(f"nothing to write: no conditioned example ({why})", stacklevel=2)


def _write(examples: list[Any], out: Path, to: str, shape: str) -> int:
    """Pairs through the curate writers; SFT examples as rewardkit JSONL or TRL ``messages``."""
    if shape == "pairs" or to == "jsonl":
        return write_examples(examples, out, to)
    from rewardkit.curate.writers import write_rows

    return write_rows(sft_rows(examples), out)


def sft_rows(examples: list[Any]) -> Any:
    """TRL's conversational SFT rows of conditioned one-response examples (``shape="sft"``):
    ``{"messages": [*prompt, {"role": "assistant", "content": response}]}``;
    a prompt with images in TRL's vision layout (``{"type": "image"}`` parts, an ``images``
    column), as the DPO writer lays it out; an image response is a ValueError naming the
    example."""
    from rewardkit.curate.writers import text_response, vision_prompt  # the DPO rows' layout
    from rewardkit.types import assistant

    for ex in examples:
        if len(ex.responses) != 1:
            raise ValueError(f"example {ex.id!r}: an SFT row holds one response")
        prompt, images = vision_prompt(ex)
        row: dict[str, Any] = {"images": images} if images else {}
        row["messages"] = [*prompt, assistant(text_response(ex, 0, "TRL SFT"))]
        yield row
