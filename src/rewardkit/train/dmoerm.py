"""DMoERM training (docs/methods/A5-dmoerm.md): phase 3, the aggregator
``r = W₂ · PReLU(W₁ [h_1; …; h_C])`` (:func:`moe_aggregate`) fitted with Bradley–Terry over the
frozen capability experts' last hidden states (computed once through the engine; the steps then
run on feature tensors), and the outer router (a MiniLM prompt classifier).

An expert is any scalar rewardkit model directory (``rewardkit train``, with or without LoRA, on
one capability's preference labels); its hidden state is the vector its own value head reads
(a decoder's last token, BERT's pooled [CLS]): :class:`~rewardkit.rewards.dmoerm.Expert`. The
aggregator module and the experts live in :mod:`rewardkit.rewards.dmoerm`, which scores with them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rewardkit.errors import DataError, SpecError
from rewardkit.rewards.dmoerm import (
    DEFAULT_KEY,
    META_FILE,
    WEIGHTS_FILE,
    Expert,
    aggregator,
    category_features,
    expert_identity,
    expert_path,
    moe_aggregate,
    open_experts,
)
from rewardkit.train.method_runs import check_settings

__all__ = ["DMoERMConfig", "fit_aggregator", "moe_aggregate", "train_router"]


@dataclass
class DMoERMConfig:
    """Phase-3 settings. The paper's lr 1e-6 is for a 1.8B model trained end to end in its
    pipeline; a fresh head on frozen features takes Adam at 1e-3 (docs/methods/A5-dmoerm.md)."""

    inner: int | None = None  # W₁'s output width (None: d, the experts' hidden size)
    steps: int = 300
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    eval_fraction: float = 0.0  # pairs held out (seeded) for the reported eval accuracies
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        check_settings(self, "DMoERMConfig", counts=("steps", "batch_size"), rates=("lr",))
        check_settings(self, "DMoERMConfig", nonnegative=("weight_decay", "eval_fraction"))
        if self.inner is not None:
            check_settings(self, "DMoERMConfig", counts=("inner",))
        if not self.eval_fraction < 1:
            raise SpecError(
                f"DMoERMConfig: eval_fraction must be in [0, 1), got {self.eval_fraction}"
            )


# -- phase 3 ----------------------------------------------------------------------------------
def fit_head(fc: Any, fr: Any, inner: int, cfg: DMoERMConfig) -> tuple[Any, list[float]]:
    """Fit the aggregator on chosen/rejected features (n, C·d) with BT; returns it (eval mode)
    and the loss per step."""
    import torch
    from tqdm.auto import tqdm

    from rewardkit.train.common import check_finite_loss
    from rewardkit.train.finite import check_trained
    from rewardkit.train.losses import bt_loss

    torch.manual_seed(cfg.seed)
    head = aggregator(fc.shape[1], inner)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    hist: list[float] = []
    for step in tqdm(range(cfg.steps), desc="fit DMoERM aggregator", disable=not cfg.progress):
        idx = torch.randint(0, len(fc), (min(cfg.batch_size, len(fc)),), generator=gen)
        loss = bt_loss(head(fc[idx])[:, 0], head(fr[idx])[:, 0])
        hist.append(float(loss.detach()))
        check_finite_loss(hist[-1], step + 1, "the DMoERM aggregator loss")
        opt.zero_grad()
        loss.backward()
        opt.step()
    check_trained(head, "DMoERM aggregator")
    return head.eval(), hist


def pair_accuracy(diff: np.ndarray) -> float | None:
    """Share of pairs with chosen above rejected (½ per exact tie); None without pairs."""
    d = np.asarray(diff, dtype=np.float64)
    return float(np.where(d > 0, 1.0, np.where(d < 0, 0.0, 0.5)).mean()) if d.size else None


def example_pairs(
    examples: Sequence[Any],
) -> tuple[list[Any], list[int], list[int], list[str]]:
    """Queries of ``examples`` (each response once), the (chosen, rejected) row indices and each
    pair's prompt group (:func:`~rewardkit.train.pairs.group_key`, for the hold-out)."""
    from rewardkit.train.pairs import group_key

    queries: list[Any] = []
    ch: list[int] = []
    rj: list[int] = []
    groups: list[str] = []
    for ex in examples:
        if ex.is_tie:
            continue
        base, key = len(queries), group_key(ex)
        queries.extend(ex.queries())
        for c in ex.chosen:
            for r in ex.rejected:
                ch.append(base + c)
                rj.append(base + r)
                groups.append(key)
    return queries, ch, rj, groups


