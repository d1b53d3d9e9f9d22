"""Token-level rewards from log-probability ratios (``docs/prm-and-token-rewards.md``).

Every reward here scores each response token ``y_t`` by the difference of two log-probabilities
of that token (the same response, two models or two system prompts), so they share one class,
:class:`TokenLogRatioReward`:

- ``dpo-tokens:POLICY?ref=REF&beta=0.1`` — the DPO implicit reward per token,
  ``β [log π(y_t|x, y_<t) − log π_ref(y_t|x, y_<t)]`` (``docs/methods/B1-dpo-implicit-reward.md``); the
  tokens of a response sum to the sequence-level ``dpo:POLICY?ref=REF&reduce=sum`` reward.
  Without ``ref`` the tokens are ``log π(y_t|·)`` themselves (reference-free, unscaled).
- ``treg:MODEL`` — T-REG's self-generated token rewards (``docs/methods/B12-t-reg.md``): the same
  model under a "good" and a "bad" system prompt, ``tanh(log π(y_t|p⁺⊕x) − log π(y_t|p⁻⊕x))``.
- ``aligndistil:DPO?rev=REV&beta=0.1`` — AlignDistil's contrastive DPO reward per token
  (``docs/methods/B13-aligndistil.md``), ``β [log π_dpo(y_t|·) − log π_rev(y_t|·)]`` with a
  DPO model trained on reversed preferences as the reference.

``score`` is the sum of a response's token rewards; ``score_full(...).tokens`` holds the token
rewards on the scoring model's tokens with their character offsets in the response text (tokens
the chat template adds after the response, such as an end-of-turn token, have the empty span at
the end of the text). :func:`rewardkit.rewards.token_align.align_to` moves them onto another
tokenizer's tokens.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rewardkit.engine.adapter import Batch
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.special_tokens import escape_queries, escaped_to_original, valid_text
from rewardkit.errors import SpecError, switch
from rewardkit.models.chat_roles import render_chat
from rewardkit.registry import refuse_options
from rewardkit.rewards.logprob import (
    SequenceLogProbReward,
    check_beta,
    query_cache_counts,
    with_system,
)
from rewardkit.rewards.ragged import run_rows
from rewardkit.rewards.token_align import pad_token_rows
from rewardkit.types import Capability, Query, Reward, ScoreResult, assistant

#: T-REG's contrastive system prompts (the paper's exact wording is not published; [design]).
TREG_GOOD = (
    "You are a helpful, honest and harmless assistant. Give the best, most accurate and most "
    "helpful answer you can."
)
TREG_BAD = "You are an unhelpful assistant. Give a wrong, careless, unhelpful or harmful answer."


def log_ratio_tokens(
    lp_a: np.ndarray, lp_b: np.ndarray | None, scale: float = 1.0, squash: bool = False
) -> np.ndarray:
    """Per-token reward ``scale · (lp_a − lp_b)`` (``lp_a`` alone when ``lp_b`` is None), through
    ``tanh`` when ``squash`` (T-REG). NaN padding stays NaN. B1: lp (−1.0, −2.0) vs ref
    (−1.5, −1.0), β 0.1 → (0.05, −0.1), summing to the sequence reward −0.05."""
    a = np.asarray(lp_a, dtype=np.float64)
    d = a if lp_b is None else float(scale) * (a - np.asarray(lp_b, dtype=np.float64))
    return np.tanh(d) if squash else d


class TokenLogProbReward(SequenceLogProbReward):
    """Per-token log π(y_t | x, y_<t) of each response, through the engine (cache, batches,
    layouts as :class:`~rewardkit.rewards.logprob.SequenceLogProbReward`).

    :meth:`token_rows` returns, per query, the values of the tokens from the response start to
    the end of the row (NaN for a first token with nothing before it) and their character offsets
    in the response text."""

    objectives = None

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "class": "TokenLogProbReward"}

    def readout(self, batch: Batch, hidden: torch.Tensor) -> torch.Tensor:
        """(b, W) float64: each row's token log-probs from its response start, NaN-padded."""
        rows, lp = self.lm.response_logprobs(batch, hidden)
        response_start, device = batch.response_start, batch.input_ids.device
        starts = response_start.clamp(min=0)
        lengths = batch.attention_mask.sum(dim=1)
        width = int((lengths - starts).clamp(min=1).max())
        out = torch.full((batch.input_ids.shape[0], width), math.nan, dtype=torch.float64)
        out = out.to(device)
        # The scored positions of a row are contiguous: response start (at least 1) to its end.
        first = response_start.clamp(min=1)
        counts = torch.bincount(rows, minlength=batch.input_ids.shape[0])
        offset = torch.cumsum(counts, 0) - counts
        cols = (
            first[rows]
            - starts[rows]
            + (torch.arange(rows.shape[0], device=rows.device) - offset[rows])
        )
        out[rows, cols] = lp
        return out

    def response_offsets(self, query: Query) -> np.ndarray:
        """(R, 2) character spans, in ``query.response``, of the tokens the encoder places after
        the response start (before truncation); tokens past the text get the empty span at its
        end, tokens before it the empty span at 0."""
        original = str(query.response)
        tok = self.tokenizer
        if not getattr(tok, "is_fast", False):
            raise ValueError(
                f"{self.model_name}: token-level rewards need a fast tokenizer (character offsets)"
            )
        # The encoder escapes special-token strings in scored text (engine/special_tokens.py):
        # find the spans in the text it tokenized, then map them back to the response's own.
        query = escape_queries(tok, [query])[0]
        text = str(query.response)
        spans = self._offsets_in(query, text)
        # lone surrogates are U+FFFD in the escaped text, one for one (valid_text): compare
        # with the original made the same way, or each would read as an inserted joiner
        return escaped_to_original(spans, text, valid_text(original))

    def _offsets_in(self, query: Query, text: str) -> np.ndarray:
        tok = self.tokenizer
        if self.use_chat_template:
            who = self.model_name
            p = render_chat(tok, query.prompt, add_generation_prompt=True, who=who)
            full = render_chat(
                tok, [*query.prompt, assistant(text)], add_generation_prompt=False, who=who
            )
            cut = len(p) if full.startswith(p) else _common_prefix(p, full)
            part = full[cut:]
            at, lead, shown = part.find(text), 0, text
            if at < 0:  # a template that trims the content (Llama 3's `| trim`)
                shown = text.strip()
                at, lead = part.find(shown), len(text) - len(text.lstrip())
                if at < 0:
                    raise ValueError(
                        f"{self.model_name}: the chat template changes the response text, so its "
                        "tokens cannot be mapped back to character offsets"
                    )
            enc = tok(part, add_special_tokens=False, return_offsets_mapping=True)
            spans = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
            return _into_text(spans, at, lead, len(shown), len(text))
        else:
            enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
            spans = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
            if self.append_eos and tok.eos_token_id is not None:
                spans = np.concatenate([spans, [[len(text), len(text)]]])
        return spans.clip(0, len(text))

    def token_rows(
        self, queries: Sequence[Query]
    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray, dict[str, Any]]:
        """Per query (values (T,), offsets (T, 2)), the (n,) truncation flags of this call,
        the (n,) count of each response's tokens truncation left unscored, and the engine
        run's stats (layout, tokens, cache counts)."""
        keys = [q.key() for q in queries]
        values, truncated, run_stats = run_rows(self, queries, keys, self.encode)
        out = []
        cut = np.zeros(len(queries), dtype=np.int64)
        for i, q in enumerate(queries):
            row = values[i]
            spans = self.response_offsets(q)
            real = np.flatnonzero(~np.isnan(row))
            t = int(real[-1]) + 1 if real.size else 0
            if t > len(spans):
                raise ValueError(
                    f"{self.model_name}: {t} response tokens scored but {len(spans)} offsets; "
                    "the tokenizer does not tokenize the response as the encoder does"
                )
            out.append((row[:t], spans[:t]))
            cut[i] = len(spans) - t if truncated[i] else 0
        return out, truncated, cut, run_stats


