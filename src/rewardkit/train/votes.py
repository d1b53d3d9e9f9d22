"""Ensemble-vote files (docs/methods/E1-preference-strength.md): ``{example_id: strength}`` as
ensemble training writes ``votes.json``, read and checked, then applied to the training examples
whose strength is below ``vote_threshold`` (``vote_action`` drop, downweight or flip).

Only what happened is reported: how many of the file's ids match an example (a warning when
none does), and how many examples were dropped, down-weighted or flipped; an example flip cannot
reverse (a tie, a partial ranking) is kept as given and counted as such.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from rewardkit.curate.scores import labelled_pair
from rewardkit.errors import DataError
from rewardkit.train.labels import F32_MAX, flip_labels, ranking_of
from rewardkit.train.pairs import VOTED_PAIR_KEY, mined_pairs
from rewardkit.types import Example

log = logging.getLogger("rewardkit.train.collate")


def load_votes(path: str | None) -> dict[str, float]:
    """The strengths of a vote file: a JSON object of finite numbers; anything else is a
    :class:`DataError` naming the file (and the id of a bad value)."""
    if not path:
        return {}
    from pathlib import Path

    from rewardkit.data.sources import file_type

    if Path(path).exists() and not Path(path).is_file() and not Path(path).is_dir():
        raise DataError(  # a FIFO blocked the run forever, /dev/zero filled memory
            f"vote_file {path}: not a regular file ({file_type(Path(path))}); save the votes "
            "to a JSON file and pass its path"
        )
    try:
        with open(path) as fh:
            raw = json.load(fh)
    except (OSError, ValueError) as exc:
        raise DataError(f"vote_file {path}: cannot read a JSON object of strengths: {exc}") from exc
    if not isinstance(raw, dict):
        raise DataError(f"vote_file {path}: expected a JSON object {{example_id: strength}}")
    return {str(k): _strength(path, str(k), v) for k, v in raw.items()}


def _strength(path: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(
            f"vote_file {path}: example id {key!r}: strength {json.dumps(value)} is not a number"
        )
    try:
        x = float(value)
    except OverflowError:  # an integer beyond float64
        x = math.inf
    if not math.isfinite(x) or abs(x) > F32_MAX:
        raise DataError(
            f"vote_file {path}: example id {key!r}: strength {json.dumps(value)} is not a finite "
            "number"
        )
    return x


def flipped(ex: Example, cfg: Any) -> Example | None:
    """``ex`` with the preference ``cfg.objective`` reads reversed (:func:`flip_labels`), or
    None when it has none to reverse (a tie; a partial ranking or a chosen set over several
    rejected responses under ``listwise``, whose reverse a top-k ranking cannot hold). A vote
    is the strength of the example's labelled pair (card E1), so a pair objective's flip of an
    example with several pairs trains that pair reversed and no other
    (``meta["vote_flipped_pair"]``), as ``curate noise --action flip`` reduces it."""
    listwise = cfg.objective == "listwise"
    new = flip_labels(ex, cfg.rating_key if listwise else None, listwise, cfg.margin_column)
    if listwise:
        before, after = ranking_of(ex, cfg.rating_key), ranking_of(new, cfg.rating_key)
        return new if after[1] > 0 and after != before else None
    if new.chosen == ex.chosen:
        return None
    own = labelled_pair(ex)
    if own is not None and len(mined_pairs(ex)) > 1:
        new.meta[VOTED_PAIR_KEY] = [own[1], own[0]]
    return new


class Votes:
    """The vote file of a config applied to its training examples (``cfg`` None: no votes,
    as for eval data), with the counts :meth:`report` logs."""

    def __init__(self, cfg: Any | None) -> None:
        self.cfg = cfg
        self.path = getattr(cfg, "vote_file", None) if cfg is not None else None
        self.strengths = load_votes(self.path)
        self.matched: set[str] = set()
        self.done = 0
        self.kept = 0

    def apply(self, ex: Example, weight: float) -> tuple[Example | None, float]:
        """(the example to train on, None when dropped; its pair weight)."""
        strength = self.strengths.get(ex.id)
        if strength is None:
            return ex, weight
        self.matched.add(ex.id)
        if strength >= self.cfg.vote_threshold:
            return ex, weight
        action = self.cfg.vote_action
        if action == "drop":
            self.done += 1
            return None, weight
        if action == "downweight":
            self.done += 1
            return ex, weight * self.cfg.vote_weight
        new = flipped(ex, self.cfg)
        if new is None:
            self.kept += 1
            return ex, weight
        self.done += 1
        return new, weight

    def report(self, where: str, n_examples: int) -> None:
        """Warn what the vote file did to ``where`` (nothing is said without a vote file)."""
        if not self.strengths:
            return
        cfg, n = self.cfg, len(self.strengths)
        if not self.matched:
            shown = ", ".join(repr(k) for k in list(self.strengths)[:3])
            log.warning(
                "%s: vote_file %s: none of its %d example ids (%s%s) matches an example's id; "
                "nothing was dropped, down-weighted or flipped",
                where, self.path, n, shown, ", ..." if n > 3 else "",
            )  # fmt: skip
            return
        done = {"drop": "dropped", "downweight": f"weight x {cfg.vote_weight}"}
        said = f"{self.done} {done.get(cfg.vote_action, 'flipped')}"
        if self.kept:
            said += f", {self.kept} kept as given (no preference to flip: ties or partial rankings)"
        log.warning(
            "%s: vote_file %s: %d of its %d ids match examples; %d of %d examples below "
            "vote_threshold %s: %s",
            where, self.path, len(self.matched), n, self.done + self.kept, n_examples,
            cfg.vote_threshold, said,
        )  # fmt: skip
