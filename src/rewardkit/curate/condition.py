"""Card E8 — Multi-reward conditioning of imperfect training data ("Multi-Reward as Condition
for Instruction-based Image Editing", Gu et al., arXiv 2411.04713), text analog
(docs/methods/E8-multi-reward-conditioning.md).

Imperfect responses are kept, each conditioned on its integer scores ``0..S`` per perspective
(and a text naming its failure points); at inference every score is ``S``, no failure text::

    Instruction following: 3/5; Detail preservation: 4/5; Quality: 2/5
    Issues: misses the second question

The condition (:func:`condition_text`) goes in front of the prompt as card A12's goal does
(:func:`rewardkit.curate.relabel.condition`). A reader (:func:`parse_condition`) reads the first
line and an ``Issues: `` second line; nothing after them can change what it reads: labels hold
no ``:``, ``;``, line break or invisible character, and a failure text is put on one line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from rewardkit.curate.consistency import PAIR_KEYS
from rewardkit.curate.relabel import condition as _goal_condition
from rewardkit.curate.scores import check_finite, labelled_pair
from rewardkit.errors import DataError
from rewardkit.example_context import conditioned_pair
from rewardkit.types import Example, Message, Query, Reward

#: The paper's scale: integer scores 0..5 on each perspective.
DEFAULT_SCALE = 5
#: The line holding the failure text starts with this.
ISSUES_HEAD = "Issues: "
#: Output shapes of :func:`condition_examples`.
SHAPES = ("sft", "pairs")
#: Rounding tolerance: a value within this of ``k + 0.5`` (float error) rounds up.
_HALF_TOL = 1e-9


# -- the condition text --------------------------------------------------------------------------


def attribute_label(name: str) -> str:
    """How an attribute name is printed: ``_`` as a space, runs of white space (line breaks
    included) as one space, the first letter upper-cased, the rest as given
    (``instruction_following`` → ``Instruction following``). A name whose label is empty,
    holds ``:`` or ``;`` (the separators of the condition line) or an invisible control or
    format character (a zero-width space, a direction override: the condition would not read
    as what it states) is a ValueError."""
    label = " ".join(str(name).replace("_", " ").split())
    if not label or ":" in label or ";" in label or not label.isprintable():
        raise ValueError(
            f"attribute name {name!r} cannot be printed in a condition: it must be non-empty "
            "and hold no ':', ';' or invisible character"
        )
    return label[0].upper() + label[1:]


def attribute_labels(attributes: Sequence[str]) -> list[str]:
    """:func:`attribute_label` of each attribute; two that print alike (``a_b`` and ``a b``,
    ``help`` and ``Help``) are a ValueError: a reader could not tell them apart."""
    labels = [attribute_label(a) for a in attributes]
    twice = sorted({a for a, lab in zip(attributes, labels, strict=True) if labels.count(lab) > 1})
    if twice:
        raise ValueError(f"attributes {twice} print the same label in a condition; rename one")
    return labels


def round_half_up(x: float) -> int:
    """``floor(x + 0.5)``: 2.5 → 3, 3.5 → 4 (not Python's round-half-to-even); a value within
    1e-9 below a half (float error, e.g. 2.4999999999) rounds up too."""
    return math.floor(x + 0.5 + _HALF_TOL)


def score_int(value: float, scale: int, name: str = "score") -> int:
    """A score as the integer printed: :func:`round_half_up`, which must land in
    ``[0, scale]`` (a ValueError otherwise: map raw values with :func:`quantize` first)."""
    if not math.isfinite(value):
        raise ValueError(f"{name}: score {value} is not a finite number")
    s = round_half_up(float(value))
    if not 0 <= s <= scale:
        raise ValueError(
            f"{name}: score {value} is outside 0-{scale}; map raw values onto the scale with "
            "quantize first"
        )
    return s


def one_line(text: str | None) -> str | None:
    """A failure text on one line: every run of white space (line breaks, tabs, U+2028 …) as
    one space, stripped; None when nothing is left."""
    if text is None:
        return None
    flat = " ".join(str(text).split())
    return flat or None


def check_scale(scale: int) -> int:
    """The top score ``S`` (an integer ≥ 1)."""
    if isinstance(scale, bool) or not isinstance(scale, int | np.integer) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
    return int(scale)


def condition_text(scores: Mapping[str, float], scale: int, issues: str | None = None) -> str:
    """Card E8's condition: ``"{Label}: {s}/{S}"`` per attribute, in the mapping's order,
    joined by ``"; "``; then, when ``issues`` has text, a line ``"Issues: {issues}"`` (on one
    line, :func:`one_line`). Labels by :func:`attribute_label`; scores by :func:`score_int`
    (half up, in ``[0, scale]``). A NaN score (the attribute does not apply) is left out; with
    no score left it is a ValueError (there is nothing to condition on)."""
    scale = check_scale(scale)
    labels = attribute_labels(list(scores))
    parts = [
        f"{label}: {score_int(v, scale, name)}/{scale}"
        for label, (name, v) in zip(labels, scores.items(), strict=True)
        if not math.isnan(float(v))
    ]
    if not parts:
        raise ValueError(f"no attribute applies (every score is NaN): {list(scores)}")
    text = "; ".join(parts)
    flat = one_line(issues)
    return text if flat is None else f"{text}\n{ISSUES_HEAD}{flat}"


def inference_condition(attributes: Sequence[str], scale: int = DEFAULT_SCALE) -> str:
    """The condition to generate with after training: every attribute at ``scale``."""
    return condition_text(dict.fromkeys(attributes, float(scale)), scale)


_ITEM = re.compile(r"(.+): (\d+)/(\d+)")


def parse_condition(text: str) -> tuple[dict[str, int], int, str | None]:
    """What a reader of the condition sees in ``text`` (a system message or a user turn that
    starts with one): the scores of its first line by label, the scale, and the failure text of
    the second line when it starts with ``Issues: ``. A ValueError when the first line is not a
    condition."""
    lines = text.splitlines() or [""]  # every line break Python knows, \r and U+2028 too
    scores: dict[str, int] = {}
    scale = None
    for item in lines[0].split("; "):
        m = _ITEM.fullmatch(item)
        if m is None or m.group(1) in scores or (scale is not None and int(m.group(3)) != scale):
            raise ValueError(f"not a condition line: {lines[0][:80]!r}")
        scores[m.group(1)], scale = int(m.group(2)), int(m.group(3))
    has_issues = len(lines) > 1 and lines[1].startswith(ISSUES_HEAD)
    issues = lines[1][len(ISSUES_HEAD) :] if has_issues else None
    assert scale is not None
    return scores, scale, issues


def conditioned(prompt: Sequence[Message], text: str, *, as_system: bool = True) -> list[Message]:
    """``prompt`` with the condition ``text`` in front, by card A12's rule
    (:func:`rewardkit.curate.relabel.condition`: a system message, merged in front of an
    existing one with a blank line, or before the first user turn with ``as_system=False``)."""
    # A12's condition formats a template; the braces of a failure text are escaped so the
    # template is ``text`` itself, printed exactly
    template = text.replace("{", "{{").replace("}", "}}")
    return _goal_condition(prompt, 0, as_system=as_system, template=template)


# -- raw values onto 0..S ------------------------------------------------------------------------


class Quantized(NamedTuple):
    """:func:`quantize`'s result: integer scores (float array, NaN kept) and the mapping used:
    ``lo`` ↦ 0, ``hi`` ↦ ``scale``."""

    scores: np.ndarray
    lo: float
    hi: float
    scale: int


def quantize(
    values: Any, lo: float | None = None, hi: float | None = None, scale: int = DEFAULT_SCALE
) -> Quantized:
    """Map raw reward values onto the integers ``0..scale``:
    ``q = clip(round_half_up((v − lo) · scale / (hi − lo)), 0, scale)``, NaN kept (does not
    apply). ``lo``/``hi`` default to the finite values' min/max (then a ±inf value is a
    ValueError, as in A12's ``rescale``; given, a value beyond them, ±inf included, is clipped
    to the nearer end). Constant values with an inferred range all map to
    ``round_half_up(scale / 2)``; without a finite value the scores are all NaN and the
    range NaN. A given ``lo ≥ hi`` or a non-finite bound is a ValueError."""
    scale = check_scale(scale)
    v = np.asarray(values, dtype=np.float64)
    inferred = lo is None or hi is None
    for name, bound in (("lo", lo), ("hi", hi)):
        if bound is not None and not math.isfinite(bound):
            raise ValueError(f"quantize: {name} must be finite, got {bound}")
    if inferred:
        inf = np.flatnonzero(np.isinf(v))
        if len(inf):
            raise ValueError(
                f"quantize: value {int(inf[0])} is {v.flat[inf[0]]}; the range from the data "
                "needs finite values (give lo and hi, or NaN where a reward does not apply)"
            )
        finite = v[np.isfinite(v)]
        if not finite.size:
            return Quantized(np.full(v.shape, np.nan), math.nan, math.nan, scale)
        lo = float(finite.min()) if lo is None else float(lo)
        hi = float(finite.max()) if hi is None else float(hi)
        if lo == hi:
            mid = float(round_half_up(scale / 2))
            return Quantized(np.where(np.isnan(v), np.nan, mid), lo, hi, scale)
    assert lo is not None and hi is not None
    if not lo < hi:
        raise ValueError(f"quantize: need lo < hi, got lo={lo}, hi={hi}")
    c, base = np.clip(v, lo, hi), lo
    with np.errstate(over="ignore"):
        span = hi - lo
    if not math.isfinite(span):  # bounds near ±1.8e308: halved (exact) so the span is finite
        c, base, span = c / 2, lo / 2, hi / 2 - lo / 2
    x = (c - base) / span * scale
    q = np.clip(np.floor(x + 0.5 + _HALF_TOL), 0, scale)
    return Quantized(np.where(np.isnan(v), np.nan, q), float(lo), float(hi), scale)


def quantize_all(
    scores: Sequence[np.ndarray],
    attributes: Sequence[str],
    scale: int = DEFAULT_SCALE,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[list[np.ndarray], dict[str, tuple[float, float]]]:
    """:func:`quantize` of each attribute's column over the whole dataset (one mapping per
    attribute; ``ranges[a]`` fixes attribute ``a``'s, else its data's min/max). ``scores`` holds
    one ``(responses, len(attributes))`` array per example; each keeps its shape. Returns the
    quantized arrays and the mapping ``{attribute: (lo, hi)}``."""
    ranges = dict(ranges or {})
    unknown = sorted(set(ranges) - set(attributes))
    if unknown:
        raise ValueError(f"a range for {unknown}, which is not an attribute ({list(attributes)})")
    k = len(attributes)
    flat = (
        np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1, k) for s in scores])
        if scores
        else np.zeros((0, k))
    )
    out = np.empty_like(flat)
    mapping: dict[str, tuple[float, float]] = {}
    for j, a in enumerate(attributes):
        lo, hi = ranges.get(a, (None, None))
        try:
            q = quantize(flat[:, j], lo, hi, scale)
        except ValueError as exc:
            raise ValueError(f"attribute {a!r}: {exc}") from None
        out[:, j], mapping[a] = q.scores, (q.lo, q.hi)
    cuts = np.cumsum([len(s) for s in scores])[:-1] if scores else []
    return list(np.split(out, cuts)) if scores else [], mapping


# -- where the scores come from ------------------------------------------------------------------


def rating_attributes(examples: Sequence[Example]) -> list[str]:
    """Every rating name in ``examples``, in the order first seen."""
    seen: dict[str, None] = {}
    for ex in examples:
        for r in ex.ratings or ():
            seen.update(dict.fromkeys(r))
    return list(seen)


def rating_matrix(ex: Example, attributes: Sequence[str]) -> np.ndarray:
    """``(responses, k)`` scores of ``ex`` from its ratings; a null rating is NaN (does not
    apply). No ratings, or an attribute missing for a response, is a DataError naming the
    example and the attribute."""
    if not ex.ratings or len(ex.ratings) != len(ex.responses):
        raise DataError(
            f"example {ex.id!r}: no ratings for its {len(ex.responses)} response(s)",
            field="ratings",
        )
    out = np.full((len(ex.responses), len(attributes)), np.nan)
    for i, rating in enumerate(ex.ratings):
        for j, a in enumerate(attributes):
            if a not in rating:
                raise DataError(f"example {ex.id!r}: response {i} has no rating {a!r}", field=a)
            value = rating[a]
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise DataError(
                    f"example {ex.id!r}: rating {a!r} of response {i} is {value!r}, not a number",
                    field=a,
                )
            out[i, j] = float(value)
    return out


def reward_matrix(
    examples: Sequence[Example], reward: Reward, name: str | None = None
) -> tuple[list[str], list[np.ndarray]]:
    """Score every response with ``reward`` in one call: a scalar reward scores one attribute,
    ``name`` (required); a multi-objective reward one attribute per objective, named by its
    objectives (``name`` refused). Returns the attribute names and one ``(responses, k)`` array
    per example. A ±inf score, or a result whose shape is not what the reward declares, is a
    ValueError naming the reward."""
    queries: list[Query] = [q for ex in examples for q in ex.queries()]
    try:
        flat = np.asarray(reward.score(queries), dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"reward {reward.name!r}: {exc}") from None
    n = len(queries)
    if flat.ndim == 1 and flat.shape == (n,):
        if not name:
            raise ValueError(
                f"reward {reward.name!r} is scalar: name the attribute it scores (NAME=SPEC)"
            )
        names, flat = [name], flat.reshape(n, 1)
    elif flat.ndim == 2 and flat.shape[0] == n and reward.objectives:
        names = list(reward.objectives)
        if len(names) != flat.shape[1]:
            raise ValueError(
                f"reward {reward.name!r} returned {flat.shape[1]} columns for objectives {names}"
            )
        if name:
            raise ValueError(
                f"reward {reward.name!r} returns {len(names)} objectives ({', '.join(names)}), "
                f"which name its attributes; give it without {name!r}="
            )
    else:
        raise ValueError(
            f"reward {reward.name!r} returned shape {flat.shape} for {n} responses; expected "
            f"({n},) or ({n}, objectives)"
        )
    for j, a in enumerate(names):
        check_finite(examples, np.ascontiguousarray(flat[:, j]), f"{reward.name} ({a})")
    cuts = np.cumsum([len(ex.responses) for ex in examples])[:-1]
    return names, list(np.split(flat, cuts)) if examples else []


def issue_texts(ex: Example, column: str) -> list[str | None]:
    """The failure text of each response of ``ex`` from ``meta[column]``: a text (or null)
    for a one-response example, or a list with one text (or null) per response; an example
    without the column has none. Anything else is a DataError naming the example and column."""
    n = len(ex.responses)
    value = ex.meta.get(column)
    if value is None:
        return [None] * n
    if isinstance(value, str) and n == 1:
        return [value]
    if isinstance(value, list) and len(value) == n:
        bad = [i for i, v in enumerate(value) if v is not None and not isinstance(v, str)]
        if not bad:
            return list(value)
        got = f"{type(value[bad[0]]).__name__} at {bad[0]}"
    else:
        got = f"a list of {len(value)}" if isinstance(value, list) else type(value).__name__
    raise DataError(
        f"example {ex.id!r}: {column!r} must be a text (one response) or a list of {n} texts "
        f"or nulls, one per response; got {got}",
        field=column,
    )


# -- conditioned training examples ---------------------------------------------------------------


def _label_of(ex: Example, i: int) -> str:
    if not ex.chosen:
        return "unlabelled"
    if ex.is_tie:
        return "tie"
    return "chosen" if i in ex.chosen else "rejected"


def _record(scores: dict[str, float], scale: int, issues: str | None) -> dict[str, Any]:
    """``meta.condition``: the printed integer scores (NaN ones left out), scale and issues."""
    ints = {a: score_int(v, scale, a) for a, v in scores.items() if not math.isnan(v)}
    return {"scores": ints, "scale": scale, "issues": one_line(issues)}


def condition_examples(
    examples: Sequence[Example],
    attributes: Sequence[str],
    scores: Sequence[np.ndarray],
    scale: int = DEFAULT_SCALE,
    *,
    shape: str = "sft",
    issues: Sequence[Sequence[str | None]] | None = None,
    as_system: bool = True,
    counts: dict[str, int] | None = None,
) -> list[Example]:
    """Card E8 — conditioned training examples. ``scores`` holds one ``(responses, k)`` array
    of integer scores in ``0..scale`` (NaN: does not apply; :func:`quantize_all`) per example,
    ``issues`` one failure text (or None) per response.

    - ``sft``: every response (chosen, rejected, unlabelled: imperfect data is kept) becomes a
      one-response example ``{id}#r{i}`` whose prompt carries its own scores; a response with
      no applicable attribute is skipped (``unscored``).
    - ``pairs``: the labelled pair ``(y_w, y_l)`` on the attributes both are scored on gives
      ``{id}#pos`` (condition ``c(s_w)``, ``y_w ≻ y_l``: the label kept) and ``{id}#neg``
      (condition ``c(s_l)``, ``y_l ≻ y_w``); positives first, as card A12. Skipped and counted:
      ``no_pair``; ``unscored`` (no common attribute); ``ties`` (``s_w = s_l``: one condition
      with both labels); ``contradicts`` (``s_l`` ≥ ``s_w`` on every attribute: the label
      disagrees with every perspective, as A12 skips ``s_w < s_l``).

    ``meta.condition`` holds ``{"scores", "scale", "issues"}`` as printed; a pair also
    ``meta.goal``; the negative pair and the SFT examples drop ``meta.margin``/``strength``/
    ``strength_std`` (a pair's Δ, not theirs)."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    scale = check_scale(scale)
    attributes = list(attributes)
    attribute_labels(attributes)
    if len(scores) != len(examples) or (issues is not None and len(issues) != len(examples)):
        raise ValueError(f"{len(examples)} examples but {len(scores)} score arrays / issues")
    users = [as_system or any(m.get("role") == "user" for m in ex.prompt) for ex in examples]
    if not all(users):
        raise DataError(
            f"example {examples[users.index(False)].id!r}: its prompt has no user turn to put "
            "the condition in front of; condition it as a system message (without --nosys)",
            field="prompt",
        )
    build = _sft if shape == "sft" else _pairs
    tally: dict[str, int] = {}
    out = build(examples, attributes, scores, scale, issues, as_system, tally)
    if counts is not None:
        counts.update(tally)
    return out


def _sft(examples, attributes, scores, scale, issues, as_system, tally) -> list[Example]:
    tally.update(responses=0, unscored=0)
    out = []
    for n, (ex, s) in enumerate(zip(examples, scores, strict=True)):
        meta = {k: v for k, v in ex.meta.items() if k not in PAIR_KEYS}
        for i, response in enumerate(ex.responses):
            row = dict(zip(attributes, map(float, s[i]), strict=True))
            if all(math.isnan(v) for v in row.values()):
                tally["unscored"] += 1
                continue
            text = issues[n][i] if issues is not None else None
            tally["responses"] += 1
            out.append(
                replace(
                    ex,
                    id=f"{ex.id}#r{i}",
                    prompt=conditioned(
                        ex.prompt, condition_text(row, scale, text), as_system=as_system
                    ),
                    responses=[response],
                    chosen=[],
                    ratings=None,
                    meta={
                        **meta,
                        "condition": _record(row, scale, text),
                        "response_index": i,
                        "label": _label_of(ex, i),
                    },
                )
            )
    return out


def _pairs(examples, attributes, scores, scale, issues, as_system, tally) -> list[Example]:
    tally.update(pairs=0, no_pair=0, unscored=0, ties=0, contradicts=0)
    pos, neg = [], []
    for n, (ex, s) in enumerate(zip(examples, scores, strict=True)):
        pair = labelled_pair(ex)
        if pair is None:
            tally["no_pair"] += 1
            continue
        w, lo = (np.asarray(s[i], dtype=np.float64) for i in pair)
        both = ~np.isnan(w) & ~np.isnan(lo)
        if not both.any():
            tally["unscored"] += 1
            continue
        if np.array_equal(w[both], lo[both]):
            tally["ties"] += 1
            continue
        if (lo[both] >= w[both]).all():
            tally["contradicts"] += 1
            continue
        tally["pairs"] += 1
        names = [a for a, keep in zip(attributes, both, strict=True) if keep]
        reversed_meta = {k: v for k, v in ex.meta.items() if k not in PAIR_KEYS}
        for goal, (a, b), meta, bucket in (
            ("positive", pair, ex.meta, pos),
            ("negative", pair[::-1], reversed_meta, neg),
        ):
            row = dict(zip(names, map(float, np.asarray(s[a])[both]), strict=True))
            text = issues[n][a] if issues is not None else None
            cond = partial(conditioned, text=condition_text(row, scale, text), as_system=as_system)
            picked = conditioned_pair(ex, [a, b], cond, meta)  # each after its own history
            bucket.append(
                replace(
                    picked,
                    id=f"{ex.id}#{goal[:3]}",
                    chosen=[0],
                    ratings=None,
                    meta={**picked.meta, "goal": goal, "condition": _record(row, scale, text)},
                )
            )
    return pos + neg
