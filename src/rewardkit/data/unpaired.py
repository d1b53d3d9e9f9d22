"""Preference pairs from unpaired rows (TRL's unpaired type, KTO data: ``format="unpaired"``).

Unpaired data made from preference pairs (TRL's ``unpair_preference_dataset``, ``kto-mix-14k``)
keeps both answers of a prompt, one labelled desirable and one not. :func:`pair_by_prompt` puts
them back: within each prompt (its messages, exactly), every desirable completion against every
undesirable one, chosen first, so a pairwise objective (Bradley–Terry) can train on them. Rows
whose prompt has only one kind of label make no pair and are counted, never guessed.

The pairs of one prompt grow as (desirable × undesirable): they are counted before any is built,
and more than :data:`MAX_PAIRS` are refused in one line naming the largest prompt, instead of
filling memory (``build=False`` only counts, for ``rewardkit data``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rewardkit.data.record import identical_sides
from rewardkit.errors import DataError
from rewardkit.types import Example, stable_hash

#: Most preference pairs :func:`pair_by_prompt` builds (about 0.6 kB each: ~1.2 GB).
MAX_PAIRS = 2_000_000
#: The rating that :func:`rewardkit.data.ratings.convert_unpaired` stores the label under.
LABEL = "label"


@dataclass(frozen=True)
class Pairing:
    """What :func:`pair_by_prompt` made: the pairs and the rows and prompts behind them."""

    pairs: list[Example]
    rows: int
    prompts: int
    prompts_paired: int
    rows_unpaired: int
    #: The pairs the rows make (``len(pairs)`` when they were built).
    count: int = 0


def is_unpaired(ex: Example) -> bool:
    """Whether ``ex`` is one unpaired row (one response rated by a 0/1 ``label``)."""
    return (
        ex.meta.get("format") == "unpaired"
        and len(ex.responses) == 1
        and bool(ex.ratings)
        and LABEL in ex.ratings[0]
    )


def pair_by_prompt(
    examples: Sequence[Example], *, build: bool = True, limit: int = MAX_PAIRS
) -> Pairing:
    """Every (desirable, undesirable) pair of completions to one prompt, in file order; see the
    module docstring. Every example must be an unpaired row (:func:`is_unpaired`). The pairs
    are counted first: ``build=False`` returns the counts only; more than ``limit`` to build
    is a :class:`DataError`."""
    groups: dict[str, tuple[list[Example], list[Example]]] = {}
    for ex in examples:
        if not is_unpaired(ex):
            raise ValueError(f"example {ex.id!r} is not an unpaired row")
        key = stable_hash(ex.prompt)
        good, bad = groups.setdefault(key, ([], []))
        (good if ex.ratings[0][LABEL] == 1.0 else bad).append(ex)  # type: ignore[index]
    count = sum(len(good) * len(bad) for good, bad in groups.values())
    paired = sum(1 for good, bad in groups.values() if good and bad)
    unpaired = sum(len(good) + len(bad) for good, bad in groups.values() if not (good and bad))
    if build and count > limit:
        raise _too_many(len(examples), count, limit, groups)
    pairs: list[Example] = []
    for good, bad in groups.values() if build else ():
        for g in good:
            for b in bad:
                meta = {**g.meta, "format": "unpaired", "paired_from": [g.id, b.id]}
                responses = [g.responses[0], b.responses[0]]
                if identical_sides(responses, [0]):  # as Record.finish flags a loaded pair
                    meta["identical_responses"] = True
                pairs.append(
                    Example(
                        f"{g.id}|{b.id}",
                        g.prompt,
                        responses,
                        [0],
                        subset=g.subset,
                        source=g.source,
                        language=g.language,
                        meta=meta,
                    )
                )
    return Pairing(pairs, len(examples), len(groups), paired, unpaired, count)


def _too_many(
    rows: int, count: int, limit: int, groups: dict[str, tuple[list[Example], list[Example]]]
) -> DataError:
    """The refusal of a pairing that would build more than ``limit`` pairs."""
    good, bad = max(groups.values(), key=lambda gb: len(gb[0]) * len(gb[1]))
    return DataError(
        f"{rows} unpaired rows would make {count:,} preference pairs by prompt (each desirable "
        f"completion against each undesirable one), more than {limit:,}; the prompt of row "
        f"{good[0].id} alone has {len(good)} desirable × {len(bad)} undesirable completions. "
        "Train them with --objective regression --attributes label, or keep fewer completions "
        "per prompt"
    )
