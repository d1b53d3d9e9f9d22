"""Crome causal and neutral augmentations (docs/methods/A8-crome.md — "Robust Reward Modeling
via Causal Rubrics").

- causal: the chosen response degraded along one named quality attribute (``factual_error``,
  ``missing_step``, ``ignored_instruction``) → a strict pair ``original ≻ degraded``;
- neutral: the chosen response changed only in a spurious attribute (``length``, ``formatting``,
  ``tone``) → a tie pair; ``irrelevant`` neutrals attach a causal pair to an unrelated prompt
  (another example's prompt that differs from the pair's own, compared after normalization),
  for which both answers are equally off-topic → a tie. A pair whose prompt is the only one in
  the data gets no irrelevant tie (one warning counts them).

Every pair records ``meta["augmentation"]`` (causal / neutral), ``meta["attribute"]`` and the
subset ``crome/<kind>/<attribute>``. Rewrites come from a :class:`Rewriter`: the deterministic
:class:`RuleRewriter`, or :class:`GeneratorRewriter` over any rewardkit generator (the embedded
SmolLM2 :class:`~rewardkit.inference.generate.Policy`, or anything with ``sample(prompt, n)``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from rewardkit.content import content_text
from rewardkit.curate.dedup import content_form
from rewardkit.errors import DataError
from rewardkit.types import Example, Message, stable_hash, user

CAUSAL = ("factual_error", "missing_step", "ignored_instruction")
NEUTRAL = ("length", "formatting", "tone")
#: The content-free sentence the rule rewriter appends for a ``length`` neutral.
FILLER = "I hope this helps. Let me know if you have any other questions."

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class Rewriter(Protocol):
    """Rewrites ``response`` to ``prompt`` along one attribute; None when it cannot."""

    def __call__(self, attribute: str, prompt: list[Message], response: str) -> str | None: ...


def text_units(text: str) -> list[str]:
    """The non-empty lines of ``text``, or its sentences when it has fewer than two lines."""
    lines = [ln for ln in text.split("\n") if ln.strip()]
    return lines if len(lines) >= 2 else [s for s in _SENTENCE.split(text.strip()) if s]


def factual_error(text: str) -> str | None:
    """The last number plus one (an integer stays an integer); without a number, the first
    ``is``/``are`` negated; None when neither occurs."""
    nums = list(_NUMBER.finditer(text))
    if nums:
        m = nums[-1]
        v = m.group()
        new = str(int(v) + 1) if "." not in v else f"{float(v) + 1:.{len(v.split('.')[1])}f}"
        return text[: m.start()] + new + text[m.end() :]
    neg = re.sub(r"\b(is|are)\b", r"\1 not", text, count=1)
    return neg if neg != text else None


def missing_step(text: str) -> str | None:
    """The response with its middle line (or sentence) removed; None with fewer than two."""
    units = text_units(text)
    if len(units) < 2:
        return None
    del units[len(units) // 2]
    sep = "\n" if "\n" in text.strip() else " "
    return sep.join(units)


def toggle_filler(text: str) -> str:
    """The response with :data:`FILLER` appended, or removed when it ends with it: the length
    changes, the content does not."""
    t = text.rstrip()
    return t[: -len(FILLER)].rstrip() if t.endswith(FILLER) else t + " " + FILLER


def formatting(text: str) -> str | None:
    """Sentences as a bulleted list, or a bulleted list as plain sentences."""
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    if lines and all(ln.startswith(("- ", "* ")) for ln in lines):
        return " ".join(ln[2:] for ln in lines)
    units = text_units(text)
    return "\n".join(f"- {u.strip()}" for u in units) if len(units) >= 2 else None


def tone(text: str) -> str:
    """An enthusiastic opener before the same content."""
    return "Great question! " + text.lstrip()


def prompt_key(prompt: Sequence[Message] | str) -> str:
    """A key equal for two prompts with the same roles and normalized texts (a bare string, as
    the Python API takes it, is one user message)."""
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    return stable_hash([(m["role"], content_form(m["content"])) for m in prompt])


class RuleRewriter:
    """Deterministic rewrites (for tests and for data where they are faithful: numbers in math
    answers, multi-sentence answers). ``ignored_instruction`` answers another prompt: it takes
    a response from ``pool``, chosen by a seeded generator. A pool entry is a text, or a
    ``(prompt, text)`` pair (:meth:`from_examples`): then a response given to the same prompt
    (its rejected ones, another row's) is never drawn, since it does not ignore the prompt."""

    def __init__(
        self, pool: Sequence[str | tuple[Sequence[Message], str]] = (), seed: int = 0
    ) -> None:
        self.pool = [
            (None, p) if isinstance(p, str) else (prompt_key(p[0]), str(p[1])) for p in pool
        ]
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_examples(cls, examples: Sequence[Example], seed: int = 0) -> RuleRewriter:
        """A rewriter whose pool is every text response of ``examples`` with its prompt."""
        pool = [(ex.prompt, r) for ex in examples for r in ex.responses if isinstance(r, str)]
        return cls(pool, seed)

    def __call__(self, attribute: str, prompt: list[Message], response: str) -> str | None:
        if attribute == "factual_error":
            return factual_error(response)
        if attribute == "missing_step":
            return missing_step(response)
        if attribute == "ignored_instruction":
            key = prompt_key(prompt)
            others = [p for k, p in self.pool if p != response and k != key]
            return others[int(self.rng.integers(len(others)))] if others else None
        if attribute == "length":
            return toggle_filler(response)
        if attribute == "formatting":
            return formatting(response)
        if attribute == "tone":
            return tone(response)
        raise DataError(f"unknown Crome attribute {attribute!r}; known: {CAUSAL + NEUTRAL}")


#: Instructions the generator rewriter gives for each attribute.
INSTRUCTIONS = {
    "factual_error": "Rewrite the answer so that it contains exactly one factual mistake. Keep "
    "everything else the same.",
    "missing_step": "Rewrite the answer leaving out one important step of the reasoning. Keep "
    "everything else the same.",
    "ignored_instruction": "Rewrite the answer so that it ignores what the user asked for while "
    "keeping the same topic and style.",
    "length": "Rewrite the answer to be about twice as long without adding any new information.",
    "formatting": "Rewrite the answer as a bulleted list without changing its content.",
    "tone": "Rewrite the answer in a more enthusiastic tone without changing its content.",
}


class GeneratorRewriter:
    """Rewrites by asking a generator (``sample(prompt_messages, n) -> list[str]``, e.g. the
    embedded SmolLM2 :class:`~rewardkit.inference.generate.Policy`) with :data:`INSTRUCTIONS`;
    the question is the prompt's last turn as text (an image shown as ``<image>``)."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator

    def __call__(self, attribute: str, prompt: list[Message], response: str) -> str | None:
        if attribute not in INSTRUCTIONS:
            raise DataError(f"unknown Crome attribute {attribute!r}; known: {sorted(INSTRUCTIONS)}")
        asked = content_text(prompt[-1]["content"]) if prompt else ""  # images: "<image>"
        text = (
            f"{INSTRUCTIONS[attribute]}\n\nQuestion: {asked}\n\nAnswer: {response}\n\n"
            "Rewritten answer:"
        )
        out = self.generator.sample([user(text)], 1)
        new = out[0].strip() if out else ""
        return new if new and new != response.strip() else None


def _pair(ex: Example, prompt: list[Message], a: str, b: str, kind: str, attr: str) -> Example:
    return Example(
        id=f"{ex.id}:crome:{kind}:{attr}",
        prompt=prompt,
        responses=[a, b],
        chosen=[0] if kind == "causal" else [0, 1],
        subset=f"crome/{kind}/{attr}",
        source=ex.source,
        meta={"augmentation": kind, "attribute": attr, "source_id": ex.id},
    )


def check_attributes(causal: Sequence[str], neutral: Sequence[str]) -> tuple[list[str], list[str]]:
    """The causal and neutral attribute names, each once (a repeat would make the same pair
    twice, under one id); a DataError for an unknown name or one of the other kind (a neutral
    rewrite as a strict pair, or a causal one as a tie, teaches the opposite of card A8, and
    ``length`` in both lists would make one rewrite a strict pair and a tie)."""
    unknown = [a for a in (*causal, *neutral) if a not in CAUSAL + NEUTRAL]
    if unknown:
        raise DataError(f"unknown Crome attributes {unknown}; known: {CAUSAL + NEUTRAL}")
    for names, kind, known in ((causal, "causal", CAUSAL), (neutral, "neutral", NEUTRAL)):
        wrong = [a for a in names if a not in known]
        if wrong:
            raise DataError(
                f"Crome attribute(s) {wrong} are not {kind}: {kind} attributes are "
                f"{', '.join(known)}"
            )
    return list(dict.fromkeys(causal)), list(dict.fromkeys(neutral))


def crome_augment(
    examples: Sequence[Example],
    rewriter: Rewriter,
    causal: Sequence[str] = CAUSAL,
    neutral: Sequence[str] = NEUTRAL,
    irrelevant: bool = True,
    seed: int = 0,
) -> list[Example]:
    """Causal (strict) and neutral (tie) pairs built from each example's first chosen response.

    An irrelevant tie takes the prompt of another example whose prompt differs (normalized) from
    the causal pair's; where none does, the pair gets no tie and one warning counts them."""
    causal, neutral = check_attributes(causal, neutral)
    rng = np.random.default_rng(seed)
    out: list[Example] = []
    causal_pairs: list[Example] = []
    images: list[str] = []
    for ex in examples:
        if ex.is_tie or not ex.chosen:
            continue
        if not isinstance(ex.responses[ex.chosen[0]], str):
            images.append(ex.id)  # an image response: no text to rewrite
            continue
        y = str(ex.responses[ex.chosen[0]])
        for attr in causal:
            new = rewriter(attr, ex.prompt, y)
            if new is not None and new != y:
                causal_pairs.append(_pair(ex, ex.prompt, y, new, "causal", attr))
        for attr in neutral:
            new = rewriter(attr, ex.prompt, y)
            if new is not None and new != y:
                out.append(_pair(ex, ex.prompt, y, new, "neutral", attr))
    if images:
        warnings.warn(
            f"{len(images)} of {len(examples)} examples have an image (content-part) chosen "
            f"response: Crome rewrites text, so they give no pairs (first: example "
            f"{images[0]!r})",
            stacklevel=2,
        )
    out = causal_pairs + out
    if irrelevant:
        out.extend(_irrelevant_ties(examples, causal_pairs, rng))
    return out


def _irrelevant_ties(
    examples: Sequence[Example], causal_pairs: Sequence[Example], rng: np.random.Generator
) -> list[Example]:
    """Each causal pair again under a random prompt other than its own, as a tie: never a
    prompt that either of its responses was given to in the data (an ``ignored_instruction``
    rewrite is another prompt's answer, on-topic there; an answer two prompts share is no
    less relevant to the other), where the two would not be equally off-topic."""
    prompts: dict[str, list[Message]] = {}
    answered: dict[str, set[str]] = {}  # normalized response text -> keys of its prompts
    for ex in examples:
        key = prompt_key(ex.prompt)
        prompts.setdefault(key, ex.prompt)
        for r in ex.responses:
            if isinstance(r, str):
                answered.setdefault(content_form(r), set()).add(key)
    out, alone = [], []
    for cp in causal_pairs:
        taken = {prompt_key(cp.prompt)}
        for r in cp.responses:
            taken |= answered.get(content_form(r), set())
        choices = [p for k, p in prompts.items() if k not in taken]
        src = cp.meta["source_id"]
        if not choices:
            alone.append(src)
            continue
        other = choices[int(rng.integers(len(choices)))]
        tie = _pair(cp, other, cp.responses[0], cp.responses[1], "neutral", "irrelevant")
        tie.id = f"{src}:crome:irrelevant:{cp.meta['attribute']}"
        tie.meta.update(source_id=src, degraded=cp.meta["attribute"])
        out.append(tie)
    if alone:
        warnings.warn(
            f"{len(alone)} causal pair(s) got no irrelevant tie: no example has another prompt "
            f"that neither response answers (first: example {alone[0]!r})",
            stacklevel=3,
        )
    return out
