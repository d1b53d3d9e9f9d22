"""Examples to training items, and items to model batches (padded or packed).

Every response of a batch goes through the model in ONE forward pass: the collator flattens the
responses of all items (a pair's chosen and rejected, a list's K responses) into one list of
sequences, and records which sequences form the pairs, lists and regression targets. Lengths are
fitted by the project's truncation policy (:mod:`rewardkit.engine.truncation`, ``left`` drops the
oldest prompt tokens and keeps the response); no pair is ever dropped.

Packing (``packing=True``) places the sequences of a batch end to end in rows of at most
``capacity`` tokens (first-fit decreasing) with per-sequence ``position_ids`` and a
block-diagonal 4-D attention mask (causal inside a block for decoders), so no compute goes to
padding; the pooled position of each sequence is returned in ``pool_index``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from rewardkit.curate.consistency import CONFIDENCE_KEY  # curate consistency --action soften
from rewardkit.curate.noise import WEIGHT_KEY  # curate noise --action downweight
from rewardkit.errors import DataError
from rewardkit.train.labels import (
    MASK,
    as_number,
    check_rating_key,
    encode_located,
    nectar_ranks,
    ranking_of,
    rating_target,
    warn_identical_pairs,
)
from rewardkit.train.objective_fields import SMOOTHED, WEIGHTED
from rewardkit.train.pairs import example_margins, group_key, item_pairs, report_unmeasured
from rewardkit.train.votes import Votes, load_votes  # noqa: F401  (load_votes: public)
from rewardkit.types import Example, Query


@dataclass
class Item:
    """One training unit: its responses' token rows and what the objective knows about them.

    ``pairs``: (better, worse, tied, margin, weight) over local response indices; ``order``:
    response indices best-first for listwise objectives (``n_ranked`` of them ranked);
    ``targets``: per-response attribute ratings (MASK where missing); ``verdicts``: 1/0 per
    response for the generative objective; ``smoothing``: the label smoothing α of the
    item's pairs from ``meta.label_confidence`` (None: the config's ``label_smoothing``);
    ``prompt_key``: its normalised prompt without its context line
    (:func:`~rewardkit.train.pairs.group_key`), which keeps every row of a prompt, under any
    context, on one side of a hold-out ("": the item alone).
    """

    ids: list[list[int]]
    types: list[list[int] | None]
    pairs: list[tuple[int, int, bool, float, float]] = field(default_factory=list)
    order: list[int] = field(default_factory=list)
    n_ranked: int = 0
    targets: list[list[float]] | None = None
    example_id: str = ""
    smoothing: float | None = None
    prompt_key: str = ""


#: Objectives whose loss needs preference pairs (a BT-style term): with no labelled pair the
#: term is 0 and nothing is learnt from it.
PAIR_OBJECTIVES = ("bt", "tie", "crome", "bt+regression", "gated", "crm", "generative", "listwise")
#: Objectives whose loss reads only strict (non-tie) pairs.
STRICT_PAIRS = ("bt", "bt+regression", "gated", "crm", "generative")
log = logging.getLogger(__name__)


def has_preference(item: Item, objective: str) -> bool:
    """Whether ``item`` gives ``objective``'s preference term something to learn."""
    if objective == "listwise":
        return item.n_ranked > 0
    if objective in STRICT_PAIRS:
        return any(not tie for _, _, tie, _, _ in item.pairs)
    return bool(item.pairs)


def _some(ids: Sequence[str], shown: int = 3) -> str:
    """The first ``shown`` ids, quoted, and how many more."""
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(repr(i) for i in ids[:shown]) + more


def _why_unlabelled(ex: Example, cfg: Any) -> str:
    objective = cfg.objective
    if objective == "listwise" and "ranking" not in ex.meta:
        if cfg.rating_key and ex.ratings:
            return f"its top-rated responses tie under rating_key {cfg.rating_key!r}"
        if nectar_ranks(ex) is not None:
            return "its rank-1 answers tie"
    if ex.is_tie and objective in STRICT_PAIRS:
        return "a tie (every response chosen), which the BT term skips"
    if ex.is_tie and objective == "listwise":
        return "a tie (every response chosen), no order"
    if not ex.chosen:
        rated = " (it has ratings)" if ex.ratings else ""
        return f"no chosen response{rated}"
    if len(ex.chosen) > 1:
        return f"{len(ex.chosen)} chosen responses and no order among them (give meta ranking)"
    return "no ranked response (its top-rated responses tie)"