def check_experts(
    experts: Mapping[str, Sequence[str | Path]], default: str | None
) -> dict[str, list[str]]:
    """Category → expert directories (absolute), checked: non-blank text categories, at least
    one expert each, ``default`` one of them."""
    if not isinstance(experts, Mapping) or not experts:
        raise SpecError("DMoERM needs at least one category with experts (--expert CATEGORY=DIR)")
    out: dict[str, list[str]] = {}
    for cat, paths in experts.items():
        if not isinstance(cat, str) or not cat.strip():
            raise SpecError(f"DMoERM category names are non-blank text, got {cat!r}")
        if isinstance(paths, str | Path) or not paths:
            raise SpecError(f"category {cat!r}: give a list of one or more expert directories")
        out[cat] = [str(expert_path(p)) for p in paths]
        twice = [p for i, p in enumerate(out[cat]) if p in out[cat][:i]]
        if twice:
            raise SpecError(
                f"category {cat!r}: expert {twice[0]} is given twice; give each expert once"
            )
    if default is not None and default not in out:
        raise SpecError(f"default category {default!r} has no experts; categories: {sorted(out)}")
    return out


#: Files a model directory of another kind holds: writing there would change its weights' hash
#: (an expert scored by a DMoERM model would be refused as "changed") or mix two models.
MODEL_FILES = ("config.json", "adapter_config.json")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")


def check_out_dir(out: Path, own: Sequence[str], inputs: Sequence[str | Path] = ()) -> None:
    """SpecError when ``out`` is one of the run's ``inputs`` (expert or router directories) or
    holds another model (a config or weights not among the run's ``own`` files): each DMoERM
    model and router gets its own directory."""
    if not out.is_dir():
        return
    target = out.resolve()
    for d in inputs:
        if Path(d).expanduser().resolve() == target:
            raise SpecError(f"--out {out} is an input of this run ({d}); write to a new directory")
    foreign = sorted(
        f.name
        for f in out.iterdir()
        if f.name not in own
        and f.is_file()
        and (f.name in MODEL_FILES or f.suffix in WEIGHT_SUFFIXES)
    )
    if foreign:
        raise SpecError(
            f"--out {out} holds another model ({', '.join(foreign[:3])}); writing there would "
            "change it: give a new or empty directory"
        )


