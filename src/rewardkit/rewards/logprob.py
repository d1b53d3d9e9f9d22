"""Log-probabilities of a response under a causal LM: the machinery behind log-ratio rewards.

:class:`SequenceLogProbReward` runs a causal LM through the engine and returns, for each query,
statistics of the per-token log-probabilities of the *response tokens only* (the prompt is
masked): their sum (log p(y|x)), mean, the negated L2 norm, and the token count — one forward
pass, the four numbers cached together, so every reduction reads the same cache entry.

Rewards built on it (docs/methods/B1-dpo-implicit-reward.md DPO implicit reward, B2 strong-over-weak density ratio)
combine two of them; :class:`LogProbComposite` holds the shared plumbing (system prompts
injected into the queries, merged statistics in the ``ScoreResult``). A model may be a LoRA/PEFT
adapter folder, merged into its base (:func:`open_causal_lm`).
"""

from __future__ import annotations

import copy
import math
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from rewardkit.engine.config import EngineConfig
from rewardkit.engine.encoding import encode_chat, encode_plain
from rewardkit.engine.runner import Batch, EncodedRow, ModelBackedReward
from rewardkit.errors import SpecError
from rewardkit.models.causal_lm import CausalLM, CausalLMAdapter
from rewardkit.models.loading import (
    load_causal_lm_shared,
    load_tokenizer,
    resolve_device,
    resolve_model,
    set_threads,
)
from rewardkit.models.peft_adapter import CAUSAL_LM, import_peft, is_adapter_folder, require_task
from rewardkit.types import Capability, Message, Query, Reward, ScoreResult, stable_hash

REDUCTIONS = ("sum", "mean", "norm")
_REDUCE_ALIASES = {"sum": "sum", "mean": "mean", "avg": "mean", "norm": "norm"}


def reduction_name(how: str) -> str:
    """Canonical name of a reduction: ``sum``, ``mean`` (alias ``avg``) or ``norm``."""
    try:
        return _REDUCE_ALIASES[str(how).lower()]
    except KeyError:
        raise SpecError(f"reduce must be one of sum, mean (avg), norm; got {how!r}") from None


def reduce_logprobs(token_logps: Sequence[float] | np.ndarray, how: str = "sum") -> float:
    """Reduce per-token log-probs of a response (docs/methods/B1-dpo-implicit-reward.md, reward-bench ``get_batch_logps``).

    ``sum`` = Σ_t log π(y_t) = log π(y|x); ``mean`` (``avg``) = the mean; ``norm`` =
    −‖(log π(y_t))_t‖₂, reward-bench's default without a reference model. ``[−1, −2, −2]`` →
    sum −5, mean −5/3, norm −3. The mean of no tokens is NaN. (The engine readout of
    :class:`SequenceLogProbReward` goes further: a row with no scored token is NaN in every
    reduction, since it scored nothing.)
    """
    a = np.asarray(token_logps, dtype=np.float64).reshape(-1)
    how = reduction_name(how)
    if how == "sum":
        return float(a.sum())
    if how == "mean":
        return float(a.mean()) if a.size else math.nan
    return -float(np.sqrt(np.sum(a * a)))


