"""The local causal-LM backend of the judges (``judge:``, ``judge-pairwise:``, ``judge-rating:``).

:class:`AnswerTokenJudge` renders a kind's template through the model's chat template once
(:func:`rewardkit.engine.encoding.render_slots`), fills the slots per row with truncation that
never cuts the template, runs the decoder over right-padded rows, and applies the LM head only
to the last position(s) and only for the answer tokens. The verdict readers are the shared ones
(:mod:`rewardkit.rewards.judges.verdict`); see docs/methods/B3-yes-token-reward.md and
docs/methods/B6-llm-judge.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any, ClassVar

import numpy as np
import torch

from rewardkit.engine.cache import TRUNCATED, truncation_flags
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.encoding import bos_prefix, render_slots
from rewardkit.engine.runner import Batch, EncodedRow, ModelBackedReward
from rewardkit.engine.special_tokens import escape_special, special_strings
from rewardkit.engine.truncation import fit_many
from rewardkit.models.causal_lm import CausalLM, CausalLMAdapter, at_last
from rewardkit.models.loading import fit_max_length
from rewardkit.rewards.judges import genorm, verdict
from rewardkit.rewards.judges.answers import (
    AnswerTokens,
    label_scores,
    label_token_ids,
    single_token_ids,
)
from rewardkit.rewards.judges.listwise import Group, ListwiseJudging, expand_template
from rewardkit.rewards.judges.pairwise import Pair, PairwiseJudging
from rewardkit.rewards.judges.template import (
    GENORM,
    LISTWISE,
    PAIRWISE,
    PRINCIPLE_SLOT,
    RATING,
    VERIFIER,
    YES_NO,
    JudgeKind,
    judge_identity,
    judge_options,
    judged_specials,
    load_judge_template,
    principle_text,
    references,
)
from rewardkit.rewards.judges.verifier import Verifying, verifier_options
from rewardkit.types import Capability, Query, prompt_text, stable_hash, text_queries

DEFAULT_MODEL = "smollm2"


def read_logits(logits: torch.Tensor, reader: Any) -> torch.Tensor:
    """Apply a numpy verdict reader to a batch of answer logits; float64 tensor on CPU."""
    return torch.from_numpy(np.asarray(reader(logits.double().cpu().numpy()), dtype=np.float64))


class AnswerTokenJudge(ModelBackedReward):
    """A causal LM judge reading the logits of a few answer tokens at the end of a template.

    Subclasses pick the kind (slots, templates, answer classes); :meth:`encode_slots` fills the
    slots (the first slot is the conversation, cut oldest-first; the others are responses, cut
    fairly), and :meth:`readout` reads the verdict from the hidden states the shared
    :class:`~rewardkit.models.causal_lm.CausalLMAdapter` gives it. Its features are the hidden
    states at each query's last position.
    """

    capabilities = ModelBackedReward.capabilities | {Capability.FEATURES}

    #: What the judge asks and reads (set by each judge class).
    kind: ClassVar[JudgeKind]
    #: The registry kind, for error messages.
    spec_kind: ClassVar[str] = "judge"

    def __init__(
        self, model: str = DEFAULT_MODEL, config: EngineConfig | None = None, **options: Any
    ) -> None:
        opts = judge_options(self.kind, self.spec_kind, **options)
        self.options = opts
        self.output = opts.output
        super().__init__(config)
        self.lm = CausalLM.load(model, self.config)
        self.resolved = self.lm.resolved
        self.tokenizer = self.lm.tokenizer
        self.device = self.lm.device
        self.model = self.lm.model
        self.slots = list(self.kind.slots)
        self.principle = principle_text(opts.principle, opts.rubric)
        self.template_name, self.template = load_judge_template(
            opts.template, self.kind.default_templates, self.slots, self.principle
        )
        parts = self.render_parts(self.template, self.slots)
        self.parts = parts
        # labels judged text may not write: the template's, and a plain prompt's "Answer:" cue
        self.label_text = self.template + "".join(parts)
        self._part_ids = [
            list(ids) for ids in self.tokenizer(parts, add_special_tokens=False)["input_ids"]
        ]
        self.max_length = self.lm.max_length(self.config)
        self._identity = self.base_identity()
        if self.kind.name in ("yes_no", "pairwise", "verifier"):
            self.answers = AnswerTokens(self.kind, self.tokenizer, model, opts.output or "prob")
            self._identity.update(self.answers.identity)

    def model_adapter(self) -> CausalLMAdapter:
        return CausalLMAdapter(self.lm, self.readout)

    def readout(self, batch: Batch, hidden: torch.Tensor) -> torch.Tensor:
        """The kind's reward read from the answer-token logits at each row's last position."""
        h = at_last(hidden, batch.attention_mask).float()
        return read_logits(self.lm.answer_logits(h, self.answers.ids), self.answers.read)

    def base_identity(self) -> dict[str, Any]:
        """What every judge's fingerprint holds: weights, template, rendered prompt, limits."""
        return judge_identity(
            type(self).__name__,
            self.resolved.identity,
            self.template_name,
            self.parts,
            self.principle,
            max_length=self.max_length,
            labels="template+rendered-prompt",  # plain prompts' "Answer:" cue escaped too
            **self.engine_identity(),
        )

    def identity(self) -> dict[str, Any]:
        return self._identity

    def _texts_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of slot values (judged text: special-token strings and the section labels of
        :attr:`label_text` escaped, :func:`~rewardkit.rewards.judges.template.judged_specials`)."""
        if not texts:
            return []
        specials = judged_specials(special_strings(self.tokenizer), self.label_text)
        texts = [escape_special(t, specials) for t in texts]
        return [list(x) for x in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def render_parts(self, template: str, slots: Sequence[str]) -> list[str]:
        """The fixed text parts around ``slots`` of a template, rendered for this model."""
        parts = render_slots(
            self.tokenizer, template, slots, self.options.system, self.options.use_chat_template
        )
        if self.principle:
            parts = [p.replace(PRINCIPLE_SLOT, self.principle) for p in parts]
        if not self.options.use_chat_template or not getattr(self.tokenizer, "chat_template", None):
            bos = self.tokenizer.bos_token
            if bos and bos_prefix(self.tokenizer):
                parts[0] = bos + parts[0]
        return parts

    def encode_slots(
        self,
        values: Sequence[Sequence[str]],
        suffix: Sequence[int] = (),
        part_ids: Sequence[list[int]] | None = None,
    ) -> list[EncodedRow]:
        """Rows ``part0 slot0 part1 slot1 … partN [suffix]`` for each tuple of slot texts.

        Slot 0 (the conversation) is truncated from the start; the other slots (responses) keep
        their first tokens, each at least a fair share (:func:`fit_many`). Template tokens and
        ``suffix`` are never cut.
        """
        part_ids = self._part_ids if part_ids is None else part_ids
        n = len(part_ids) - 1
        columns = [self._texts_ids([v[j] for v in values]) for j in range(n)]
        fixed = sum(len(p) for p in part_ids) + len(suffix)
        rows = []
        for i in range(len(values)):
            f = fit_many(
                columns[0][i],
                [columns[j][i] for j in range(1, n)],
                self.max_length - fixed,
                self.config.truncation,
            )
            ids = list(part_ids[0])
            for piece, part in zip([f.prompt, *f.responses], part_ids[1:], strict=True):
                ids += piece + part
            rows.append(EncodedRow(ids + list(suffix), None, f.prompt_dropped, f.response_dropped))
        return rows

    def features(self, queries: Sequence[Query], batch_size: int = 8) -> np.ndarray:
        """Hidden states (n, H) at the last position of each query's judge prompt (what the
        answer-token logits read), in batches of ``batch_size`` rows."""
        rows = self.encode(text_queries(queries, self.name))
        engine = self.engine
        out = []
        with torch.no_grad():
            for s in range(0, len(rows), batch_size):
                batch = engine.make_batch(rows[s : s + batch_size])
                h = at_last(engine.adapter.last_hidden(batch), batch.attention_mask)
                out.append(h.float().cpu().numpy())
        return np.concatenate(out, axis=0).astype(np.float64)


class YesNoJudgeReward(AnswerTokenJudge):
    """``judge:`` — P(Yes) vs P(No) as the next token (docs/methods/B3-yes-token-reward.md);
    ``output=logit`` gives ℓ_yes − ℓ_no."""

    kind = YES_NO

    @property
    def yes_ids(self) -> list[int]:
        return self.answers.first

    @property
    def no_ids(self) -> list[int]:
        return self.answers.second

    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        return self.encode_slots([(prompt_text(q.prompt), q.response) for q in queries])


class PairwiseJudge(PairwiseJudging, AnswerTokenJudge):
    """``judge-pairwise:`` — P(a ≻ b) from the logits of A and B, both orders averaged
    (docs/methods/B6-llm-judge.md); ``score`` compares with the reference."""

    kind = PAIRWISE
    spec_kind = "judge-pairwise"
    capabilities = AnswerTokenJudge.capabilities | {Capability.PAIRWISE}

    def encode_pairs(self, pairs: Sequence[Pair]) -> list[EncodedRow]:
        return self.encode_slots([(prompt_text(p), str(x), str(y)) for p, x, y in pairs])

    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        """Rows of (prompt, response, first reference), as the pointwise fallback reads them."""
        return self.encode_pairs(
            [(q.prompt, q.response, (references(q) or [""])[0]) for q in queries]
        )


class RatingJudge(AnswerTokenJudge):
    """``judge-rating:`` — the expected 1–10 rating from the next-token distribution.

    p(k) ∝ Σ_{spellings s of k} e^{ℓ_s} over k = 1…10, r = Σ k·p(k) (docs/methods/B6-llm-judge.md).
    Many tokenizers (SmolLM2's, Llama's) spell "10" as "1" "0", whose first token is the rating
    1; then the token "1" is appended to the row and q = P("0" | …, "1") read at the extra
    position splits the mass of "1" into p(10) = p("1")·q and p(1) = p("1")·(1 − q). When "10"
    is one token it is used directly. ``output=probs`` returns the ten probabilities.
    """

    kind = RATING
    spec_kind = "judge-rating"

    def __init__(
        self, model: str = DEFAULT_MODEL, config: EngineConfig | None = None, **options: Any
    ) -> None:
        super().__init__(model, config, **options)
        output = self.output
        if output == "probs":
            self.objectives = tuple(str(k) for k in verdict.RATING_SCALE)
        tok = self.tokenizer
        self.rating_ids: list[list[int]] = []
        for spellings in RATING.classes[:9]:
            ids = single_token_ids(tok, spellings)
            if not ids:
                raise ValueError(f"{model}: no single-token spelling of the rating {spellings[0]}")
            self.rating_ids.append(ids)
        ten = single_token_ids(tok, RATING.classes[9])
        self.ten_ids = ten
        self.suffix: list[int] = []
        self.zero_id: int | None = None
        if not ten:
            one = tok("1", add_special_tokens=False)["input_ids"]
            zero = tok("0", add_special_tokens=False)["input_ids"]
            split = tok("10", add_special_tokens=False)["input_ids"]
            if not (len(one) == len(zero) == 1 and split == one + zero):
                raise ValueError(f"{model}: cannot read the rating 10 from its tokens {split}")
            self.suffix = one
            self.zero_id = zero[0]
        self._flat = [i for ids in self.rating_ids for i in ids] + list(ten)
        self._sizes = [len(ids) for ids in self.rating_ids] + ([len(ten)] if ten else [])
        self._identity = {
            **self._identity,
            "rating_ids": self.rating_ids,
            "ten": ten or {"two_step": [*self.suffix, self.zero_id]},
            "output": output,
        }

    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        return self.encode_slots(
            [(prompt_text(q.prompt), q.response) for q in queries], suffix=self.suffix
        )

    def rating_probs(self, batch: Batch, hidden: torch.Tensor) -> np.ndarray:
        """(b, 10) probabilities of the ratings 1…10 (float64) from a batch's hidden states."""
        mask = batch.attention_mask
        h = at_last(hidden, mask, 1 if self.suffix else 0).float()
        logits = self.lm.answer_logits(h, self._flat).double().cpu().numpy()
        p = verdict.softmax(verdict.class_scores(logits, self._sizes))
        if self.ten_ids:
            return p
        # over 1…9, where "1" holds 1 and 10: split it with q = P("0" | …, "1")
        after_one = self.lm.logits(at_last(hidden, mask), torch.float64)
        assert self.zero_id is not None
        q = torch.softmax(after_one, dim=1)[:, self.zero_id].cpu().numpy()
        return np.concatenate(
            [(p[:, 0] * (1 - q))[:, None], p[:, 1:], (p[:, 0] * q)[:, None]], axis=1
        )

    def readout(self, batch: Batch, hidden: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(verdict.rating(self.rating_probs(batch, hidden), self.output))


class ListwiseJudge(ListwiseJudging, AnswerTokenJudge):
    """``judge-listwise:`` — k ≤ 9 responses to one prompt ranked in one call; the score of each
    is P(its label is the first answer token) (docs/methods/B7-listwise-judge.md)."""

    kind = LISTWISE
    spec_kind = "judge-listwise"
    # groups, not queries: no per-query features
    capabilities = (AnswerTokenJudge.capabilities - {Capability.FEATURES}) | {Capability.LISTWISE}

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        config: EngineConfig | None = None,
        *,
        order_seed: int = 0,
        **options: Any,
    ) -> None:
        super().__init__(model, config, **options)
        self.seed = int(order_seed)
        self.label_ids = label_token_ids(self.tokenizer, model, self.max_group)
        self._groups: dict[int, list[list[int]]] = {}
        self._identity.update(label_ids=self.label_ids, seed=self.seed)

    def _parts_for(self, k: int) -> list[list[int]]:
        if k not in self._groups:
            text, slots = expand_template(self.template, k)
            parts = self.render_parts(text, slots)
            self._groups[k] = [
                list(x) for x in self.tokenizer(parts, add_special_tokens=False)["input_ids"]
            ]
        return self._groups[k]

    def encode_groups(self, groups: Sequence[Group]) -> list[EncodedRow]:
        rows: list[EncodedRow] = []
        for msgs, shown in groups:
            values = [(prompt_text(msgs), *(str(r) for r in shown))]
            rows += self.encode_slots(values, part_ids=self._parts_for(len(shown)))
        return rows

    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        raise TypeError(f"{self.name}: a listwise judge encodes groups (rank_many), not queries")

    def readout(self, batch: Batch, hidden: torch.Tensor) -> torch.Tensor:
        """Log-scores (b, 9) of the labels 1…9 as the first answer token."""
        flat = [i for ids in self.label_ids for i in ids]
        logits = self.lm.answer_logits(at_last(hidden, batch.attention_mask).float(), flat)
        return read_logits(logits, lambda x: label_scores(x, self.label_ids))


