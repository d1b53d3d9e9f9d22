"""Strong-over-weak density ratio (``density-ratio:STRONG?weak=WEAK&reduce=sum``).

docs/methods/B2-density-ratio.md — CDR / "Dr. SoW": a better-aligned LM and a less-aligned one disagree most on
aligned text, so their log-density ratio is a training-free reward::

    r(x, y)   = log π_strong(y | x)     − log π_weak(y | x)        (−40.0, −43.5 → 3.5)
    r_c(x, y) = log π_strong(y | c ⊕ x) − log π_weak(y | c ⊕ x)    (customized by criteria c)

``c`` is a system prompt: a fixed ``system`` text, or per-domain ``criteria`` chosen by a router
(``query.meta["domain"]`` when it names a criteria key, else :func:`route_domain`'s keyword
rules over {chat, safety, reasoning}). The same ``c`` is given to both models by default
(``condition_weak=true``; the paper does not pin where the weak model's ``c`` goes — rewardkit's
choice, docs/methods/B2-density-ratio.md).

Offline default pair (one embedded model): strong = SmolLM2-135M-Instruct through its chat
template with :data:`DEFAULT_SYSTEM`; weak = the same weights reading plain text (no chat
template: ``[system "\\n\\n"] prompt "\\n\\n" response <EOS>``). The weights are loaded once and
shared. Both sides score their own rendering of the response (the chat side includes the
template's end-of-turn tokens ``<|im_end|>\\n``, the plain side the EOS token), so the ratio
measures how much the chat-tuned rendering prefers the response over the raw LM. With any
strong model, ``weak`` left out, empty or ``default`` is this default weak side: the strong
model's own weights on plain text (``default`` is a word, never looked up as a model).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rewardkit.engine.config import EngineConfig
from rewardkit.errors import ModelNotFoundError, SpecError, switch
from rewardkit.rewards.dpo import optional_switch, same_cut, same_scoring
from rewardkit.rewards.dpo import same_weights as same_weights_as
from rewardkit.rewards.logprob import (
    LogProbComposite,
    SequenceLogProbReward,
    density_ratio,
    merged_result,
    reduction_name,
    with_system,
)
from rewardkit.types import Query, ScoreResult, prompt_text

DEFAULT_STRONG = "smollm2"
DEFAULT_SYSTEM = (
    "You are a helpful, honest and harmless assistant. Answer the user's request correctly, "
    "clearly and concisely, and refuse requests that could cause harm."
)
#: Domain criteria used with ``criteria=default`` (rewardkit's wording of the paper's idea).
DEFAULT_CRITERIA = {
    "chat": (
        "You are a helpful assistant. A good answer follows the user's instructions, is "
        "accurate, relevant and clearly written, and is no longer than it needs to be."
    ),
    "safety": (
        "You are a safe and responsible assistant. A good answer refuses harmful, illegal or "
        "dangerous requests politely and briefly, and helps fully with harmless ones."
    ),
    "reasoning": (
        "You are an expert in mathematics and programming. A good answer is correct, reasons "
        "step by step where needed, and gives working code or the exact final result."
    ),
}
_COLUMN = {"sum": 0, "mean": 1, "norm": 2}
_REASONING = re.compile(
    r"```|\bdef |\bclass |\bfunction\b|\bcode\b|\bpython\b|\bjavascript\b|\bsql\b|\bprogram"
    r"|\bcompute\b|\bcalculate\b|\bsolve\b|\bequation\b|\bprove\b|\bmath|\d\s*[-+*/^=]\s*\d",
    re.IGNORECASE,
)
_SAFETY = re.compile(
    r"\b(kill|weapon|bomb|explosive|drug|poison|hack|steal|suicide|attack|illegal|murder"
    r"|violence|abuse|weapons)\b",
    re.IGNORECASE,
)


def route_domain(query: Query) -> str:
    """Keyword router over {chat, safety, reasoning}: the last user turn decides.

    Harm words → ``safety``; code or math cues → ``reasoning``; else ``chat``.
    """
    users = [m for m in query.prompt if m["role"] == "user"]
    text = str(users[-1]["content"]) if users else prompt_text(query.prompt)
    if _SAFETY.search(text):
        return "safety"
    if _REASONING.search(text):
        return "reasoning"
    return "chat"


class DensityRatioReward(LogProbComposite):
    """log π_strong(y|c ⊕ x) − log π_weak(y|c ⊕ x) with reduction ``sum`` (default) or mean/norm."""

    def __init__(
        self,
        strong: str = DEFAULT_STRONG,
        weak: str | None = None,
        *,
        config: EngineConfig | None = None,
        reduce: str = "sum",
        system: str | None = DEFAULT_SYSTEM,
        criteria: Mapping[str, str] | str | None = None,
        condition_weak: bool = True,
        strong_chat_template: bool | None = None,
        weak_chat_template: bool | None = None,
    ) -> None:
        try:
            self.reduce = reduction_name(reduce)
        except ValueError as exc:  # a spec's reduce=, refused as one
            raise SpecError(str(exc)) from None
        self.system = system or None
        if isinstance(criteria, str):
            if criteria != "default":
                raise SpecError("criteria must be a {domain: system prompt} mapping or 'default'")
            criteria = DEFAULT_CRITERIA
        elif criteria is not None and not isinstance(criteria, Mapping):  # criteria=3
            raise SpecError(
                f"criteria must be a {{domain: prompt}} mapping or 'default'; not {criteria!r}"
            )
        self.criteria = dict(criteria) if criteria else None
        self.uses_meta = self.criteria is not None
        self.condition_weak = switch("condition_weak", condition_weak, "density-ratio")
        strong_chat_template = optional_switch(
            "strong_chat_template", strong_chat_template, "density-ratio"
        )
        weak_chat_template = optional_switch(
            "weak_chat_template", weak_chat_template, "density-ratio"
        )
        strong = DEFAULT_STRONG if is_default(strong) else str(strong)
        weak = None if is_default(weak) else weak  # the documented default weak side
        self.strong = _side(
            "strong model (density-ratio:STRONG)",
            strong,
            config,
            use_chat_template=strong_chat_template,
        )
        # the same weights by any name (``weak=./strong``, a copy of the folder) are the default
        same_weights = weak in (None, "", strong) or same_weights_as(strong, str(weak))
        if weak_chat_template is None and same_weights:
            weak_chat_template = False  # the same weights without the chat template
        self.weak = _side(
            f"weak={weak}",
            strong if same_weights else str(weak),
            self.strong.config,
            use_chat_template=weak_chat_template,
        )
        same_cut(self.strong, self.weak)  # both sides score the same response tokens
        if same_scoring(self.weak.identity(), self.strong.identity()):
            raise SpecError(
                "density-ratio: strong and weak are the same model with the same template, so "
                "every reward would be 0; pick another weak model or set weak_chat_template=false"
            )

    def _members(self) -> dict[str, SequenceLogProbReward]:
        return {"strong": self.strong, "weak": self.weak}

    def identity(self) -> dict[str, Any]:
        return {
            "class": "DensityRatioReward",
            "strong": self.strong.identity(),
            "weak": self.weak.identity(),
            "reduce": self.reduce,
            "system": self.system,
            "criteria": self.criteria,
            "condition_weak": self.condition_weak,
        }

    def condition(self, query: Query) -> str | None:
        """The system prompt ``c`` for a query: its domain's criteria, else ``system``."""
        if self.criteria:
            domain = query.meta.get("domain")
            if domain not in self.criteria:
                domain = route_domain(query)
            if domain in self.criteria:
                return self.criteria[domain]
        return self.system

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        conditioned = [with_system(q, self.condition(q)) for q in queries]
        col = _COLUMN[self.reduce]
        runs = {"strong": self._run("strong", conditioned)}
        strong = runs["strong"].scores[:, col].astype(np.float64)
        weak_queries = conditioned if self.condition_weak else list(queries)
        runs["weak"] = self._run("weak", weak_queries)
        weak = runs["weak"].scores[:, col].astype(np.float64)
        out = [density_ratio(s, w) for s, w in zip(strong, weak, strict=True)]
        return merged_result(np.array(out, dtype=np.float32), runs, len(queries))


