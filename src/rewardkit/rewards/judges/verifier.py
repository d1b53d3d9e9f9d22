"""``verifier:`` — the model-based soft verifiable reward (docs/methods/B5-soft-verifier.md).

A verifier LM reads the question x, the reference answer a and the final part of the response y
(:func:`final_part`: the text after its last ``</think>``, of which the last ``tail``
characters) through the ``verifier_v1`` template and answers ``1`` (the response's answer agrees
with the reference) or ``0``. The reward is read from its next-token distribution by the shared
verdict reader (:func:`rewardkit.rewards.judges.verdict.verifier`; the spellings of each digit
log-sum-exp'd, as the yes/no judge's)::

    prob (default)   p1 / (p1 + p0) = σ(ℓ_1 − ℓ_0)
    raw              p1 = π('1' | x, a, y_final), softmax over the whole vocabulary
    binary           1[ℓ_1 > ℓ_0]
    logit            ℓ_1 − ℓ_0

A query without a reference is NaN (the reward does not apply); with several references it gets
the best one's score (one verifier row per reference). A numeric reference (``4``, a numpy
scalar or array) is read as its text (:func:`reference_answers`), not left out. The backends are the judges': a local
causal LM (:class:`~rewardkit.rewards.judges.local.VerifierJudge`, the answer tokens' logits at
the last position) and an OpenAI-compatible endpoint (:class:`HttpVerifier`: the answer text
says which digit, ``top_logprobs`` how sure). Judged texts are escaped as every judge's are (the
template's section labels, ``<think>`` tags, control-token strings): a response cannot write the
template's own sections or close its turn.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from rewardkit.errors import SpecError
from rewardkit.rewards.judges import template as tpl
from rewardkit.rewards.judges import verdict
from rewardkit.rewards.judges.failures import reindex_errors
from rewardkit.rewards.judges.http import HttpJudge, http_judge, is_http_spec
from rewardkit.rewards.judges.quotes import THINK_CLOSE
from rewardkit.rewards.judges.template import VERIFIER, Part
from rewardkit.types import Capability, Query, Reward, ScoreResult

#: Characters of the response's final part the verifier reads by default: the final answer and
#: the lines just before it (about 250 English tokens), whatever the length of the reasoning.
DEFAULT_TAIL = 1000


def final_part(response: str, tail: int | None = DEFAULT_TAIL) -> str:
    """What the verifier reads of a response: the text after its last ``</think>`` (all of it
    when there is none, so a response cut off while reasoning is judged where it stopped),
    stripped, then its last ``tail`` characters (``tail`` None: all)."""
    cut = response.rfind(THINK_CLOSE)
    text = (response[cut + len(THINK_CLOSE) :] if cut >= 0 else response).strip()
    return text if tail is None or len(text) <= tail else text[-tail:].lstrip()


def _answer_text(value: Any) -> Any:
    """A numeric reference answer as the text a verifier reads (``4``, ``2.5``; an integral
    float as an integer, as a pandas column with gaps holds one); others as they are (a bool,
    NaN or ±inf is no answer: None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return None
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def reference_answers(query: Query) -> list[Any]:
    """The reference answers of a query as a verifier reads them: the judges' texts
    (:func:`~rewardkit.rewards.judges.template.references`), numbers (``4``, ``np.int64(4)``,
    ``2.5``) as their text, a numpy array as its list; a NaN, a bool or a mapping is none."""
    ref = query.reference
    if isinstance(ref, np.ndarray):
        ref = ref.tolist()
    many = isinstance(ref, list | tuple)
    ref = [_answer_text(r) for r in ref] if many else _answer_text(ref)
    return tpl.references(replace(query, reference=ref))


def tail_option(value: Any, kind: str = "verifier") -> int | None:
    """``tail=`` read: a whole number of characters ≥ 1, or None (the whole final part)."""
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not (ok and float(value).is_integer() and value >= 1):
        raise SpecError(
            f"{kind}: tail= must be a whole number of characters ≥ 1 (or none: the whole final "
            f"part), got {value!r}"
        )
    return int(value)


def verifier_options(kind: str, options: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
    """(tail, the judge options left) of a verifier spec; principle= and rubric= are refused:
    the verifier checks the response against its reference, not against a principle."""
    options = dict(options)
    tail = tail_option(options.pop("tail", DEFAULT_TAIL), kind)
    for name in ("principle", "rubric"):
        if options.get(name) is not None:
            raise SpecError(
                f"{kind}: {name}= does not apply: the verifier judges the response's final "
                "answer against the reference answer (use judge: for a principle)"
            )
        options.pop(name, None)
    return tail, options


class Verifying(ABC):
    """Mixin of the verifier backends: one row (question, reference, final part) per reference
    of each query, the best row per query, NaN without a reference. A backend provides
    :meth:`verify_rows`."""

    tail: int | None

    @abstractmethod
    def verify_rows(self, rows: Sequence[Query]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Each row's reward (NaN where it failed), a per-row truncated flag, the run's stats."""

    def verifier_rows(self, queries: Sequence[Query]) -> tuple[list[int], list[Query]]:
        """(owning query, row) of each reference: the row's response is the final part."""
        owner, rows = [], []
        for i, q in enumerate(queries):
            final = final_part(str(q.response), self.tail)
            for ref in reference_answers(q):
                owner.append(i)
                rows.append(Query(q.prompt, final, reference=ref))
        return owner, rows

    def identity(self) -> dict[str, Any]:
        """The backend's identity and a ``tail`` other than the default: the engine keys its
        rows on the cut response already, but a server's or a Ray run's cache keys the whole
        reward's scores on this fingerprint (``tail=5`` and ``tail=1000`` shared one)."""
        ident = super().identity()  # type: ignore[misc]
        return ident if self.tail == DEFAULT_TAIL else {**ident, "tail": self.tail}

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        owner, rows = self.verifier_rows(queries)
        n = len(queries)
        out = np.full(n, np.nan, dtype=np.float64)
        truncated = np.zeros(n, dtype=bool)
        stats: dict[str, Any] = {"computed": 0}
        if rows:
            values, cut, stats = self.verify_rows(rows)
            np.fmax.at(out, owner, np.asarray(values, dtype=np.float64))  # NaN: no row scored
            np.logical_or.at(truncated, owner, np.asarray(cut, dtype=bool))
            stats = reindex_errors(stats, [[i] for i in owner])
        stats.update(queries=n, verified_rows=len(rows), no_reference=n - len(set(owner)))
        return ScoreResult(out, stats=stats, truncated=truncated)


class HttpVerifier(Verifying, HttpJudge):
    """``verifier:openai://…`` — the soft verifier on an OpenAI-compatible endpoint (text only)."""

    kind = VERIFIER
    spec_kind = "verifier"
    capabilities = HttpJudge.capabilities - {Capability.IMAGES}

    def __init__(self, base_url: str, model: str, **options: Any) -> None:
        self.tail, options = verifier_options(self.spec_kind, options)
        super().__init__(base_url, model, **options)

    def slots(self, row: Query) -> tuple[str, tuple[str, ...], list[list[Part]]]:
        values = [
            tpl.conversation_parts(row.prompt),
            tpl.as_parts(row.reference),
            tpl.as_parts(row.response),
        ]
        return self.template, self.kind.slots, values

    def value(self, scores: np.ndarray, row: Query) -> list[float]:
        return [float(verdict.verifier(scores[None, :], self.output or "prob")[0])]

    def verify_rows(self, rows: Sequence[Query]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        values, stats = self.judge_rows(list(rows))
        return values[:, 0], np.zeros(len(rows), dtype=bool), stats


def build(arg: str | None, **options: Any) -> Reward:
    """Registry factory: ``verifier:default`` / ``verifier:PATH_OR_ID`` (a local causal LM) or
    ``verifier:openai://HOST:PORT/v1?model=NAME`` (or ``base_url=`` + ``model=``)."""
    if is_http_spec(arg, options):
        return http_judge(HttpVerifier, arg, options)
    from rewardkit.rewards.judges import local

    return local.build_verifier(arg, **options)