def check_beta(beta: Any, where: str) -> float:
    """β of a log-ratio reward (docs/methods/B1-dpo-implicit-reward.md) as a finite number > 0: β
    only scales the log-ratio, while 0 flattens every reward to 0, a negative β reverses which
    response wins and NaN blanks them all ("does not apply"). A SpecError naming ``where``."""
    try:
        value = math.nan if isinstance(beta, bool) else float(beta)
    except (TypeError, ValueError, OverflowError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SpecError(f"{where}: beta must be a finite number > 0, got {beta!r}")
    return value


def dpo_implicit_reward(logp_policy: float, logp_ref: float | None, beta: float = 0.1) -> float:
    """docs/methods/B1-dpo-implicit-reward.md: r = β [log π(y|x) − log π_ref(y|x)] (−10, −12, β=0.1 → 0.2).

    Without a reference (``logp_ref`` None) the reward is the policy's reduced log-prob itself,
    unscaled, as reward-bench scores reference-free.
    """
    if logp_ref is None:
        return float(logp_policy)
    return float(beta) * (float(logp_policy) - float(logp_ref))


def density_ratio(logp_strong: float, logp_weak: float) -> float:
    """docs/methods/B2-density-ratio.md: r = log π_strong(y|x) − log π_weak(y|x) (−40.0, −43.5 → 3.5)."""
    return float(logp_strong) - float(logp_weak)


def with_system(query: Query, system: str | None) -> Query:
    """``query`` with ``system`` as its system message (merged before an existing one)."""
    if not system:
        return query
    prompt: list[Message] = list(query.prompt)
    if prompt and prompt[0]["role"] == "system":
        prompt[0] = {"role": "system", "content": f"{system}\n\n{prompt[0]['content']}"}
    else:
        prompt.insert(0, {"role": "system", "content": system})
    return Query(prompt, query.response, query.reference, query.meta)


class SequenceLogProbReward(ModelBackedReward):
    """Per-query statistics of log π(y_t | x, y_<t) over the response tokens of a causal LM.

    ``score`` returns an (n, 4) array with the objectives ``sum`` (log p(y|x)), ``mean``,
    ``norm`` (−‖·‖₂) and ``tokens`` (how many response tokens were scored). With a chat template
    the response tokens are what the conversation adds after the generation prompt (the response
    and the template's end-of-turn tokens, as TRL's DPO tokenizes a completion; reward-bench also
    scores the assistant header and an extra EOS: docs/methods/B1-dpo-implicit-reward.md has
    the figures); without one the
    row is ``[BOS] prompt_text "\\n\\n" response [EOS]`` (:func:`encode_plain`). The first token of
    a row has no prediction and is never scored (it is the BOS token or a prompt token unless
    truncation removed the whole prompt).

    The model runs through :class:`~rewardkit.models.causal_lm.CausalLMAdapter`: only the decoder
    runs over the batch, and the LM head is applied to the response positions alone
    (:meth:`~rewardkit.models.causal_lm.CausalLM.response_logprobs`), so memory does not grow
    with vocabulary × sequence length.
    """

    objectives = ("sum", "mean", "norm", "tokens")

    def __init__(
        self,
        model: str = "smollm2",
        config: EngineConfig | None = None,
        *,
        use_chat_template: bool | None = None,
        append_eos: bool = True,
        base: str | None = None,
    ) -> None:
        super().__init__(config)
        self.lm = open_causal_lm(model, self.config, base)
        self.model_name = model
        self.tokenizer = self.lm.tokenizer
        self.device = self.lm.device
        self.model = self.lm.model
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.use_chat_template = has_template if use_chat_template is None else use_chat_template
        if self.use_chat_template and not has_template:
            raise ValueError(
                f"{model}: use_chat_template=True but the tokenizer has no chat template"
            )
        self.append_eos = append_eos
        self.max_length = self.lm.max_length(self.config)
        self._identity = {
            "class": "SequenceLogProbReward",
            **self.lm.resolved.identity,
            "template": stable_hash(self.tokenizer.chat_template)
            if self.use_chat_template
            else {"plain": "\n\n", "eos": append_eos},
            "max_length": self.max_length,
            **self.engine_identity(),
        }

    def identity(self) -> dict[str, Any]:
        return self._identity

    def model_adapter(self) -> CausalLMAdapter:
        return CausalLMAdapter(self.lm, self.readout)

    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        if self.use_chat_template:
            return encode_chat(self.tokenizer, queries, self.max_length, self.config.truncation)
        return encode_plain(
            self.tokenizer,
            queries,
            self.max_length,
            self.config.truncation,
            append_eos=self.append_eos,
        )

    def readout(self, batch: Batch, hidden: torch.Tensor) -> torch.Tensor:
        """(b, 4) float64: sum, mean, −L2 norm and count of each row's response log-probs.

        A row with no scored response token (truncation cut the whole response) has NaN sum,
        mean and norm, not 0: a sum of 0 would read as probability 1, the best possible score."""
        rows, lp = self.lm.response_logprobs(batch, hidden)
        b = batch.input_ids.shape[0]
        zeros = torch.zeros(b, dtype=torch.float64, device=batch.input_ids.device)
        total = zeros.index_add(0, rows, lp)
        squares = zeros.index_add(0, rows, lp * lp)
        count = zeros.index_add(0, rows, torch.ones_like(lp))
        stats = torch.stack([total, total / count.clamp(min=1), -torch.sqrt(squares)], dim=1)
        stats = stats.masked_fill((count == 0).unsqueeze(1), math.nan)
        return torch.cat([stats, count.unsqueeze(1)], dim=1)

    def token_logprobs(self, queries: Sequence[Query]) -> list[np.ndarray]:
        """The per-token log-probs of each query's response tokens (uncached; for inspection)."""
        engine = self.engine
        out = []
        with torch.inference_mode():
            for row in self.encode(list(queries)):
                batch = engine.make_batch([row])
                _, lp = self.lm.response_logprobs(batch, engine.adapter.last_hidden(batch))
                out.append(lp.cpu().numpy())
        return out


def open_causal_lm(model: str, config: EngineConfig, base: str | None = None) -> CausalLM:
    """:meth:`CausalLM.load`, where ``model`` may also be a LoRA/PEFT adapter folder of a causal
    LM (a DPO run's output): its base (``base``, else the one ``adapter_config.json`` names)
    with the adapter merged; the adapter folder's tokenizer if it has one, else the base's."""
    if base is None and not is_adapter_folder(model):
        return CausalLM.load(model, config)
    set_threads(config.threads)
    resolved = resolve_model(model, base)
    adapter = resolved.adapter
    require_task(adapter, CAUSAL_LM)  # refused before anything loads
    import_peft(adapter)
    tokenizer = load_tokenizer(adapter.tokenizer_source())
    device = resolve_device(config.device)
    lm = load_causal_lm_shared(resolved.source, config.dtype, device, adapter)
    return CausalLM(lm, tokenizer, resolved, device)


def query_cache_counts(members: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``unique``, ``cache_hits`` and ``computed`` over distinct queries for runs of several
    members over the same queries: a query is a hit when every member found it in the cache.
    Exact when all members found all, or none, of them (a first run, a resumed one); otherwise
    left out (unknown, not a sum of the members' counts), each member's counts staying under
    ``members``."""
    runs = list(members)
    unique = {s.get("unique") for s in runs}
    if not runs or len(unique) != 1 or not isinstance(u := unique.pop(), int):
        return {}
    hits = [s.get("cache_hits") for s in runs]
    if all(h == u for h in hits):
        return {"unique": u, "cache_hits": u, "computed": 0}
    if all(h == 0 for h in hits):
        return {"unique": u, "cache_hits": 0, "computed": u}
    return {}


def merged_result(scores: np.ndarray, runs: Mapping[str, ScoreResult], n: int) -> ScoreResult:
    """The :class:`~rewardkit.types.ScoreResult` of a reward built from several engine runs
    over the same ``n`` queries.

    A query counts as truncated when it was in any run (``truncated``, ``truncated_rows``); each
    run's own statistics are kept under ``stats["members"]``. ``cache_hits``/``computed`` count
    queries as for any reward (:func:`query_cache_counts`).
    """
    truncated = np.zeros(n, dtype=bool)
    seconds = 0.0
    stats: dict[str, Any] = {}
    for name, run in runs.items():
        if run.truncated is not None and len(run.truncated) == n:
            truncated |= run.truncated
        if run.stats:
            seconds += float(run.stats.get("seconds") or 0.0)
            stats[name] = dict(run.stats)
    merged = {
        "queries": n,
        "truncated_rows": int(truncated.sum()),
        # rows, not cuts: both sides cut a long response alike (``dpo.same_cut``), so the larger
        # side's count (each side's under ``members``); a sum counted each query twice
        "response_truncated_rows": max(
            (int(s.get("response_truncated_rows", 0)) for s in stats.values()), default=0
        ),
        "tokens": sum(int(s.get("tokens", 0)) for s in stats.values()),
        "model_tokens": sum(int(s.get("model_tokens", 0)) for s in stats.values()),
        "layout": "+".join(sorted({str(s.get("layout")) for s in stats.values() if "layout" in s})),
        "seconds": seconds,
        "members": stats,
        **query_cache_counts(stats.values()),
    }
    return ScoreResult(scores, stats=merged, truncated=truncated)


class LogProbComposite(Reward):
    """Base of rewards that combine response log-probs from one or two :class:`SequenceLogProbReward`.

    The keys of :meth:`_members` are the attribute names holding each member."""

    capabilities = frozenset({Capability.MODEL_BACKED})

    @abstractmethod
    def _members(self) -> dict[str, SequenceLogProbReward]:
        """The log-prob rewards this composite combines, by role ("policy", "ref", …)."""

    def _run(self, member: str, queries: Sequence[Query]) -> ScoreResult:
        reward = self._members()[member]
        reward.name = f"{self.name}[{member}]"
        return reward.score_full(queries)

    def engine_variant(self, **changes: Any) -> LogProbComposite:
        """A twin whose members are their own engine variants (they stay shared when two roles
        name the same reward)."""
        twin = copy.copy(self)
        variants: dict[int, SequenceLogProbReward] = {}
        for role, member in self._members().items():
            variant = variants.setdefault(id(member), member.engine_variant(**changes))
            setattr(twin, role, variant)
        return twin

    @property
    def config(self) -> EngineConfig:
        return next(iter(self._members().values())).config
