"""Answer tokens of a local judge model: which vocabulary ids spell each answer class.

Shared by the text-LM and VLM backends: a :class:`AnswerTokens` resolves the single-token
spellings of a kind's classes once, and turns the (b, Σ spellings) logits of those ids into the
kind's reward with the readers of :mod:`rewardkit.rewards.judges.verdict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardkit.rewards.judges import verdict
from rewardkit.rewards.judges.template import JudgeKind


def single_token_ids(tokenizer: Any, variants: Sequence[str]) -> list[int]:
    """Ids of the variants that the tokenizer spells as exactly one token (deduplicated)."""
    ids: list[int] = []
    for v in variants:
        toks = tokenizer(v, add_special_tokens=False)["input_ids"]
        if len(toks) == 1 and toks[0] not in ids:
            ids.append(toks[0])
    return ids


def answer_token_ids(
    tokenizer: Any, model: str, first: Sequence[str], second: Sequence[str], what: str
) -> tuple[list[int], list[int]]:
    """Single-token ids of two answer classes (Yes/No, A/B); a clear error when one has none."""
    a, b = single_token_ids(tokenizer, first), single_token_ids(tokenizer, second)
    if not a or not b:
        raise ValueError(f"{model}: no single-token spelling of {what} in its vocabulary")
    return a, b


def label_token_ids(tokenizer: Any, model: str, k: int) -> list[list[int]]:
    """Single-token ids of the listwise labels 1…k; a clear error when one has none."""
    ids = [single_token_ids(tokenizer, (str(i), f" {i}")) for i in range(1, k + 1)]
    if not all(ids):
        raise ValueError(f"{model}: no single-token spelling of the labels 1…{k}")
    return ids


def label_scores(logits: np.ndarray, label_ids: Sequence[Sequence[int]]) -> np.ndarray:
    """(b, k) log-scores of the labels from the logits of their flattened ids."""
    return verdict.class_scores(logits, [len(ids) for ids in label_ids])


#: Per two-class kind: what its answers are called (errors) and the identity keys of their ids.
CLASS_NAMES = {
    "yes_no": ("Yes/No", ("yes_ids", "no_ids")),
    "pairwise": ("A/B", ("a_ids", "b_ids")),
    "verifier": ("1/0", ("one_ids", "zero_ids")),
}


class AnswerTokens:
    """The two answer classes of a yes/no, pairwise or verifier judge on one tokenizer.

    :meth:`read` maps the logits of :attr:`ids` to the reward: σ(ℓ_yes − ℓ_no) (or the margin
    with ``output="logit"``) for yes/no, the slot margin ℓ_A − ℓ_B for pairwise, and
    :func:`~rewardkit.rewards.judges.verdict.verifier` for the verifier's "1"/"0".
    """

    def __init__(self, kind: JudgeKind, tokenizer: Any, model: str, output: str = "prob") -> None:
        what, names = CLASS_NAMES[kind.name]
        first, second = answer_token_ids(tokenizer, model, *kind.classes, what)
        self.kind = kind
        self.output = output
        self.first, self.second = first, second
        self.sizes = (len(first), len(second))
        self.ids = first + second
        self.identity: dict[str, Any] = {names[0]: first, names[1]: second}
        if kind.name != "pairwise":
            self.identity["output"] = output

    def read(self, logits: np.ndarray) -> np.ndarray:
        """The reward of each row from its (b, len(ids)) answer-token logits (float64)."""
        scores = verdict.class_scores(logits, self.sizes)
        if self.kind.name == "yes_no":
            return verdict.yes_no(scores, self.output)
        if self.kind.name == "verifier":
            return verdict.verifier(scores, self.output)
        return verdict.margin(scores)
