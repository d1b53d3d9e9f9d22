"""PAL: a pluralistic reward model over frozen features (``pal:DIR?user=ID``).

docs/methods/A10-pal.md — "PAL: Pluralistic Alignment Framework". Every user ``u`` has mixture
weights ``w_u = softmax(θ_u)`` over ``K`` shared prototypes; responses are embedded by a small
projector ``f = Proj(φ)`` over frozen MiniLM features ``φ`` (:class:`~rewardkit.rewards.default_rm.Featurizer`).

- ideal-point form: ``a_u = Σ_k w_uk p_k`` and ``r_u(x, y) = −‖f(x, y) − a_u‖₂`` (the closer to
  the user's ideal point, the better; BT on ``r_u`` is the paper's logistic loss on the distance
  difference);
- mixture form: ``K`` reward functions ``r_k(x, y) = v_kᵀ f(x, y)`` and ``r_u = Σ_k w_uk r_k``.

An unknown or absent user scores with the population mixture (the pair-weighted mean of the
training users' ``w_u``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rewardkit.engine.config import EngineConfig
from rewardkit.errors import SpecError
from rewardkit.filehash import sha256_file
from rewardkit.models.heads import refuse_nonfinite
from rewardkit.registry import refuse_options
from rewardkit.types import Query, Reward

FORMS = ("ideal", "mixture")
WEIGHTS_FILE = "pal.safetensors"
META_FILE = "pal.json"


def ideal_points(weights: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """``a = w · P``: (n, K) mixture weights times (K, d) prototypes → (n, d) ideal points."""
    return weights @ prototypes


def ideal_point_reward(f: torch.Tensor, ideal: torch.Tensor) -> torch.Tensor:
    """``r = −‖f − a‖₂`` row by row: (n, d) embeddings against (n, d) ideal points → (n,)."""
    return -torch.linalg.vector_norm(f - ideal, dim=-1)


def mixture_reward(per_prototype: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``r = Σ_k w_k r_k``: (n, K) per-prototype rewards under (n, K) weights → (n,)."""
    return (per_prototype * weights).sum(-1)


class PALHead(nn.Module):
    """Projector, ``K`` prototypes (ideal form) or reward vectors (mixture form), and one row
    of mixture logits per training user."""

    def __init__(
        self, in_dim: int, n_users: int, k: int = 2, d_pref: int = 64, form: str = "ideal"
    ) -> None:
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"PAL form must be one of {FORMS}, got {form!r}")
        if k < 1 or d_pref < 1 or n_users < 1:
            raise ValueError(f"PAL needs k, d_pref and n_users ≥ 1, got {k}, {d_pref}, {n_users}")
        self.form, self.k = form, k
        self.proj = nn.Sequential(nn.Linear(in_dim, d_pref), nn.GELU(), nn.Linear(d_pref, d_pref))
        self.prototypes = nn.Parameter(torch.randn(k, d_pref) * (1.0 if form == "ideal" else 0.1))
        self.user_logits = nn.Parameter(torch.randn(n_users, k) * 0.5)

    def user_weights(self, users: torch.Tensor) -> torch.Tensor:
        """``softmax(θ_u)`` of each row's user index → (n, K)."""
        return torch.softmax(self.user_logits[users], dim=-1)

    def reward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Rewards of feature rows ``x`` (n, in_dim) for users with mixture ``weights`` (n, K)."""
        return self.reward_projected(self.proj(x), weights)

    def reward_projected(self, f: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Rewards of already projected rows ``f`` (n, d_pref)."""
        if self.form == "ideal":
            return ideal_point_reward(f, ideal_points(weights, self.prototypes))
        return mixture_reward(f @ self.prototypes.T, weights)


def write_weights(path: Path, tensors: Mapping[str, torch.Tensor], what: str) -> None:
    """Write ``tensors`` as safetensors atomically: a killed or failed save leaves the file it
    replaces (or none), never a half-written one."""
    from safetensors.torch import save

    from rewardkit.outputs import atomic_file

    data = save({k: v.detach().contiguous() for k, v in tensors.items()})
    with atomic_file(path, binary=True, what=what) as fh:
        fh.write(data)


def write_meta(path: Path, meta: Mapping[str, Any]) -> None:
    """Write a model's JSON atomically as standard JSON (NaN/±inf as null)."""
    from rewardkit.outputs import atomic_text, finite_json

    text = json.dumps(finite_json(dict(meta)), indent=1, default=str, allow_nan=False)
    with atomic_text(path, what=path.name) as fh:
        fh.write(text)


