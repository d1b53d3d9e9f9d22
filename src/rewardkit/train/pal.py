"""Training PAL (docs/methods/A10-pal.md) on frozen features: the projector, prototypes and
per-user mixture logits jointly with Bradley–Terry on each user's comparisons; then few-shot
fitting of a new user with everything but that user's ``K`` logits frozen.

The loops run on feature tensors (``x`` rows, pair index tensors) so tests plant features
directly; :func:`train_pal` featurizes rewardkit examples (``meta["user"]`` names the user) with
the frozen MiniLM featurizer and writes a ``pal:DIR`` model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardkit.data.location import describe
from rewardkit.errors import DataError, SpecError
from rewardkit.outputs import atomic_json, exclusive
from rewardkit.rewards.pal import FORMS, META_FILE, PALHead, load_pal, read_meta, save_pal
from rewardkit.train.common import check_finite_loss
from rewardkit.train.finite import check_trained
from rewardkit.train.losses import bt_loss
from rewardkit.train.method_runs import check_settings, run_directory

#: How long a run waits for another run's short update of the same model directory.
LOCK_WAIT_S = 30.0


@dataclass
class PALConfig:
    """PAL training settings (defaults: the card's K = 2; a smaller ``d_pref`` than the paper's
    512 suits 768-d frozen MiniLM features and a few thousand pairs)."""

    form: str = "ideal"
    k: int = 2
    d_pref: int = 64
    steps: int = 400
    lr: float = 3e-3
    batch_size: int = 128
    weight_decay: float = 0.0
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise SpecError(f"PALConfig: form must be one of {FORMS}, got {self.form!r}")
        check_settings(
            self, "PALConfig", counts=("k", "d_pref", "steps", "batch_size"), rates=("lr",)
        )
        check_settings(self, "PALConfig", nonnegative=("weight_decay",))


@dataclass
class Pairs:
    """Preference pairs over feature rows: row indices of the chosen and rejected responses,
    and the user index of each pair."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    user: torch.Tensor

    def __len__(self) -> int:
        return int(self.chosen.numel())

    def take(self, idx: torch.Tensor | np.ndarray) -> Pairs:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Pairs(self.chosen[idx], self.rejected[idx], self.user[idx])


def fit_pal(
    x: torch.Tensor, pairs: Pairs, n_users: int, cfg: PALConfig
) -> tuple[PALHead, list[float]]:
    """Fit a :class:`PALHead` on feature rows ``x`` and ``pairs``; returns it and the loss per step."""
    from tqdm.auto import tqdm

    torch.manual_seed(cfg.seed)
    head = PALHead(x.shape[1], n_users, cfg.k, cfg.d_pref, cfg.form)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[float] = []
    order = torch.empty(0, dtype=torch.long)
    for step in tqdm(range(cfg.steps), desc="train PAL", disable=not cfg.progress):
        if order.numel() == 0:
            order = torch.randperm(len(pairs), generator=gen)
        idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
        b = pairs.take(idx)
        w = head.user_weights(b.user)
        loss = bt_loss(head.reward(x[b.chosen], w), head.reward(x[b.rejected], w))
        history.append(float(loss.detach()))
        check_finite_loss(history[-1], step + 1, "the PAL training loss")
        opt.zero_grad()
        loss.backward()
        opt.step()
    check_trained(head, "PAL")
    return head.eval(), history


def population_mixture(head: PALHead, pairs: Pairs, n_users: int) -> np.ndarray:
    """Pair-weighted mean of the training users' mixture weights (the fallback for new users)."""
    counts = torch.bincount(pairs.user, minlength=n_users).float()
    with torch.no_grad():
        w = torch.softmax(head.user_logits, dim=-1)
    return ((counts[:, None] * w).sum(0) / counts.sum()).numpy()