def check_labels(items: Sequence[Item], cfg: Any, where: str) -> None:
    """Raise :class:`DataError` when ``items`` hold no preference for a pair objective (the
    loss would be 0 and the run would \"succeed\" having learnt nothing)."""
    if cfg.objective not in PAIR_OBJECTIVES or not items:
        return
    n_pairs = sum(len(it.pairs) for it in items)
    scaled = cfg.objective == "bt" and getattr(cfg, "margin_kind", "margin") == "scaled"
    if scaled and not any(m * w != 0 for it in items for _, _, tie, m, w in it.pairs if not tie):
        raise DataError(
            f"{where}: margin_kind scaled multiplies each pair's loss by its margin, and every "
            f"margin in {cfg.margin_column!r} is 0: the loss would be 0 and nothing would "
            "train. Use margin_kind margin, or margins that are not all 0"
        )
    if any(has_preference(it, cfg.objective) for it in items):
        strict = cfg.objective in STRICT_PAIRS
        used = [w for it in items for _, _, tie, _, w in it.pairs if not (tie and strict)]
        if cfg.objective in WEIGHTED and not any(used):
            raise DataError(
                f"{where}: every pair has weight 0 (meta {WEIGHT_KEY!r} or vote_weight): the "
                "loss would be 0 and nothing would train"
            )
        return
    only_ties = f", {n_pairs} tie pairs only" if n_pairs else ""
    raise DataError(
        f"{where}: none of its {len(items)} examples has a preference for objective "
        f"{cfg.objective!r} to learn from (no chosen/rejected responses{only_ties}); the loss "
        "would be 0 and nothing would train. Give the examples chosen and rejected responses "
        "(or a ranking), or pick the objective the labels fit: 'regression' for ratings "
        "alone (with attributes), 'tie' for tie labels"
    )


def data_counts(items: Sequence[Item], objective: str) -> dict[str, int]:
    """What ``items`` give ``objective`` (docs/training.md, "What a run says it trained on"):
    ``examples``; ``pairs``, the strict preference pairs (what accuracy counts: a best-of-N row
    gives one per rejected response) and ``tie_pairs``; for a pair objective ``no_preference``,
    the examples it learns nothing from; ``ranked_lists`` (listwise), ``rated_targets``
    (objectives with a regression term) or ``labelled_steps`` (prm); ``prompts``, the distinct
    normalised prompts, when every item knows its own."""
    out = {"examples": len(items)}
    if items and all(it.prompt_key for it in items):
        out["prompts"] = len({it.prompt_key for it in items})
    if objective == "prm":
        out["labelled_steps"] = sum(1 for it in items for row in it.types for t in row or [] if t)
        return out
    out |= {
        "pairs": sum(1 for it in items for p in it.pairs if not p[2]),
        "tie_pairs": sum(1 for it in items for p in it.pairs if p[2]),
    }
    if objective in PAIR_OBJECTIVES:
        out["no_preference"] = sum(1 for it in items if not has_preference(it, objective))
    if objective == "listwise":
        out["ranked_lists"] = sum(1 for it in items if has_preference(it, objective))
    if any(it.targets is not None for it in items):
        rated = (v != MASK for it in items for row in it.targets or [] for v in row)
        out["rated_targets"] = sum(rated)
    return out


def describe_counts(counts: dict[str, int], objective: str) -> str:
    """``counts`` (:func:`data_counts`) in words: "6 examples from 5 prompts, 16 preference
    pairs (3 tie pairs skipped; 1 example without a preference for 'bt')"."""
    text = _n(counts["examples"], "example")
    if "prompts" in counts:
        text += f" from {_n(counts['prompts'], 'prompt')}"
        if counts.get("prompts_in_train"):
            text += f" ({counts['prompts_in_train']} also in the training data)"
    if "labelled_steps" in counts:
        return f"{text}, {_n(counts['labelled_steps'], 'labelled step')}"
    text += f", {_n(counts['pairs'], 'preference pair')}"
    if "ranked_lists" in counts:
        text += f", {_n(counts['ranked_lists'], 'ranked list')}"
    if "rated_targets" in counts:
        text += f", {_n(counts['rated_targets'], 'rated target')}"
    skipped = []
    if counts["tie_pairs"]:
        verb = "trained as ties" if objective in ("tie", "crome") else "skipped"
        skipped.append(f"{_n(counts['tie_pairs'], 'tie pair')} {verb}")
    if counts.get("no_preference"):
        none = _n(counts["no_preference"], "example")
        skipped.append(f"{none} without a preference for {objective!r}")
    return text + (f" ({'; '.join(skipped)})" if skipped else "")


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


