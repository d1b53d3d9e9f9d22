"""Preference pairs from unpaired rows (TRL's unpaired type, KTO data: ``format="unpaired"``).

Unpaired data made from preference pairs (TRL's ``unpair_preference_dataset``, ``kto-mix-14k``)
keeps both answers of a prompt, one labelled desirable and one not. :func:`pair_by_prompt` puts
them back: within each prompt (its messages, exactly), every desirable completion against every
undesirable one, chosen first, so a pairwise objective (Bradley–Terry) can train on them. Rows
whose prompt has only one kind of label make no pair and are counted, never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rewardkit.types import Example, stable_hash

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


def is_unpaired(ex: Example) -> bool:
    """Whether ``ex`` is one unpaired row (one response rated by a 0/1 ``label``)."""
    return (
        ex.meta.get("format") == "unpaired"
        and len(ex.responses) == 1
        and bool(ex.ratings)
        and LABEL in ex.ratings[0]
    )


def pair_by_prompt(examples: Sequence[Example]) -> Pairing:
    """Every (desirable, undesirable) pair of completions to one prompt, in file order; see the
    module docstring. Every example must be an unpaired row (:func:`is_unpaired`)."""
    groups: dict[str, tuple[list[Example], list[Example]]] = {}
    for ex in examples:
        if not is_unpaired(ex):
            raise ValueError(f"example {ex.id!r} is not an unpaired row")
        key = stable_hash(ex.prompt)
        good, bad = groups.setdefault(key, ([], []))
        (good if ex.ratings[0][LABEL] == 1.0 else bad).append(ex)  # type: ignore[index]
    pairs: list[Example] = []
    unpaired = paired = 0
    for good, bad in groups.values():
        if not good or not bad:
            unpaired += len(good) + len(bad)
            continue
        paired += 1
        for g in good:
            for b in bad:
                meta = {**g.meta, "format": "unpaired", "paired_from": [g.id, b.id]}
                pairs.append(
                    Example(
                        f"{g.id}|{b.id}",
                        g.prompt,
                        [g.responses[0], b.responses[0]],
                        [0],
                        subset=g.subset,
                        source=g.source,
                        language=g.language,
                        meta=meta,
                    )
                )
    return Pairing(pairs, len(examples), len(groups), paired, unpaired)
