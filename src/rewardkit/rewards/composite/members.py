"""The members of an ensemble: how a member spec (a Reward, a spec string or dict, a file, a
``[SPEC, WEIGHT]`` pair) becomes a :class:`Member`, with its picked objective and weight."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.registry import (
    file_options,
    kinds,
    load_reward,
    parse_spec,
    shown,
    spec_file,
)
from rewardkit.types import Reward

#: Options of a member that the ensemble itself reads (and removes before building the member).
MEMBER_OPTIONS = ("objective", "weight")

MemberSpec = Reward | str | Path | Mapping[str, Any] | Sequence[Any]


@dataclass(frozen=True)
class Member:
    """One member of an ensemble: a reward, the column it contributes, and its weight."""

    reward: Reward
    #: Name in reports: the member's spec label, with ``[objective]`` when one was picked.
    name: str
    #: The objective picked from a multi-objective member (None for a scalar member).
    objective: str | None = None
    #: Index of ``objective`` in ``reward.objectives``.
    column: int | None = None
    #: Weight for the ``weighted`` aggregate (None when not given).
    weight: float | None = None


def strip_member_options(
    spec: str, base_dir: str | Path | None = None
) -> tuple[str, dict[str, Any]]:
    """Split ``objective=``/``weight=`` out of a string spec's options; the rest is kept verbatim.
    A spec naming a file is a file (its name may hold a ``?``), as for :func:`load_reward`, and
    so is the part of one before ``?objective=``/``?weight=`` (:func:`file_options`)."""
    head, sep, query = spec.strip().partition("?")
    if not sep or spec_file(spec, base_dir) is not None:
        return spec.strip(), {}
    split = file_options(spec, base_dir)  # ``odd?name.yaml?weight=2``: a file, then options
    if split is not None:
        head, query = split
    _, _, parsed = parse_spec(spec if split is None else f"file?{query}")
    found = {k: parsed[k] for k in MEMBER_OPTIONS if k in parsed}
    keep = [p for p in query.split("&") if p and p.partition("=")[0].strip() not in MEMBER_OPTIONS]
    return head + ("?" + "&".join(keep) if keep else ""), found


def is_composite_dict(item: Mapping[str, Any]) -> bool:
    if "type" in item or "kind" in item:
        return True
    return any(k.kind in item for k in kinds() if k.composite)


def finite_number(value: Any, where: str, what: str = "weight") -> float:
    """A composite's number (a member's weight, an ensemble's ``lam`` or ``stats`` entry) as a
    finite float; true/false are no numbers (``weight=true`` was 1)."""
    if isinstance(value, bool):
        raise SpecError(f"{where}: {what} must be a number, not {str(value).lower()}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{where}: {what} must be a number; got {value!r}") from None
    if not math.isfinite(number):
        raise SpecError(f"{where}: {what} must be finite; got {value!r}")
    return number


def check_weight(value: Any, where: str) -> float:
    """A member's weight as a finite float (:func:`finite_number`)."""
    return finite_number(value, where)


def build_member(
    item: MemberSpec,
    index: int,
    *,
    weight: Any = None,
    engine_defaults: Mapping[str, Any] | None,
    base_dir: str | Path | None,
) -> Member:
    where = f"ensemble member {index}"
    options: dict[str, Any] = {}
    spec: Any = item
    if isinstance(item, Mapping):
        if "reward" in item and not is_composite_dict(item):
            extra = sorted(set(item) - {"reward", *MEMBER_OPTIONS})
            if extra:
                raise SpecError(
                    f"{where}: unknown keys {extra} beside 'reward' (allowed: objective, weight)"
                )
            spec = item["reward"]
            options = {k: item[k] for k in MEMBER_OPTIONS if k in item}
        else:
            spec = dict(item)
            options = {k: spec.pop(k) for k in MEMBER_OPTIONS if k in spec}
    elif isinstance(item, str):
        spec, options = strip_member_options(item, base_dir)
    elif isinstance(item, Sequence) and not isinstance(item, bytes):
        if len(item) != 2:
            raise SpecError(f"{where}: a list member must be [SPEC, WEIGHT]; got {item!r}")
        return build_member(
            item[0],
            index,
            weight=item[1],
            engine_defaults=engine_defaults,
            base_dir=base_dir,
        )
    elif not isinstance(item, (Reward, Path)):
        raise SpecError(
            f"{where}: expected a Reward, a spec string, a dict or a file path; "
            f"got {type(item).__name__}"
        )
    if weight is not None:
        if "weight" in options:
            raise SpecError(f"{where}: weight given twice")
        options["weight"] = weight

    reward = spec if isinstance(spec, Reward) else _load(spec, where, engine_defaults, base_dir)
    label = reward.name

    objective = options.get("objective")
    column = None
    if reward.objectives:
        names = list(reward.objectives)
        if objective is None:
            raise SpecError(
                f"{where} {label!r} returns {len(names)} objectives ({', '.join(names)}); an "
                f"ensemble aggregates one number per member: pick one with objective=NAME "
                f"(e.g. '{label}{'&' if '?' in label else '?'}objective={names[0]}' or "
                f"{{..., 'objective': '{names[0]}'}}) "
                "or reduce it to a scalar reward first"
            )
        objective = str(objective)
        if objective not in names:
            raise SpecError(
                f"{where} {label!r}: unknown objective {objective!r}; it has {', '.join(names)}"
            )
        column = names.index(objective)
    elif objective is not None:
        raise SpecError(
            f"{where} {label!r} is a scalar reward; objective={objective!r} applies only to "
            "multi-objective members"
        )
    w = None if options.get("weight") is None else check_weight(options["weight"], where)
    name = f"{label}[{objective}]" if objective is not None else label
    return Member(reward, name, objective, column, w)


def _load(
    spec: Any,
    where: str,
    engine_defaults: Mapping[str, Any] | None,
    base_dir: str | Path | None,
) -> Reward:
    """:func:`load_reward` of a member, its error saying which member (``ensemble member 1
    'rule:nosuch': unknown rule …``; a spec file's error is prefixed with its path by the
    registry), where it named neither."""
    try:
        return load_reward(spec, engine_defaults=engine_defaults, base_dir=base_dir)
    except SpecError as exc:
        if type(exc) is not SpecError:
            raise
        named = isinstance(spec, str | Path) and str(spec).strip() not in str(exc)
        label = f" {shown(str(spec))}" if named else ""
        raise SpecError(f"{where}{label}: {exc}") from exc


def unique_names(members: list[Member]) -> list[Member]:
    """Members with repeated names told apart as ``name#2``, ``name#3``… (first one unchanged)."""
    seen: dict[str, int] = {}
    out = []
    for m in members:
        seen[m.name] = seen.get(m.name, 0) + 1
        out.append(m if seen[m.name] == 1 else replace(m, name=f"{m.name}#{seen[m.name]}"))
    return out
