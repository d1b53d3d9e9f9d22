"""Confidence-weighted rewards: docs/methods/F7-confidence-weighted.md (PrefPaint's "trust the reward model less
where it is likely wrong", as a wrapper around any scalar reward).

``c(x) = exp(−scale · max(0, s(x) − offset))`` where the signal ``s`` is either the mean cosine
distance of the query's sentence embedding to its ``k`` nearest neighbours in the training data
(``source="knn"``) or the population std of an ensemble's members (``source="ensemble"``, the
``disagreement`` an :class:`~rewardkit.rewards.composite.ensemble.EnsembleReward` reports).
The value is ``c·r`` (``mode="multiply"``) or ``c·r + (1 − c)·baseline`` (``mode="shrink"``,
the mode for signed rewards: multiplying moves a score toward 0, which is "less trust" only
when 0 is the neutral value).

Spec (see ``docs/composition.md``)::

    {"confidence": "default", "reference": "train.jsonl", "k": 10, "scale": 1.0,
     "mode": "shrink", "baseline": 0.0}
    {"confidence": {"ensemble": [A, B, C]}, "source": "ensemble", "scale": 1.0}
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.content import content_text
from rewardkit.errors import DataError, SpecError
from rewardkit.registry import load_reward
from rewardkit.results import INHERITED_CAPABILITIES, failed_rows, failure_entries
from rewardkit.rewards.composite.members import finite_number
from rewardkit.types import Capability, Query, Reward, ScoreResult, prompt_text

DEFAULT_K = 10
DEFAULT_SCALE = 1.0
MODES = ("multiply", "shrink")
SOURCES = ("knn", "ensemble")
#: What text of a query is embedded: the last user turn and the response (default), the whole
#: plain-text prompt and the response, or the response alone.
TEXTS = ("turn", "full", "response")
#: Query rows (and reference rows) per block of the distance matrix: a block is at most
#: CHUNK × CHUNK float64 (8 MiB), whatever the sizes.
CHUNK = 1024


# ---- pure functions -----------------------------------------------------------------------------
def _unit_rows(x: Any, what: str) -> np.ndarray:
    """``x`` as an (n, d) float64 matrix of L2-normalised rows (a zero row stays zero)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] == 0:
        raise ValueError(f"{what} must be a (n, d) matrix or a (d,) vector; got shape {a.shape}")
    if not np.isfinite(a).all():
        row = int(np.flatnonzero(~np.isfinite(a).all(axis=1))[0])
        raise ValueError(f"{what} row {row} holds a non-finite value")
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norm > 0, norm, 1.0)


def knn_distance(emb: Any, ref_embs: Any, k: int, *, chunk: int = CHUNK) -> np.ndarray | float:
    """Mean cosine distance ``1 − cos`` from each row of ``emb`` to its ``k`` nearest rows of
    ``ref_embs`` (both L2-normalised first; a zero vector has cosine 0). Exact, computed in
    blocks of ``chunk`` × ``chunk`` so memory stays bounded. ``k`` past the number of references
    takes them all; duplicate references count once each. A (d,) ``emb`` gives a float, an
    (n, d) one an (n,) array. Distances lie in [0, 2]."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer ≥ 1; got {k!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be an integer ≥ 1; got {chunk!r}")
    single = np.ndim(emb) == 1
    q = _unit_rows(emb, "emb")
    r = _unit_rows(ref_embs, "ref_embs")
    if len(r) == 0:
        raise ValueError("ref_embs is empty: no reference to measure a distance to")
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"emb has dimension {q.shape[1]} but ref_embs has {r.shape[1]}")
    kk = min(int(k), len(r))
    out = np.empty(len(q), dtype=np.float64)
    for qs in range(0, len(q), chunk):
        block = q[qs : qs + chunk]
        best = np.empty((len(block), 0))
        for rs in range(0, len(r), chunk):
            d = 1.0 - block @ r[rs : rs + chunk].T
            cand = np.concatenate([best, d], axis=1)
            best = np.partition(cand, kk - 1, axis=1)[:, :kk] if cand.shape[1] > kk else cand
        # sorted before the mean: the same k values sum in the same order for any chunking
        out[qs : qs + chunk] = np.sort(np.clip(best, 0.0, 2.0), axis=1).mean(axis=1)
    return float(out[0]) if single else out


def check_scale(scale: Any, where: str = "confidence") -> float:
    """``scale`` as a finite float ≥ 0 (0: every confidence is 1)."""
    value = finite_number(scale, where, "scale")
    if value < 0:
        raise SpecError(
            f"{where}: scale must be ≥ 0 (a negative one trusts far points more); got {scale!r}"
        )
    return value


def confidence_weight(
    distances: Any, scale: float = DEFAULT_SCALE, offset: float = 0.0
) -> np.ndarray | float:
    """``c = exp(−scale · max(0, distance − offset))`` in (0, 1] (NaN stays NaN); a float for a
    scalar input. ``offset`` 0 is the card's formula; a distance at or under it is full trust."""
    s = check_scale(scale)
    d = np.asarray(distances, dtype=np.float64)
    c = np.exp(-s * np.maximum(d - offset, 0.0))
    return float(c) if c.ndim == 0 else c