def _into_text(spans: np.ndarray, at: int, lead: int, shown: int, length: int) -> np.ndarray:
    """Spans in the template's response part moved into the response text: ``shown``
    characters of the text stand at ``at`` in the part, from character ``lead`` of the text
    (a trimming template dropped its ``lead`` leading whitespace characters). Template tokens
    before the text get the empty span at 0, those after it the empty span at its end."""
    start, end = spans[:, 0], spans[:, 1]
    pos = np.stack(
        [
            np.where(start < at, 0, np.where(start >= at + shown, length, start - at + lead)),
            np.where(end <= at, 0, np.where(end > at + shown, length, end - at + lead)),
        ],
        axis=1,
    )
    return pos.clip(0, length)


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class TokenLogRatioReward(Reward):
    """Token rewards ``scale · (log π_a(y_t|s_a⊕x) − log π_b(y_t|s_b⊕x))`` (see the module
    docstring); ``score`` is their sum per response."""

    capabilities = frozenset({Capability.TOKENS, Capability.MODEL_BACKED})

    def __init__(
        self,
        model: str,
        ref: str | None = None,
        *,
        scale: float = 1.0,
        squash: bool = False,
        system: str | None = None,
        ref_system: str | None = None,
        method: str = "dpo-tokens",
        config: EngineConfig | None = None,
        use_chat_template: bool | None = None,
    ) -> None:
        self.method = method
        self.scale = float(scale)
        self.squash = switch("squash", squash, "dpo-tokens")
        self.system = system or None
        self.ref_system = ref_system or None
        self.model = TokenLogProbReward(model, config, use_chat_template=use_chat_template)
        self.ref = None
        if ref is not None:
            self.ref = TokenLogProbReward(
                ref, self.model.config, use_chat_template=self.model.use_chat_template
            )

    @property
    def config(self) -> EngineConfig:
        return self.model.config

    def engine_variant(self, **changes: Any) -> TokenLogRatioReward:
        """A twin whose log-prob members are their engine variants (same loaded models)."""
        twin = copy.copy(self)
        twin.model = self.model.engine_variant(**changes)
        twin.ref = None if self.ref is None else self.ref.engine_variant(**changes)
        return twin

    def identity(self) -> dict[str, Any]:
        return {
            "class": "TokenLogRatioReward",
            "method": self.method,
            "model": self.model.identity(),
            "ref": None if self.ref is None else self.ref.identity(),
            "scale": self.scale if self.ref is not None else None,
            "squash": self.squash,
            "system": self.system,
            "ref_system": self.ref_system,
        }

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        self.model.name = f"{self.name}[model]"
        a, trunc, cut, run_a = self.model.token_rows([with_system(q, self.system) for q in queries])
        runs = {"model": run_a}
        b = None
        if self.ref is not None:
            self.ref.name = f"{self.name}[ref]"
            b, trunc_b, cut_b, runs["ref"] = self.ref.token_rows(
                [with_system(q, self.ref_system) for q in queries]
            )
            trunc, cut = trunc | trunc_b, np.maximum(cut, cut_b)
        # a contrast written in the system prompts (T-REG's p⁺/p⁻) is the first thing left
        # truncation drops: a row cut that way would score a flat 0.0 that reads as neutral. It
        # fails (NaN, named): a long response cuts it, and as "does not apply" a composite would
        # drop the member and rescale the rest at the response's choice
        contrast = self.system != self.ref_system and self.config.truncation == "left"
        lost: list[int] = []
        rows = []
        for i, (va, spans) in enumerate(a):
            vb = None
            if b is not None:
                vb, spans_b = b[i]
                t = min(len(va), len(vb))
                if not np.array_equal(spans[:t], spans_b[:t]):
                    raise ValueError(
                        f"{self.method}: the model and the reference split the response of "
                        f"query {i} into different tokens, so their log-probs cannot be "
                        "subtracted token by token; use a reference with the same tokenizer"
                    )
                va, vb, spans = va[:t], vb[:t], spans[:t]
            vals = log_ratio_tokens(va, vb, self.scale, self.squash)
            if contrast and trunc[i]:  # two equal conditionings: a failure, named
                vals = np.full_like(vals, np.nan)
                lost.append(i)
            rows.append((vals, spans))
        tokens = pad_token_rows(rows)
        scores = np.array([np.nansum(v) if np.any(~np.isnan(v)) else np.nan for v, _ in rows])
        stats = {
            "queries": len(queries),
            "truncated_rows": int(np.sum(trunc)),
            # as the sequence rewards report it: queries whose response was cut (either side)
            "response_truncated_rows": int(np.sum(cut > 0)),
            # the engine runs' own figures, as the sequence rewards report them (logprob.py)
            "tokens": sum(int(r.get("tokens", 0)) for r in runs.values()),
            "model_tokens": sum(int(r.get("model_tokens", 0)) for r in runs.values()),
            "layout": "+".join(sorted({str(r["layout"]) for r in runs.values() if "layout" in r})),
            "seconds": sum(float(r.get("seconds") or 0.0) for r in runs.values()),
            "members": runs,
            **query_cache_counts(runs.values()),
        }
        if cut.any():  # the response's tail past max_length has no token rewards (counted)
            stats |= {"response_cut_rows": int(np.sum(cut > 0)), "tokens_cut": int(cut.sum())}
        if lost:
            why = f"{self.method}: truncation (left) cut the system prompts that make the contrast"
            errors = [
                {"index": i, "error": f"{why} (max_length {self.model.max_length})"} for i in lost
            ]
            stats |= {"contrast_cut": len(lost), "failed": len(lost), "errors": errors}
        return ScoreResult(scores.astype(np.float32), stats=stats, truncated=trunc, tokens=tokens)


