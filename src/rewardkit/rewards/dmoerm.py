"""DMoERM: a double-layer mixture-of-experts reward model (``dmoerm:DIR``).

docs/methods/A5-dmoerm.md — "DMoERM: Recipes of Mixture-of-Experts for Effective Reward
Modeling". The outer, sparse layer routes each query to its task category; the inner, dense layer
runs every capability expert of that category and the category's aggregator reads their last
hidden states: ``r = W₂ · PReLU(W₁ [h_1; …; h_C])``.

Routing, in order: ``query.meta[key]`` (default key ``category``) when it is present — a
category without experts then goes to the model's default category, else NaN; without the field,
the model's router (a MiniLM prompt classifier from ``rewardkit dmoerm route``) when it has one;
then the default category; else NaN ("does not apply"). Experts load once, shared between
categories; each is refused at load when its files changed since ``rewardkit dmoerm fit``.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
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
from rewardkit.rewards.default_rm import prompt_feature_text
from rewardkit.rewards.pal import load_state, read_meta, write_meta, write_weights
from rewardkit.types import Capability, Query, Reward, ScoreResult

META_FILE = "dmoerm.json"
WEIGHTS_FILE = "dmoerm.safetensors"
#: The ``meta`` field (data column) a query's task category is read from by default.
DEFAULT_KEY = "category"
ROUTER_META = "router.json"
ROUTER_WEIGHTS = "router.safetensors"
FIT = "rewardkit dmoerm fit"
ROUTE = "rewardkit dmoerm route"


# -- the aggregator ---------------------------------------------------------------------------
def aggregator(in_dim: int, inner: int) -> Any:
    """The phase-3 head ``W₂ · PReLU(W₁ h)`` (W₁: C·d → inner, one PReLU slope, W₂: inner → 1),
    as ``innermoe/modeling.py`` builds it; an ``nn.Sequential`` (state keys ``0.*``, ``1.*``,
    ``2.*``)."""
    return nn.Sequential(nn.Linear(in_dim, inner), nn.PReLU(), nn.Linear(inner, 1))


def moe_aggregate(head: Any, expert_hidden: Any) -> Any:
    """``r = W₂ · PReLU(W₁ [h_1; …; h_C])`` of (C, d) or (n, C, d) expert hidden states → a
    scalar tensor or (n,)."""
    h = expert_hidden
    flat = h.reshape(*h.shape[:-2], h.shape[-2] * h.shape[-1])
    return head(flat)[..., 0]


# -- experts ----------------------------------------------------------------------------------
def expert_path(path: str | Path) -> Path:
    """An expert directory as an absolute path; SpecError when it is not a directory."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise SpecError(
            f"expert {str(path)!r}: no such model directory (train one with `rewardkit train`)"
        )
    return p.resolve()


def expert_identity(path: str | Path) -> dict[str, Any]:
    """What identifies an expert's files (weights and config hashes; a LoRA folder's base too):
    stored at fit time, so a changed expert is refused at load."""
    from rewardkit.models.loading import resolve_model

    ident = dict(resolve_model(str(expert_path(path))).identity)
    ident.pop("model", None)  # the path itself is stored beside it
    return ident


def hidden_reader(adapter: Any, where: str) -> tuple[Any, Any]:
    """(read, head): ``read(hidden, batch)`` → (b, H), the vector the expert's value head reads,
    and that head (a module on it). SpecError for a family whose readout is not a linear head on
    one hidden state."""
    from rewardkit.engine.adapter import gather_rows, last_token_index, text_config
    from rewardkit.models.heads import SequenceClassifierAdapter, ValueHeadAdapter

    if isinstance(adapter, ValueHeadAdapter):
        return (lambda h, b: gather_rows(h, last_token_index(b.attention_mask))), adapter.head
    if isinstance(adapter, SequenceClassifierAdapter) and adapter.backbone() is not None:
        m = adapter.model
        if adapter.model_type == "bert":
            return (lambda h, b: m.bert.pooler(h)), m.classifier

        def read(h: Any, b: Any) -> Any:  # the position SequenceClassifierAdapter.head_logits reads
            import torch

            pad = text_config(m.config).pad_token_id
            if not adapter.own_pad or pad is None:
                return gather_rows(h, last_token_index(b.attention_mask))
            non_pad = (b.input_ids != pad).to(h.device, torch.int32)
            pos = torch.arange(b.input_ids.shape[-1], device=h.device, dtype=torch.int32)
            return gather_rows(h, (pos * non_pad).argmax(-1))

        return read, m.score
    raise SpecError(
        f"expert {where}: its family ({type(adapter).__name__}) has no value head on a hidden "
        "state to read; DMoERM experts are sequence classifiers or value-head models"
    )


