"""Domain-knowledge reward: a small learned combination of interpretable features
(docs/methods/A15-domain-knowledge-rm.md — "Leveraging Domain Knowledge for Efficient Reward
Modelling in RLHF: E-Commerce Opinion Summarization").

``r(x, y) = Σ_j w_j · (φ_j(x, y) − μ_j) / σ_j``: each feature ``φ_j`` is a plain function of a
:class:`~rewardkit.types.Query` (built-ins in :data:`FEATURES`, or any user function),
standardised with the training set's mean and std so the weights compare; ``w`` is fitted with
Bradley–Terry (:func:`rewardkit.train.domain.fit_linear_bt`). Every score comes with its
per-feature contributions ``w_j z_j`` as components. Pure Python and numpy.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rewardkit.errors import SpecError
from rewardkit.registry import refuse_options
from rewardkit.rewards.rules.arithmetic import arithmetic_score
from rewardkit.types import Capability, Query, Reward, ScoreResult, prompt_text

MODEL_FILE = "domain.json"
#: Words, and numbers with their thousands separators (``1,500`` is one number, read ``1500``).
_WORD = re.compile(r"[a-z]+|\d{1,3}(?:,\d{3}(?!\d))+(?:\.\d+)?|\d+(?:\.\d+)?")
#: The relative tolerance of :func:`arithmetic` (card A15).
ARITHMETIC_REL_TOL = 1e-6
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "is",
        "are",
        "was",
        "were",
        "be",
        "it",
        "this",
        "that",
        "as",
        "at",
        "by",
        "from",
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "how",
        "what",
        "which",
        "who",
        "whom",
        "when",
        "where",
        "why",
        "can",
        "could",
        "would",
        "should",
        "will",
        "not",
        "no",
        "but",
        "if",
        "then",
        "than",
        "so",
        "she",
        "he",
        "they",
        "we",
        "you",
        "i",
        "my",
        "your",
        "his",
        "her",
        "its",
        "their",
        "our",
        "them",
        "us",
        "me",
    ]
)
_POSITIVE = frozenset(
    [
        "good",
        "great",
        "excellent",
        "love",
        "loved",
        "best",
        "nice",
        "happy",
        "amazing",
        "perfect",
        "comfortable",
        "recommend",
        "quality",
        "well",
        "easy",
        "fast",
        "beautiful",
        "helpful",
        "works",
        "worth",
    ]
)
_NEGATIVE = frozenset(
    [
        "bad",
        "poor",
        "terrible",
        "hate",
        "hated",
        "worst",
        "awful",
        "broken",
        "disappointed",
        "cheap",
        "slow",
        "difficult",
        "problem",
        "problems",
        "waste",
        "return",
        "returned",
        "useless",
        "fails",
        "failed",
    ]
)


def words(text: str) -> list[str]:
    """Lower-case word and number tokens; a thousands-separated number is one token without its
    commas (``1,500`` → ``1500``)."""
    return [w.replace(",", "") for w in _WORD.findall(text.lower())]


def source_text(q: Query) -> str:
    """What a response is written from: the prompt (the conversation so far)."""
    return prompt_text(q.prompt)


def aspect_coverage(q: Query) -> float:
    """Share of the source's aspects (its content words and numbers) that the response mentions."""
    aspects = {
        w for w in words(source_text(q)) if w not in _STOP and (len(w) > 3 or w[0].isdigit())
    }
    if not aspects:
        return math.nan
    said = set(words(str(q.response)))
    return len(aspects & said) / len(aspects)


def _polarity(text: str) -> float:
    toks = words(text)
    pos = sum(t in _POSITIVE for t in toks)
    neg = sum(t in _NEGATIVE for t in toks)
    return 0.0 if pos + neg == 0 else (pos - neg) / (pos + neg)