def save_pal(
    directory: str | Path, head: PALHead, meta: Mapping[str, Any], users: Mapping[str, list[float]]
) -> Path:
    """Write ``pal.safetensors`` (shared parts) and ``pal.json`` (config, user logits,
    population), each atomically."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    shared = {k: v for k, v in head.state_dict().items() if k != "user_logits"}
    write_weights(out / WEIGHTS_FILE, shared, WEIGHTS_FILE)
    write_meta(out / META_FILE, {**meta, "users": dict(users)})
    return out


def read_meta(path: Path, fields: Mapping[str, type], command: str) -> dict[str, Any]:
    """The JSON object at ``path`` with each of ``fields`` present and of its type (int fields
    ≥ 1); SpecError naming the file and the field otherwise (a hand-edited or foreign file must
    not end in a KeyError traceback)."""
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SpecError(f"{path}: not valid JSON ({e}); write it with `{command}`") from None
    if not isinstance(meta, dict):
        raise SpecError(f"{path}: expected a JSON object written by `{command}`")
    for name, kind in fields.items():
        v = meta.get(name)
        ok = isinstance(v, kind) and not isinstance(v, bool)
        if not ok or (kind is int and v < 1):
            raise SpecError(
                f"{path}: field {name!r} must be {'an int ≥ 1' if kind is int else kind.__name__}"
                f"; got {v!r} (written by `{command}`)"
            )
    return meta


def load_state(
    module: nn.Module, weights: Path, extra: Mapping[str, torch.Tensor] | None = None
) -> None:
    """Load a safetensors state dict (plus ``extra`` entries) into ``module``; SpecError when it
    does not fit."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = {**load_file(str(weights)), **(extra or {})}
        module.load_state_dict(state)
    except (RuntimeError, OSError, ValueError, SafetensorError) as e:  # keys, sizes, bad file
        said = " ".join(str(e).split())[:400] or type(e).__name__
        raise SpecError(
            f"{weights}: weights do not fit the model its JSON describes: {said}"
        ) from None


def _check_mixtures(path: Path, meta: Mapping[str, Any], k: int) -> None:
    """Every user's logits and the population mixture must be k finite numbers."""
    users = meta.get("users")
    if not isinstance(users, dict):
        raise SpecError(f"{path}: field 'users' must be an object of user id → {k} logits")
    rows = {f"users[{u!r}]": v for u, v in users.items()}
    rows["population"] = meta.get("population")
    for name, v in rows.items():
        a = np.asarray(v if isinstance(v, list) else [], dtype=object)
        good = a.shape == (k,) and all(
            isinstance(x, int | float) and not isinstance(x, bool) and np.isfinite(x) for x in a
        )
        if not good:
            raise SpecError(f"{path}: {name} must be {k} finite numbers (k = {k}); got {v!r}")


def load_pal(directory: str | Path) -> tuple[PALHead, dict[str, Any]]:
    """A trained PAL head (without user rows) and its metadata from ``directory``."""
    d = Path(directory).expanduser()
    if not (d / META_FILE).is_file() or not (d / WEIGHTS_FILE).is_file():
        raise SpecError(
            f"{d}: not a PAL model ({META_FILE} and {WEIGHTS_FILE} missing); train one with "
            "`rewardkit pal train`"
        )
    fields = {"in_dim": int, "k": int, "d_pref": int, "max_length": int, "form": str}
    meta = read_meta(d / META_FILE, fields, "rewardkit pal train")
    if meta["form"] not in FORMS:
        raise SpecError(f"{d / META_FILE}: form must be one of {FORMS}; got {meta['form']!r}")
    _check_mixtures(d / META_FILE, meta, meta["k"])
    head = PALHead(meta["in_dim"], 1, meta["k"], meta["d_pref"], meta["form"])
    # user rows are not in the weights file (only the shared parts are)
    load_state(head, d / WEIGHTS_FILE, {"user_logits": head.user_logits.detach()})
    refuse_nonfinite(head, d / WEIGHTS_FILE, "rewardkit pal train")
    return head.eval(), meta


def user_mixture(meta: Mapping[str, Any], user: str | None) -> np.ndarray:
    """The mixture weights of ``user``, or the population mixture for None / an unseen user."""
    logits = meta["users"].get(str(user)) if user is not None else None
    if logits is None:
        return np.asarray(meta["population"], dtype=np.float32)
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max())
    return (e / e.sum()).astype(np.float32)


class PALReward(Reward):
    """Scores responses for one user (``user=ID``) or for the population (see module doc)."""

    def __init__(
        self, directory: str, user: str | None = None, config: EngineConfig | None = None
    ) -> None:
        from rewardkit.rewards.default_rm import Featurizer

        self.head, self.meta = load_pal(directory)
        self.user = None if user is None else str(user)
        self.known_user = self.user is not None and self.user in self.meta["users"]
        self.weights = torch.from_numpy(user_mixture(self.meta, self.user))
        cfg = config or EngineConfig()
        if cfg.max_length is None:
            cfg = EngineConfig(**{**cfg.__dict__, "max_length": int(self.meta["max_length"])})
        self.featurizer = Featurizer(self.meta.get("encoder", "minilm"), cfg)
        weights_file = Path(directory).expanduser() / WEIGHTS_FILE
        self._identity = {
            "class": "PALReward",
            "weights_sha": sha256_file(weights_file)[:32],
            "mixture": [round(float(w), 6) for w in self.weights],
            **self.featurizer.identity(),
        }

    def identity(self) -> dict[str, Any]:
        return self._identity

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        x = torch.from_numpy(self.featurizer.features(queries))
        with torch.no_grad():
            r = self.head.reward(x, self.weights.expand(x.shape[0], -1))
        return r.double().numpy()


def build(arg: str | None, **options: Any) -> PALReward:
    """Registry factory for ``pal:DIR`` (options: ``user=ID``, engine options)."""
    if not arg:
        raise SpecError("pal reward needs a model directory: pal:DIR (from `rewardkit pal train`)")
    user = options.pop("user", None)
    config = EngineConfig.from_options(options)
    if options:
        refuse_options(options, "pal", ["user"])
    return PALReward(arg, user, config)