def knn_confidence(
    emb: Any, train_embs: Any, k: int = DEFAULT_K, scale: float = DEFAULT_SCALE
) -> np.ndarray | float:
    """Card F7's signature: ``exp(−scale · mean kNN cosine distance)`` of ``emb`` to ``train_embs``."""
    return confidence_weight(knn_distance(emb, train_embs, k), scale)


def reference_offset(ref: np.ndarray, k: int, at_most: int = 2000) -> float:
    """The median leave-one-out kNN distance of the references to the others (``offset: auto``):
    the distance a typical in-distribution query has, so it gets c = 1. At most ``at_most``
    evenly spaced references are measured (each against all); a single reference gives 0."""
    if len(ref) < 2:
        return 0.0
    rows = np.unique(np.linspace(0, len(ref) - 1, min(at_most, len(ref))).astype(int))
    kk = min(k, len(ref) - 1)
    d = np.asarray(knn_distance(ref[rows], ref, kk + 1)) * (kk + 1) / kk  # itself at distance 0
    return float(np.median(d))


def apply_confidence(
    r: Any, c: Any, mode: str = "multiply", baseline: float | None = None
) -> np.ndarray:
    """``c·r`` (``multiply``) or ``c·r + (1 − c)·baseline`` (``shrink``); NaN in either is NaN."""
    r = np.asarray(r, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    if mode == "multiply":
        return c * r
    if mode == "shrink":
        if baseline is None:
            raise ValueError("mode 'shrink' needs a baseline")
        return c * r + (1.0 - c) * float(baseline)
    raise ValueError(f"mode must be one of {MODES}; got {mode!r}")


def confidence_text(query: Query, text: str = "turn") -> str:
    """The text of ``query`` that is embedded (:data:`TEXTS`): ``turn`` = the last user turn, a
    blank line, the response; ``full`` = the plain-text prompt (:func:`prompt_text`), a blank
    line, the response; ``response`` = the response alone. Images read as ``<image>``."""
    response = content_text(query.response)
    if text == "response":
        return response
    if text == "full":
        head = prompt_text(query.prompt)
    else:
        users = [m for m in query.prompt if m["role"] == "user"]
        head = content_text(users[-1]["content"]) if users else prompt_text(query.prompt)
    return f"{head}\n\n{response}" if head.strip() else response


# ---- the reference set --------------------------------------------------------------------------
def _reference_path(reference: str | Path, base_dir: str | Path | None) -> Path | str:
    """A reference file next to the spec file first, then in the working directory; ``sample``
    and ``hf:NAME`` pass on to :func:`rewardkit.data.load`."""
    text = str(reference).strip()
    if not text:
        raise SpecError("confidence: reference is empty; give a data file or a .npy of embeddings")
    if isinstance(reference, str) and (text == "sample" or text.startswith("hf:")):
        return text
    path = Path(text).expanduser()
    near = Path(base_dir) / path if base_dir is not None and not path.is_absolute() else path
    for found in (near, path):
        if found.exists():
            return found
    where = f" (looked in {base_dir} and the working directory)" if base_dir else ""
    raise SpecError(f"confidence: reference file {text!r} not found{where}")


def read_npy(path: Path) -> np.ndarray:
    """A ``.npy`` of reference embeddings: (n, d) floating point, finite, no pickles."""
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SpecError(
            f"confidence: reference {path} is not a plain .npy array of embeddings ({exc})"
        ) from None
    if not isinstance(a, np.ndarray):  # an .npz archive
        raise SpecError(f"confidence: reference {path} holds several arrays; give one (n, d) .npy")
    if a.dtype.kind != "f":
        raise SpecError(
            f"confidence: reference {path} has dtype {a.dtype}; expected float embeddings"
        )
    if a.ndim != 2:
        raise SpecError(f"confidence: reference {path} has shape {a.shape}; expected (n, d)")
    return check_reference(a, str(path))


def check_reference(a: Any, where: str) -> np.ndarray:
    """Reference embeddings as float64: at least one row, all finite, none zero."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise SpecError(f"confidence: reference {where} has shape {a.shape}; expected (n, d)")
    if len(a) == 0:
        raise SpecError(
            f"confidence: reference {where} is empty (shape {a.shape}): nothing to trust"
        )
    bad = np.flatnonzero(~np.isfinite(a).all(axis=1) | (np.abs(a).sum(axis=1) == 0))
    if len(bad):
        raise SpecError(
            f"confidence: reference {where} row {int(bad[0])} is not a usable embedding "
            f"(non-finite or all zero; {len(bad)} such rows)"
        )
    return a


def reference_texts(path: Path | str, text: str = "turn") -> list[str]:
    """The distinct texts of a preference file's queries: every response (chosen and rejected)
    with its prompt, as :func:`confidence_text` renders them. A malformed record is a
    :class:`SpecError` naming its file and line."""
    from rewardkit.data import load

    try:
        examples = load(path)
    except DataError as exc:
        raise SpecError(f"confidence: reference {exc}") from None
    texts = [confidence_text(q, text) for ex in examples for q in ex.queries()]
    return list(dict.fromkeys(t for t in texts if t.strip()))


# ---- the reward ---------------------------------------------------------------------------------
class ConfidenceReward(Reward):
    """``r(x)`` of an inner reward weighted by a confidence ``c(x)`` (docs/methods/F7-confidence-weighted.md).

    ``source="knn"``: ``c = exp(−scale · mean cosine distance to the k nearest reference
    embeddings)``; ``reference`` is a data file (:func:`rewardkit.data.load`) whose queries are
    embedded, a ``.npy`` of embeddings, or an (n, d) array; ``encoder`` the sentence encoder
    (a spec ARG of ``similarity:``, default ``minilm``). ``source="ensemble"``: ``c =
    exp(−scale · std)`` of the inner ensemble's members (its ``disagreement``). ``score_full``
    returns ``confidence``, ``inner`` and ``distance`` or ``disagreement`` as ``components``.
    """

    capabilities = frozenset({Capability.COMPONENTS})

    def __init__(
        self,
        inner: Reward,
        *,
        reference: str | Path | np.ndarray | None = None,
        source: str = "knn",
        k: int | None = None,
        scale: float = DEFAULT_SCALE,
        mode: str = "multiply",
        baseline: float | None = None,
        text: str | None = None,
        encoder: str | Reward | None = None,
        offset: float | str | None = None,
        name: str | None = None,
        engine_defaults: Mapping[str, Any] | None = None,
        base_dir: str | Path | None = None,
    ) -> None:
        if source not in SOURCES:
            raise SpecError(f"confidence: unknown source {source!r}; expected one of {SOURCES}")
        if mode not in MODES:
            raise SpecError(f"confidence: unknown mode {mode!r}; expected one of {MODES}")
        if inner.objectives:
            raise SpecError(
                f"confidence: {inner.name!r} returns {len(inner.objectives)} objectives; weight a "
                "scalar reward (pick one objective in an ensemble member first)"
            )
        self.inner, self.source, self.mode = inner, source, mode
        self.scale = check_scale(scale)
        if mode == "shrink" and baseline is None:
            raise SpecError("confidence: mode 'shrink' needs baseline= (the neutral score)")
        if mode == "multiply" and baseline is not None:
            raise SpecError("confidence: baseline= applies to mode 'shrink' only")
        self.baseline = (
            None if baseline is None else finite_number(baseline, "confidence", "baseline")
        )
        self.uses_meta = inner.uses_meta
        self.encoder: Any = None
        self.reference: np.ndarray | None = None
        self.offset = 0.0
        if source == "ensemble":
            self._init_ensemble(reference, k, text, encoder)
            if offset is not None:
                self.offset = _check_offset(offset, allow_auto=False)
            self.k, self.text = None, None
        else:
            self.k = _check_k(DEFAULT_K if k is None else k)
            self.text = "turn" if text is None else text
            if self.text not in TEXTS:
                raise SpecError(f"confidence: unknown text {self.text!r}; expected one of {TEXTS}")
            auto = _check_offset("auto" if offset is None else offset, allow_auto=True)
            self._init_knn(reference, encoder, engine_defaults, base_dir)
            assert self.reference is not None
            self.offset = reference_offset(self.reference, self.k) if auto == "auto" else auto
        self.name = name or self._default_name(offset, encoder)

    def _init_ensemble(self, reference: Any, k: Any, text: Any, encoder: Any) -> None:
        from rewardkit.rewards.composite.ensemble import EnsembleReward

        named = (("reference", reference), ("k", k), ("text", text), ("encoder", encoder))
        given = [n for n, v in named if v is not None]
        if given:
            raise SpecError(f"confidence: {given} apply to source 'knn' only, not 'ensemble'")
        if not isinstance(self.inner, EnsembleReward):
            raise SpecError(
                f"confidence: source 'ensemble' reads the members' disagreement of an ensemble; "
                f"{self.inner.name!r} is not one (write {{'confidence': {{'ensemble': [...]}}}})"
            )
        if len(self.inner.members) < 2:
            raise SpecError(
                "confidence: source 'ensemble' needs at least 2 members (1 never disagrees)"
            )

    def _init_knn(
        self,
        reference: Any,
        encoder: Any,
        engine_defaults: Mapping[str, Any] | None,
        base_dir: str | Path | None,
    ) -> None:
        if reference is None:
            raise SpecError(
                "confidence: source 'knn' needs reference= (the reward model's training data as a "
                "data file, or a .npy of its embeddings), or use source='ensemble'"
            )
        texts: list[str] | None = None  # checked (and read) before the encoder is loaded
        if isinstance(reference, np.ndarray):
            self.reference = check_reference(reference, "array")
        else:
            path = _reference_path(reference, base_dir)
            if isinstance(path, Path) and path.suffix.lower() == ".npy":
                self.reference = read_npy(path)
            else:
                texts = reference_texts(path, self.text)
                if not texts:
                    raise SpecError(f"confidence: reference {path} holds no responses to embed")
        if isinstance(encoder, Reward):
            self.encoder = encoder
        else:
            spec = {"type": "similarity", "model": encoder or "minilm"}
            self.encoder = load_reward(spec, engine_defaults=engine_defaults, base_dir=base_dir)
        from rewardkit.rewards.similarity import EmbeddingSimilarityReward

        if not isinstance(self.encoder, EmbeddingSimilarityReward):
            raise SpecError(f"confidence: encoder {self.encoder.name!r} embeds no texts")
        if texts is not None:
            self.reference = check_reference(self.encoder.embed(texts), str(path))
        dim = int(self.encoder.model.config.hidden_size)
        if self.reference.shape[1] != dim:
            raise SpecError(
                f"confidence: reference embeddings have dimension {self.reference.shape[1]}; the "
                f"encoder gives {dim}"
            )
        # the reference's fingerprint: its embeddings as float32 bytes
        ref32 = np.ascontiguousarray(self.reference, dtype=np.float32)
        self._reference_digest = hashlib.sha256(ref32.tobytes()).hexdigest()[:32]

    def _default_name(self, offset: Any, encoder: Any) -> str:
        """Every setting that changes the value and is not its default (two members of an
        ensemble that differ only in ``text`` or ``offset`` would otherwise share a name)."""
        how = f"{self.source}, scale={self.scale:g}, {self.mode}"
        if self.k is not None:
            how += f", k={self.k}"
        if self.baseline is not None:
            how += f", baseline={self.baseline:g}"
        if self.text not in (None, "turn"):
            how += f", text={self.text}"
        if offset is not None and offset != "auto":
            how += f", offset={self.offset:g}"
        if self.encoder is not None and encoder not in (None, "minilm"):
            how += f", encoder={getattr(encoder, 'name', encoder)}"
        return f"confidence[{how}]({self.inner.name})"

    # ---- Reward interface -----------------------------------------------------------------
    def can(self, cap: Capability) -> bool:
        """COMPONENTS; MODEL_BACKED with an encoder or when the inner reward runs a model;
        BATCH_RELATIVE from the inner reward; IMAGES only with ``source="ensemble"`` (the kNN
        source embeds text)."""
        if cap is Capability.MODEL_BACKED and self.encoder is not None:
            return True
        if cap is Capability.IMAGES and self.source == "knn":
            return False
        if cap in INHERITED_CAPABILITIES:
            return self.inner.can(cap)
        return super().can(cap)

    def engine_variant(self, **changes: Any) -> ConfidenceReward:
        twin = copy.copy(self)
        twin.inner = self.inner.engine_variant(**changes)
        if self.encoder is not None:
            twin.encoder = self.encoder.engine_variant(**changes)
        return twin

    def identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {
            "class": "ConfidenceReward",
            "inner": self.inner.fingerprint(),
            "source": self.source,
            "scale": self.scale,
            "mode": self.mode,
            "baseline": self.baseline,
            "offset": self.offset,
        }
        if self.source == "knn":
            ident.update(
                k=self.k,
                text=self.text,
                encoder=self.encoder.fingerprint(),
                reference=self._reference_digest,
            )
        return ident

    def signal(
        self, queries: Sequence[Query], inner: ScoreResult
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """The distance (``knn``) or disagreement (``ensemble``) per query, with the encoder's stats."""
        if self.source == "ensemble":
            return np.asarray(inner.components["disagreement"], dtype=np.float64), {}
        texts = [confidence_text(q, self.text) for q in queries]
        distinct = list(dict.fromkeys(texts))
        run = self.encoder.embed_run(distinct)
        d = knn_distance(np.asarray(run.values, dtype=np.float64), self.reference, self.k)
        where = {t: i for i, t in enumerate(distinct)}
        return np.asarray(d)[[where[t] for t in texts]], {"encoder": dict(run.stats)}

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        res = self.inner.score_full(queries)
        r = np.asarray(res.scores, dtype=np.float64)
        s, extra = self.signal(queries, res)
        c = confidence_weight(s, self.scale, self.offset)
        values = apply_confidence(r, c, self.mode, self.baseline)
        stats: dict[str, Any] = {"queries": len(queries), "source": self.source, **extra}
        if res.stats:
            stats["inner"] = dict(res.stats)
        errors = failed_rows(res.stats, r)
        if errors:  # an inner failure stays a failure, never a "does not apply"
            lost = {i for i in errors if math.isnan(r[i])}
            stats.update(failed=len(errors), errors=failure_entries(errors, lost, values))
        signal_name = "distance" if self.source == "knn" else "disagreement"
        return ScoreResult(
            values,
            components={"confidence": c, "inner": r, signal_name: s},
            truncated=res.truncated,
            stats=stats,
        )


def _check_offset(offset: Any, allow_auto: bool) -> float | str:
    """``offset`` as a finite float ≥ 0, or ``"auto"`` where the references can measure it."""
    if offset == "auto":
        if allow_auto:
            return "auto"
        raise SpecError("confidence: offset 'auto' is for source knn; ensemble takes a number ≥ 0")
    value = finite_number(offset, "confidence", "offset")
    if value < 0:
        raise SpecError(
            f"confidence: offset must be ≥ 0 (or 'auto' with source knn); got {offset!r}"
        )
    return value


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise SpecError(f"confidence: k must be an integer ≥ 1; got {k!r}")
    return int(k)


def build(arg: str | None, *, members: Any = None, **options: Any) -> ConfidenceReward:
    """Registry factory for ``{"confidence": SPEC, "reference": PATH, ...}``; ``options`` are
    :class:`ConfidenceReward`'s keywords (``reference``, ``source``, ``k``, ``scale``, ``mode``,
    ``baseline``, ``text``, ``encoder``, ``offset``, ``name``, ``engine_defaults``, ``base_dir``)."""
    if arg is not None:
        raise SpecError(
            f"'confidence:{arg}': a confidence reward is built from a dict or a YAML/JSON file, "
            'e.g. {"confidence": "default", "reference": "train.jsonl", "k": 10}'
        )
    if members is None or isinstance(members, (list, tuple)):
        raise SpecError(
            "a confidence spec weights one reward: {'confidence': SPEC, 'reference': PATH} "
            "(several rewards: {'confidence': {'ensemble': [...]}, 'source': 'ensemble'})"
        )
    engine_defaults = options.get("engine_defaults")
    base_dir = options.get("base_dir")
    if isinstance(members, Reward):
        inner = members
    else:
        try:
            inner = load_reward(members, engine_defaults=engine_defaults, base_dir=base_dir)
        except SpecError as exc:
            if type(exc) is not SpecError:
                raise
            raise SpecError(f"confidence inner reward: {exc}") from exc
    return ConfidenceReward(inner, **options)