def sentiment_faithfulness(q: Query) -> float:
    """``1 − |polarity(source) − polarity(response)| / 2`` with a small opinion lexicon
    (polarity = (pos − neg) / (pos + neg) ∈ [−1, 1], 0 without opinion words)."""
    return 1.0 - abs(_polarity(source_text(q)) - _polarity(str(q.response))) / 2.0


def redundancy(q: Query) -> float:
    """Share of the response's word trigrams that repeat an earlier one."""
    toks = words(str(q.response))
    grams = [tuple(toks[i : i + 3]) for i in range(len(toks) - 2)]
    return 0.0 if not grams else 1.0 - len(set(grams)) / len(grams)


def reference_text(q: Query) -> str | None:
    """The reference as text: a text, the first item of a list (several gold answers), or a
    number written out (``18``, ``18.0`` → ``"18"``); None without one. A list or a number used
    to count as no reference, silently giving ``length_fit`` and ``reference_steps`` weight 0."""
    ref = q.reference
    if isinstance(ref, list | tuple) and ref:
        ref = ref[0]
    if isinstance(ref, bool):
        return None
    if isinstance(ref, int) or (isinstance(ref, float) and math.isfinite(ref)):
        return str(int(ref)) if float(ref).is_integer() else repr(float(ref))
    return ref if isinstance(ref, str) and ref.strip() else None


def length_fit(q: Query) -> float:
    """``−|log((1 + n_response) / (1 + n_reference))|`` in words; NaN without a reference
    (:func:`reference_text`)."""
    ref_text = reference_text(q)
    if ref_text is None:
        return math.nan
    n_r, n_ref = len(words(str(q.response))), len(words(ref_text))
    return -abs(math.log((1 + n_r) / (1 + n_ref)))


#: ``[design]`` how many distinct numbers a response may write per reference number (plus a
#: fixed allowance) before :func:`reference_steps` scales its share down.
STEP_BUDGET = (2, 8)


def reference_steps(q: Query) -> float:
    """Share of the distinct numbers of a text reference (a worked solution's intermediate and
    final results) that the response also reaches; NaN without a reference
    (:func:`reference_text`) holding numbers.

    A response may write up to ``2·|ref| + 8`` distinct numbers; beyond that the share is scaled
    by ``budget / |numbers written|``, so listing every number ("0 1 2 … 999") cannot reach
    every step (it used to score 1.0, above a correct solution)."""
    ref_text = reference_text(q)
    if ref_text is None:
        return math.nan
    ref = {w for w in words(ref_text) if w[0].isdigit()}
    if not ref:
        return math.nan
    said = {w for w in words(str(q.response)) if w[0].isdigit()}
    per_step, allowance = STEP_BUDGET
    budget = per_step * len(ref) + allowance
    return len(ref & said) / len(ref) * min(1.0, budget / max(len(said), 1))


def arithmetic(q: Query) -> float:
    """Share of the response's arithmetic claims that hold, each side evaluated whole
    (``16 - 3 - 4 = 9``, ``80,000*1.5=120,000``; card A15, found and checked as card B11's
    ``rule:arithmetic`` does, to 1e-6 relative); NaN when it writes none."""
    return arithmetic_score(str(q.response), ARITHMETIC_REL_TOL)


#: Built-in feature functions (name → function of a query).
FEATURES: dict[str, Callable[[Query], float]] = {
    "coverage": aspect_coverage,
    "sentiment": sentiment_faithfulness,
    "redundancy": redundancy,
    "length_fit": length_fit,
    "arithmetic": arithmetic,
    "reference_steps": reference_steps,
}


def feature_matrix(
    queries: Sequence[Query], features: Mapping[str, Callable[[Query], float]]
) -> np.ndarray:
    """(n, d) raw feature values (NaN where a feature does not apply)."""
    return np.array([[float(f(q)) for f in features.values()] for q in queries], dtype=np.float64)


