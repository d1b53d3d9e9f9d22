"""Reward models of the scalar families (``classifier:PATH_OR_ID[?family=NAME]``).

A LoRA/PEFT adapter folder of a reward model (``TaskType.SEQ_CLS`` with its trained ``score``
head) scores as its base with the adapter merged; ``base=/path/to/base`` names the base when
``adapter_config.json``'s is not a local folder (:mod:`rewardkit.models.peft_adapter`).

The family table (:mod:`rewardkit.models.families`, docs/families.md) picks how the checkpoint
loads and where its score comes from: sequence classifiers, value heads on causal LMs
(Starling/UltraRM/Beaver), remote-code models returning the reward (Eurus-RM) or reading it at an
appended reward token (InternLM2-reward). Pairwise families build a
:class:`~rewardkit.rewards.pairwise_model.PairwiseModelReward` instead (:func:`build`).

The default family is any ``AutoModelForSequenceClassification`` checkpoint: Llama/Qwen/Gemma-
style reward models trained with TRL or OpenRLHF, BERT-style cross-encoders, or the embedded
models with a fresh head (for speed work). The score is the model's logit for the sequence (HF's pooling: the last
non-padding token for decoder models, [CLS] for encoders). With a chat template the query is
rendered through it; without one, (prompt, response) is encoded as a text pair.

docs/methods/A1-bradley-terry.md — Bradley–Terry reward model (the scoring side: r(x, y) is the head's output).

Multi-objective heads (k > 1 outputs) return an (n, k) array named by ``objectives`` (from the
option, else the checkpoint's ``id2label``). ``reduce=`` turns them into one scalar reward
(docs/methods/A4-more.md — MORE; ArmoRM's gating); ``score_full`` then returns the per-objective values
as ``components`` (one (n,) column per objective name):

- ``reduce=weighted``: ``Σ_k w_k r_k`` with ``weights`` (``{name: w}``, or the string
  ``"name:w,name:w"`` in a spec), else the checkpoint's ``config.objective_weights``; objectives
  not named weigh 0.
- ``reduce=gating``: the model's own reduction when its output provides one — its ``score``
  field (ArmoRM's gated preference score), else ``Σ_k g_k r_k`` with its per-row
  ``gating_output`` g. Such checkpoints ship their modelling code: pass
  ``trust_remote_code=true``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.data.trained_on import read_trained_prompts
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.encoding import append_token, encode_chat, encode_text_pair, pair_layout
from rewardkit.engine.runner import EncodedRow
from rewardkit.errors import SpecError, switch
from rewardkit.models.families import find_family
from rewardkit.models.heads import gate_split
from rewardkit.rewards.family_reward import FamilyModelReward
from rewardkit.types import Capability, Query, ScoreResult, stable_hash


class ClassifierReward(FamilyModelReward):
    """A reward model of any scalar family as a reward; k > 1 outputs give an (n, k) array.

    The family (:mod:`rewardkit.models.families`) comes from the checkpoint or ``family=``; its
    adapter reads the score. Sequence classifiers and value heads on decoders can run the
    shared-prompt and packed layouts (BERT classifiers the packed one): the score is then read
    from the body's hidden states exactly as the model's own forward reads them.
    """

    def __init__(
        self,
        model: str,
        config: EngineConfig | None = None,
        *,
        family: str | None = None,
        use_chat_template: bool | None = None,
        head_seed: int = 0,
        num_labels: int | None = None,
        objectives: Sequence[str] | None = None,
        reduce: str | None = None,
        weights: Mapping[str, float] | str | None = None,
        trust_remote_code: bool = False,
        base: str | None = None,
    ) -> None:
        if reduce not in (None, "weighted", "gating"):
            raise ValueError(f"reduce must be 'weighted' or 'gating', got {reduce!r}")
        if weights is not None and reduce != "weighted":
            raise ValueError("weights= is used only with reduce=weighted")
        where = f"classifier:{model}"
        trust_remote_code = switch("trust_remote_code", trust_remote_code, where)
        if use_chat_template is not None:
            use_chat_template = switch("use_chat_template", use_chat_template, where)
        super().__init__(
            model,
            config,
            family,
            trust_remote_code=trust_remote_code,
            num_labels=num_labels,
            head_seed=head_seed,
            gating=reduce == "gating",
            base=base,
        )
        if self.family.pairwise:
            raise SpecError(
                f"{model}: family {self.family.name} judges pairs; load it through the "
                "registry ('classifier:PATH') to get a pairwise reward"
            )
        if reduce == "gating" and self.family.name != "sequence-classifier":
            raise ValueError(f"{model}: reduce=gating needs a sequence classifier's gating head")
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.use_chat_template = has_template if use_chat_template is None else use_chat_template
        if self.use_chat_template and not has_template:
            raise ValueError(
                f"{model}: use_chat_template=True but the tokenizer has no chat template"
            )
        if self.family.input == "chat+reward-token" and not self.use_chat_template:
            raise ValueError(f"{model}: family {self.family.name} needs the chat template")
        self._layout = None if self.use_chat_template else pair_layout(self.tokenizer)
        k = self.loaded.outputs
        if k > 1:
            names = objective_names(objectives) if objectives else None
            if names is None:
                labels = self.loaded.labels or tuple(f"objective_{i}" for i in range(k))
                names = list(labels)
            if len(names) != k:
                raise ValueError(f"{model}: {k} outputs but {len(names)} objective names")
            half = gate_split(self.loaded.config) if reduce == "gating" else None
            self.objectives = tuple(names[:half] if half else names)  # gates are no objective
        self.reduce = reduce
        self.objective_names: tuple[str, ...] | None = self.objectives
        self.reduce_weights: np.ndarray | None = None
        if reduce is not None:
            if k < 2:
                raise ValueError(f"{model}: reduce={reduce} needs a multi-objective head (k = {k})")
            if reduce == "weighted":
                given = weights if weights is not None else self._config_weights()
                if given is None:
                    raise ValueError(
                        f"{model}: reduce=weighted needs weights= (e.g. 'helpfulness:0.7,"
                        "safety:0.3') or config.objective_weights in the checkpoint"
                    )
                assert self.objectives is not None
                self.reduce_weights = objective_weight_vector(self.objectives, given)
            self.objectives = None  # the reward is now a scalar
        local = Path(model).expanduser()
        self._trained = read_trained_prompts(local) if local.is_dir() else None
        self._identity = {
            "class": "ClassifierReward",
            **self.source_identity,
            **self.loaded.notes,
            "template": stable_hash(self.tokenizer.chat_template)
            if self.use_chat_template
            else "text-pair",
            "max_length": self.max_length,
            **self.engine_identity(),
        }
        if self.family.name != "sequence-classifier":
            self._identity["family"] = self.family.name
        if reduce is not None:
            self._identity["reduce"] = reduce
            if self.reduce_weights is not None:
                self._identity["weights"] = [float(w) for w in self.reduce_weights]

    def trained_prompts(self) -> np.ndarray | None:
        """The prompts a rewardkit training run recorded in the model directory."""
        return self._trained

    def _config_weights(self) -> Mapping[str, float] | None:
        found = getattr(self.loaded.config, "objective_weights", None)
        return found if isinstance(found, Mapping) else None

    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        policy = self.config.truncation
        if self.family.input == "chat+reward-token":
            rows = encode_chat(self.tokenizer, queries, self.max_length - 1, policy)
            return append_token(rows, self.loaded.tokens["reward"])
        if self.use_chat_template:
            return encode_chat(self.tokenizer, queries, self.max_length, policy)
        assert self._layout is not None
        return encode_text_pair(
            self.tokenizer, self._layout, queries, self.max_length, self.config.truncation
        )

    def can(self, cap: Capability) -> bool:
        """A reduced multi-objective head also returns its objectives as components."""
        if cap is Capability.COMPONENTS:
            return self.reduce is not None
        return super().can(cap)

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        if self.reduce is None:
            return super()._score(queries)
        keys = [q.key(with_meta=self.uses_meta) for q in queries]
        run = self.run_rows(queries, keys, self.encode)
        stacked = run.values
        if self.reduce == "gating":
            assert self.objective_names is not None
            objectives, reduced = stacked[:, : len(self.objective_names)], stacked[:, -1]
        else:
            assert self.reduce_weights is not None
            objectives, reduced = stacked, reduce_objectives(stacked, self.reduce_weights)
        assert self.objective_names is not None
        parts = {name: objectives[:, j] for j, name in enumerate(self.objective_names)}
        return ScoreResult(reduced, components=parts, stats=run.stats, truncated=run.truncated)


def comma_list(text: str) -> list[str]:
    """The non-empty, stripped parts of a spec's comma list (``"a, b,"`` → ``["a", "b"]``)."""
    return [p.strip() for p in text.split(",") if p.strip()]


