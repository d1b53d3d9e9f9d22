"""``prm:PATH`` — a process reward model: one score per reasoning step, and a scalar by
``aggregate`` (``docs/methods/B4-orm-vs-prm.md``).

``prm:PATH?convention=qwen|shepherd&aggregate=min|max|last|mean|prod|geomean&split=auto``. The
steps of a response are ``query.meta["steps"]`` when they join (with a blank line) into the
response text itself, else :func:`~rewardkit.rewards.prm.steps.split_steps` by ``split``. The
convention (:mod:`rewardkit.rewards.prm.conventions`) says how they are tagged and where each
score is read; without ``convention`` it comes from the checkpoint's architecture.

``score_full(...).steps`` is (n, S) float32, one probability per step and NaN past a
response's steps (and for steps cut off by truncation); ``scores`` is their aggregate (NaN for a
response without steps). A response truncation cut steps from fails alone under ``cut=nan``
(the default): an aggregate of the visible prefix would let a long response hide its late
steps, and NaN as "does not apply" would let a composite drop the member and rescale — the
cut is the response's own length, so it is a failure. Under ``cut=prefix`` the scalar is the
aggregate of the steps the model saw; a row cut before its first step has none and fails too. A
response whose step tags (read as the tag's whole token sequence, :func:`tag_tokens`) do not
number its steps, or whose given ``meta["steps"]`` hold a blank line, fails alone too: NaN steps
and scalar, named in ``stats["failed"]``/``["errors"]``; the batch is scored. A ``tag`` a
one-step response does not read once is refused when the reward is built
(:meth:`StepScorer.check_tag`).
The per-step scores are computed and cached once whatever the aggregate: ``prm:X?aggregate=min``
and ``prm:X?aggregate=last`` share the engine's cache.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import transformers

from rewardkit.engine.adapter import Batch, ModelAdapter, OwnForwardAdapter
from rewardkit.engine.config import EngineConfig
from rewardkit.engine.encoding import encode_chat, encode_plain
from rewardkit.engine.runner import EncodedRow, ModelBackedReward
from rewardkit.engine.special_tokens import (
    escape_messages,
    escape_special,
    special_strings,
)
from rewardkit.errors import SpecError
from rewardkit.models.causal_lm import CausalLM, CausalLMAdapter
from rewardkit.models.integrity import remote_code_id
from rewardkit.models.loading import (
    fit_max_length,
    load_causal_lm_shared,
    load_tokenizer,
    resolve_device,
    resolve_model,
    set_threads,
    torch_dtype,
)
from rewardkit.rewards.prm.conventions import StepConvention, convention, guess_convention
from rewardkit.rewards.prm.steps import (
    AGGREGATES,
    aggregate_rows,
    all_cut_error,
    count_problem,
    count_tags,
    cut_error,
    no_steps_problem,
    pad_steps,
    split_steps,
    steps_cut,
)
from rewardkit.rewards.prm.tagged import batch_tags, per_step
from rewardkit.rewards.ragged import run_rows
from rewardkit.types import Capability, Message, Query, Reward, ScoreResult, stable_hash

STEP_JOIN = "\n\n"
_BLANK_LINE = re.compile(r"\r?\n[ \t]*\r?\n")


#: What a response truncation cut steps from scores: ``nan`` ("not fully scored", the default)
#: or ``prefix`` (the aggregate of the steps the model saw).
CUT_POLICIES = ("nan", "prefix")


def query_steps(query: Query, rule: str) -> list[str]:
    """The steps of ``query``'s response: ``meta["steps"]`` when they join into the response
    text, else the response split by ``rule``."""
    text = str(query.response)
    given = query.meta.get("steps")
    if (
        isinstance(given, list)
        and given
        and all(isinstance(s, str) for s in given)
        and STEP_JOIN.join(given) == text
    ):
        return list(given)
    return split_steps(text, rule)


def given_steps_problem(query: Query) -> str | None:
    """Why ``meta["steps"]`` cannot be taken as the response's steps, or None: a given step
    holding a blank line (the join string) merges paragraphs, so one tag (one score) would
    stand for several steps of the text (``["a\\n\\nwrong", "b"]`` hides ``wrong``)."""
    given = query.meta.get("steps")
    if not isinstance(given, list) or not all(isinstance(s, str) for s in given):
        return None
    if STEP_JOIN.join(given) != str(query.response):
        return None  # not taken as the steps: the response is split by the rule
    k = next((k for k, s in enumerate(given) if _BLANK_LINE.search(s)), None)
    if k is None:
        return None
    return (
        f"meta steps[{k}] holds a blank line, which separates steps in the response text: "
        "give each paragraph as its own step"
    )


def tagged_query(
    conv: StepConvention, query: Query, steps: list[str], tokenizer: Any = None
) -> Query:
    """The query a PRM reads: the convention's system prompt (unless the prompt has one) and
    the tagged steps as the response. With ``tokenizer``, the prompt and step texts are escaped
    first (:mod:`rewardkit.engine.special_tokens`): only the convention's own tags are real
    tokens, so a step cannot write a control token (:meth:`StepConvention.tagged` removes tag
    text written in a step)."""
    prompt: list[Message] = list(query.prompt)
    if tokenizer is not None:
        specials = special_strings(tokenizer)
        prompt = escape_messages(prompt, specials)
        steps = [escape_special(s, specials) for s in steps]
    if conv.system and not (prompt and prompt[0]["role"] == "system"):
        prompt.insert(0, {"role": "system", "content": conv.system})
    return Query(prompt, conv.tagged(steps))


def encode_tagged(
    tokenizer: Any,
    conv: StepConvention,
    queries: Sequence[Query],
    max_length: int,
    truncation: Any,
    use_chat_template: bool,
) -> list[EncodedRow]:
    """Engine rows of tagged queries: through the chat template when the convention and the
    tokenizer have one, else plain ``prompt SEP response`` text (``" "`` for Math-Shepherd's
    ``question steps``, a blank line otherwise); no EOS is appended."""
    # The queries come from tagged_query, escaped there: the tags must stay real tokens.
    if use_chat_template:
        return encode_chat(tokenizer, queries, max_length, truncation, escape=False)
    return encode_plain(
        tokenizer,
        queries,
        max_length,
        truncation,
        separator="\n\n" if conv.read == "token-cls" else " ",
        append_eos=False,
        escape=False,
    )


def tag_positions(ids: Sequence[int], start: int, tag_id: int) -> list[int]:
    """Positions of the step tag in a row's response part (from ``start`` on)."""
    return [i for i in range(max(start, 0), len(ids)) if ids[i] == tag_id]


