"""Labels of training examples: ratings and margins as numbers, rankings for the listwise
objective, and the checks that say when data cannot give an objective what it needs
(docs/training.md, "What counts as a label"). Pure functions over :class:`~rewardkit.types.Example`
and the items of :mod:`rewardkit.train.collate`."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rewardkit.errors import DataError
from rewardkit.types import Example

if TYPE_CHECKING:
    from rewardkit.train.collate import Item
    from rewardkit.train.config import TrainConfig

#: The regression target of a missing rating (left out of the loss).
MASK = -100.0
#: The largest finite float32: a label beyond it is ±inf in the loss.
F32_MAX = 3.4028234663852886e38
log = logging.getLogger("rewardkit.train.collate")


#: Margin columns whose sign says which response won, not how much (HelpSteer2-Preference's
#: −3…3 ``preference_strength``, HelpSteer3's and PRD's ``overall_preference``: negative when
#: the first response is better): the margin is the magnitude, m = |s|
#: (docs/methods/A3-scaled-bt.md); the sign is already in ``chosen``. A pair's margin:
#: :func:`rewardkit.train.pairs.example_margins`.
SIGNED_STRENGTH = ("preference_strength", "overall_preference")


def rating_target(value: Any, example_id: str, name: str) -> float:
    """A regression target: the rating, or MASK when it is missing (None, NaN, ±inf)."""
    x = as_number(value, example_id, name)
    return MASK if math.isnan(x) else x


def _ranking_indices(ex: Example) -> list[int]:
    """``meta["ranking"]``: distinct response indices, best first; else :class:`DataError`."""
    raw = ex.meta["ranking"]
    n = len(ex.responses)
    ok = isinstance(raw, list | tuple) and all(
        isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in raw
    )
    if not ok or len(set(raw)) != len(raw) or not raw:
        raise DataError(
            f"example {ex.id!r}: meta ranking {raw!r} is not a list of distinct response "
            f"indices 0..{n - 1}, best first"
        )
    return list(raw)


def ranking_of(ex: Example, rating_key: str | None) -> tuple[list[int], int]:
    """Best-first order of the responses and how many positions are ranked: from
    ``meta["ranking"]``, the ratings under ``rating_key``, Nectar's ``meta["ranks"]`` (1 = best,
    one per response), else the one chosen response above the rest."""
    if "ranking" in ex.meta:
        order = _ranking_indices(ex)
        rest = [i for i in range(len(ex.responses)) if i not in order]
        return order + rest, len(order) if rest else len(order) - 1
    if rating_key and ex.ratings:
        vals = [as_number(r.get(rating_key), ex.id, rating_key) for r in ex.ratings]
        return _by_value(vals)
    ranks = nectar_ranks(ex)
    if ranks is not None:  # the full ranking, not only the rank-1 answer above the rest
        return _by_value([-r for r in ranks])
    chosen = list(ex.chosen)
    rest = list(ex.rejected)
    # Partial ranking: the one chosen response above all the others. Several chosen responses
    # (a tie, or RewardBench-2-style sets of correct answers) have no order among them, which
    # a Plackett-Luce top-k would invent: they rank nothing (counted as unlabelled).
    return chosen + rest, 1 if len(chosen) == 1 and rest else 0


def _by_value(vals: list[float]) -> tuple[list[int], int]:
    """Best-first order of the responses with a value (higher is better; NaN: left out) and how
    many positions are ranked. A response without a value says nothing about where it belongs
    (it is not below every valued one). Equal values are a tie, not an order: only the
    positions above the first tie are ranked."""
    rated = sorted((i for i, v in enumerate(vals) if not math.isnan(v)), key=lambda i: -vals[i])
    tied = [t for t in range(len(rated) - 1) if vals[rated[t]] == vals[rated[t + 1]]]
    if not rated:  # no value: no order (the item keeps a list row)
        return list(range(len(vals))), 0
    return rated, min([len(rated) - 1, *tied])


def nectar_ranks(ex: Example) -> list[float] | None:
    """Nectar's ``meta["ranks"]`` (1 = best, one finite number per response) when the
    example's ``chosen`` is its rank-1 set (the ranks are the label it was read from); else
    None (another meta field of that name, or labels changed since: ``chosen`` wins)."""
    raw = ex.meta.get("ranks")
    n = len(ex.responses)
    if not isinstance(raw, list | tuple) or len(raw) != n or n < 2:
        return None
    ok = all(isinstance(r, int | float) and not isinstance(r, bool) for r in raw)
    if not ok or not all(math.isfinite(r) for r in raw):
        return None
    best = min(raw)
    if sorted(ex.chosen) != [i for i, r in enumerate(raw) if r == best]:
        return None
    return [float(r) for r in raw]


def as_number(value: Any, example_id: str, name: str) -> float:
    """A rating, margin or curated label as a float; None, NaN and ±inf are "missing" (NaN).
    A value that is no number (a bool, a string, even ``"2"``) or a finite one beyond float32's
    range (training computes in float32, where it would be ±inf) raises :class:`DataError`
    naming the example and the field (a NaN target would make the loss and every weight NaN
    while the run reports success)."""
    if value is None:
        return math.nan
    if isinstance(value, bool | str):
        quoted = " (a string, not a JSON number)" if isinstance(value, str) else ""
        raise DataError(f"example {example_id!r}: {name} is {value!r}, not a number{quoted}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DataError(f"example {example_id!r}: {name} is {value!r}, not a number") from None
    except OverflowError:  # an integer beyond float64
        x = F32_MAX * 2
    if math.isfinite(x) and abs(x) > F32_MAX:
        raise DataError(
            f"example {example_id!r}: {name} is {value!r}, beyond float32's finite range "
            "(±3.4e38) that training computes in"
        )
    return x if math.isfinite(x) else math.nan


def flip_labels(
    ex: Example,
    rating_key: str | None = None,
    listwise: bool = False,
    margin_column: str | None = None,
) -> Example:
    """``ex`` with its preference reversed (``vote_action: flip``,
    docs/methods/E1-preference-strength.md): chosen and rejected swapped, a full
    ``meta["ranking"]`` reversed, the ratings under ``rating_key`` negated, and the measured
    margins in ``meta`` (``margin``, ``strength`` and ``margin_column`` unless a signed strength,
    :data:`SIGNED_STRENGTH`) negated, as ``curate noise --action flip`` does: they are the Δ of
    the label, now the other response's; everything else (meta, ratings of other keys) kept. A
    tie and a partial ranking keep theirs (no reverse). ``listwise``: a full Nectar ranking
    (``meta["ranks"]``) is reversed too, its last answer becoming the one chosen."""
    from rewardkit.curate.strength import MARGIN_KEY, STRENGTH_KEY

    meta = dict(ex.meta)
    if ex.chosen and ex.rejected and not ex.is_tie:
        for key in {MARGIN_KEY, STRENGTH_KEY, margin_column} - {None, *SIGNED_STRENGTH}:
            value = meta.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                meta[key] = -value
    if "ranking" in meta:
        order, n_ranked = ranking_of(ex, None)
        if n_ranked == len(order) - 1:
            meta["ranking"] = order[::-1]
    ratings = ex.ratings
    if rating_key and ratings:
        ratings = [_negated(r, rating_key, ex.id) for r in ratings]
    chosen = ex.rejected if ex.chosen and ex.rejected else list(ex.chosen)
    ranks = nectar_ranks(ex) if listwise else None
    if ranks is not None and len(set(ranks)) == len(ranks):  # a full ranking: reversed
        meta["ranks"] = [max(ranks) + min(ranks) - r for r in ranks]
        chosen = [ranks.index(max(ranks))]
    return dataclasses.replace(ex, chosen=chosen, ratings=ratings, meta=meta)


def _negated(rating: dict[str, Any], key: str, example_id: str) -> dict[str, Any]:
    x = as_number(rating.get(key), example_id, key)
    return rating if math.isnan(x) else {**rating, key: -x}


def check_rating_key(examples: Sequence[Example], cfg: Any, where: str) -> None:
    """The listwise ``rating_key`` must name a rating the data has: a misspelt key would leave
    every example unranked (or fall back to another label) without saying why."""
    if cfg.objective != "listwise" or not cfg.rating_key or not examples:
        return
    keys = {k for ex in examples for r in ex.ratings or [] for k in r}
    if cfg.rating_key not in keys:
        found = ", ".join(sorted(keys)[:8]) or "none (no example has ratings)"
        raise DataError(
            f"{where}: rating_key {cfg.rating_key!r} is in no example's ratings; rating keys "
            f"found: {found}"
        )


def check_attributes(items: Sequence[Item], cfg: Any, where: str) -> None:
    """Every regression attribute must be rated somewhere in the training data
    (docs/methods/A2-multi-attribute-regression.md): an attribute rated nowhere (a misspelt
    name, or pairs without ratings under ``bt+regression``) would train that output on nothing
    while the run reports a regression model. ``gated`` accepts data with no ratings at all."""
    if cfg.objective not in ("regression", "bt+regression", "gated") or not items:
        return
    seen = [False] * len(cfg.attributes)
    for it in items:
        for row in it.targets or []:
            for j, v in enumerate(row):
                seen[j] = seen[j] or v != MASK
    if cfg.objective == "gated" and not any(seen):
        return
    missing = [a for a, ok in zip(cfg.attributes, seen, strict=True) if not ok]
    if missing:
        raise DataError(
            f"{where}: attribute(s) {missing} of objective {cfg.objective!r} are rated in none "
            f"of its {len(items)} examples (None, NaN and inf ratings count as missing); check "
            "the `attributes` names against the data's ratings"
        )


def identical_pairs(items: Sequence[Item]) -> int:
    """Strict pairs whose two sides encode to the same tokens (identical responses, or
    responses truncation made identical): no model can order them."""
    return sum(
        1
        for it in items
        for a, b, tie, _, _ in it.pairs
        if not tie
        and it.ids[a] == it.ids[b]
        and it.types[a] == it.types[b]
        and _image_key(it.ids[a]) == _image_key(it.ids[b])
    )


def _image_key(ids: Any) -> str | None:
    """The digest of the image a row of token ids carries (image reward models), else None:
    two sides with the same text and different images are not identical."""
    image = getattr(ids, "image", None)
    return None if image is None else image.digest()


#: Objectives that learn from their strict pairs alone (no tie or regression term): when every
#: pair has identical sides (listwise: every response of a list alike) they learn nothing.
ONLY_STRICT_PAIRS = ("bt", "crm", "generative", "listwise")


def _has_images(items: Sequence[Item]) -> bool:
    """Whether ``items`` are image reward model rows (each side's ids carry its image)."""
    return any(_image_key(ids) is not None for it in items[:1] for ids in it.ids)


def check_pairs_differ(items: Sequence[Item], objective: str, where: str) -> None:
    """Refuse training data whose every strict pair has two sides with the same tokens (image
    rows: the same text and the same image bytes) under an objective that learns from strict
    pairs alone (every prompt longer than ``max_length`` under right truncation did it: the run
    saved a model that had learnt nothing, with exit 0)."""
    n = identical_pairs(items)
    total = sum(1 for it in items for p in it.pairs if not p[2])
    if not (n and n == total and objective in ONLY_STRICT_PAIRS):
        return
    if _has_images(items):
        raise DataError(
            f"{where}: all {total} preference pairs have two sides with the same text and the "
            "same image (the same bytes, whatever the file names); no model can order them and "
            f"objective {objective!r} would learn nothing. Fix the pairs' images"
        )
    raise DataError(
        f"{where}: all {total} preference pairs have two sides with the same tokens "
        "(identical responses, or truncated to the same text: a prompt longer than "
        "max_length under truncation right keeps no response token); no model can order "
        f"them and objective {objective!r} would learn nothing. Raise max_length, use "
        "truncation left, or fix the responses"
    )


def warn_identical_pairs(items: Sequence[Item], where: str) -> None:
    n = identical_pairs(items)
    if n:
        total = sum(1 for it in items for p in it.pairs if not p[2])
        sides = (
            "the same text and the same image (the same bytes)"
            if _has_images(items)
            else "the same tokens (identical responses, or truncated to the same text)"
        )
        log.warning(
            "%s: %d of %d preference pairs have two sides with %s; they are kept, teach "
            "nothing, and count as misses in accuracy (strict >)",
            where,
            n,
            total,
            sides,
        )


@dataclasses.dataclass
class Truncations:
    """``encode`` (the scoring encoder) wrapped to count what truncation took from its rows:
    rows whose response was cut, and rows that lost more tokens than they kept (a
    ``max_length`` under the chat template's own header kept only response tails, without a
    word). :meth:`warn` says so; the rows are trained as before."""

    encode: Any
    rows: int = 0
    response_cut: int = 0
    mostly_cut: int = 0
    kept: int = 0  # the longest truncated row kept (the limit in effect)
    longest: int = 0  # the longest row before truncation

    def __getattr__(self, name: str) -> Any:
        """The wrapped encoder's attributes (a PRM step encoder's ``conv``, ``tag_id``)."""
        if name == "encode":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.encode, name)

    def __call__(self, queries: list[Any]) -> list[Any]:
        out = self.encode(queries)
        for row in out:
            dropped = int(getattr(row, "prompt_dropped", 0) or 0)
            cut = int(getattr(row, "response_dropped", 0) or 0)
            self.rows += 1
            self.response_cut += cut > 0
            self.mostly_cut += dropped + cut > len(row.input_ids)
            if dropped or cut:
                self.kept = max(self.kept, len(row.input_ids))
            self.longest = max(self.longest, len(row.input_ids) + dropped + cut)
        return out

    def warn(self, where: str) -> None:
        if not (self.response_cut or self.mostly_cut):
            return
        log.warning(
            "%s: truncation to %d tokens cut the response of %d of %d rows, and %d rows lost "
            "more tokens than they kept (the longest row has %d tokens); they train on what is "
            "left (a response tail, cut ends, the last tokens of a prompt): raise max_length",
            where,
            self.kept,
            self.response_cut,
            self.rows,
            self.mostly_cut,
            self.longest,
        )


