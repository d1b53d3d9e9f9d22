"""Step-tag conventions of the common process reward model families
(``docs/methods/B4-orm-vs-prm.md``). No torch here.

A PRM reads a solution whose steps are each followed by a tag, and gives one score per tag:

- ``qwen`` (Qwen2.5-Math-PRM shape): the steps are joined and ended by a special separator
  token ``<extra_0>`` inside the assistant turn of the chat template (system prompt "Please
  reason step by step, and put your final answer within \\boxed{}."); a 2-label token classifier
  gives logits at every position and the step score is softmax(logits)[1] at each separator.
- ``shepherd`` (Math-Shepherd shape): plain text ``question + " " + steps`` where each step ends
  with ``" ки"`` and steps are joined by newlines; a causal LM's next-token logits at each tag,
  restricted to the tokens ``+`` and ``-``, give the step score softmax([ℓ₊, ℓ₋])[0].

A tag written inside a response is removed before tagging (to a fixed point: removing ``ки`` from
``ккии`` leaves ``ки``, removed in turn), so a response can never add scored positions of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True)
class StepConvention:
    """How steps are tagged and where each step's score is read."""

    name: str
    tag: str  # the text after every step
    read: str  # "token-cls": P(label 1) of a 2-label token classifier; "tag-logits": P(good)
    good: str = "+"
    bad: str = "-"
    chat: bool = True  # through the chat template (else plain "question response" text)
    system: str | None = None  # system prompt put before the question

    def tagged(self, steps: list[str]) -> str:
        """The response text the PRM reads: each step (its own tag text removed,
        :func:`strip_tag`) followed by the tag."""
        clean = [strip_tag(s, self.tag) for s in steps]
        if self.read == "token-cls":
            return "".join(f"{s}{self.tag}" for s in clean)
        return "\n".join(f"{s} {self.tag}" for s in clean)


def strip_tag(text: str, tag: str) -> str:
    """``text`` with every ``tag`` removed until none is left: a removal cannot join the text
    around it into a new tag (``ккии`` → ``ки`` → ``""``)."""
    while tag and tag in text:
        text = text.replace(tag, "")
    return text


CONVENTIONS: dict[str, StepConvention] = {
    "qwen": StepConvention("qwen", "<extra_0>", "token-cls", chat=True, system=QWEN_SYSTEM),
    "shepherd": StepConvention("shepherd", "ки", "tag-logits", chat=False),
}


def convention(
    name: str,
    *,
    tag: str | None = None,
    good: str | None = None,
    bad: str | None = None,
    system: str | None = None,
) -> StepConvention:
    """A convention by name with optional overrides of its tag, good/bad tokens and system."""
    try:
        base = CONVENTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown PRM convention {name!r}; known: {', '.join(CONVENTIONS)}"
        ) from None
    return StepConvention(
        base.name,
        tag or base.tag,
        base.read,
        good or base.good,
        bad or base.bad,
        base.chat,
        base.system if system is None else (system or None),
    )


def guess_convention(architectures: list[str] | None) -> str:
    """``qwen`` for a token classifier / process reward model, ``shepherd`` for a causal LM;
    an error naming what was found otherwise."""
    arch = (architectures or [""])[0]
    if arch.endswith(("ForTokenClassification", "ForProcessRewardModel")):
        return "qwen"
    if arch.endswith("ForCausalLM"):
        return "shepherd"
    raise ValueError(
        f"cannot tell the PRM convention of a {arch or 'model without architectures'} "
        "checkpoint; name it: prm:PATH?convention=qwen (2-label token classifier) or "
        "convention=shepherd (causal LM with +/- tag logits)"
    )
