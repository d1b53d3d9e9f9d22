"""DPO implicit reward (``dpo:POLICY?ref=REF&beta=0.1&reduce=sum``).

docs/methods/B1-dpo-implicit-reward.md — a DPO-trained policy defines a reward up to a prompt-only constant::

    r(x, y) = β [ log π_θ(y|x) − log π_ref(y|x) ]          (−10, −12, β = 0.1 → 0.2)

Without a reference model the reward is reference-free, as reward-bench scores it: ``sum``
(log π(y|x)), ``mean`` (``avg``: per-token mean) or ``norm`` (−‖(log π(y_t))_t‖₂, reward-bench's
default and rewardkit's default without ``ref``). β scales only the reference log-ratio.

The policy and the reference each run through the engine (their own batches, cache entries and
fingerprints); both score the same response tokens (prompt masked), cut to the shorter of their
two length limits. When ``ref`` names the same
weights as the policy they share one copy in memory — and the reward is 0 for every response,
which is why the reference is optional.

LoRA/PEFT adapter folders (a DPO run's usual output) work in either slot: the policy is the base
with the adapter merged, and without ``ref`` its reference is that base (``ref=base`` says so
explicitly; ``ref=free`` scores the adapter reference-free). ``base=/path/to/base`` names the
base of every adapter in the spec when ``adapter_config.json``'s is not a local folder.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.engine.config import EngineConfig
from rewardkit.errors import RewardkitError, SpecError, switch
from rewardkit.models.loading import embedded_key, resolve_model
from rewardkit.models.peft_adapter import is_adapter_folder
from rewardkit.rewards.logprob import (
    LogProbComposite,
    SequenceLogProbReward,
    check_beta,
    merged_result,
    reduction_name,
    with_system,
)
from rewardkit.types import Query, ScoreResult

DEFAULT_POLICY = "smollm2"
_COLUMN = {"sum": 0, "mean": 1, "norm": 2}


class DPOImplicitReward(LogProbComposite):
    """β-scaled log-ratio of a policy to its reference, or a reference-free reduction."""

    def __init__(
        self,
        policy: str = DEFAULT_POLICY,
        ref: str | None = None,
        *,
        beta: float = 0.1,
        reduce: str | None = None,
        config: EngineConfig | None = None,
        use_chat_template: bool | None = None,
        ref_chat_template: bool | None = None,
        system: str | None = None,
        base: str | None = None,
    ) -> None:
        use_chat_template = optional_switch("use_chat_template", use_chat_template, "dpo")
        ref_chat_template = optional_switch("ref_chat_template", ref_chat_template, "dpo")
        if reduce:
            reduction_name(reduce)  # a bad name is refused before any model loads
        self.beta = check_beta(beta, "dpo")
        self.system = system or None
        adapters = {n for n in (policy, ref) if isinstance(n, str) and is_adapter_folder(n)}
        if base is not None and not adapters:
            raise SpecError(
                f"dpo: base= names the base of a LoRA/PEFT adapter folder; neither the policy "
                f"{policy!r} nor ref {ref!r} is one"
            )
        self.policy = SequenceLogProbReward(
            policy,
            config,
            use_chat_template=use_chat_template,
            base=base if policy in adapters else None,
        )
        ref = reference_name(ref, self.policy.lm.resolved.adapter, policy)
        self.reduce = reduction_name(reduce or ("sum" if ref else "norm"))
        self.ref = None
        if ref:
            self.ref = SequenceLogProbReward(
                ref,
                self.policy.config,
                use_chat_template=use_chat_template
                if ref_chat_template is None
                else ref_chat_template,
                base=base if ref in adapters else None,
            )
            same_cut(self.policy, self.ref)
            if same_scoring(self.ref.identity(), self.policy.identity()):
                warnings.warn(
                    "dpo: the reference is the policy itself, so every reward is 0",
                    stacklevel=2,
                )

    def _members(self) -> dict[str, SequenceLogProbReward]:
        return (
            {"policy": self.policy}
            if self.ref is None
            else {"policy": self.policy, "ref": self.ref}
        )

    def identity(self) -> dict[str, Any]:
        return {
            "class": "DPOImplicitReward",
            "policy": self.policy.identity(),
            "ref": None if self.ref is None else self.ref.identity(),
            "beta": self.beta if self.ref is not None else None,
            "reduce": self.reduce,
            "system": self.system,
        }

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        qs = [with_system(q, self.system) for q in queries]
        col = _COLUMN[self.reduce]
        runs = {"policy": self._run("policy", qs)}
        policy = runs["policy"].scores[:, col].astype(np.float64)
        if self.ref is None:
            out = policy
        else:
            runs["ref"] = self._run("ref", qs)
            out = self.beta * (policy - runs["ref"].scores[:, col].astype(np.float64))
        return merged_result(out.astype(np.float32), runs, len(queries))


def reference_name(ref: str | None, adapter: Any, policy: str) -> str | None:
    """The reference model to load: ``ref``; for a LoRA/PEFT adapter policy, its base when
    ``ref`` is left out or ``base``; none for ``ref=free`` (reference-free)."""
    if ref == "free":
        return None
    if ref is None or ref == "base":
        if adapter is None and ref == "base":
            raise SpecError(
                f"dpo: ref=base is the base of a LoRA/PEFT adapter policy; {policy!r} is a "
                "whole model, so name its reference (ref=PATH)"
            )
        return None if adapter is None else str(adapter.base)
    return ref


def optional_switch(name: str, value: object, where: str) -> bool | None:
    """An on/off option that may be left unset (None: the model's default), else
    :func:`~rewardkit.errors.switch` (``"off"`` or ``"maybe"`` is a SpecError, not True)."""
    return None if value is None else switch(name, value, where)


def same_cut(*members: SequenceLogProbReward) -> None:
    """Give both sides of a log-ratio the shorter of their length limits, so a long response is
    cut to the same tokens on each side (a 64-position policy against a 512-position reference
    would otherwise score 63 response tokens against 103: a reward driven by length)."""
    limit = min(m.max_length for m in members)
    for m in members:
        if m.max_length != limit:
            m.max_length = limit
            m._identity = {**m.identity(), "max_length": limit}


def same_scoring(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two log-prob members score alike: equal identities, or equal but for the folder
    (``model``) when both carry a weights hash: a copy of the same weights in another folder, or
    one folder named two ways (``ref=./policy``), whose log-ratio is 0 for every response."""
    if a == b:
        return True
    if "weights_sha256" not in a:
        return False
    return {k: v for k, v in a.items() if k != "model"} == {
        k: v for k, v in b.items() if k != "model"
    }


def same_weights(a: str, b: str) -> bool:
    """Whether model names ``a`` and ``b`` resolve to the same weights (the folder's weights and
    scoring files hash alike; an embedded alias and its folder too)."""
    if a == b:
        return True
    if not all(Path(x).expanduser().is_dir() or embedded_key(x) for x in (a, b)):
        return False  # a Hub id: no weights hash here, and no second look-up for it
    try:
        ida, idb = resolve_model(a).identity, resolve_model(b).identity
    except (OSError, ValueError, RewardkitError):
        return False  # not resolvable here: loading the member says why
    return "weights_sha256" in ida and same_scoring(ida, idb)


def build(arg: str | None, **options: Any) -> DPOImplicitReward:
    """Registry factory for ``dpo:POLICY`` (``dpo:default`` is the embedded SmolLM2)."""
    policy = DEFAULT_POLICY if arg in (None, "", "default") else arg
    config = EngineConfig.from_options(options)
    return DPOImplicitReward(policy, config=config, **options)
