"""One registry builds every reward from a spec: ``load_reward("classifier:PATH")``.

Spec grammar (see ``docs/reward-specs.md``)::

    spec    := KIND [":" ARG] ["?" OPTION ("&" OPTION)*]
    OPTION  := NAME "=" VALUE          (VALUE parsed as int, float, true/false, or text)

or a dict ``{"type": KIND, "arg": ARG, **options}`` (``model``/``path`` are accepted as the ARG
key), or a path to a ``.yaml``/``.yml``/``.json`` file holding such a dict.

Composite kinds (``ensemble``, ``weighted``; see ``docs/composition.md``) are built from other
specs: ``{"ensemble": [SPEC, ...], "aggregate": "mean_minus_std"}`` is short for
``{"type": "ensemble", "members": [SPEC, ...], ...}``. Their factories also receive the
``engine_defaults`` (for their members) and ``base_dir`` (the directory of the spec file, against
which relative file members are resolved).

Factories are named as ``"module:function"`` strings and imported only when a spec of their kind
is built, so ``import rewardkit`` never imports torch.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.errors import SpecError
from rewardkit.types import Reward


@dataclass(frozen=True)
class RewardKind:
    """A registered kind of reward."""

    kind: str
    factory: str  # "module:function"; called as function(arg, **options) -> Reward
    description: str
    card: str | None = None  # method card (docs/methods/), e.g. "B3 — Generative yes-token reward"
    arg_help: str | None = None  # what ARG means, e.g. "PATH_OR_ID"
    uses_engine: bool = False  # takes the scoring engine's options (token_budget, dtype, ...)
    #: Built from other specs (``{KIND: members, ...}``); arg_help then shows the dict form.
    composite: bool = False


_KINDS: dict[str, RewardKind] = {}
#: Builds run one at a time: the same model loaded by parallel threads (verl's reward loop builds
#: from its worker threads) came out scoring wrong. Re-entrant: composites build their members.
_BUILD = threading.RLock()


def register(
    kind: str,
    factory: str,
    description: str,
    card: str | None = None,
    arg_help: str | None = None,
    uses_engine: bool = False,
    composite: bool = False,
) -> None:
    """Register a kind of reward under ``kind`` (``factory`` is imported lazily).

    A ``composite`` kind is built from member specs: a dict ``{kind: MEMBERS, **options}`` reaches
    its factory as ``factory(None, members=MEMBERS, engine_defaults=..., base_dir=..., **options)``.
    """
    _KINDS[kind] = RewardKind(kind, factory, description, card, arg_help, uses_engine, composite)


def kinds() -> list[RewardKind]:
    """Every registered kind, sorted by name."""
    return [_KINDS[k] for k in sorted(_KINDS)]


def _parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, str | None, dict[str, Any]]:
    """Split a string spec into (kind, arg, options)."""
    spec = spec.strip()
    if not spec:
        raise SpecError("empty reward spec; expected KIND[:ARG], e.g. 'rule:length'")
    head, _, query = spec.partition("?")
    kind, sep, arg = head.partition(":")
    options: dict[str, Any] = {}
    if query:
        for part in query.split("&"):
            if not part:
                continue
            name, eq, value = part.partition("=")
            if not eq or not name:
                raise SpecError(f"reward spec {spec!r}: option {part!r} is not NAME=VALUE")
            if name.strip() in options:
                raise SpecError(f"reward spec {spec!r}: option {name.strip()!r} is given twice")
            options[name.strip()] = _parse_value(value.strip())
    return kind.strip(), (arg.strip() if sep else None), options


def _from_mapping(spec: Mapping[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    options = dict(spec)
    kind = options.pop("type", None) or options.pop("kind", None)
    shorthand = [k for k, entry in _KINDS.items() if entry.composite and k in options]
    if len(shorthand) > 1:
        raise SpecError(
            f"reward spec {dict(spec)!r} names several composite kinds ({', '.join(shorthand)}); "
            "nest one inside the other instead"
        )
    if shorthand:
        key = shorthand[0]
        if kind and kind != key:
            raise SpecError(f"reward spec {dict(spec)!r}: 'type' is {kind!r} but it holds {key!r}")
        if "members" in options:
            raise SpecError(
                f"reward spec {dict(spec)!r}: give the members once, as {key!r} or as 'members'"
            )
        kind = key
        options["members"] = options.pop(key)
    if not kind:
        raise SpecError(
            f"reward spec {dict(spec)!r} has no 'type' (nor a composite key such as 'ensemble')"
        )
    entry = _KINDS.get(str(kind))
    if entry is not None and entry.composite:
        return str(kind), None, options  # 'name' is a display name here, not an ARG
    arg = None
    for key in ("arg", "model", "path", "name"):
        if key in options:
            arg = options.pop(key)
            break
    return str(kind), (None if arg is None else str(arg)), options


def _spec_file(spec: str | Mapping[str, Any] | Path, base_dir: str | Path | None) -> Path | None:
    """The file a spec names, if it names one (relative paths: ``base_dir`` first, then cwd)."""
    if isinstance(spec, Path):
        path = spec
    elif isinstance(spec, str) and spec.strip().endswith((".yaml", ".yml", ".json")):
        path = Path(spec.strip())
    else:
        return None
    if base_dir is not None and not path.is_absolute() and (Path(base_dir) / path).is_file():
        return Path(base_dir) / path
    if isinstance(spec, Path) or path.is_file():
        return path
    if ":" not in spec:  # no KIND: prefix, so it can only be a file name
        where = f" (looked in {base_dir} and the working directory)" if base_dir else ""
        raise SpecError(f"reward spec file {spec.strip()!r} not found{where}")
    return None


def load_reward(
    spec: str | Mapping[str, Any] | Path,
    *,
    engine_defaults: Mapping[str, Any] | None = None,
    base_dir: str | Path | None = None,
    **overrides: Any,
) -> Reward:
    """Build a reward from a spec string, a dict, or a YAML/JSON file.

    ``overrides`` win over the spec's options. ``engine_defaults`` (e.g. ``{"dtype": "bf16",
    "cache_dir": ...}`` from the command line) apply to model-backed kinds only, and only where
    the spec does not set the option itself; composite kinds pass them on to their members.
    ``base_dir`` is where a relative spec-file path is looked up first (composite specs set it to
    the directory of the file that names it).
    """
    path = _spec_file(spec, base_dir)
    if path is not None:
        from rewardkit.data.readers import read_config_file

        loaded = read_config_file(path, "reward spec file")
        if not isinstance(loaded, Mapping):
            raise SpecError(f"{path}: a reward spec file must hold a mapping with a 'type'")
        kind, arg, options = _from_mapping(loaded)
        label = str(path)
        base_dir = path.parent
    elif isinstance(spec, Mapping):
        kind, arg, options = _from_mapping(spec)
        label = kind + (f":{arg}" if arg else "")
    else:
        kind, arg, options = parse_spec(str(spec))
        label = str(spec)
    entry = _KINDS.get(kind)
    if entry is None:
        known = ", ".join(sorted(_KINDS))
        hint = ""
        if label.lstrip().startswith(("{", "[")):
            hint = " (a dict spec is written in a YAML or JSON file, whose path is the spec)"
        raise SpecError(
            f"unknown reward kind {kind!r} in spec {label!r}{hint}; known kinds: {known}"
        )
    if entry.uses_engine and engine_defaults:
        options = {**{k: v for k, v in engine_defaults.items() if v is not None}, **options}
    options.update(overrides)
    if entry.composite:
        options = {"engine_defaults": engine_defaults, "base_dir": base_dir, **options}
    factory = _import_factory(entry.factory)
    try:
        with _BUILD:
            reward = factory(arg, **options)
    except TypeError as exc:
        raise SpecError(f"reward spec {label!r}: {exc}") from exc
    named = entry.composite and options.get("name") is not None
    if not (named or (entry.composite and isinstance(spec, Mapping) and path is None)):
        reward.name = label  # an inline composite, or one given a name, keeps its own name
    return reward


def _import_factory(target: str) -> Callable[..., Reward]:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


# Built-in kinds. Each factory lives in the module that implements the reward.
register(
    "classifier",
    "rewardkit.rewards.classifier:build",
    "Sequence-classification reward model (any AutoModelForSequenceClassification); "
    "uses the model's chat template when it has one.",
    card="A1 — Bradley–Terry reward model (scoring side)",
    arg_help="PATH_OR_ID (a local directory, a Hub id, or 'smollm2'/'minilm' for the embedded models); options reduce=weighted|gating, weights=, trust_remote_code=",
    uses_engine=True,
)
register(
    "default",
    "rewardkit.rewards.default_rm:build",
    "The shipped default reward model: embedded all-MiniLM-L6-v2 (frozen) with a small trained "
    "head (BT on HH-RLHF helpful-base, MIT); works offline.",
    card="A1 — Bradley–Terry reward model; A14 — two-layer reward head",
    arg_help="(none) for the shipped head, or DIR of a head trained with freeze_backbone: true",
    uses_engine=True,
)
register(
    "judge",
    "rewardkit.rewards.judges.build:judge",
    "Generative pointwise judge: P(Yes) vs P(No) as the next token after a fixed judging prompt.",
    card="B3 — Generative yes-token reward (RewardDance)",
    arg_help="'default' (embedded SmolLM2-135M-Instruct), PATH_OR_ID of a causal LM, or openai://HOST:PORT/v1?model=NAME (an OpenAI-compatible endpoint; docs/judges.md)",
    uses_engine=True,
)
register(
    "rule",
    "rewardkit.rewards.rules:build",
    "Rule rewards without a model (NaN where a rule does not apply, never 0).",
    card=None,
    arg_help="NAME",
)
register(
    "ensemble",
    "rewardkit.rewards.composite.ensemble:build",
    "Ensemble of any rewards (nested specs): each member scored once, then aggregated "
    "NaN-aware; per-member scores and disagreement are kept.",
    card="C5 — Reward-model ensembles (Helping or Herding?)",
    arg_help='{"ensemble": [SPEC, ...], "aggregate": NAME, "lam": 1.0}',
    composite=True,
)
register(
    "weighted",
    "rewardkit.rewards.composite.ensemble:build_weighted",
    "Weighted sum of rewards, e.g. a rule plus a model (NaN members dropped, the other "
    "weights rescaled to the same total).",
    card="C10 — Hybrid rule + model rewards (Beyond Monolithic Rewards)",
    arg_help='{"weighted": {SPEC: WEIGHT, ...}}',
    composite=True,
)
register(
    "route",
    "rewardkit.rewards.composite.route:build",
    "Route each query to the reward of its data source (query.meta['data_source']; NaN or "
    "'default' for other sources), as in Mixed-R1 and MedGRPO multi-task RL.",
    card="C3 — Cross-dataset normalization (MedGRPO multi-task routing)",
    arg_help='{"route": {SOURCE: SPEC, ...}, "default": SPEC, "key": "data_source"}',
    composite=True,
)
register(
    "dpo",
    "rewardkit.rewards.dpo:build",
    "DPO implicit reward β[log π(y|x) − log π_ref(y|x)] over the response tokens; without 'ref', "
    "reference-free sum / mean / norm (default norm, as reward-bench).",
    card="B1 — DPO implicit reward",
    arg_help="POLICY ('default' = embedded SmolLM2-135M-Instruct, or PATH_OR_ID); options ref=, beta=, reduce=",
    uses_engine=True,
)
register(
    "density-ratio",
    "rewardkit.rewards.density_ratio:build",
    "Strong-over-weak density ratio log π_strong(y|c⊕x) − log π_weak(y|c⊕x), with a system "
    "prompt or per-domain criteria c given to both models.",
    card="B2 — Strong-over-weak density ratio (CDR)",
    arg_help="STRONG ('default' = SmolLM2 with chat template vs the same weights on plain text); options weak=, reduce=, system=, criteria=",
    uses_engine=True,
)
register(
    "similarity",
    "rewardkit.rewards.similarity:build_similarity",
    "Cosine of sentence embeddings (mean pooling + L2 norm) between the response and "
    "query.reference (max over several); NaN without a reference. against=prompt: relevance.",
    card="B10 — Regularized relevance reward (R³), reference-similarity term",
    arg_help="ENCODER ('minilm'/'default' = embedded all-MiniLM-L6-v2, or PATH_OR_ID)",
    uses_engine=True,
)
register(
    "relevance",
    "rewardkit.rewards.relevance:build",
    "R³ regularized relevance: cos(prompt, response) + cos(response, reference) − query-copy "
    "penalty (+ optional length prior), sentence embeddings; no preference data needed.",
    card="B10 — Regularized relevance reward (R³)",
    arg_help="ENCODER ('minilm'/'default' = embedded all-MiniLM-L6-v2); options w_relevance=, w_reference=, w_copy=, w_length=, n=, target_words=",
    uses_engine=True,
)
register(
    "bmas",
    "rewardkit.rewards.similarity:build_bmas",
    "Bidirectional Max-Average Similarity between response and reference tokens in a model's "
    "input-embedding table; NaN without a reference.",
    card="B9 — Mixed-R1 BMAS",
    arg_help="MODEL ('minilm'/'default' = all-MiniLM-L6-v2's table; 'smollm2' as the card)",
    uses_engine=True,
)
register(
    "judge-pairwise",
    "rewardkit.rewards.judges.build:pairwise",
    "Pairwise generative judge: P(A better than B) from the next-token logits of A and B, judged "
    "in both orders and averaged; score() = P(response better than the reference), NaN without one.",
    card="B6 — LLM-as-judge (pairwise; both orders as in MMRB2)",
    arg_help="'default' (embedded SmolLM2-135M-Instruct), PATH_OR_ID of a causal LM, or openai://HOST:PORT/v1?model=NAME; options principle=, rubric=",
    uses_engine=True,
)
register(
    "judge-rating",
    "rewardkit.rewards.judges.build:rating",
    "Rating judge: expected 1–10 rating Σ k·p(k) from the next-token distribution over the "
    "rating tokens (renormalised; a two-token '10' read in the same pass).",
    card="B6 — LLM-as-judge (rating mode)",
    arg_help="'default' (embedded SmolLM2-135M-Instruct), PATH_OR_ID of a causal LM, or openai://HOST:PORT/v1?model=NAME; options principle=, rubric=, output=",
    uses_engine=True,
)
register(
    "judge-listwise",
    "rewardkit.rewards.judges.build:listwise",
    "Listwise generative judge: k ≤ 9 responses to one prompt ranked in one call, shown in a "
    "seeded random order; score = P(the response's label is the first answer token). score() "
    "ranks the queries that share a prompt as one group.",
    card="B7 — Listwise judge (RewardBench 2 4-way, GRPO groups)",
    arg_help="'default' (embedded SmolLM2-135M-Instruct), PATH_OR_ID of a causal LM, or openai://HOST:PORT/v1?model=NAME; options order_seed=, principle=, rubric=",
    uses_engine=True,
)
register(
    "clip",
    "rewardkit.rewards.clip_score:build",
    "CLIP-score image–text similarity (any CLIP-style dual encoder): the prompt text against the "
    "response image, or a text response against the prompt image; NaN without an image.",
    card="B15 — Image–text reward interface (CLIP score)",
    arg_help="PATH_OR_ID of a CLIP-style model; options variant=clip (100·cos) | clipscore (2.5·max(cos,0)) | logit",
    uses_engine=True,
)
register(
    "image-rm",
    "rewardkit.rewards.image_rm:build",
    "Image reward model: a CLIP-style backbone + scalar head (trained by `rewardkit train` on "
    "image pairs), or a plain CLIP/PickScore checkpoint as exp(logit_scale)·cos; same text/image "
    "pairing as clip; NaN without an image.",
    card="B15 — Image–text reward interface (ImageReward / PickScore shapes)",
    arg_help="PATH (a trained image reward model folder) or PATH_OR_ID of a CLIP-style checkpoint; options processor=",
    uses_engine=True,
)
register(
    "vlm-judge",
    "rewardkit.rewards.judges.vlm:build",
    "Generative pointwise judge on a vision-language model: P(Yes) vs P(No) after the judging "
    "template, with the conversation's and the response's images in place.",
    card="B3 — Generative yes-token reward (RewardDance)",
    arg_help="PATH_OR_ID of an AutoModelForImageTextToText model; options principle=, rubric=, output=prob|logit, system=",
    uses_engine=True,
)
register(
    "vlm-judge-listwise",
    "rewardkit.rewards.judges.vlm:build_listwise",
    "Listwise generative judge on a vision-language model: k ≤ 9 responses (text or images) to "
    "one prompt ranked in one call, shown in a seeded order; score = P(the response is best).",
    card="B7 — Listwise judge",
    arg_help="PATH_OR_ID of an AutoModelForImageTextToText model; options order_seed=, principle=, rubric=, system=",
    uses_engine=True,
)
register(
    "vlm-judge-pairwise",
    "rewardkit.rewards.judges.vlm:build_pairwise",
    "Pairwise generative judge on a vision-language model: P(A better than B), both orders "
    "averaged (MMRB2 protocol); score() = P(response better than the reference).",
    card="B6 — LLM-as-judge (pairwise; both orders as in MMRB2)",
    arg_help="PATH_OR_ID of an AutoModelForImageTextToText model; options principle=, rubric=, system=",
    uses_engine=True,
)
register(
    "prm",
    "rewardkit.rewards.prm.reward:build",
    "Process reward model: one score per reasoning step (score_full(...).steps) and their "
    "aggregate; Qwen2.5-Math-PRM (separator token + 2-label token classifier) and Math-Shepherd "
    "(tag token, +/- logits) conventions.",
    card="B4 — ORM vs PRM (process reward models)",
    arg_help="PATH_OR_ID; options convention (qwen|shepherd), aggregate (min|last|mean|prod|geomean), split (auto|step|paragraph|line), tag, good, bad, system, trust_remote_code",
    uses_engine=True,
)
register(
    "dpo-tokens",
    "rewardkit.rewards.token_rewards:build_dpo_tokens",
    "DPO implicit reward per token, β[log π(y_t|·) − log π_ref(y_t|·)] (score_full(...).tokens, "
    "with character offsets); the tokens sum to dpo:POLICY?ref=REF&reduce=sum.",
    card="B1 — DPO implicit reward (token level)",
    arg_help="POLICY ('default' = embedded SmolLM2); options ref=, beta=, system=",
    uses_engine=True,
)
register(
    "treg",
    "rewardkit.rewards.token_rewards:build_treg",
    "T-REG self-generated token rewards: tanh of the log-ratio of each token under a 'good' and "
    "a 'bad' system prompt, same model (contrastive prompting).",
    card="B12 — T-REG",
    arg_help="MODEL ('default' = embedded SmolLM2); options good=, bad=",
    uses_engine=True,
)
register(
    "aligndistil",
    "rewardkit.rewards.token_rewards:build_aligndistil",
    "AlignDistil contrastive DPO reward per token, β[log π_dpo(y_t|·) − log π_rev(y_t|·)] with a "
    "reverse-preference DPO model as the reference.",
    card="B13 — AlignDistil",
    arg_help="DPO_MODEL; options rev= (required), beta=",
    uses_engine=True,
)
register(
    "pal",
    "rewardkit.rewards.pal:build",
    "PAL pluralistic reward over frozen MiniLM features: K shared prototypes and per-user "
    "mixture weights (ideal-point or mixture form); unseen users get the population mixture.",
    card="A10 — Ideal-point mixture RM (PAL)",
    arg_help="DIR from `rewardkit pal train`; options user=ID",
    uses_engine=True,
)
register(
    "domain",
    "rewardkit.rewards.domain:build",
    "Domain-knowledge reward: a BT-fitted weighted sum of interpretable features (aspect "
    "coverage, sentiment faithfulness, redundancy, length fit, arithmetic); components per feature.",
    card="A15 — Domain-knowledge-infused reward model",
    arg_help="DIR from `rewardkit domain fit`",
)
register(
    "polar",
    "rewardkit.rewards.polar:build",
    "POLAR policy-discriminative reward: scores a response against the record's reference "
    "answer (frozen MiniLM embeddings + trained head); NaN without a reference.",
    card="A9 — Policy Discriminative Learning (POLAR)",
    arg_help="DIR from `rewardkit polar pretrain` / `polar finetune`",
    uses_engine=True,
)
register(
    "remote",
    "rewardkit.rewards.endpoints.server:build",
    "A reward served by another `rewardkit serve` server (POST /v1/rewards): usable in "
    "ensembles, routes and RL adapters; answers land in the local score cache.",
    card=None,
    arg_help="URL of the server; options route=, api_key_env=, batch_size=, concurrency=, rpm=, timeout=, retries=",
    uses_engine=True,
)
register(
    "vllm",
    "rewardkit.rewards.endpoints.pooling:build_vllm",
    "A classifier reward model served by vLLM (POST /classify or /pooling; the server applies "
    "the chat template, or the client does with tokenizer=).",
    card=None,
    arg_help="URL of the vLLM server; options model=, endpoint=classify|pooling, label=0, activation=false, tokenizer=, api_key_env=, concurrency=, rpm=",
    uses_engine=True,
)
register(
    "sglang",
    "rewardkit.rewards.endpoints.pooling:build_sglang",
    "A classifier reward model served by SGLang (--is-embedding; POST /classify with text "
    "formatted by the reward model's chat template).",
    card=None,
    arg_help="URL of the SGLang server; options tokenizer= (required), model=, label=0, batch_size=, api_key_env=, concurrency=, rpm=",
    uses_engine=True,
)