def meta_labels(ex: Example) -> tuple[float, float | None]:
    """(weight, label smoothing α) of ``ex`` from ``meta.weight`` (a finite number ≥ 0; 1 when
    absent) and ``meta.label_confidence`` C (in [0.5, 1]; α = 1 − C, None when absent), as
    curation writes them (docs/methods/E1-preference-strength.md,
    docs/methods/E4-cream-consistency.md); a bad value raises :class:`DataError` naming ``ex``."""
    weight, alpha = 1.0, None
    if WEIGHT_KEY in ex.meta:
        raw = ex.meta[WEIGHT_KEY]
        weight = as_number(raw, ex.id, f"meta {WEIGHT_KEY!r}")
        if not (math.isfinite(weight) and weight >= 0):
            raise DataError(
                f"example {ex.id!r}: meta {WEIGHT_KEY!r} is {raw!r}; a pair weight must be a "
                "finite number >= 0"
            )
    if CONFIDENCE_KEY in ex.meta:
        raw = ex.meta[CONFIDENCE_KEY]
        conf = as_number(raw, ex.id, f"meta {CONFIDENCE_KEY!r}")
        if not 0.5 <= conf <= 1.0:  # NaN fails too
            raise DataError(
                f"example {ex.id!r}: meta {CONFIDENCE_KEY!r} is {raw!r}; a label confidence "
                "must be a number in [0.5, 1] (label smoothing α = 1 − confidence)"
            )
        alpha = 1.0 - conf
    return weight, alpha


def _warn_meta_ignored(counts: dict[str, int], objective: str, where: str) -> None:
    """One warning per meta label that ``objective`` cannot use."""
    for key, n in counts.items():
        if n:
            log.warning(
                "%s: %d examples have meta %r, which objective %r ignores (read by %s)",
                where,
                n,
                key,
                objective,
                ", ".join(WEIGHTED if key == WEIGHT_KEY else SMOOTHED),
            )