class Expert:
    """One capability expert (a scalar rewardkit model directory) run through the engine for
    its last hidden state: batched under the token budget, de-duplicated, in any layout the
    model runs (the readout is the one its value head uses)."""

    def __init__(self, path: str | Path, config: Any = None) -> None:
        from rewardkit.engine.adapter import ModelAdapter, text_config
        from rewardkit.engine.runner import Engine
        from rewardkit.rewards.classifier import ClassifierReward

        self.path = str(expert_path(path))
        self.reward = ClassifierReward(self.path, config)
        inner = self.reward.adapter
        read, self.head = hidden_reader(inner, self.path)

        class HiddenState(ModelAdapter):
            layouts, causal = inner.layouts, inner.causal
            pad_token_id = inner.pad_token_id

            def backbone(self) -> Any:
                return inner.backbone()

            def forward(self, batch: Any) -> Any:
                return read(inner.last_hidden(batch), batch)

        self.engine = Engine(
            HiddenState(), self.reward.config, self.reward.device, f"expert {Path(self.path).name}"
        )
        self.dim = int(text_config(self.reward.loaded.config).hidden_size)

    def features(self, queries: Sequence[Any]) -> np.ndarray:
        """(n, d) float32 hidden states of ``queries``."""
        if not queries:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [q.key() for q in queries]
        run = self.engine.run(list(queries), keys, self.reward.encode_items)
        return run.values.astype(np.float32)

    def own_scores(self, h: np.ndarray) -> np.ndarray:
        """The expert's own reward (its value head, first output) on hidden states ``h``."""
        import torch

        w = next(self.head.parameters())
        with torch.no_grad():
            out = self.head(torch.from_numpy(h).to(w.device, w.dtype))
        return out.reshape(out.shape[0], -1)[:, 0].double().cpu().numpy()


def open_experts(
    paths: Sequence[str], config: Any = None, have: dict[str, Expert] | None = None
) -> list[Expert]:
    """Experts of ``paths`` (one model per directory, shared through ``have``)."""
    have = {} if have is None else have
    out = []
    for p in paths:
        key = str(expert_path(p))
        if key not in have:
            have[key] = Expert(key, config)
        out.append(have[key])
    return out


def category_features(experts: Sequence[Expert], queries: Sequence[Any]) -> np.ndarray:
    """``[h_1; …; h_C]`` of each query: (n, Σ d_i) float32."""
    return np.concatenate([e.features(queries) for e in experts], axis=1)


# -- the router -------------------------------------------------------------------------------
def router_identity(directory: str | Path) -> dict[str, Any]:
    """Hashes of a router's two files (a retrained router is detected at load)."""
    d = Path(directory).expanduser()
    if not (d / ROUTER_META).is_file() or not (d / ROUTER_WEIGHTS).is_file():
        raise SpecError(
            f"{d}: not a DMoERM router ({ROUTER_META}, {ROUTER_WEIGHTS}); train one with `{ROUTE}`"
        )
    return {"router_sha": sha256_file(d / ROUTER_META, d / ROUTER_WEIGHTS)[:32]}