def _model(arg: str | None) -> str:
    return "smollm2" if arg in (None, "", "default") else str(arg)


def build_dpo_tokens(arg: str | None, **options: Any) -> TokenLogRatioReward:
    """``dpo-tokens:POLICY?ref=REF&beta=0.1&system=…``."""
    beta = check_beta(options.pop("beta", 0.1), "dpo-tokens")
    ref = options.pop("ref", None)
    system = options.pop("system", None)
    chat = options.pop("use_chat_template", None)
    config = EngineConfig.from_options(options)
    refuse_options(options, "dpo-tokens", ["ref", "beta", "system", "use_chat_template"])
    return TokenLogRatioReward(
        _model(arg),
        ref,
        scale=beta,
        system=system,
        ref_system=system,
        method="dpo-tokens",
        config=config,
        use_chat_template=chat,
    )


def build_treg(arg: str | None, **options: Any) -> TokenLogRatioReward:
    """``treg:MODEL?good=…&bad=…`` (the same weights under two system prompts)."""
    good = options.pop("good", TREG_GOOD)
    bad = options.pop("bad", TREG_BAD)
    chat = options.pop("use_chat_template", None)
    config = EngineConfig.from_options(options)
    refuse_options(options, "treg", ["good", "bad", "use_chat_template"])
    model = _model(arg)
    return TokenLogRatioReward(
        model,
        model,
        squash=True,
        system=good,
        ref_system=bad,
        method="treg",
        config=config,
        use_chat_template=chat,
    )


def build_aligndistil(arg: str | None, **options: Any) -> TokenLogRatioReward:
    """``aligndistil:DPO?rev=REV&beta=0.1``: the contrastive DPO reward per token."""
    rev = options.pop("rev", None)
    if not rev:
        raise SpecError("aligndistil: needs rev=PATH, a DPO model trained on reversed preferences")
    beta = check_beta(options.pop("beta", 0.1), "aligndistil")
    chat = options.pop("use_chat_template", None)
    config = EngineConfig.from_options(options)
    refuse_options(options, "aligndistil", ["rev", "beta", "use_chat_template"])
    return TokenLogRatioReward(
        _model(arg),
        str(rev),
        scale=beta,
        method="aligndistil",
        config=config,
        use_chat_template=chat,
    )