class VerifierJudge(Verifying, AnswerTokenJudge):
    """``verifier:`` — the soft verifier: "1" vs "0" after the question, the reference answer
    and the response's final part (docs/methods/B5-soft-verifier.md; rows and NaN:
    :class:`~rewardkit.rewards.judges.verifier.Verifying`). ``output=raw`` reads the answer
    tokens' log-softmax over the whole vocabulary: π("1" | x, a, y_final)."""

    kind = VERIFIER
    spec_kind = "verifier"
    # rows of (query, reference), not queries: no per-query features
    capabilities = AnswerTokenJudge.capabilities - {Capability.FEATURES}

    def __init__(
        self, model: str = DEFAULT_MODEL, config: EngineConfig | None = None, **options: Any
    ) -> None:
        self.tail, options = verifier_options(self.spec_kind, options)
        super().__init__(model, config, **options)

    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        """Rows of (question, reference, response) of verifier rows (one reference each)."""
        return self.encode_slots(
            [(prompt_text(q.prompt), str(q.reference), q.response) for q in queries]
        )

    def verify_rows(self, rows: Sequence[Query]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        run = self.run_rows(list(rows), [r.key() for r in rows], self.encode)
        return run.values[:, 0].astype(np.float64), run.truncated, dict(run.stats)

    def readout(self, batch: Batch, hidden: torch.Tensor) -> torch.Tensor:
        if self.output != "raw":
            return super().readout(batch, hidden)
        full = self.lm.logits(at_last(hidden, batch.attention_mask), torch.float64)
        logprobs = torch.log_softmax(full, dim=-1)[:, self.answers.ids]
        return read_logits(logprobs, self.answers.read)


class GenORMJudge(genorm.Critiquing, AnswerTokenJudge):
    """``genorm:`` — the generative outcome verifier (docs/methods/B4-orm-vs-prm.md): ``n``
    critiques per row from the model's ``generate``, then one teacher-forced pass reads ℓ_Yes,
    ℓ_No at each verdict (:mod:`~rewardkit.rewards.judges.genorm`); rows cached whole."""

    kind = GENORM
    spec_kind = "genorm"
    capabilities = (AnswerTokenJudge.capabilities - {Capability.FEATURES}) | {Capability.COMPONENTS}

    def __init__(
        self, model: str = DEFAULT_MODEL, config: EngineConfig | None = None, **options: Any
    ) -> None:
        self.settings, options = genorm.sampling_options(self.spec_kind, options)
        self.keep_critiques = genorm.keep_option(self.spec_kind, options)
        super().__init__(model, config, **options)
        marker_kind = replace(YES_NO, classes=GENORM.classes)
        self.answers = AnswerTokens(marker_kind, self.tokenizer, model, "prob")
        self.prefill_ids = list(
            self.tokenizer(self.settings.prefill, add_special_tokens=False)["input_ids"]
        )
        self.max_length = genorm.prompt_budget(
            model,
            self.max_length,
            fit_max_length(self.model.config, self.tokenizer, None, 1 << 30),
            sum(map(len, self._part_ids)) + len(self.prefill_ids),
            self.settings.max_new_tokens,
        )
        self._identity.update(
            self.answers.identity,
            sampling=asdict(self.settings),
            genorm=genorm.READING,
            max_length=self.max_length,
            stop_ids=sorted(genorm.stop_ids(self.model, self.tokenizer)),  # generation_config's
        )

    def _texts_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Judged texts escaped as every judge's, and the marker's question too."""
        return super()._texts_ids([genorm.escape_marker(t) for t in texts])

    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        """The verifier's prompt per query: the template's problem and solution, then the
        prefill (never cut)."""
        return self.encode_slots(
            [(prompt_text(q.prompt), q.response) for q in queries], suffix=self.prefill_ids
        )

    def critique_rows(
        self, rows: Sequence[Query]
    ) -> tuple[np.ndarray, list[list[str] | None], np.ndarray, np.ndarray, dict[str, Any]]:
        keys = [stable_hash(["genorm", q.key()]) for q in rows]
        cache = self.cache()
        found: dict[str, tuple[np.ndarray, int]] = {}
        if cache is not None:
            cache.register(self.fingerprint(), self.identity())
            found = dict(cache.get_flagged(self.fingerprint(), list(dict.fromkeys(keys))))
        hits = len(found)
        todo = {k: q for k, q in zip(keys, rows, strict=True) if k not in found}
        texts: dict[str, list[str]] = {}
        reads: list[EncodedRow] = []
        owners: list[tuple[str, int]] = []
        for key, row in zip(todo, self.encode(list(todo.values())), strict=True):
            texts[key], at = genorm.critiques_of(self.lm, row.input_ids, self.settings)
            reads += [EncodedRow(ids) for ids in at if ids is not None]
            owners += [(key, j) for j, ids in enumerate(at) if ids is not None]
            flags = truncation_flags(row.prompt_dropped, row.response_dropped)
            found[key] = (np.full(self.settings.n, np.nan), flags)
        run = self.engine.run(reads, [stable_hash(r.input_ids) for r in reads], list)
        for (key, j), value in zip(owners, run.values[:, 0], strict=True):
            found[key][0][j] = value
        if cache is not None and todo:
            cache.put_many(self.fingerprint(), [(k, *found[k]) for k in todo])
        probs = np.stack([np.asarray(found[k][0], dtype=np.float64) for k in keys])
        cut = np.array([bool(found[k][1] & TRUNCATED) for k in keys])
        stats = {"computed": len(todo), "cache_hits": hits, "verdicts_read": len(reads)}
        failed = np.zeros(len(rows), dtype=bool)
        return probs, [texts.get(k) for k in keys], failed, cut, stats


def _model(arg: str | None) -> str:
    return DEFAULT_MODEL if arg in (None, "", "default") else str(arg)


def build(arg: str | None, **options: Any) -> YesNoJudgeReward:
    """Registry factory for ``judge:default`` or ``judge:PATH_OR_ID``."""
    return YesNoJudgeReward(_model(arg), EngineConfig.from_options(options), **options)


def build_pairwise(arg: str | None, **options: Any) -> PairwiseJudge:
    """Registry factory for ``judge-pairwise:default`` or ``judge-pairwise:PATH_OR_ID``."""
    return PairwiseJudge(_model(arg), EngineConfig.from_options(options), **options)


def build_listwise(arg: str | None, **options: Any) -> ListwiseJudge:
    """Registry factory for ``judge-listwise:default`` or ``judge-listwise:PATH_OR_ID``."""
    return ListwiseJudge(_model(arg), EngineConfig.from_options(options), **options)


def build_rating(arg: str | None, **options: Any) -> RatingJudge:
    """Registry factory for ``judge-rating:default`` or ``judge-rating:PATH_OR_ID``."""
    return RatingJudge(_model(arg), EngineConfig.from_options(options), **options)


def build_verifier(arg: str | None, **options: Any) -> VerifierJudge:
    """Registry factory for ``verifier:default`` or ``verifier:PATH_OR_ID`` (through
    :func:`rewardkit.rewards.judges.verifier.build`)."""
    return VerifierJudge(_model(arg), EngineConfig.from_options(options), **options)