class Router:
    """A linear softmax classifier of task categories over frozen MiniLM embeddings of the
    prompt's last user turn (the paper's router is a fine-tuned LM; card A5)."""

    def __init__(self, directory: str | Path, config: EngineConfig | None = None) -> None:
        from rewardkit.rewards.similarity import EmbeddingSimilarityReward

        d = Path(directory).expanduser()
        router_identity(d)
        self.meta = read_meta(d / ROUTER_META, {"dim": int, "max_length": int}, ROUTE)
        cats = self.meta.get("categories")
        ok = isinstance(cats, list) and all(isinstance(c, str) and c.strip() for c in cats)
        if not ok or len(set(cats)) < 2 or len(set(cats)) != len(cats):
            raise SpecError(
                f"{d / ROUTER_META}: 'categories' must list two or more distinct names ({ROUTE})"
            )
        encoder = self.meta.get("encoder", "minilm")
        if not isinstance(encoder, str) or not encoder.strip():
            raise SpecError(f"{d / ROUTER_META}: 'encoder' must name a sentence encoder ({ROUTE})")
        self.categories: list[str] = cats
        self.head = nn.Linear(self.meta["dim"], len(cats))
        load_state(self.head, d / ROUTER_WEIGHTS)
        refuse_nonfinite(self.head, d / ROUTER_WEIGHTS, ROUTE)
        # the length it was trained at, whatever the experts' engine reads
        cfg = replace(config or EngineConfig(), max_length=int(self.meta["max_length"]))
        self.encoder = EmbeddingSimilarityReward(encoder, cfg, pooling="mean")

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(n, K) category probabilities of prompt texts."""
        if not texts:
            return np.zeros((0, len(self.categories)))
        x = torch.from_numpy(self.encoder.embed(list(texts)).astype(np.float32))
        with torch.no_grad():
            return torch.softmax(self.head(x), dim=-1).double().numpy()

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable category of each prompt text."""
        return [self.categories[int(i)] for i in self.probabilities(texts).argmax(axis=1)]


class Routing:
    """The outer layer: a category (or None) for each query (module docstring for the order)."""

    def __init__(
        self,
        categories: Sequence[str],
        key: str = DEFAULT_KEY,
        default: str | None = None,
        router: str | Path | None = None,
        config: EngineConfig | None = None,
    ) -> None:
        self.categories = set(categories)
        self.key, self.default = key, default
        self.router = Router(router, config) if router is not None else None

    def routes(
        self, queries: Sequence[Query], metas: Sequence[Mapping[str, Any]] | None = None
    ) -> list[str | None]:
        """The category of each query; ``metas`` (default each query's ``meta``) hold the field."""
        metas = [q.meta for q in queries] if metas is None else metas
        out: list[str | None] = []
        ask: list[int] = []
        for i, m in enumerate(metas):
            named = m.get(self.key)
            if named is None or (isinstance(named, str) and not named.strip()):
                out.append(None)
                ask.append(i)
            else:
                out.append(str(named) if str(named) in self.categories else self.default)
        if self.router is not None and ask:
            guessed = self.router.predict([prompt_feature_text(queries[i]) for i in ask])
            for i, c in zip(ask, guessed, strict=True):
                out[i] = c if c in self.categories else self.default
        else:
            for i in ask:
                out[i] = self.default
        return out