def build_items(
    examples: Sequence[Example],
    encode: Callable[[list[Query]], list[Any]],
    cfg: Any,
    where: str = "data",
    use_votes: bool = True,
) -> list[Item]:
    """Tokenize every response once (through ``encode``, the scoring encoder of the model) and
    attach the objective's labels. Bad examples raise :class:`DataError` naming the example;
    so does data with no preference at all for a pair objective (:func:`check_labels`), and
    examples without one in mixed data, pairs whose two sides encode to the same tokens and
    examples changed by the vote file are counted in warnings naming ``where``. Curated
    ``meta.weight`` multiplies a pair's weight (with the vote file's, by product) and
    ``meta.label_confidence`` sets its label smoothing (:func:`meta_labels`) unless
    ``cfg.use_meta_labels`` is off. ``use_votes``: False for eval data (its labels are measured
    as given: never dropped, flipped, weighted or smoothed; a margin column it lacks is no
    error). Each pair's margin is the one measured on it (:mod:`rewardkit.train.pairs`)."""
    votes = Votes(cfg if use_votes else None)
    use_meta = use_votes and getattr(cfg, "use_meta_labels", True)
    ignored = {WEIGHT_KEY: 0, CONFIDENCE_KEY: 0}
    check_rating_key(examples, cfg, where)
    spans = []
    for ex in examples:
        if len(ex.responses) < (1 if cfg.objective == "regression" else 2):
            names = ",".join(sorted(ex.ratings[0])) if ex.ratings else ""
            hint = names and (  # rated rows: the objective that trains them, and how
                "; rated single-response rows (HelpSteer2, unpaired KTO labels) train with "
                f"objective 'regression': --objective regression --attributes {names}"
            )
            raise DataError(
                f"example {ex.id!r}: {len(ex.responses)} response(s); objective "
                f"{cfg.objective!r} compares responses and needs 2 or more per example{hint}"
            )
        spans.append((spans[-1][0] + spans[-1][1] if spans else 0, len(ex.responses)))
    rows = encode_located(encode, examples, where)
    items = []
    no_margin = [0, 0]  # strict pairs without a margin, strict pairs
    unlabelled: list[tuple[str, str]] = []
    unrated: list[str] = []
    for ex, (start, n) in zip(examples, spans, strict=True):
        part = rows[start : start + n]
        margins = {}
        if cfg.margin_column:
            margins = example_margins(ex, cfg.margin_column, cfg.margin_kind, use_votes)
        weight, alpha = meta_labels(ex) if use_meta else (1.0, None)
        if use_meta and cfg.objective not in WEIGHTED and weight != 1.0:
            ignored[WEIGHT_KEY] += 1
        if use_meta and cfg.objective not in SMOOTHED and alpha:
            ignored[CONFIDENCE_KEY] += 1
        ex_use, weight = votes.apply(ex, weight)
        if ex_use is None:  # dropped
            continue
        pairs, missing = item_pairs(ex_use, margins, weight) if n > 1 else ([], 0)
        no_margin[0] += missing
        no_margin[1] += sum(not p[2] for p in pairs)
        item = Item(
            ids=[r.input_ids for r in part],
            types=[r.token_type_ids for r in part],
            pairs=pairs,
            example_id=ex.id,
            smoothing=alpha,
            prompt_key=group_key(ex),
        )
        if cfg.objective == "listwise":
            item.order, item.n_ranked = ranking_of(ex_use, cfg.rating_key)
        if cfg.attributes:
            ratings = ex.ratings or [{} for _ in range(n)]
            item.targets = [
                [rating_target(r.get(a), ex.id, f"rating {a!r}") for a in cfg.attributes]
                for r in ratings
            ]
            if cfg.objective == "regression" and all(v == MASK for t in item.targets for v in t):
                unrated.append(ex.id)  # adds nothing to the loss (check_attributes: not all)
        if cfg.objective in PAIR_OBJECTIVES and not has_preference(item, cfg.objective):
            unlabelled.append((ex.id, _why_unlabelled(ex_use, cfg)))
        items.append(item)
    if cfg.margin_column:
        report_unmeasured(log, where, cfg.margin_column, *no_margin, training=use_votes)
    check_labels(items, cfg, where)
    _warn_meta_ignored(ignored, cfg.objective, where)
    votes.report(where, len(examples))
    warn_identical_pairs(items, where)
    if unrated:
        log.warning(
            "%s: %d of %d examples have no rating under %s (None, NaN or 'N/A' on every "
            "response: %s); they add nothing to the regression loss",
            where,
            len(unrated),
            len(items),
            list(cfg.attributes),
            _some(unrated),
        )
    if unlabelled:
        shown = ", ".join(f"{i!r} ({why})" for i, why in unlabelled[:3])
        more = f" and {len(unlabelled) - 3} more" if len(unlabelled) > 3 else ""
        rest = (
            "they train the regression term only"
            if cfg.objective in ("bt+regression", "gated")
            else "they add nothing to the loss"
        )
        log.warning(
            "%s: %d of %d examples have no preference for objective %r (%s%s); %s",
            where,
            len(unlabelled),
            len(items),
            cfg.objective,
            shown,
            more,
            rest,
        )
    return items


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """First-fit decreasing: sequence indices grouped into rows of at most ``capacity`` tokens
    (a longer sequence gets a row of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = lengths[i]
        for r, left in enumerate(room):
            if n <= left:
                rows[r].append(i)
                room[r] -= n
                break
        else:
            rows.append([i])
            room.append(max(capacity, n) - n)
    return rows


@dataclass
class Collator:
    """Items to one batch for one forward pass; see the module docstring."""

    pad_id: int
    decoder: bool
    packing: bool = False
    capacity: int = 512
    pool: str = "last_non_pad"  # "first" (BERT's [CLS]), "last", or HF's "last_non_pad"

    def __call__(self, items: Sequence[Item]) -> dict[str, torch.Tensor]:
        seqs: list[list[int]] = []
        types: list[list[int] | None] = []
        pa, pb, tie, margin, weight, orders, n_ranked, targets = [], [], [], [], [], [], [], []
        smooth: list[float] = []
        max_k = max(len(it.ids) for it in items)
        has_targets = any(it.targets is not None for it in items)
        for it in items:
            base = len(seqs)
            seqs.extend(it.ids)
            types.extend(it.types)
            for a, b, t, m, w in it.pairs:
                pa.append(base + a)
                pb.append(base + b)
                tie.append(t)
                margin.append(m)
                weight.append(w)
                smooth.append(math.nan if it.smoothing is None else it.smoothing)
            if it.order:
                orders.append([base + i for i in it.order] + [-1] * (max_k - len(it.order)))
                n_ranked.append(it.n_ranked)
            if has_targets:
                k = len(next(t for t in (i.targets for i in items) if t is not None)[0])
                targets.extend(it.targets or [[MASK] * k for _ in it.ids])
        out = self._pack(seqs, types) if self.packing and self._packing_helps(seqs) else None
        out = out or self._pad(seqs, types)
        out["pair_a"] = torch.tensor(pa, dtype=torch.long)
        out["pair_b"] = torch.tensor(pb, dtype=torch.long)
        out["pair_tie"] = torch.tensor(tie, dtype=torch.bool)
        out["pair_margin"] = torch.tensor(margin, dtype=torch.float32)
        out["pair_weight"] = torch.tensor(weight, dtype=torch.float32)
        if any(it.smoothing is not None for it in items):  # NaN: the config's label_smoothing
            out["pair_smoothing"] = torch.tensor(smooth, dtype=torch.float32)
        if orders:
            out["order"] = torch.tensor(orders, dtype=torch.long)
            out["n_ranked"] = torch.tensor(n_ranked, dtype=torch.long)
        if has_targets:
            out["targets"] = torch.tensor(targets, dtype=torch.float32)
        out["n_tokens"] = torch.tensor(sum(len(s) for s in seqs), dtype=torch.long)
        return out

    def _packing_helps(self, seqs: list[list[int]]) -> bool:
        """Pack only when the packed rows hold fewer slots than padding to the batch maximum."""
        lengths = [len(s) for s in seqs]
        rows = pack_rows(lengths, self.capacity)
        width = max(sum(lengths[i] for i in row) for row in rows)
        return len(rows) * width < len(seqs) * max(lengths)

    def _pad(self, seqs: list[list[int]], types: list[list[int] | None]) -> dict[str, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        tt = torch.zeros((len(seqs), width), dtype=torch.long) if types[0] is not None else None
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
            if tt is not None:
                tt[i, : len(s)] = torch.tensor(types[i])
        out = {"input_ids": ids, "attention_mask": mask}
        if tt is not None:
            out["token_type_ids"] = tt
        return out

    def _pack(
        self, seqs: list[list[int]], types: list[list[int] | None]
    ) -> dict[str, torch.Tensor] | None:
        rows = pack_rows([len(s) for s in seqs], self.capacity)
        width = max(sum(len(seqs[i]) for i in row) for row in rows)
        n_rows = len(rows)
        ids = torch.full((n_rows, width), self.pad_id, dtype=torch.long)
        pos = torch.zeros((n_rows, width), dtype=torch.long)
        seg = torch.full((n_rows, width), -1, dtype=torch.long)
        tt = torch.zeros((n_rows, width), dtype=torch.long) if types[0] is not None else None
        pool = torch.zeros(len(seqs), dtype=torch.long)
        for r, row in enumerate(rows):
            at = 0
            for i in row:
                s = seqs[i]
                n = len(s)
                ids[r, at : at + n] = torch.tensor(s)
                pos[r, at : at + n] = torch.arange(n)
                seg[r, at : at + n] = i
                if tt is not None:
                    tt[r, at : at + n] = torch.tensor(types[i])
                if self.pool == "first":
                    p = 0
                elif self.pool == "last":
                    p = n - 1
                else:  # the last token that is not the pad id, as HF's sequence classifiers do
                    non_pad = [j for j, t in enumerate(s) if t != self.pad_id]
                    p = non_pad[-1] if non_pad else n - 1
                pool[i] = r * width + at + p
                at += n
        allowed = (seg.unsqueeze(2) == seg.unsqueeze(1)) & (seg >= 0).unsqueeze(2)
        if self.decoder:
            allowed &= torch.ones(width, width, dtype=torch.bool).tril()
        # Padding rows attend to themselves so no softmax row is empty.
        allowed |= torch.eye(width, dtype=torch.bool)
        mask = torch.zeros((n_rows, 1, width, width), dtype=torch.float32)
        mask.masked_fill_(~allowed.unsqueeze(1), torch.finfo(torch.float32).min)
        out = {"input_ids": ids, "attention_mask": mask, "position_ids": pos, "pool_index": pool}
        if tt is not None:
            out["token_type_ids"] = tt
        return out


def split_holdout(
    items: list[Item], fraction: float, seed: int, by: str = "prompt", where: str = "data"
) -> tuple[list[Item], list[Item]]:
    """(train, eval): a seeded hold-out of about ``fraction`` of ``items``, of whole prompts
    (``by="prompt"``, by ``prompt_key``) or rows (:func:`~rewardkit.train.common.holdout_indices`)."""
    from rewardkit.train.common import holdout_indices

    if fraction <= 0:
        return items, []
    keys = [it.prompt_key or i if by == "prompt" else i for i, it in enumerate(items)]
    held = set(holdout_indices(keys, fraction, seed, where, by))
    return [it for i, it in enumerate(items) if i not in held], [items[i] for i in sorted(held)]