def is_default(name: object) -> bool:
    """Whether a strong/weak model name asks for the documented default (``default``, empty)
    rather than a model: never looked up as a folder or a Hub id named "default"."""
    return name is None or str(name).strip().lower() in ("", "default")


def _side(what: str, model: str, config: EngineConfig | None, **kw: Any) -> SequenceLogProbReward:
    """One side's log-prob reward; a model that is not found, or a folder that is not a model,
    is named by its option ``what``."""
    try:
        return SequenceLogProbReward(model, config, **kw)
    except (ModelNotFoundError, SpecError) as exc:
        if type(exc) not in (ModelNotFoundError, SpecError):  # a device, weights, … error
            raise
        raise type(exc)(f"density-ratio: {what}: {exc}") from None


def build(arg: str | None, **options: Any) -> DensityRatioReward:
    """Registry factory for ``density-ratio:STRONG`` (``default``: the embedded SmolLM2 pair)."""
    if "strong" in options:  # was: "__init__() got multiple values for argument 'strong'"
        raise SpecError(
            "density-ratio: the strong model is the spec's argument "
            f"(density-ratio:STRONG?weak=WEAK), not an option; got strong={options['strong']!r}"
        )
    strong = DEFAULT_STRONG if is_default(arg) else str(arg)
    config = EngineConfig.from_options(options)
    return DensityRatioReward(strong, config=config, **options)
