"""``rule:exact_match`` — SQuAD-style normalised exact match, max over references.

Both strings are normalised as the SQuAD v1.1 evaluation script does: lowercase, remove
punctuation, remove the articles *a*, *an*, *the*, collapse whitespace. 1.0 if the normalised
response equals a normalised reference, else 0.0; NaN without a reference.

``match=substring`` (search-R1's ``subem``, verl ``search_r1_like_qa_em.compute_score_subem``):
1.0 when a normalised reference occurs in the normalised response *as whole words* ("new york"
in "new york city"; "5" is not in "1957", "paris" not in "parisian": verl's character test
accepts both). With ``answer_tag=true`` the response's answer is its last ``<answer>…</answer>``
and a response without one scores 0.0, as verl does; under ``match=exact`` a response without a
tag is still compared whole (whole-text equality cannot be met by merely mentioning the gold).
``think=require``: only the text after the last ``</think>`` is read; none → 0.0.
"""

from __future__ import annotations

from typing import Any

from rewardkit.rewards.rules._common import (
    NAN,
    THINK_MODES,
    ReferenceTextRule,
    after_think,
    as_choice,
    references,
    squad_normalize,
)
from rewardkit.rewards.tags import last_block
from rewardkit.types import Query

#: ``match=`` values: whole-answer equality (SQuAD EM) or whole words inside it (subEM).
MATCHES = ("exact", "substring")


def exact_match(prediction: str, refs: list[str]) -> float:
    """1.0 if ``prediction`` matches any reference after SQuAD normalisation."""
    pred = squad_normalize(prediction)
    return 1.0 if any(pred == squad_normalize(r) for r in refs) else 0.0


def substring_match(prediction: str, refs: list[str]) -> float:
    """1.0 if a SQuAD-normalised reference occurs in the normalised ``prediction`` as a run of
    whole words (search-R1's subEM, without its match inside a word)."""
    pred = f" {squad_normalize(prediction)} "
    return 1.0 if any(f" {squad_normalize(r)} " in pred for r in refs) else 0.0


class ExactMatchReward(ReferenceTextRule):
    """``rule:exact_match`` — normalised exact match (1/0), max over references.

    Options: ``answer_tag`` (default false: compare only the inside of ``<answer>…</answer>``),
    ``match`` (``exact``, default, or ``substring``: the reference's words inside the answer;
    with ``answer_tag`` a response without the tag then scores 0), ``think`` (``whole``,
    default, or ``require``: only the text after the last ``</think>``; none → 0).
    """

    rule = "exact_match"

    def __init__(
        self, answer_tag: bool = False, match: str = "exact", think: str = "whole"
    ) -> None:
        super().__init__(answer_tag=answer_tag)
        self.match = as_choice("match", self.rule, match, MATCHES)
        self.think = as_choice("think", self.rule, think, THINK_MODES)
        # only what differs from the default enters the identity: old fingerprints hold
        if self.match != "exact":
            self.options["match"] = self.match
        if self.think != "whole":
            self.options["think"] = self.think

    def metric(self, text: str, refs: list[str]) -> float:
        return (substring_match if self.match == "substring" else exact_match)(text, refs)

    def score_one(self, query: Query) -> float:
        refs = references(query.reference, strict=True)
        if not refs:
            return NAN
        text = answer_text(query.response, self.options["answer_tag"], self.match, self.think)
        return 0.0 if text is None else self.metric(text, refs)


def answer_text(response: str, answer_tag: bool, match: str, think: str) -> str | None:
    """What the rule compares: the response after ``think``, then (``answer_tag``) the inside of
    its last ``<answer>`` block; None when there is no answer (reasoning not closed under
    ``think=require``; no tag under ``match=substring`` with ``answer_tag``)."""
    text = after_think(response, think)
    if text is None or not answer_tag:
        return text
    inside = last_block(text, "<answer>", "</answer>")
    if inside is None and match == "substring":
        return None
    return text if inside is None else inside


def compute_score(
    solution: str, ground_truth: Any, match: str = "exact", answer_tag: bool = False
) -> float:
    """verl-style ``compute_score``: SQuAD-normalised exact match (1.0/0.0) of ``solution``
    against ``ground_truth`` (a string or list of strings); NaN without a reference.
    ``match="substring", answer_tag=True`` is search-R1's ``compute_score_subem`` (whole words)."""
    refs = references(ground_truth, strict=True)
    if not refs:
        return NAN
    text = answer_text(
        solution, answer_tag, as_choice("match", "exact_match", match, MATCHES), "whole"
    )
    if text is None:
        return 0.0
    return (substring_match if match == "substring" else exact_match)(text, refs)