def objective_names(objectives: str | Sequence[str]) -> list[str]:
    """``objectives=`` as names: a comma list (``"a,b,c"``, as ``weights=`` is written) or a
    list of names; each non-empty text, none given twice."""
    if isinstance(objectives, str):
        names = comma_list(objectives)
    elif isinstance(objectives, Sequence) and all(isinstance(n, str) for n in objectives):
        names = [n.strip() for n in objectives]
    else:
        raise ValueError(f"objectives: expected names 'a,b,c' (or a list); got {objectives!r}")
    if not all(names):
        raise ValueError(f"objectives: a name is empty in {objectives!r}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"objectives: {repeated} given twice in {objectives!r}")
    return names


def objective_weight_vector(names: Sequence[str], weights: Mapping[str, float] | str) -> np.ndarray:
    """Weights in objective order from ``{name: w}`` or ``"name:w,name:w"``; unnamed weigh 0."""
    if isinstance(weights, str):
        parsed: dict[str, float] = {}
        for part in comma_list(weights):
            name, sep, value = part.rpartition(":")
            if not sep or not name:
                raise ValueError(f"weights: expected 'name:w,name:w', got {weights!r}")
            parsed[name.strip()] = float(value)
        weights = parsed
    bad = {n: w for n, w in weights.items() if not math.isfinite(float(w))}
    if bad:
        raise ValueError(f"weights: each weight must be a finite number, got {bad}")
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ValueError(f"weights name unknown objectives {unknown}; objectives: {list(names)}")
    return np.array([float(weights.get(n, 0.0)) for n in names], dtype=np.float64)


def reduce_objectives(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``Σ_k w_k r_k`` per row of an (n, k) objective array (docs/methods/A4-more.md: a configured
    weighted sum when the model gives no gating); NaN objectives with weight 0 are ignored."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    used = w != 0
    return v[:, used] @ w[used]


def build(arg: str | None, **options: Any) -> FamilyModelReward:
    """Registry factory for ``classifier:PATH_OR_ID[?family=NAME]``: a :class:`ClassifierReward`,
    or a :class:`~rewardkit.rewards.pairwise_model.PairwiseModelReward` for a pairwise family."""
    if not arg:
        raise SpecError("classifier needs a model: 'classifier:PATH_OR_ID'")
    config = EngineConfig.from_options(options)
    if find_family(arg, options.get("family"), options.get("base")).pairwise:
        from rewardkit.rewards.pairwise_model import PairwiseModelReward

        return PairwiseModelReward(arg, config, **options)
    return ClassifierReward(arg, config, **options)
