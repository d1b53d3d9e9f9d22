"""The model-family table: every reward-model layout rewardkit loads, one entry each.

An entry says how to recognise a checkpoint (:attr:`Family.detect`, on its config and weight
names), how to load it into a model adapter (:attr:`Family.load`), how to build its input
(:attr:`Family.input`) and where its score comes from (the adapter, :mod:`rewardkit.models.heads`).
``classifier:PATH`` picks the one family whose ``detect`` matches; when none or several match it
says what it found, and ``classifier:PATH?family=NAME`` names one. A new family is one entry here
and one test with a tiny model of its shape.

Scalar families give r(x, y) (docs/methods/A1-bradley-terry.md); pairwise families give the
logit of P(A ≻ B) for one order and are judged in both orders (docs/methods/B6-llm-judge.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import transformers
from torch import nn

from rewardkit.engine.adapter import text_config
from rewardkit.engine.config import EngineConfig
from rewardkit.errors import SpecError, switch
from rewardkit.models.checkpoint import (
    HEAD_NAMES,
    Checkpoint,
    body_prefix,
    inspect_checkpoint,
    read_weights,
    strip_prefix,
)
from rewardkit.models.heads import (
    FamilyAdapter,
    PairCrossAdapter,
    PairLMAdapter,
    RemoteScoreAdapter,
    SequenceClassifierAdapter,
    ValueHeadAdapter,
    refuse_nonfinite,
)
from rewardkit.models.integrity import load_pretrained, plain_base, remote_code_id
from rewardkit.models.loading import (
    finish_dtype,
    load_causal_lm,
    load_sequence_classifier,
    load_tokenizer,
    resolve_device,
    resolve_model,
    set_threads,
    torch_dtype,
)
from rewardkit.models.peft_adapter import check_classifier, head_outputs

#: Input kinds (rewardkit.rewards.classifier builds each): the chat template or a text pair;
#: the chat template plus an appended reward token; PairRM's marked triple; an A/B prompt.
INPUTS = ("chat-or-pair", "chat+reward-token", "marked-pair", "ab-prompt")


@dataclass(frozen=True)
class LoadRequest:
    """What a family's loader gets: where the model is, its tokenizer, and the spec's options."""

    source: str
    checkpoint: Checkpoint
    tokenizer: Any
    dtype: str = "float32"
    num_labels: int | None = None
    head_seed: int = 0
    trust_remote_code: bool = False
    gating: bool = False
    #: A LoRA/PEFT adapter merged into the base at ``source`` (models.peft_adapter.Adapter).
    adapter: Any = None


@dataclass
class Loaded:
    """A loaded family model: its adapter, the module to move to a device, and notes."""

    adapter: FamilyAdapter
    module: nn.Module
    #: Config whose position limits bound ``max_length``.
    config: Any
    #: Facts that change scores (head initialisation, token ids…), part of the fingerprint.
    notes: dict[str, Any] = field(default_factory=dict)
    #: Outputs per row (k > 1: a multi-objective head) and their names from the checkpoint.
    outputs: int = 1
    labels: tuple[str, ...] = ()
    #: Token ids the input builder needs (reward token, markers, answer letters).
    tokens: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Family:
    """One reward-model layout (see the module docstring)."""

    name: str
    summary: str
    detect: Callable[[Checkpoint], bool]
    load: Callable[[LoadRequest], Loaded]
    input: str
    pairwise: bool = False
    #: Runs the checkpoint's own modelling code (needs ``trust_remote_code=true``).
    remote_code: bool = False
    #: Real checkpoints of this shape, for the docs and error messages.
    examples: tuple[str, ...] = ()


# -- detection ---------------------------------------------------------------------------------


def _is_classifier(c: Checkpoint) -> bool:
    return any(a.endswith("ForSequenceClassification") for a in c.architectures) or (
        "AutoModelForSequenceClassification" in c.auto_map
    )


def _is_plain_base(c: Checkpoint) -> bool:
    """A base LM or encoder with no reward head of its own (gets a seeded fresh head)."""
    return (
        bool(c.architectures)
        and plain_base(c.architectures)
        and not c.head_weights()
        and "AutoModel" not in c.auto_map
        and not _is_marked_pair(c)
    )


def _is_marked_pair(c: Checkpoint) -> bool:
    keys = ("source_prefix_id", "cand1_prefix_id", "cand2_prefix_id")
    return "DebertaV2PairRM" in c.architectures or all(k in c.config for k in keys)


def _remote_reward(c: Checkpoint) -> bool:
    return "AutoModel" in c.auto_map and not _is_classifier(c) and not _is_marked_pair(c)


# -- loaders -----------------------------------------------------------------------------------
def _load_classifier(req: LoadRequest) -> Loaded:
    model, head = load_sequence_classifier(
        req.source,
        req.dtype,
        num_labels=req.num_labels,
        head_seed=req.head_seed,
        trust_remote_code=req.trust_remote_code,
        adapter=req.adapter,
    )
    pad, own = classifier_pad_id(model, int(req.tokenizer.pad_token_id))
    k = int(model.config.num_labels)
    id2label = model.config.id2label or {}
    labels = tuple(str(id2label.get(i, f"objective_{i}")) for i in range(k))
    adapter = SequenceClassifierAdapter(model, pad, req.gating, own_pad=own)
    notes: dict[str, Any] = {"head": head}
    if req.adapter is not None:
        notes["adapter"] = req.adapter.describe()
    return Loaded(adapter, model, model.config, notes, k, labels)


def classifier_pad_id(model: Any, tokenizer_pad: int) -> tuple[int, bool]:
    """The id a sequence classifier's batches are padded with, and whether it is the model's
    own ``config.pad_token_id`` (docs/families.md).

    ``*ForSequenceClassification`` reads the score at the last token that is not
    ``config.pad_token_id``, so padding must use that id: padding with a different tokenizer pad
    would make the model (and the engine's readout) read a padding position. A missing or
    out-of-vocabulary ``config.pad_token_id`` is left as it is (the model, on one unpadded row,
    reads its last token): batches are padded with the tokenizer's pad and read at each row's
    last real token (:class:`~rewardkit.models.heads.SequenceClassifierAdapter`), never one
    token early because the row ends with that pad id (eos, say).
    """
    cfg = text_config(model.config)  # where transformers' classifiers read it
    pad = getattr(cfg, "pad_token_id", None)
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    vocab = getattr(emb, "num_embeddings", None) or getattr(cfg, "vocab_size", None)
    if isinstance(pad, int) and not isinstance(pad, bool) and 0 <= pad < int(vocab or pad + 1):
        return pad, True
    return tokenizer_pad, False


def _remote_model(req: LoadRequest) -> Any:
    model, _ = load_pretrained(
        transformers.AutoModel, req.source, trust_remote_code=True, dtype=torch_dtype(req.dtype)
    )
    return finish_dtype(model, req.dtype)


def _load_remote_score(req: LoadRequest) -> Loaded:
    if "AutoModel" not in req.checkpoint.auto_map:
        raise SpecError(
            f"{req.source}: family remote-score runs the checkpoint's own AutoModel code, but "
            f"config.auto_map names none ({req.checkpoint.describe()})"
        )
    model = _remote_model(req)
    adapter = RemoteScoreAdapter(model, int(req.tokenizer.pad_token_id))
    return Loaded(adapter, model, model.config, {"code": sorted(req.checkpoint.auto_map.items())})


def _load_reward_token(req: LoadRequest) -> Loaded:
    token = req.checkpoint.config.get("reward_token_id")
    if not isinstance(token, int):
        raise SpecError(f"{req.source}: family reward-token needs config.reward_token_id")
    loaded = _load_remote_score(req)
    loaded.tokens["reward"] = token
    loaded.notes["reward_token_id"] = token
    return loaded


def _body(req: LoadRequest, state: dict[str, torch.Tensor], prefix: str) -> nn.Module:
    """A transformers body (``AutoModel`` of the config's model type) with its saved weights."""
    config = transformers.AutoConfig.from_pretrained(req.source, trust_remote_code=False)
    body = transformers.AutoModel.from_config(config)
    missing, _ = body.load_state_dict(strip_prefix(state, prefix), strict=False)
    persistent = {k for k, _ in body.named_parameters()}
    lost = sorted(k for k in missing if k in persistent)
    if lost:
        raise SpecError(
            f"{req.source}: the body under {prefix!r} lacks {len(lost)} weights of a "
            f"{type(body).__name__} (first: {lost[:3]})"
        )
    refuse_nonfinite(body, req.source)
    return finish_dtype(body, req.dtype)


def _linear(state: dict[str, torch.Tensor], name: str) -> nn.Linear:
    weight = state[f"{name}.weight"]
    bias = state.get(f"{name}.bias")
    head = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    head.load_state_dict({"weight": weight, **({"bias": bias} if bias is not None else {})})
    return head


def _load_value_head(req: LoadRequest) -> Loaded:
    state = read_weights(req.source)
    names = [n for n in HEAD_NAMES if f"{n}.weight" in state]
    if len(names) != 1:
        raise SpecError(
            f"{req.source}: family value-head needs exactly one head among "
            f"{[f'{n}.weight' for n in HEAD_NAMES]}; found {names or 'none'}"
        )
    body_state = {k: v for k, v in state.items() if not k.startswith(f"{names[0]}.")}
    prefix = body_prefix(list(body_state), ("transformer.", "model.", "base_model.", ""))
    body = _body(req, body_state, prefix)
    head = _linear(state, names[0])
    refuse_nonfinite(head, req.source)
    head = head.to(next(body.parameters()).dtype).eval()
    adapter = ValueHeadAdapter(body, head, int(req.tokenizer.pad_token_id))
    module = nn.ModuleDict({"body": body, "head": head})
    notes = {"head": names[0], "body_prefix": prefix}
    return Loaded(adapter, module, body.config, notes, head.out_features)


def _load_marked_pair(req: LoadRequest) -> Loaded:
    cfg = req.checkpoint.config
    keys = ("source_prefix_id", "cand1_prefix_id", "cand2_prefix_id")
    if not all(isinstance(cfg.get(k), int) for k in keys):
        raise SpecError(
            f"{req.source}: family pair-cross-encoder needs PairRM's marker ids in config.json "
            f"({', '.join(keys)}); this checkpoint has {[k for k in keys if k in cfg] or 'none'}"
        )
    markers = [int(cfg[k]) for k in keys]
    spelled = req.tokenizer.convert_ids_to_tokens(markers)
    if spelled != list(PAIR_MARKERS):
        raise SpecError(
            f"{req.source}: marker ids {markers} are {spelled} in the tokenizer; expected "
            f"{list(PAIR_MARKERS)}"
        )
    state = read_weights(req.source)
    body = _body(req, state, "pretrained_model.")
    hidden = int(body.config.hidden_size)
    tasks = int(cfg.get("n_tasks", 1))
    head = nn.Sequential(
        nn.Dropout(0.0),
        nn.Linear(2 * hidden, hidden),
        nn.Tanh(),
        nn.Dropout(0.0),
        nn.Linear(hidden, tasks),
    )
    try:
        head.load_state_dict(strip_prefix(state, "head_layer."))
    except RuntimeError:
        raise SpecError(
            f"{req.source}: family pair-cross-encoder needs PairRM's head_layer.1 and "
            f"head_layer.4 weights of a {hidden}-wide body for {tasks} task(s)"
        ) from None
    refuse_nonfinite(head, req.source)
    head = head.to(next(body.parameters()).dtype).eval()
    adapter = PairCrossAdapter(body, head, int(req.tokenizer.pad_token_id), markers)
    module = nn.ModuleDict({"body": body, "head": head})
    return Loaded(adapter, module, body.config, {"markers": markers})


def _load_ab_lm(req: LoadRequest) -> Loaded:
    model = load_causal_lm(req.source, req.dtype)
    ids = {}
    for letter in ("A", "B"):
        found = req.tokenizer.encode(letter, add_special_tokens=False)
        if len(found) != 1:
            raise SpecError(f"{req.source}: {letter!r} is {len(found)} tokens; need one")
        ids[letter] = int(found[0])
    adapter = PairLMAdapter(model, int(req.tokenizer.pad_token_id), ids["A"], ids["B"])
    return Loaded(adapter, model, model.config, {"answer_ids": ids}, tokens=ids)


#: PairRM's marker tokens (source, first candidate, second candidate).
PAIR_MARKERS = ("<|source|>", "<|candidate1|>", "<|candidate2|>")

# -- the table ---------------------------------------------------------------------------------
FAMILIES: tuple[Family, ...] = (
    Family(
        "sequence-classifier",
        "AutoModelForSequenceClassification: k logits read by the model (last non-pad token for "
        "decoders, [CLS] for encoders); k > 1 multi-objective heads, ArmoRM-style gating "
        "(reduce=gating, remote code); a base LM or encoder gets a seeded fresh head",
        lambda c: _is_classifier(c) or _is_plain_base(c),
        _load_classifier,
        "chat-or-pair",
        examples=("Skywork/Skywork-Reward-Llama-3.1-8B", "RLHFlow/ArmoRM-Llama3-8B-v0.1"),
    ),
    Family(
        "value-head",
        "a linear head on a causal LM's hidden states, saved under its own name (v_head, "
        "regression_head, score_head…), read at the last real token",
        lambda c: (
            bool(c.head_weights()) and not _is_classifier(c) and "AutoModel" not in c.auto_map
        ),
        _load_value_head,
        "chat-or-pair",
        examples=(
            "berkeley-nest/Starling-RM-7B-alpha",
            "openbmb/UltraRM-13b",
            "PKU-Alignment/beaver-7b-v1.0-reward",
        ),
    ),
    Family(
        "remote-score",
        "AutoModel with the checkpoint's own code whose forward returns the reward",
        lambda c: _remote_reward(c) and "reward_token_id" not in c.config,
        _load_remote_score,
        "chat-or-pair",
        remote_code=True,
        examples=("openbmb/Eurus-RM-7b",),
    ),
    Family(
        "reward-token",
        "AutoModel with its own code that reads the reward at an appended reward token "
        "(config.reward_token_id)",
        lambda c: _remote_reward(c) and "reward_token_id" in c.config,
        _load_reward_token,
        "chat+reward-token",
        remote_code=True,
        examples=("internlm/internlm2-7b-reward",),
    ),
    Family(
        "pair-cross-encoder",
        "PairRM: one encoder pass over <|source|> x <|candidate1|> a <|candidate2|> b; the "
        "logit of P(a ≻ b) from the marker tokens' hidden states",
        _is_marked_pair,
        _load_marked_pair,
        "marked-pair",
        pairwise=True,
        examples=("llm-blender/PairRM-hf",),
    ),
    Family(
        "pair-lm",
        "a causal LM asked which of responses A and B is better; P(A ≻ B) from the next-token "
        "logits of 'A' and 'B' (not recognisable from the config: name it)",
        lambda c: False,
        _load_ab_lm,
        "ab-prompt",
        pairwise=True,
        examples=("RLHFlow/pair-preference-model-LLaMA3-8B",),
    ),
)
BY_NAME = {f.name: f for f in FAMILIES}


def pick_family(checkpoint: Checkpoint, requested: str | None = None) -> Family:
    """The family named by ``requested``, else the one whose ``detect`` matches the checkpoint."""
    if requested:
        if requested not in BY_NAME:
            raise SpecError(f"unknown model family {requested!r}; families: {sorted(BY_NAME)}")
        return BY_NAME[requested]
    matches = [f for f in FAMILIES if f.detect(checkpoint)]
    if len(matches) == 1:
        return matches[0]
    found = checkpoint.describe()
    if not matches:
        raise SpecError(
            f"{checkpoint.source}: no model family matches this checkpoint ({found}); name one "
            f"with ?family=NAME, one of {sorted(BY_NAME)}"
        )
    raise SpecError(
        f"{checkpoint.source}: several model families match ({[f.name for f in matches]}; "
        f"{found}); name one with ?family=NAME"
    )


def find_family(model: str, family: str | None = None, base: str | None = None) -> Family:
    """The family of ``model`` (embedded alias, local directory or Hub id; an adapter folder's
    is its base's), without loading it."""
    if family:
        return pick_family(Checkpoint(model, {}), family)
    resolved = resolve_model(model, base)
    return pick_family(inspect_checkpoint(_weights_source(resolved)))


def _weights_source(resolved: Any) -> str:
    """Where a resolved model's config and weights are: an adapter's base, else its source."""
    return resolved.adapter.base_source if resolved.adapter is not None else resolved.source


@dataclass
class OpenedModel:
    """A family model ready for the engine: family, tokenizer, loaded adapter, device."""

    family: Family
    tokenizer: Any
    loaded: Loaded
    device: torch.device
    #: Where the weights came from (model id or path, weights hash).
    identity: dict[str, Any]


def open_family_model(
    model: str,
    config: EngineConfig,
    family: str | None = None,
    *,
    trust_remote_code: bool = False,
    num_labels: int | None = None,
    head_seed: int = 0,
    gating: bool = False,
    base: str | None = None,
) -> OpenedModel:
    """Resolve ``model`` (embedded alias, local directory or Hub id), pick its family, load it
    and move it to the configured device. A LoRA/PEFT adapter folder is loaded over its base
    (``base``, else the one its config names) and merged (:mod:`rewardkit.models.peft_adapter`)."""
    trust_remote_code = switch("trust_remote_code", trust_remote_code, model)
    if num_labels is not None and (
        isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1
    ):
        raise SpecError(f"{model}: num_labels must be a whole number >= 1, got {num_labels!r}")
    set_threads(config.threads)
    resolved = resolve_model(model, base)
    adapter = resolved.adapter
    source = _weights_source(resolved)
    tokenizer = None if adapter else load_tokenizer(source, trust_remote_code)
    checkpoint = inspect_checkpoint(source)
    chosen = pick_family(checkpoint, family)
    if adapter is not None:  # refused before anything loads; the head count is the saved head's
        check_classifier(adapter, chosen.name, _is_classifier(checkpoint))
        num_labels = num_labels if num_labels is not None else head_outputs(adapter)
        tokenizer = load_tokenizer(adapter.tokenizer_source(), trust_remote_code)
    if chosen.remote_code and not trust_remote_code:
        raise SpecError(
            f"{model}: family {chosen.name} runs the checkpoint's own code "
            f"({checkpoint.describe()}); pass trust_remote_code=true if you trust it"
        )
    own = checkpoint.auto_map.get("AutoModelForSequenceClassification")
    if own and chosen.name == "sequence-classifier" and not trust_remote_code:
        raise SpecError(
            f"{model}: config.auto_map names the checkpoint's own classifier code "
            f"(AutoModelForSequenceClassification → {own}), which transformers' built-in class "
            "would silently replace; pass trust_remote_code=true if you trust it"
        )
    request = LoadRequest(
        source,
        checkpoint,
        tokenizer,
        config.dtype,
        num_labels,
        head_seed,
        trust_remote_code,
        gating,
        adapter,
    )
    loaded = chosen.load(request)
    device = resolve_device(config.device)
    loaded.module.to(device)
    identity = dict(resolved.identity)
    if trust_remote_code:  # the checkpoint's own code computes the scores: key the cache on it
        identity.update(remote_code_id(source))
    return OpenedModel(chosen, tokenizer, loaded, device, identity)