def standardise(raw: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(φ − μ) / σ`` with NaN (a feature that does not apply) as 0, the training mean."""
    z = (raw - mean) / np.where(std > 0, std, 1.0)
    return np.nan_to_num(z, nan=0.0)


class DomainReward(Reward):
    """``Σ_j w_j z_j`` over named features; components hold each ``w_j z_j``."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.COMPONENTS})

    def __init__(
        self,
        features: Mapping[str, Callable[[Query], float]],
        weights: Sequence[float],
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        if not (len(features) == len(weights) == len(mean) == len(std)):
            raise SpecError("domain reward: features, weights, mean and std differ in length")
        self.features = dict(features)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)

    def identity(self) -> dict[str, Any]:
        return {
            "class": "DomainReward",
            "features": list(self.features),
            "weights": [round(float(w), 8) for w in self.weights],
            "mean": [round(float(v), 8) for v in self.mean],
            "std": [round(float(v), 8) for v in self.std],
        }

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        z = standardise(feature_matrix(queries, self.features), self.mean, self.std)
        parts = z * self.weights
        comps = {name: parts[:, j] for j, name in enumerate(self.features)}
        return ScoreResult(parts.sum(axis=1), components=comps)

    def save(self, directory: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
        """Write ``domain.json`` (built-in feature names only; a custom function cannot be saved)."""
        custom = [n for n, f in self.features.items() if FEATURES.get(n) is not f]
        if custom:
            raise SpecError(f"domain reward: custom features {custom} cannot be saved by name")
        from rewardkit.outputs import atomic_text, check_dir_target, output_error

        for name in ("weights", "mean", "std"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise SpecError(f"domain reward: {name} are not all finite; refusing to save")
        out = check_dir_target(directory, "domain model directory")
        body = {k: v for k, v in self.identity().items() if k != "class"}
        text = json.dumps({**body, **(extra or {})}, indent=1, allow_nan=False)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise output_error("domain model directory", out, exc) from None
        with atomic_text(out / MODEL_FILE, what=MODEL_FILE) as fh:
            fh.write(text)
        return out


def load_domain(directory: str | Path) -> DomainReward:
    """A saved domain reward from ``directory``."""
    path = Path(directory).expanduser() / MODEL_FILE
    if not path.is_file():
        raise SpecError(f"{path.parent}: no {MODEL_FILE}; fit one with `rewardkit domain fit`")
    from rewardkit.data.readers import read_config_file

    meta = read_config_file(path, "domain model file")  # hostile JSON: a located error
    if not isinstance(meta, dict):
        raise SpecError(f"{path}: expected a JSON object written by `rewardkit domain fit`")
    names = meta.get("features")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise SpecError(f"{path}: field 'features' must be a non-empty list of feature names")
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise SpecError(f"{path}: unknown features {unknown}; known: {sorted(FEATURES)}")
    values = {}
    for key in ("weights", "mean", "std"):
        v = meta.get(key)
        ok = isinstance(v, list) and len(v) == len(names)
        ok = ok and all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in v
        )
        if not ok:
            raise SpecError(
                f"{path}: field {key!r} must be a list of {len(names)} finite numbers (one per "
                f"feature), got {_describe(v)}; refit with `rewardkit domain fit`"
            )
        values[key] = v
    feats = {n: FEATURES[n] for n in names}
    return DomainReward(feats, values["weights"], values["mean"], values["std"])


def _describe(value: Any) -> str:
    from rewardkit.data.location import describe

    if isinstance(value, list) and any(
        isinstance(x, float) and not math.isfinite(x) for x in value
    ):
        return "a list holding NaN or infinity"
    return describe(value)


def build(arg: str | None, **options: Any) -> DomainReward:
    """Registry factory for ``domain:DIR``."""
    if not arg:
        raise SpecError("domain reward needs a directory: domain:DIR (from `rewardkit domain fit`)")
    if options:
        refuse_options(options, "domain", [])
    return load_domain(arg)