def tag_tokens(tokenizer: Any, conv: StepConvention, tag_id: int) -> tuple[int, ...]:
    """The tokens the tag reads as in tagged text, ending with ``tag_id``: more than one where the
    tokenizer splits the tag (SmolLM2 reads `` ки`` as `` к`` + ``и``), so that the same last token
    in the text (a Cyrillic ``и``) is not read as a tag; ``(tag_id,)`` when the tag's tokens do
    not show apart from the text before it."""
    head = tokenizer("a", add_special_tokens=False)["input_ids"]
    ids = tokenizer(conv.tagged(["a"]), add_special_tokens=False)["input_ids"]
    rest = ids[len(head) :]
    if ids[: len(head)] != head or not rest or rest[-1] != tag_id:
        return (tag_id,)
    return tuple(int(t) for t in rest)


class StepScorer(ModelBackedReward):
    """The engine side of a PRM: (prompt, steps) rows → one score per tagged step, read from a
    token classifier's own forward (qwen convention, :class:`OwnForwardAdapter`) or from a causal
    LM's good/bad token logits at the tags (shepherd convention, the shared
    :class:`CausalLMAdapter`)."""

    def __init__(
        self,
        model: str,
        config: EngineConfig | None = None,
        *,
        convention_name: str | None = None,
        tag: str | None = None,
        good: str | None = None,
        bad: str | None = None,
        system: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__(config)
        set_threads(self.config.threads)
        resolved = resolve_model(model)
        self.model_name = model
        source = resolved.source
        hf_config = transformers.AutoConfig.from_pretrained(
            source, trust_remote_code=trust_remote_code
        )
        name = convention_name or guess_convention(getattr(hf_config, "architectures", None))
        self.convention: StepConvention = convention(
            name, tag=tag, good=good, bad=bad, system=system
        )
        self.tokenizer = load_tokenizer(source, trust_remote_code)
        self.device = resolve_device(self.config.device)
        dtype = torch_dtype(self.config.dtype)
        tok = self.tokenizer
        if self.convention.read == "token-cls":
            self.tag_id = int(tok.convert_tokens_to_ids(self.convention.tag))
            if tok(self.convention.tag, add_special_tokens=False)["input_ids"] != [self.tag_id]:
                raise ValueError(
                    f"{model}: the tokenizer has no single token {self.convention.tag!r} to "
                    "separate steps; set tag= to the model's step separator"
                )
            arch = (getattr(hf_config, "architectures", None) or [""])[0]
            if trust_remote_code and not arch.endswith("ForTokenClassification"):
                cls: Any = transformers.AutoModel  # remote-code PRMs (Qwen2ForProcessRewardModel)
            else:
                cls = transformers.AutoModelForTokenClassification
            self.model = cls.from_pretrained(
                source, dtype=dtype, trust_remote_code=trust_remote_code
            ).to(self.device)
            self.model.eval()
            labels = int(getattr(self.model.config, "num_labels", 2))
            if labels != 2:
                raise ValueError(
                    f"{model}: a qwen-convention PRM is a 2-label token classifier, this one "
                    f"has {labels} labels"
                )
            self.good_bad: tuple[int, int] | None = None
            self.lm: CausalLM | None = None
        else:
            self.tag_id = int(tok.encode(self.convention.tag)[-1])  # as Math-Shepherd's code
            ids = tok(f"{self.convention.good} {self.convention.bad}", add_special_tokens=False)
            if len(ids["input_ids"]) != 2:
                raise ValueError(
                    f"{model}: {self.convention.good!r} and {self.convention.bad!r} are not one "
                    "token each in this tokenizer; set good= and bad="
                )
            self.good_bad = (int(ids["input_ids"][0]), int(ids["input_ids"][1]))
            self.model = load_causal_lm_shared(source, self.config.dtype, self.device)
            self.lm = CausalLM(self.model, tok, resolved, self.device)
        self.tag_ids = (
            (self.tag_id,)
            if self.convention.read == "token-cls"
            else tag_tokens(tok, self.convention, self.tag_id)
        )
        self.use_chat_template = self.convention.chat and bool(getattr(tok, "chat_template", None))
        self.max_length = fit_max_length(
            self.model.config, tok, self.config.max_length, self.config.default_max_length
        )
        self.check_tag()
        self._identity = {
            "class": "StepScorer",
            **resolved.identity,
            "convention": {
                "tag": self.convention.tag,
                "read": self.convention.read,
                "good": self.convention.good,
                "bad": self.convention.bad,
                "system": self.convention.system,
                **({"tag_ids": list(self.tag_ids)} if len(self.tag_ids) > 1 else {}),
            },
            "template": stable_hash(tok.chat_template) if self.use_chat_template else "plain",
            "max_length": self.max_length,
            **self.engine_identity(),
            **(remote_code_id(source) if trust_remote_code else {}),  # its code scores
        }

    def identity(self) -> dict[str, Any]:
        return self._identity

    def check_tag(self) -> None:
        """Refuse, at build time, a tag that a response of one (empty) step does not read
        exactly once: the template writes the same tokens (``tag=<|end|>``, its own end-of-turn
        marker), or reads none of it. Every response would otherwise fail, each blamed on its
        own text. (The step is empty so that no text of the probe can read as the tag.)"""
        probe = self.tagged_query(Query([{"role": "user", "content": "a"}], ""), [""])
        row = encode_tagged(
            self.tokenizer, self.convention, [probe], 1 << 20, "right", self.use_chat_template
        )[0]
        n = count_tags(row.input_ids, row.response_start, self.tag_ids)
        if n == 1:
            return
        why = (
            "the chat template or prompt layout writes the same tokens (an end-of-turn marker?)"
            if n > 1
            else "the tokenizer joins it with the tokens around it"
        )
        raise ValueError(
            f"{self.model_name}: step tag {self.convention.tag!r} is read {n} times in a "
            f"one-step response, not once: {why}; set tag= to the model's step separator"
        )

    def model_adapter(self) -> ModelAdapter:
        if self.lm is None:
            return OwnForwardAdapter(
                self.model, int(self.tokenizer.pad_token_id), self.read_classifier
            )
        return CausalLMAdapter(self.lm, self.read_good_bad)

    def encode(self, queries: Sequence[Query]) -> list[EncodedRow]:
        """Rows of queries whose response is already the tagged step text."""
        return encode_tagged(
            self.tokenizer,
            self.convention,
            queries,
            self.max_length,
            self.config.truncation,
            self.use_chat_template,
        )

    def tagged_query(self, query: Query, steps: list[str]) -> Query:
        """The query the model reads: the convention's system prompt and the tagged steps."""
        return tagged_query(self.convention, query, steps, self.tokenizer)

    def read_classifier(self, batch: Batch, out: Any) -> torch.Tensor:
        """Step scores P(label 1) from a token classifier's logits (b, w, 2) at the tags
        (``out.logits``, or the first output of remote-code PRMs returning a tuple)."""
        logits = out.logits if hasattr(out, "logits") else out[0]
        tags = batch_tags(batch, self.tag_ids)
        rows, cols = tags.nonzero(as_tuple=True)
        return per_step(tags, torch.softmax(logits[rows, cols].float(), dim=-1)[:, 1])

    def read_good_bad(self, batch: Batch, hidden: torch.Tensor) -> torch.Tensor:
        """Step scores P(good) over {good, bad} from the model's own next-token logits at the
        tags (its logit scale and soft-capping applied, as its forward does)."""
        assert self.lm is not None and self.good_bad is not None
        tags = batch_tags(batch, self.tag_ids)
        rows, cols = tags.nonzero(as_tuple=True)
        logits = self.lm.answer_logits(hidden[rows, cols].float(), self.good_bad)
        return per_step(tags, torch.softmax(logits, dim=-1)[:, 0])


class PRMReward(Reward):
    """Per-step scores from a :class:`StepScorer` and their aggregate (module docstring)."""

    capabilities = frozenset({Capability.STEPS, Capability.MODEL_BACKED})
    uses_meta = True  # meta["steps"] can be the steps (query_steps): in server/Ray keys

    def __init__(
        self,
        model: str,
        config: EngineConfig | None = None,
        *,
        aggregate: str = "min",
        split: str = "auto",
        convention: str | None = None,
        tag: str | None = None,
        good: str | None = None,
        bad: str | None = None,
        system: str | None = None,
        trust_remote_code: bool = False,
        cut: str | float = "nan",
    ) -> None:
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}; got {aggregate!r}")
        if isinstance(cut, float) and math.isnan(cut):
            cut = "nan"  # the spec grammar reads ?cut=nan as the float NaN
        if cut not in CUT_POLICIES:
            raise ValueError(f"cut must be one of {', '.join(CUT_POLICIES)}; got {cut!r}")
        split_steps("", split)  # validates the rule
        self.aggregate = aggregate
        self.cut = cut
        self.split = split
        self.scorer = StepScorer(
            model,
            config,
            convention_name=convention,
            tag=tag,
            good=good,
            bad=bad,
            system=system,
            trust_remote_code=trust_remote_code,
        )

    @property
    def config(self) -> EngineConfig:
        return self.scorer.config

    def engine_variant(self, **changes: Any) -> PRMReward:
        """A twin whose step scorer is its engine variant (same loaded model)."""
        twin = copy.copy(self)
        twin.scorer = self.scorer.engine_variant(**changes)
        return twin

    def identity(self) -> dict[str, Any]:
        return {
            "class": "PRMReward",
            "scorer": self.scorer.identity(),
            "aggregate": self.aggregate,
            "split": self.split,
            **({"cut": self.cut} if self.cut != "nan" else {}),
        }

    def step_scores(self, queries: Sequence[Query]) -> tuple[np.ndarray, np.ndarray, dict]:
        """(steps (n, S) NaN-padded, truncated (n,), stats) for ``queries``; a row whose tag count
        does not match its steps fails alone (NaN steps, ``stats["failed"]``/``["errors"]``)."""
        steps = [query_steps(q, self.split) for q in queries]
        tagged = [self.scorer.tagged_query(q, s) for q, s in zip(queries, steps, strict=True)]
        keys = [stable_hash(["prm", q.prompt, s]) for q, s in zip(queries, steps, strict=True)]
        self.scorer.name = f"{self.name}[steps]"
        values, truncated, stats = run_rows(self.scorer, tagged, keys, self.scorer.encode)
        rows, errors = [], []
        for i, s in enumerate(steps):
            row = values[i] if values.ndim == 2 else np.zeros(0)
            got = int(np.sum(~np.isnan(row)))
            problem = given_steps_problem(queries[i]) or count_problem(
                self.scorer.convention.tag, len(s), got, bool(truncated[i])
            )
            if problem is not None:  # this row alone fails: NaN steps, named in the stats
                errors.append({"index": i, "error": problem})
                row = np.full(len(s), np.nan)
            rows.append(row[: len(s)])
        if errors:
            stats = {**stats, "failed": len(errors), "errors": errors}
        return pad_steps(rows), truncated, stats

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        steps, truncated, stats = self.step_scores(queries)
        scores = (
            aggregate_rows(steps, self.aggregate)
            if steps.shape[1]
            else np.full(len(queries), np.nan)
        )
        counts = [len(query_steps(q, self.split)) for q in queries]
        cut = steps_cut(steps, counts)
        errors = list(stats.get("errors") or [])
        failed = [int(e["index"]) for e in errors]
        cut[failed] = False  # a failed row is not a cut one; its scalar is NaN either way
        for i, count in enumerate(counts):  # no steps: a failure, not "does not apply"
            problem = None if i in failed else no_steps_problem(count)
            if problem is not None:
                errors.append({"index": i, "error": problem})
                failed.append(i)
        scores[failed] = np.nan
        if self.cut == "nan":  # not the aggregate of a prefix: padding would hide late errors
            scores[cut] = np.nan
            # the response's own length cut it: a failure, never "does not apply", which a
            # composite would drop and rescale (a padded wrong step then scored the maximum)
            errors += [
                {"index": int(i), "error": cut_error(counts[i], steps[i], self.scorer.max_length)}
                for i in np.flatnonzero(cut)
            ]
        else:  # cut=prefix: a row cut before its first step has no prefix, so it was not scored
            unscored = cut & ~(~np.isnan(steps)).any(axis=1)
            scores[unscored] = np.nan
            errors += [
                {"index": int(i), "error": all_cut_error(counts[i], self.scorer.max_length)}
                for i in np.flatnonzero(unscored)
            ]
        if errors:
            errors.sort(key=lambda e: int(e["index"]))
            stats = {**stats, "failed": len(errors), "errors": errors}
        return ScoreResult(
            scores.astype(np.float32),
            stats={
                **stats,
                "steps": int(np.sum(~np.isnan(steps))),
                "steps_cut_rows": int(cut.sum()),
            },
            truncated=truncated,
            steps=steps,
        )


def build(arg: str | None, **options: Any) -> PRMReward:
    """Registry factory for ``prm:PATH``."""
    if not arg:
        raise SpecError("prm: needs a model, prm:PATH_OR_ID")
    config = EngineConfig.from_options(options)
    return PRMReward(str(arg), config, **options)