def fit_user(
    head: PALHead,
    x: torch.Tensor,
    pairs: Pairs,
    init: np.ndarray,
    steps: int = 200,
    lr: float = 0.1,
    prior: float = 0.01,
) -> np.ndarray:
    """Few-shot fit of one new user's logits ``θ`` (shared parts frozen): BT on the user's
    comparisons plus ``prior·‖θ − θ₀‖²`` toward ``θ₀ = log(init)`` (the population mixture)."""
    theta0 = torch.log(torch.as_tensor(init, dtype=torch.float32).clamp_min(1e-6))
    theta = theta0.clone().requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=lr)
    with torch.no_grad():
        fc, fr = head.proj(x[pairs.chosen]), head.proj(x[pairs.rejected])
    for step in range(steps if len(pairs) else 0):
        w = torch.softmax(theta, -1).expand(len(pairs), -1)
        loss = bt_loss(head.reward_projected(fc, w), head.reward_projected(fr, w))
        loss = loss + prior * ((theta - theta0) ** 2).sum()
        check_finite_loss(loss, step + 1, "the user's fitting loss")
        opt.zero_grad()
        loss.backward()
        opt.step()
    check_finite_loss(theta, what="the user's mixture logits")
    return theta.detach().numpy()


def accuracy(head: PALHead, x: torch.Tensor, pairs: Pairs, weights: torch.Tensor) -> np.ndarray:
    """Per-pair correctness (1.0 / 0.0; 0.5 on an exact tie) with mixture ``weights`` (n, K)."""
    with torch.no_grad():
        d = head.reward(x[pairs.chosen], weights) - head.reward(x[pairs.rejected], weights)
    return np.where(d.numpy() > 0, 1.0, np.where(d.numpy() < 0, 0.0, 0.5))


def record_line(example_id: str, where: str | None) -> int | None:
    """The line of a record whose id is the loader's default ``<file name>:<line>``, else None."""
    if where is None:
        return None
    head, _, tail = str(example_id).rpartition(":")
    return int(tail) if head == Path(where).name and tail.isdigit() else None


def user_name(ex: Any, where: str | None = None) -> str:
    """The ``user`` field of a PAL record as the user's id: text, or an integer read as its
    decimal text (``5`` is user ``"5"``, ``pal:DIR?user=5``); anything else is a DataError naming
    ``where`` (the data file), the record's line and the field (card A10)."""
    user = ex.meta.get("user")
    if isinstance(user, str) and user.strip():
        return user
    if isinstance(user, int) and not isinstance(user, bool):
        return str(user)
    what = (
        "PAL needs a 'user' field on every record"
        if user is None
        else (f"'user' must be a non-empty text or an integer, got {describe(user)}")
    )
    raise DataError(
        f"example {ex.id!r}: {what}", path=where, line=record_line(ex.id, where), field="user"
    )


def examples_to_pairs(
    examples: list[Any], where: str | None = None
) -> tuple[list[Any], Pairs, list[str]]:
    """Queries to featurize, the pairs over them, and the user names (:func:`user_name` of
    each record; ``where`` is the data file, named in errors)."""
    queries: list[Any] = []
    ch, rj, us = [], [], []
    users: dict[str, int] = {}
    for ex in examples:
        name = user_name(ex, where)
        if ex.is_tie:
            continue
        u = users.setdefault(name, len(users))
        base = len(queries)
        queries.extend(ex.queries())
        for c in ex.chosen:
            for r in ex.rejected:
                ch.append(base + c)
                rj.append(base + r)
                us.append(u)
    if not ch:
        raise DataError("PAL training data holds no strict preference pair")
    t = torch.tensor
    return queries, Pairs(t(ch), t(rj), t(us)), list(users)