def _shown_category(value: Any, key: str) -> str:
    """A category value as a summary names it (``<no KEY>`` when the row has none)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return f"<no {key}>"
    return str(value)


# -- the model directory ----------------------------------------------------------------------
def save_dmoerm(
    directory: str | Path, heads: Mapping[str, nn.Module], meta: dict[str, Any]
) -> Path:
    """``dmoerm.safetensors`` (every category's head, keys ``<index>.<name>``) and
    ``dmoerm.json`` (categories in index order), each written atomically."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for i, (cat, head) in enumerate(heads.items()):
        meta["categories"][cat]["index"] = i
        tensors.update({f"{i}.{k}": v for k, v in head.state_dict().items()})
    write_weights(out / WEIGHTS_FILE, tensors, WEIGHTS_FILE)
    meta["weights_sha256"] = file_digest(out / WEIGHTS_FILE)
    write_meta(out / META_FILE, meta)
    return out


def file_digest(path: Path) -> str:
    """sha256 of a file (32 hex digits): ties ``dmoerm.json`` to the weights of its own fit."""
    return sha256_file(path)[:32]


def _count(v: Any, least: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= least


def _category_entry(path: Path, cat: Any, entry: Any) -> None:
    ok = isinstance(cat, str) and isinstance(entry, dict)
    ok = ok and all(_count(entry.get(k), 1) for k in ("in_dim", "inner"))
    ok = ok and _count(entry.get("index"), 0) and isinstance(entry.get("experts"), list)
    ok = (
        ok
        and bool(entry["experts"])
        and all(isinstance(e, dict) and isinstance(e.get("path"), str) for e in entry["experts"])
    )
    if not ok:
        raise SpecError(
            f"{path}: category {cat!r} must hold in_dim, inner, index and experts [{{path, identity, dim}}] ({FIT})"
        )


def _check_layout(path: Path, meta: Mapping[str, Any]) -> None:
    """SpecError unless every category entry is well formed, their indices are distinct and a
    router entry is ``{path, identity}`` (a hand-edited or foreign JSON, named)."""
    for cat, entry in meta["categories"].items():
        _category_entry(path, cat, entry)
    indices = [e["index"] for e in meta["categories"].values()]
    if len(set(indices)) != len(indices):
        raise SpecError(f"{path}: two categories share a weights index {sorted(indices)} ({FIT})")
    router = meta.get("router")
    if router is not None and not (
        isinstance(router, dict)
        and isinstance(router.get("path"), str)
        and isinstance(router.get("identity"), dict)
    ):
        raise SpecError(f"{path}: 'router' must be null or {{path, identity}} ({FIT})")


def check_expert_files(meta: Mapping[str, Any]) -> None:
    """SpecError when an expert directory or the router changed (or went) since the fit."""
    seen: dict[str, dict[str, Any]] = {}
    for cat, entry in meta["categories"].items():
        for e in entry["experts"]:
            now = seen.get(e["path"]) or seen.setdefault(e["path"], expert_identity(e["path"]))
            if now != e.get("identity"):
                raise SpecError(
                    f"expert {e['path']} of category {cat!r} changed since `{FIT}` (its weights, "
                    "config or tokenizer differ): refit the aggregator on the experts as they are"
                )
    router = meta.get("router")
    if router is not None and router_identity(router["path"]) != router.get("identity"):
        raise SpecError(f"router {router['path']} changed since `{FIT}`: refit the aggregator")


def load_dmoerm(directory: str | Path) -> tuple[dict[str, nn.Module], dict[str, Any]]:
    """Each category's aggregator and the model's metadata; experts and router checked."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(directory).expanduser()
    missing = [f for f in (META_FILE, WEIGHTS_FILE) if not (d / f).is_file()]
    if missing:
        raise SpecError(
            f"{d}: not a DMoERM model ({' and '.join(missing)} missing); fit one with `{FIT}`"
        )
    meta = read_meta(d / META_FILE, {"key": str, "categories": dict}, FIT)
    if not meta["categories"] or meta.get("default") not in (None, *meta["categories"]):
        raise SpecError(
            f"{d / META_FILE}: no categories, or a default that is none of them ({FIT})"
        )
    _check_layout(d / META_FILE, meta)
    sha = meta.get("weights_sha256")
    if sha is not None and sha != file_digest(d / WEIGHTS_FILE):
        raise SpecError(
            f"{d}: {WEIGHTS_FILE} is not the one {META_FILE} was written with (an interrupted "
            f"or mixed fit); fit again with `{FIT}`"
        )
    check_expert_files(meta)
    try:
        state = load_file(str(d / WEIGHTS_FILE))
    except (OSError, SafetensorError) as e:
        raise SpecError(f"{d / WEIGHTS_FILE}: unreadable weights ({e})") from None
    heads = {}
    for cat, entry in meta["categories"].items():
        head = aggregator(entry["in_dim"], entry["inner"])
        prefix = f"{entry['index']}."
        part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            head.load_state_dict(part)
        except RuntimeError as e:
            said = " ".join(str(e).split())[:300]
            raise SpecError(
                f"{d / WEIGHTS_FILE}: category {cat!r} does not fit its JSON: {said}"
            ) from None
        refuse_nonfinite(head, d / WEIGHTS_FILE, FIT)
        heads[cat] = head.eval()
    return heads, meta


class DMoERMReward(Reward):
    """Route, run the category's experts, aggregate (module docstring)."""

    uses_meta = True
    capabilities = frozenset({Capability.MODEL_BACKED})

    def __init__(
        self, directory: str, config: EngineConfig | None = None, key: str | None = None
    ) -> None:
        self.heads, self.meta = load_dmoerm(directory)
        self.config = config or EngineConfig()
        self.key = key or self.meta["key"]
        router = self.meta.get("router")
        self.routing = Routing(
            list(self.heads),
            self.key,
            self.meta.get("default"),
            router and router["path"],
            self.config,
        )
        pool: dict[str, Expert] = {}
        self.experts = {
            c: open_experts([e["path"] for e in entry["experts"]], self.config, pool)
            for c, entry in self.meta["categories"].items()
        }
        for cat, entry in self.meta["categories"].items():
            dims = [e.dim for e in self.experts[cat]]
            if sum(dims) != entry["in_dim"]:
                raise SpecError(
                    f"{directory}: category {cat!r}: experts' hidden sizes {dims} do not add up to in_dim {entry['in_dim']}"
                )
        self._identity = {
            "class": "DMoERMReward",
            "weights_sha": file_digest(Path(directory).expanduser() / WEIGHTS_FILE),
            "key": self.key,
            "default": self.meta.get("default"),
            "router": router and router["identity"],
            "experts": {
                c: [e["identity"] for e in v["experts"]] for c, v in self.meta["categories"].items()
            },
            "engine": {"dtype": self.config.dtype, "truncation": self.config.truncation},
        }

    def identity(self) -> dict[str, Any]:
        return self._identity

    def route(self, query: Query | str) -> str | None:
        """The category a query (or a prompt text, which carries no category field) is scored
        in; None: no route, its score is NaN."""
        if isinstance(query, str):
            query = Query(prompt=[{"role": "user", "content": query}], response="")
        return self.routing.routes([query])[0]

    def engine_variant(self, **changes: Any) -> DMoERMReward:
        """A twin whose experts run under engine settings ``changes`` (models shared)."""
        twin = copy.copy(self)
        twin.config = replace(self.config, **changes)
        pool: dict[int, Expert] = {}
        for e in {id(e): e for es in self.experts.values() for e in es}.values():
            pool[id(e)] = copy.copy(e)
            pool[id(e)].engine = e.engine.__class__(
                e.engine.adapter, twin.config, e.engine.device, e.engine.name
            )
        twin.experts = {c: [pool[id(e)] for e in es] for c, es in self.experts.items()}
        return twin

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        out = np.full(len(queries), np.nan)
        cats = self.routing.routes(queries)
        routed: dict[str, int] = {}
        for cat in self.heads:
            idx = [i for i, c in enumerate(cats) if c == cat]
            if not idx:
                continue
            x = category_features(self.experts[cat], [queries[i] for i in idx])
            with torch.no_grad():
                out[idx] = self.heads[cat](torch.from_numpy(x))[:, 0].double().numpy()
            routed[cat] = len(idx)
        missing = Counter(
            _shown_category(q.meta.get(self.key), self.key)
            for q, c in zip(queries, cats, strict=True)
            if c is None
        )
        stats: dict[str, Any] = {"routed": routed}
        if missing:  # NaN, "does not apply": which category values had no expert, per value
            stats["unrouted"] = dict(missing)
        return ScoreResult(out, stats=stats)


def build(arg: str | None, **options: Any) -> DMoERMReward:
    """Registry factory for ``dmoerm:DIR`` (options: ``key=`` the meta field naming the
    category, engine options)."""
    if not arg:
        raise SpecError(f"dmoerm reward needs a model directory: dmoerm:DIR (from `{FIT}`)")
    key = options.pop("key", None)
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise SpecError(f"dmoerm key= names a meta field (text), got {key!r}")
    config = EngineConfig.from_options(options)
    if options:
        refuse_options(options, "dmoerm", ["key"])
    return DMoERMReward(arg, config, key)