def split_pairs(groups: Sequence[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded (train, held-out) split of the pairs, by whole prompts as ``rewardkit train``
    holds out (:func:`~rewardkit.train.common.holdout_indices`): the pairs of one prompt (a
    multi-response example, a prompt asked twice) land on one side, so the held-out accuracy is
    on unseen prompts. None is held out when ``fraction`` is 0 or the pairs share one prompt."""
    from rewardkit.train.common import holdout_indices

    n = len(groups)
    if fraction <= 0 or len(set(groups)) < 2:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    held = np.asarray(holdout_indices(groups, fraction, seed, where="dmoerm"), dtype=np.int64)
    return np.setdiff1d(np.arange(n), held), held


def fit_category(
    experts: list[Expert], examples: Sequence[Any], cfg: DMoERMConfig
) -> tuple[Any, dict[str, Any], list[float]]:
    """Phase 3 for one category: features once, the head fitted, train/eval accuracies of it
    and of each expert's own value head."""
    import torch

    queries, ch, rj, groups = example_pairs(examples)
    if not ch:
        raise DataError("no strict preference pair (ties only)")
    x = category_features(experts, queries)
    train, held = split_pairs(groups, cfg.eval_fraction, cfg.seed)
    c, r = np.asarray(ch), np.asarray(rj)
    xt = torch.from_numpy(x)
    inner = cfg.inner or max(1, x.shape[1] // len(experts))
    head, hist = fit_head(xt[c[train]], xt[r[train]], inner, cfg)
    with torch.no_grad():
        rew = head(xt)[:, 0].double().numpy()
    info: dict[str, Any] = {
        "in_dim": int(x.shape[1]),
        "inner": inner,
        "n_pairs": len(ch),
        "n_eval_pairs": len(held),
        "train_accuracy": pair_accuracy(rew[c[train]] - rew[r[train]]),
        "eval_accuracy": pair_accuracy(rew[c[held]] - rew[r[held]]),
        "final_loss": float(np.mean(hist[-max(1, len(hist) // 10) :])),
        "expert_accuracy": {},
    }
    start = 0
    for e in experts:
        own = e.own_scores(x[:, start : start + e.dim])
        start += e.dim
        info["expert_accuracy"][e.path] = {
            "train": pair_accuracy(own[c[train]] - own[r[train]]),
            "eval": pair_accuracy(own[c[held]] - own[r[held]]),
        }
    return head, info, hist


def fit_aggregator(
    examples: Sequence[Any],
    experts: Mapping[str, Sequence[str | Path]],
    output_dir: str | Path,
    cfg: DMoERMConfig | None = None,
    key: str = DEFAULT_KEY,
    default: str | None = None,
    router: str | Path | None = None,
    engine: Any = None,
) -> dict[str, Any]:
    """Fit one aggregator per category on preference ``examples`` with the experts frozen and
    write ``dmoerm:DIR``; returns the metadata written. Each example goes to the category its
    ``meta[key]`` names, else the ``router``'s (a ``rewardkit dmoerm route`` directory), else
    ``default`` (with one category, that one); an example left without a category is an error.
    ``engine``: the experts' :class:`~rewardkit.engine.config.EngineConfig`."""
    from rewardkit.engine.config import EngineConfig
    from rewardkit.outputs import atomic_json
    from rewardkit.rewards.dmoerm import Routing, router_identity, save_dmoerm
    from rewardkit.train.method_runs import run_directory

    cfg = cfg or DMoERMConfig()
    engine = engine or EngineConfig(progress=cfg.progress)
    if not isinstance(key, str) or not key.strip():
        raise SpecError(f"the category field (--category-column) must be a name, got {key!r}")
    table = check_experts(experts, default)
    out = Path(output_dir).expanduser()
    own = (META_FILE, WEIGHTS_FILE, "loss_history.json")
    inputs = [p for ps in table.values() for p in ps] + ([router] if router else [])
    check_out_dir(out, own, inputs)
    if default is None and len(table) == 1:
        default = next(iter(table))
    exs = [ex for ex in examples if ex.responses]
    if not exs:
        raise DataError("no preference example with responses to fit the aggregator on")
    routing = Routing(list(table), key, default, router, engine)
    if routing.router is not None and not set(routing.router.categories) & set(table):
        raise SpecError(
            f"router {router} routes to {routing.router.categories}, none of which has experts "
            f"({sorted(table)}); name the experts' categories as the router does"
        )
    cats = routing.routes([ex.queries()[0] for ex in exs], [ex.meta for ex in exs])
    lost = [ex.id for ex, c in zip(exs, cats, strict=True) if c is None]
    if lost:
        raise DataError(
            f"{len(lost)} examples have no category (first {lost[0]!r}): give each a {key!r} "
            f"field naming one of {sorted(table)}, a --router, or a --default category"
        )
    groups: dict[str, list[Any]] = {c: [] for c in table}
    for ex, c in zip(exs, cats, strict=True):
        groups[str(c)].append(ex)
    pool: dict[str, Expert] = {}
    heads, infos, hists = {}, {}, {}
    with run_directory(out, "DMoERM model"):
        for cat, paths in table.items():
            if not groups[cat]:
                raise DataError(f"category {cat!r}: no training example routed to it")
            ex_list = open_experts(paths, engine, pool)
            try:
                heads[cat], info, hists[cat] = fit_category(ex_list, groups[cat], cfg)
            except DataError as e:
                raise DataError(f"category {cat!r}: {e}") from None
            experts_meta = [
                {"path": e.path, "identity": expert_identity(e.path), "dim": e.dim} for e in ex_list
            ]
            infos[cat] = {"experts": experts_meta, **info}
        meta = {
            "key": key,
            "default": default,
            "router": None
            if router is None
            else {
                "path": str(Path(router).expanduser().resolve()),
                "identity": router_identity(router),
            },
            "categories": infos,
            "config": asdict(cfg),
        }
        save_dmoerm(out, heads, meta)
        atomic_json(out / "loss_history.json", hists)
    return meta


# -- the outer router -------------------------------------------------------------------------
def _prompt_text(value: Any) -> str | None:
    """A record's prompt as text: a text, or the last user turn of a list of messages."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, list):
        turns = [m.get("content") for m in value if isinstance(m, dict) and m.get("role") == "user"]
        return turns[-1] if turns and isinstance(turns[-1], str) and turns[-1].strip() else None
    return None


def read_router_records(
    path: str | Path, key: str = DEFAULT_KEY, prompt_field: str = "prompt"
) -> tuple[list[str], list[str]]:
    """(prompt texts, categories) of a data file (JSONL, JSON, CSV, Parquet) whose records hold
    a prompt (text or messages) and a category name; every problem names the file, line and
    field."""
    from rewardkit.data.readers import iter_file

    p = Path(path)
    if not p.is_file():
        what = "a directory; give one data file" if p.is_dir() else "no such file"
        raise DataError(what, path=str(p))
    texts, cats = [], []
    for loc, rec in iter_file(p, p.name):
        if isinstance(rec, DataError):
            raise rec
        cat = rec.get(key)
        if not isinstance(cat, str) or not cat.strip():
            raise loc.error("expected a category name (non-blank text)", field=key)
        text = _prompt_text(rec.get(prompt_field))
        if text is None:
            raise loc.error(
                "expected a prompt: non-blank text or messages with a user turn", field=prompt_field
            )
        texts.append(text)
        cats.append(cat)
    if len(set(cats)) < 2:
        raise DataError(
            f"a router needs records of two or more categories, got {sorted(set(cats))}",
            path=str(p),
        )
    return texts, cats


def train_router(
    texts: Sequence[str],
    categories: Sequence[str],
    output_dir: str | Path,
    steps: int = 300,
    lr: float = 1e-2,
    seed: int = 0,
    max_length: int = 256,
    encoder: str = "minilm",
) -> dict[str, Any]:
    """The outer layer: a linear softmax classifier of categories over frozen MiniLM prompt
    embeddings (cross-entropy, full batch, Adam), written as a router directory; returns its
    metadata (categories, training accuracy)."""
    import torch

    from rewardkit.engine.config import EngineConfig
    from rewardkit.rewards.dmoerm import ROUTER_META, ROUTER_WEIGHTS
    from rewardkit.rewards.pal import write_meta, write_weights
    from rewardkit.rewards.similarity import EmbeddingSimilarityReward
    from rewardkit.train.common import check_finite_loss
    from rewardkit.train.method_runs import run_directory

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise SpecError(f"train_router: steps must be an integer >= 1, got {steps!r}")
    names = sorted(set(categories))
    if len(names) < 2 or len(texts) != len(categories):
        raise DataError("a router needs as many prompts as categories, of two or more categories")
    out = Path(output_dir).expanduser()
    check_out_dir(out, (ROUTER_META, ROUTER_WEIGHTS))
    with run_directory(out, "DMoERM router"):
        enc = EmbeddingSimilarityReward(
            encoder, EngineConfig(max_length=max_length, progress=False), pooling="mean"
        )
        x = torch.from_numpy(enc.embed(list(texts)).astype(np.float32))
        y = torch.tensor([names.index(c) for c in categories])
        torch.manual_seed(seed)
        head = torch.nn.Linear(x.shape[1], len(names))
        opt = torch.optim.Adam(head.parameters(), lr=lr)
        for step in range(steps):
            loss = torch.nn.functional.cross_entropy(head(x), y)
            check_finite_loss(float(loss.detach()), step + 1, "the router loss")
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = float((head(x).argmax(-1) == y).float().mean())
        meta = {
            "categories": names,
            "encoder": encoder,
            "dim": int(x.shape[1]),
            "max_length": max_length,
            "n": len(texts),
            "train_accuracy": acc,
            "final_loss": float(loss.detach()),
        }
        write_weights(out / ROUTER_WEIGHTS, head.state_dict(), ROUTER_WEIGHTS)
        write_meta(out / ROUTER_META, meta)
    return meta