def train_pal(
    examples: list[Any],
    output_dir: str | Path,
    cfg: PALConfig | None = None,
    encoder: str = "minilm",
    max_length: int = 256,
    where: str | None = None,
) -> dict[str, Any]:
    """Featurize ``examples`` with the frozen encoder, fit PAL, write ``pal:DIR``; returns the
    metadata written (training accuracy, final loss, users). ``where``: the data file, named in
    errors."""
    from rewardkit.engine.config import EngineConfig
    from rewardkit.rewards.default_rm import Featurizer

    cfg = cfg or PALConfig()
    queries, pairs, names = examples_to_pairs(examples, where)
    out = Path(output_dir)
    with run_directory(out, "PAL model"):  # a second run into it is refused
        feat = Featurizer(encoder, EngineConfig(max_length=max_length, progress=cfg.progress))
        x = torch.from_numpy(feat.features(queries))
        head, history = fit_pal(x, pairs, len(names), cfg)
        pop = population_mixture(head, pairs, len(names))
        check_finite_loss(pop, what="the PAL population mixture")
        acc = accuracy(head, x, pairs, head.user_weights(pairs.user).detach())
        meta = {
            "encoder": encoder,
            "encoder_identity": feat.encoder.identity(),
            "in_dim": int(x.shape[1]),
            "max_length": max_length,
            "form": cfg.form,
            "k": cfg.k,
            "d_pref": cfg.d_pref,
            "population": [float(v) for v in pop],
            "n_pairs": len(pairs),
            "train_accuracy": float(acc.mean()),
            "final_loss": float(np.mean(history[-max(1, len(history) // 10) :])),
            "config": asdict(cfg),
        }
        users = {n: head.user_logits[i].detach().tolist() for i, n in enumerate(names)}
        save_pal(out, head, meta, users)
        atomic_json(out / "loss_history.json", history)
    return {**meta, "users": sorted(users)}


def adapt_user(
    directory: str | Path,
    user: str,
    examples: list[Any],
    steps: int = 200,
    where: str | None = None,
) -> list[float]:
    """Fit a new (or refit a known) user of the PAL model in ``directory`` from a few
    comparisons (records without a ``user`` field count as theirs) and store the user's logits
    there; returns the user's mixture weights. ``where``: the data file, named in errors."""
    from rewardkit.engine.config import EngineConfig
    from rewardkit.rewards.default_rm import Featurizer

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise SpecError(f"adapt_user: steps must be an integer >= 1, got {steps!r}")
    head, meta = load_pal(directory)
    # records without a user count as this user's (copies: the caller's examples stay as given)
    own = [
        ex if ex.meta.get("user") is not None else replace(ex, meta={**ex.meta, "user": user})
        for ex in examples
    ]
    tagged = [ex for ex in own if user_name(ex, where) == str(user)]
    if not tagged:
        raise DataError(f"no comparison of user {user!r} in the data")
    queries, pairs, _ = examples_to_pairs(tagged, where)
    feat = Featurizer(meta.get("encoder", "minilm"), EngineConfig(max_length=meta["max_length"]))
    x = torch.from_numpy(feat.features(queries))
    theta = fit_user(head, x, pairs, np.asarray(meta["population"]), steps=steps)
    store_user(Path(directory).expanduser(), str(user), [float(v) for v in theta])
    e = np.exp(theta - theta.max())
    return [float(v) for v in e / e.sum()]


def store_user(directory: Path, user: str, logits: list[float]) -> None:
    """Set ``user``'s logits in ``pal.json``: read, change and rewrite (atomically) under the
    directory's lock, so two runs adapting users of one model at once both keep theirs."""
    path = directory / META_FILE
    with exclusive(directory, "PAL model", wait_s=LOCK_WAIT_S):
        meta = read_meta(path, {}, "rewardkit pal train")
        if not isinstance(meta.get("users"), dict):
            raise DataError("field 'users' must be an object of user id → logits", path=str(path))
        meta["users"][user] = logits
        atomic_json(path, meta, indent=1)


def split_by(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded (train, held-out) split of ``range(n)`` with ``ceil(fraction·n)`` held out."""
    perm = np.random.default_rng(seed).permutation(n)
    k = math.ceil(fraction * n)
    return np.sort(perm[k:]), np.sort(perm[:k])
