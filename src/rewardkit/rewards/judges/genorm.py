"""``genorm:`` — the generative outcome verifier (GenORM) of docs/methods/B4-orm-vs-prm.md.

A verifier LM plays a teacher grading a solution step by step (template ``genorm_v1``: the
problem and the solution) and ends its critique with the fixed marker :data:`MARKER` and ``Yes``
or ``No``; its turn is prefilled with :data:`PREFILL`. ``n`` critiques are sampled (T = 0.6,
top_p 1 by default), each stopping at the marker's verdict, and scored by the shared verdict
reader (:func:`~rewardkit.rewards.judges.verdict.yes_no` on the class log-scores of
:data:`~rewardkit.rewards.judges.verdict.GENORM_YES` / ``GENORM_NO`` at the verdict token)::

    r_i = e^{ℓ_Yes} / (e^{ℓ_Yes} + e^{ℓ_No}) = σ(ℓ_Yes − ℓ_No)    (NaN: no marker in critique i)
    r   = mean_i r_i, an unread critique counted 0.5              (output=mean, the paper's)

Only the generated continuation is read: the marker in the problem, the solution or the
template is never a verdict, and judged texts have the marker broken by a word joiner (with the
template's section labels and the control-token strings, as every judge's).

Backends: a local causal LM (:class:`~rewardkit.rewards.judges.local.GenORMJudge`: the model's
``generate`` seeded per row, then one teacher-forced pass reading ℓ_Yes, ℓ_No at each
critique's verdict position) and an OpenAI-compatible endpoint (:class:`HttpGenORM`: one
``/chat/completions`` request with ``n`` choices, ``top_logprobs`` at the verdict token; a
class the server does not list gets −∞, so 1.0 / 0.0 as in the paper's code).
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from rewardkit.engine.special_tokens import escape_content
from rewardkit.errors import SpecError, switch
from rewardkit.remote import HttpRequest, generation_usage
from rewardkit.remote.config import RemoteConfigError, real_number, whole_number
from rewardkit.rewards.judges import logprobs as lp
from rewardkit.rewards.judges import sections, verdict
from rewardkit.rewards.judges import template as tpl
from rewardkit.rewards.judges.body import answer_text, no_text
from rewardkit.rewards.judges.failures import reindex_errors
from rewardkit.rewards.judges.http import (
    TOP_LOGPROBS,
    HttpJudge,
    http_judge,
    is_http_spec,
    openai_content,
)
from rewardkit.rewards.judges.template import GENORM, Part
from rewardkit.types import Capability, Query, ScoreResult, stable_hash

#: The line every critique must end with, before its verdict word.
MARKER = "Verification: Is the answer correct (Yes/No)?"
#: Where sampling stops: the marker and its verdict (the paper's stop strings).
STOPS = (f"{MARKER} Yes", f"{MARKER} No")
#: The start of the verifier's turn, written for it.
PREFILL = "Let's verify step by step:"
#: In the identity: how critiques are read (scores read otherwise are not reused).
READING = "first-marker-in-generated-text;raw-logits-at-verdict;unlisted-class-minus-inf"

_VERDICT = re.compile(re.escape(MARKER) + " (Yes|No)")


@dataclass(frozen=True)
class Sampling:
    """How critiques are begun and sampled (defaults: the paper's, but ``max_new_tokens`` 4096,
    not 8192: a prompt must still fit beside it in an 8k-position model)."""

    n: int = 10
    temperature: float = 0.6
    top_p: float = 1.0
    max_new_tokens: int = 4096
    seed: int = 0
    #: The start of the verifier's turn, written for it ("" for none).
    prefill: str = PREFILL


def find_verdict(critique: str, start: int = 0) -> tuple[int, str] | None:
    """(offset of the verdict word, ``"Yes"`` or ``"No"``) of the first marker in a critique
    whose verdict word starts at ``start`` or later (the generated part: the critique is the
    prefill, then what the verifier generated), or None (the critique's verdict is NaN)."""
    m = next((m for m in _VERDICT.finditer(critique) if m.start(1) >= start), None)
    return (m.start(1), m.group(1)) if m else None


@lru_cache(maxsize=1)
def marker_pattern() -> re.Pattern[str]:
    """The marker's question as a reader would take it (any case, width and spacing), for
    escaping judged texts: a solution cannot write the verifier's closing line for it."""
    return re.compile(f"(?i:{sections.loose('Verification: Is the answer correct')})")


def escape_marker(text: str) -> str:
    """``text`` with the marker's question broken by a word joiner after its first character."""
    out = escape_content(text, marker_pattern())
    return out if isinstance(out, str) else text


def row_seed(seed: int, ids: Any) -> int:
    """A 63-bit sampling seed of one row from the run's seed and the row's content."""
    return int(stable_hash([seed, ids])[:15], 16)


def sampling_options(kind: str, options: dict[str, Any]) -> tuple[Sampling, dict[str, Any]]:
    """(:class:`Sampling`, the judge options left) of a genorm spec; ``principle=`` and
    ``rubric=`` are refused, ``system=`` defaults to none (the paper sends the user turn only)."""
    options = dict(options)
    base = Sampling()
    try:
        sampling = Sampling(
            n=whole_number("n", options.pop("n", base.n), 1),
            temperature=real_number("temperature", options.pop("temperature", base.temperature), 0),
            top_p=real_number("top_p", options.pop("top_p", base.top_p), 0, above=True, maximum=1),
            max_new_tokens=whole_number(
                "max_new_tokens", options.pop("max_new_tokens", base.max_new_tokens), 1
            ),
            seed=whole_number("seed", options.pop("seed", base.seed), -(2**63)),
            prefill=prefill_option(options.pop("prefill", base.prefill), kind),
        )
    except RemoteConfigError as exc:
        raise SpecError(f"{kind}: {exc}") from None
    if sampling.temperature == 0 and sampling.n > 1:
        raise SpecError(f"{kind}: temperature=0 (greedy) gives one critique, not n={sampling.n}")
    for name in ("principle", "rubric"):
        if options.pop(name, None) is not None:
            raise SpecError(
                f"{kind}: {name}= does not apply: the verifier grades the solution's steps and "
                "final answer (use judge: for a principle)"
            )
    if "max_tokens" in options:
        raise SpecError(f"{kind}: the critique length is max_new_tokens=, not max_tokens=")
    options.setdefault("system", None)
    return sampling, options


def keep_option(kind: str, options: dict[str, Any]) -> bool:
    """``keep_critiques=`` taken out of ``options``: whether ``stats["critiques"]`` holds the
    critique texts (off by default: n long texts per row would fill an evaluation's report)."""
    return switch("keep_critiques", options.pop("keep_critiques", False), kind)


def prefill_option(value: Any, kind: str = "genorm") -> str:
    """``prefill=`` read: a text, or none / "" for no prefill."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SpecError(f"{kind}: prefill= must be a text (or none), got {value!r}")
    return value


def prompt_budget(model: str, max_length: int, positions: int, fixed: int, new: int) -> int:
    """The longest prompt a local verifier takes: ``max_length``, less where ``new`` critique
    tokens must still fit in its ``positions``; a SpecError when not even the template's
    ``fixed`` tokens (and a few of the texts') would."""
    budget = min(max_length, positions - new)
    if budget < fixed + 16:
        raise SpecError(
            f"genorm: max_new_tokens={new} leaves {max(budget, 0)} of {model!r}'s {positions} "
            f"positions for the prompt, whose template alone takes {fixed}; lower max_new_tokens"
        )
    return budget


class Critiquing(ABC):
    """Mixin of the GenORM backends: rows with response text are critiqued, the others are NaN;
    per-critique probabilities become components, the critiques' text a stat when kept. A backend
    provides :meth:`critique_rows`."""

    settings: Sampling
    output: str | None
    keep_critiques: bool = False

    @abstractmethod
    def critique_rows(
        self, rows: Sequence[Query]
    ) -> tuple[np.ndarray, list[list[str] | None], np.ndarray, np.ndarray, dict[str, Any]]:
        """(b, n) per-critique probabilities (NaN: unread), each row's critiques (None when they
        came from the cache or the row failed), a failed flag and a truncated flag per row,
        and the run's stats."""

    def critique_columns(self) -> tuple[str, ...]:
        """``critique_1`` … ``critique_n`` (each critique's r_i) and ``critiques_read``."""
        return (*(f"critique_{i}" for i in range(1, self.settings.n + 1)), "critiques_read")

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        n, k = len(queries), self.settings.n
        todo = [
            i for i, q in enumerate(queries) if isinstance(q.response, str) and q.response.strip()
        ]
        # a blank answer is no correct answer: every critique a certain No (0.0), never NaN —
        # a NaN reward is dropped by ensembles and RL adapters, so an empty response would dodge
        # the verifier; a response that is not text fails (NaN, counted in no_response)
        blank = [i for i, q in enumerate(queries) if isinstance(q.response, str) and i not in todo]
        probs = np.full((n, k), np.nan)
        probs[blank] = 0.0
        failed = np.ones(n, dtype=bool)
        failed[blank] = False
        truncated = np.zeros(n, dtype=bool)
        texts: list[list[str] | None] = [None] * n
        stats: dict[str, Any] = {"computed": 0}
        if todo:
            p, t, bad, cut, stats = self.critique_rows([queries[i] for i in todo])
            probs[todo], failed[todo], truncated[todo] = p, bad, cut
            for j, i in enumerate(todo):
                texts[i] = t[j]
            stats = reindex_errors(stats, [[i] for i in todo])
        probs[failed] = np.nan
        scores = verdict.critiques(probs, self.output or "mean")
        scores[failed] = np.nan
        read = (~np.isnan(probs)).sum(axis=1).astype(np.float64)
        read[failed] = np.nan
        read[blank] = 0.0  # no critique was written
        columns = [*probs.T, read]
        stats.update(
            queries=n,
            no_response=n - len(todo) - len(blank),
            blank_responses=len(blank),
            critiques_read=int(np.nansum(read)),
            critiques_unread=int(k * (int((~failed).sum()) - len(blank)) - np.nansum(read)),
        )
        if self.keep_critiques:
            stats["critiques"] = texts
        components = dict(zip(self.critique_columns(), columns, strict=True))
        return ScoreResult(scores, components=components, stats=stats, truncated=truncated)


# -- the local backend's sampling (torch imported here only) ------------------------------------


def sample_critiques(
    model: Any, tokenizer: Any, ids: Sequence[int], sampling: Sampling, device: Any
) -> list[list[int]]:
    """The ``n`` critiques of one prompt (token ids, cut at their end), sampled by the model's
    ``generate`` (top_k off), stopping at :data:`STOPS`; seeded from (seed, ``ids``) without
    touching the caller's random state."""
    import torch

    s = sampling
    x = torch.tensor([list(ids)], device=device)
    forked = [] if device.type == "cpu" else [device.index or 0]
    kind = "cuda" if device.type == "cpu" else device.type
    with torch.random.fork_rng(devices=forked, device_type=kind), torch.inference_mode():
        torch.manual_seed(row_seed(s.seed, list(ids)))
        out = model.generate(
            input_ids=x,
            attention_mask=torch.ones_like(x),
            do_sample=s.temperature > 0,
            temperature=s.temperature if s.temperature > 0 else None,
            top_p=s.top_p if s.temperature > 0 else None,
            top_k=0 if s.temperature > 0 else None,
            max_new_tokens=s.max_new_tokens,
            num_return_sequences=s.n,
            pad_token_id=tokenizer.pad_token_id,
            stop_strings=list(STOPS),
            tokenizer=tokenizer,
        )
    ends = stop_ids(model, tokenizer)
    critiques = []
    for row in out[:, x.shape[1] :].tolist():
        cut = next((j for j, t in enumerate(row) if t in ends), len(row))
        critiques.append(row[:cut])
    return critiques


def critiques_of(
    lm: Any, ids: Sequence[int], sampling: Sampling
) -> tuple[list[str], list[list[int] | None]]:
    """The ``n`` critiques of one prompt (``lm``: a loaded
    :class:`~rewardkit.models.causal_lm.CausalLM`) as text, and for each one with a marker the
    ids after which its verdict is read: the prompt, then the critique up to its verdict."""
    tok = lm.tokenizer
    head = len(sampling.prefill)
    texts, reads = [], []
    for critique in sample_critiques(lm.model, tok, ids, sampling, lm.device):
        text = sampling.prefill + tok.decode(critique, skip_special_tokens=True)
        found = find_verdict(text, head)
        texts.append(text)
        if found is None:
            reads.append(None)
        else:
            reads.append([*ids, *critique[: verdict_prefix(tok, critique, found[0] - head)]])
    return texts, reads


def stop_ids(model: Any, tokenizer: Any) -> set[int]:
    """The token ids sampling stops at (the model's end-of-sequence ids and the pad id): in the
    judge's identity, since ``generation_config.json`` can change them."""
    pad = tokenizer.pad_token_id
    return {int(t) for t in _eos_ids(model)} | (set() if pad is None else {int(pad)})


def _eos_ids(model: Any) -> list[int]:
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = getattr(model.config, "eos_token_id", None)
    return [eos] if isinstance(eos, int) else list(eos or [])


def verdict_prefix(tokenizer: Any, critique: Sequence[int], at: int) -> int:
    """How many of a critique's tokens come before the one holding character ``at`` of its text
    (the verdict's first letter): the verdict is read from the distribution after them."""
    lo, hi = 1, len(critique)
    while lo < hi:  # the fewest tokens whose text reaches past ``at``
        mid = (lo + hi) // 2
        if len(tokenizer.decode(critique[:mid], skip_special_tokens=True)) > at:
            hi = mid
        else:
            lo = mid + 1
    return lo - 1


# -- the endpoint backend ----------------------------------------------------------------------


def listed_class_scores(tops: dict[str, float], classes: Sequence[Sequence[str]]) -> np.ndarray:
    """Class log-scores from one position's ``top_logprobs``: the log-sum-exp of the listed
    tokens spelling each class; −∞ for a class none spells (the paper's rule: only Yes listed →
    1.0; unlike :func:`~rewardkit.rewards.judges.logprobs.class_logprobs`, no bound is assumed)."""
    spellings = [{lp.norm_token(s) for s in c} for c in classes]
    out = np.full(len(classes), -math.inf)
    for j, names in enumerate(spellings):
        values = [v for t, v in tops.items() if lp.norm_token(t) in names]
        if values:
            out[j] = float(verdict.logsumexp(np.asarray(values, dtype=np.float64)))
    return out


class HttpGenORM(Critiquing, HttpJudge):
    """``genorm:openai://…`` — GenORM on an OpenAI-compatible endpoint: one request with ``n``
    choices per row; the prefill is a last assistant turn the server continues (vLLM's and
    SGLang's ``continue_final_message``; ``prefill=none`` leaves it out for other servers)."""

    kind = GENORM
    spec_kind = "genorm"
    capabilities = (HttpJudge.capabilities - {Capability.IMAGES}) | {Capability.COMPONENTS}

    def __init__(self, base_url: str, model: str, **options: Any) -> None:
        self.settings, options = sampling_options(self.spec_kind, options)
        self.keep_critiques = keep_option(self.spec_kind, options)
        if "unparsed" in options:
            raise SpecError(
                f"{self.spec_kind}: unparsed= does not apply (an unread critique is 0.5)"
            )
        s = self.settings
        super().__init__(
            base_url,
            model,
            temperature=s.temperature,
            max_tokens=s.max_new_tokens,
            seed=s.seed,
            **options,
        )
        self.sampling.update(n=s.n, top_p=s.top_p)  # in the identity and in every request
        self._texts: dict[str, list[str]] = {}

    def can(self, cap: Capability) -> bool:
        return cap in type(self).capabilities

    def label_columns(self) -> tuple[str, ...]:
        return self.critique_columns()[:-1]

    def identity(self) -> dict[str, Any]:
        return {
            **super().identity(),
            "prefill": self.settings.prefill,
            "genorm": READING,
        }

    def sent_slots(self, row: Query) -> tuple[str, tuple[str, ...], list[list[Part]]]:
        template, slots, values = super().sent_slots(row)
        return template, slots, [escape_content(v, marker_pattern()) for v in values]

    def request(self, queries: Sequence[Query]) -> HttpRequest:
        (row,) = queries
        template, slots, values = self.sent_slots(row)
        text = openai_content(tpl.fill_slots(tpl.split_template(template, slots), values))
        body: dict[str, Any] = {"model": self.model, **self.sampling}
        system = self.options.system
        if self.endpoint == "completions":
            head = f"{system}\n\n" if system else ""
            prefill = self.settings.prefill
            body["prompt"] = head + str(text) + (f"\n\n{prefill}" if prefill else "")
            if self.logprobs:
                body["logprobs"] = TOP_LOGPROBS
            return HttpRequest("/completions", body)
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": text})
        if self.settings.prefill:
            messages.append({"role": "assistant", "content": self.settings.prefill})
            body.update(continue_final_message=True, add_generation_prompt=False)
        body["messages"] = messages
        if self.logprobs:
            body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        return HttpRequest("/chat/completions", body)

    def value(self, scores: np.ndarray, row: Query) -> list[float]:
        """[r, r_1 … r_n] from the critiques' probabilities ``scores`` (n,); r is the ``mean``
        (never NaN for an answer read: NaN in the score column is a failed request)."""
        mean = verdict.critiques(np.asarray(scores, dtype=np.float64)[None, :], "mean")
        return [float(mean[0]), *map(float, scores)]

    def read_choice(self, choice: Any) -> tuple[float, str, str]:
        """(r_i, the critique, how it was read: ``logprobs``, ``text`` (``logprobs=false``),
        ``no_logprobs`` (asked for, not sent), ``unaligned`` or ``unread``) of one choice;
        ValueError for a choice without text."""
        body = {"choices": [choice]}
        text = answer_text(body)
        if text is None:
            raise ValueError(no_text(body))
        head = self.settings.prefill
        critique = head + text
        found = find_verdict(critique, len(head))
        if found is None:
            return math.nan, critique, "unread"
        at, word = found
        certain = 1.0 if word == "Yes" else 0.0
        positions = lp.top_logprobs(body) if self.logprobs else None
        if positions is None:
            return certain, critique, "no_logprobs" if self.logprobs else "text"
        classes = self.kind.classes
        spellings = [{lp.norm_token(s) for s in c} for c in classes]
        try:
            index = lp.verdict_position(positions, spellings, at - len(head), text)
        except lp.Unaligned:
            index = None
        if index is None:
            return certain, critique, "unaligned"
        scores = listed_class_scores(positions[index][1], classes)
        return float(verdict.yes_no(scores[None, :])[0]), critique, "logprobs"

    def read(self, body: Any, queries: Sequence[Query]) -> list[dict[str, float]]:
        """The row's values from the answer's ``n`` choices (in ``index`` order); an answer with
        another number of choices, or a choice without text, fails the row."""
        (row,) = queries
        choices = body.get("choices") if isinstance(body, dict) else None
        k = self.settings.n
        if not isinstance(choices, list) or len(choices) != k:
            got = len(choices) if isinstance(choices, list) else 0
            raise ValueError(
                f"the answer holds {got} choices for n={k} (does the endpoint take n=?)"
            )
        choices = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
        read = [self.read_choice(c) for c in choices]
        self._texts[self.key(row)] = [text for _, text, _ in read]
        how = [h for _, _, h in read]
        usage = lp_usage(body)
        names = ("score", *self.label_columns())
        values = dict(zip(names, self.value(np.array([r for r, _, _ in read]), row), strict=True))
        return [
            {
                **values,
                "unparsed": float(how.count("unread")),
                "logprobs": float(how.count("logprobs")),
                "unaligned": float(how.count("unaligned")),
                "no_logprobs": float(how.count("no_logprobs")),
                **usage,
            }
        ]

    def critique_rows(
        self, rows: Sequence[Query]
    ) -> tuple[np.ndarray, list[list[str] | None], np.ndarray, np.ndarray, dict[str, Any]]:
        values, stats = self.judge_rows(list(rows))
        texts = [self._texts.pop(self.key(r), None) for r in rows]
        stats["critiques_from_logprobs"] = stats.pop("logprob_verdicts", 0)
        failed = np.isnan(values[:, 0])
        return values[:, 1:], texts, failed, np.zeros(len(rows), dtype=bool), stats


def lp_usage(body: Any) -> dict[str, float]:
    """The answer's token usage as the HTTP judges store it (NaN when it reported none)."""
    usage = generation_usage(body)
    if usage.unreported:
        return {"prompt_tokens": math.nan, "completion_tokens": math.nan}
    return {
        "prompt_tokens": float(usage.prompt_tokens),
        "completion_tokens": float(usage.completion_tokens),
    }


def build(arg: str | None, **options: Any) -> Any:
    """Registry factory: ``genorm:default`` / ``genorm:PATH_OR_ID`` (a local causal LM) or
    ``genorm:openai://HOST:PORT/v1?model=NAME`` (or ``base_url=`` + ``model=``)."""
    if is_http_spec(arg, options):
        return http_judge(HttpGenORM, arg, options)
    from rewardkit.engine.config import EngineConfig
    from rewardkit.rewards.judges import local

    model = local.DEFAULT_MODEL if arg in (None, "", "default") else str(arg)
    return local.GenORMJudge(model, EngineConfig.from_options(options), **options)