#: Objectives that compare responses: unpaired (KTO) rows are paired by prompt for them.
PAIRING_OBJECTIVES = ("bt", "tie", "crome", "listwise", "generative", "crm")


def paired_by_prompt(examples: list[Any], cfg: TrainConfig, where: str) -> list[Any]:
    """Unpaired rows as preference pairs by prompt (:func:`rewardkit.data.unpaired.
    pair_by_prompt`) when the objective compares responses; other data as it is."""
    from rewardkit.data.unpaired import is_unpaired, pair_by_prompt

    if cfg.objective not in PAIRING_OBJECTIVES or not examples:
        return examples
    if not all(is_unpaired(ex) for ex in examples):
        return examples
    made = pair_by_prompt(examples)
    logging.getLogger("rewardkit.train.common").warning(
        "%s: %d unpaired rows of %d prompts paired by prompt for objective %r: %d preference "
        "pairs (each desirable completion against each undesirable one) from %d prompts; %d "
        "rows whose prompt has only one kind of label make no pair",
        where,
        made.rows,
        made.prompts,
        cfg.objective,
        len(made.pairs),
        made.prompts_paired,
        made.rows_unpaired,
    )
    if not made.pairs:
        raise DataError(
            f"{where}: no prompt has both a desirable and an undesirable completion, so the "
            f"unpaired rows make no preference pair for objective {cfg.objective!r}; train "
            "them with --objective regression --attributes label"
        )
    return made.pairs


def encode_located(encode: Any, examples: Sequence[Example], where: str) -> list[Any]:
    """``encode`` over every response query of ``examples`` in one call; a query it refuses
    (``truncation: error`` and a row over ``max_length``) is a :class:`DataError` naming
    ``where`` and the first example refused (the encoder's own error names neither)."""
    from rewardkit.engine.truncation import TruncationError

    try:
        return encode([q for ex in examples for q in ex.queries()])
    except TruncationError as exc:
        for ex in examples:  # the error path only: find the row, one example at a time
            try:
                encode(ex.queries())
            except TruncationError as one:
                raise DataError(f"{where}: example {ex.id!r}: {one}") from None
        raise DataError(f"{where}: {exc}") from None
