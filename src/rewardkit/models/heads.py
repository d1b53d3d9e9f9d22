"""Model adapters: where each model family's score comes from (one ``forward(batch)`` each).

Every adapter implements :class:`rewardkit.engine.adapter.ModelAdapter`; the family table
(:mod:`rewardkit.models.families`) says which adapter a checkpoint gets. Readouts that work on
hidden states take them from :meth:`ModelAdapter.last_hidden`, so the engine's shared-prompt and
packed layouts reuse them unchanged. :meth:`plain` is the model's own forward on one unpadded
row, the reference ``rewardkit check-model`` compares the engine against.

Scores: docs/methods/A1-bradley-terry.md (a scalar reward read at one position);
pairwise families give the logit of P(A ≻ B) for one order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from rewardkit.engine.adapter import (
    Batch,
    EncodedRow,
    ModelAdapter,
    gather_rows,
    last_token_index,
    model_device,
    squeeze_scores,
    text_config,
)

ENCODERS = ("bert", "roberta", "xlm-roberta", "electra", "distilbert", "deberta", "deberta-v2")


class FamilyAdapter(ModelAdapter):
    """An adapter that can also score one row with the model's own forward, unpadded."""

    def __init__(self, pad_token_id: int) -> None:
        self._pad = int(pad_token_id)

    @property
    def pad_token_id(self) -> int:
        return self._pad

    def plain(self, row: EncodedRow) -> torch.Tensor:
        """Scores of one row, no padding, no engine: (k,) float32 on the CPU."""
        device = self.device()
        ids = torch.tensor([row.input_ids], dtype=torch.long, device=device)
        types = None
        if row.token_type_ids is not None:
            types = torch.tensor([row.token_type_ids], dtype=torch.long, device=device)
        start = torch.tensor(
            [-1 if row.response_start is None else row.response_start], device=device
        )
        batch = Batch(ids, torch.ones_like(ids), types, start, [row])
        with torch.inference_mode():
            return self.own_forward(batch).float().reshape(-1).cpu()

    def own_forward(self, batch: Batch) -> torch.Tensor:
        """The model's own forward (what its authors call); default: :meth:`forward`."""
        return self.forward(batch)

    def device(self) -> torch.device:
        body = self.backbone()
        return model_device(body) if body is not None else torch.device("cpu")


class SequenceClassifierAdapter(FamilyAdapter):
    """``*ForSequenceClassification`` models, k ≥ 1 logits (docs/methods/A1-bradley-terry.md).

    Decoders with a linear ``score`` head and BERT with its pooler run the packed (and, for
    decoders, shared) layouts: the logits are then read from the body's hidden states exactly as
    the model's own forward reads them (:meth:`head_logits`). ``gating``: also return the model's
    own reduction of the objectives (ArmoRM: its ``score`` output, else ``Σ g_k r_k`` with its
    ``gating_output``) as one extra column.
    """

    layouts = frozenset({"packed", "shared"})

    def __init__(
        self, model: Any, pad_token_id: int, gating: bool = False, own_pad: bool = True
    ) -> None:
        super().__init__(pad_token_id)
        self.model = model
        self.gating = gating
        self.model_type = str(getattr(model.config, "model_type", ""))
        self.causal = self.model_type not in ENCODERS
        #: False when the config names no usable pad id: on one unpadded row the model reads its
        #: last token, so every row is read at its last real token (the attention mask), never
        #: before a final token that happens to equal the id batches are padded with.
        self.own_pad = own_pad
        #: held while a call names its free pad id in the shared config: a server's model
        #: workers run batches of one model at once, and must not read each other's id
        self._pad_lock = threading.Lock()

    def backbone(self) -> nn.Module | None:
        m = self.model
        if self.gating:
            return None
        if self.model_type == "bert" and isinstance(getattr(m, "bert", None), nn.Module):
            bert = m.bert
            ok = bert.pooler is not None and isinstance(getattr(m, "classifier", None), nn.Linear)
            return bert if ok else None
        body = getattr(m, "base_model", None)
        if body is not None and body is not m and isinstance(getattr(m, "score", None), nn.Linear):
            return body
        return None

    def device(self) -> torch.device:
        return model_device(self.model)

    def head_logits(
        self,
        hidden: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits from body hidden states, as ``*ForSequenceClassification.forward`` reads them:
        BERT pools [CLS]; decoders take the last token that is not the pad id (the last real
        token when the config names no pad: :attr:`own_pad`)."""
        m = self.model
        if self.model_type == "bert":
            return m.classifier(m.bert.pooler(hidden))
        pad = text_config(m.config).pad_token_id  # multimodal: the text config's
        if not self.own_pad and attention_mask is not None:
            last = last_token_index(attention_mask).to(hidden.device)
        elif pad is None:
            last = torch.full((hidden.shape[0],), hidden.shape[1] - 1, device=hidden.device)
        else:
            non_pad = (input_ids != pad).to(hidden.device, torch.int32)
            positions = torch.arange(input_ids.shape[-1], device=hidden.device, dtype=torch.int32)
            last = (positions * non_pad).argmax(-1)
        return m.score(gather_rows(hidden, last))

    def forward(self, batch: Batch) -> torch.Tensor:
        if batch.hidden is not None:
            hidden, ids, mask = batch.hidden, batch.input_ids, batch.attention_mask
            return squeeze_scores(self.head_logits(hidden, ids, mask))
        with self._pad_absent_from(batch) as inputs:
            out = self.model(**inputs)
        if not self.gating:
            return squeeze_scores(out.logits)
        gated = gated_score(out, self.model.config)
        return torch.cat([out.logits.float(), gated.unsqueeze(-1)], dim=-1)

    @contextmanager
    def _pad_absent_from(self, batch: Batch) -> Iterator[dict[str, torch.Tensor]]:
        """The model's inputs. Without a pad id of its own (:attr:`own_pad`) and with more than
        one unpadded row, the padding takes an id that no row of this batch holds, and the
        config names it for this call only: the model then reads every row at its last real
        token, as it reads one unpadded row (the model itself is left unchanged)."""
        inputs = batch.model_inputs()
        mask = batch.attention_mask
        if self.own_pad or (mask.shape[0] == 1 and bool(mask.all())):
            yield inputs
            return
        cfg = text_config(self.model.config)
        emb = self.model.get_input_embeddings()
        used = torch.zeros(int(emb.num_embeddings), dtype=torch.bool, device=mask.device)
        used[batch.input_ids[mask.bool()]] = True
        free = int((~used).nonzero()[0, 0]) if not bool(used.all()) else -1
        with self._pad_lock:
            saved = cfg.pad_token_id
            cfg.pad_token_id = free
            try:
                yield {**inputs, "input_ids": batch.input_ids.masked_fill(mask == 0, max(free, 0))}
            finally:
                cfg.pad_token_id = saved


def gated_reward(objective_scores: torch.Tensor, gate_logits: torch.Tensor) -> torch.Tensor:
    """Multi-objective reward with a learned gating over objectives (ArmoRM /
    docs/methods/A4-more.md MORE idea) ``[design]``: ``r = Σ_k softmax(g)_k · s_k`` per response.
    Training (``train/losses.py``) and scoring (:func:`gated_score`) use this one formula."""
    return (torch.softmax(gate_logits.float(), dim=-1) * objective_scores.float()).sum(-1)


def gate_split(config: Any) -> int | None:
    """k when the head's 2k outputs are ``[s_1..s_k, gate_s_1..gate_s_k]`` (``id2label``), the
    layout ``rewardkit train`` writes for ``objective: gated``; None otherwise."""
    labels = getattr(config, "id2label", None) or {}
    names = [str(labels.get(i, labels.get(str(i), ""))) for i in range(len(labels))]
    k = len(names) // 2
    if k < 1 or len(names) != 2 * k:
        return None
    return k if all(names[k + i] == f"gate_{names[i]}" for i in range(k)) else None


def gated_score(out: Mapping[str, Any], config: Any = None) -> torch.Tensor:
    """The model's own reduction of its objectives (docs/methods/A4-more.md, ArmoRM gating):
    its ``score`` field, else ``Σ_k g_k r_k`` with its per-row ``gating_output``, else — a head
    trained by ``rewardkit train`` with ``objective: gated`` (:func:`gate_split`) — ``Σ_k
    softmax(g)_k s_k`` over its outputs ``[s, g]``, the reward it was trained on."""
    logits = out["logits"]
    score = out.get("score")
    gating = out.get("gating_output")
    if score is not None:
        return score.reshape(score.shape[0], -1)[:, 0].float()
    if gating is not None and gating.shape == logits.shape:
        return (gating.float() * logits.float()).sum(dim=-1)
    k = gate_split(config) if config is not None else None
    if k is not None and logits.shape[-1] == 2 * k:
        return gated_reward(logits[:, :k], logits[:, k:])
    raise ValueError(
        "reduce=gating, but the model's output has neither 'score' nor a 'gating_output' of the "
        "logits' shape; use reduce=weighted with weights="
    )


def row_logits(model_out: Any) -> torch.Tensor:
    """A remote-code model's output as a (b, k) tensor: the tensor itself, else its ``logits``."""
    if isinstance(model_out, torch.Tensor):
        out = model_out
    elif isinstance(model_out, dict) and "logits" in model_out:
        out = model_out["logits"]
    elif isinstance(model_out, tuple | list) and model_out:
        out = model_out[0]
    else:
        raise TypeError(
            f"the model returned {type(model_out).__name__}; expected a tensor of rewards or an "
            "output with 'logits'"
        )
    return out.reshape(out.shape[0], -1)


class RemoteScoreAdapter(FamilyAdapter):
    """``AutoModel`` + the checkpoint's own code whose forward returns the rewards (Eurus-RM,
    InternLM2-reward: (b, 1) read at each row's last real token by the model itself)."""

    def __init__(self, model: Any, pad_token_id: int) -> None:
        super().__init__(pad_token_id)
        self.model = model

    def device(self) -> torch.device:
        return model_device(self.model)

    def forward(self, batch: Batch) -> torch.Tensor:
        return squeeze_scores(row_logits(self.model(**batch.model_inputs())))


class ValueHeadAdapter(FamilyAdapter):
    """A linear head on a transformer body's hidden states, read at each row's last real token
    (Starling-RM, UltraRM, Beaver/safe-rlhf ``LlamaForScore``)."""

    layouts = frozenset({"packed", "shared"})

    def __init__(self, body: nn.Module, head: nn.Linear, pad_token_id: int) -> None:
        super().__init__(pad_token_id)
        self.body = body
        self.head = head
        self.causal = str(getattr(body.config, "model_type", "")) not in ENCODERS

    def backbone(self) -> nn.Module:
        return self.body

    def forward(self, batch: Batch) -> torch.Tensor:
        hidden = self.last_hidden(batch)
        pooled = gather_rows(hidden, last_token_index(batch.attention_mask))
        return squeeze_scores(self.head(pooled.to(self.head.weight.dtype)))


class PairCrossAdapter(FamilyAdapter):
    """PairRM shape: one encoder pass over ``<source> x <cand1> a <cand2> b``; the head reads the
    hidden states at the three marker tokens: ``logit = mean_t(h([s; c1]) − h([s; c2]))``, the
    logit of P(a ≻ b) for this order."""

    def __init__(
        self,
        body: nn.Module,
        head: nn.Module,
        pad_token_id: int,
        markers: Sequence[int],
    ) -> None:
        super().__init__(pad_token_id)
        self.body = body
        self.head = head
        self.markers = tuple(int(m) for m in markers)
        self.causal = False

    def backbone(self) -> nn.Module:
        return self.body

    def forward(self, batch: Batch) -> torch.Tensor:
        hidden = self.last_hidden(batch)
        ids = batch.input_ids
        enc = [gather_rows(hidden, first_index(ids, m)) for m in self.markers]
        left = self.head(torch.cat([enc[0], enc[1]], dim=-1))
        right = self.head(torch.cat([enc[0], enc[2]], dim=-1))
        return (left - right).mean(dim=-1)


def first_index(ids: torch.Tensor, token: int) -> torch.Tensor:
    """Per row, the position of the first ``token`` (every row must hold one)."""
    hit = ids == token
    if not bool(hit.any(dim=1).all()):
        raise ValueError(f"a row lacks the marker token {token}: the input was not built for it")
    return hit.int().argmax(dim=1)


class PairLMAdapter(FamilyAdapter):
    """RLHFlow pair-preference shape: a causal LM asked "A or B?"; the logit of P(A ≻ B) for
    this order is ``ℓ_A − ℓ_B``, the next-token logits of the answer tokens at the last token."""

    layouts = frozenset({"packed", "shared"})

    def __init__(self, model: Any, pad_token_id: int, a_id: int, b_id: int) -> None:
        super().__init__(pad_token_id)
        self.model = model
        self.ab = torch.tensor([int(a_id), int(b_id)])

    def backbone(self) -> nn.Module:
        return self.model.base_model

    def forward(self, batch: Batch) -> torch.Tensor:
        hidden = self.last_hidden(batch)
        last = gather_rows(hidden, last_token_index(batch.attention_mask))
        weight = self.model.get_output_embeddings().weight[self.ab.to(hidden.device)]
        logits = last.to(weight.dtype) @ weight.T
        return (logits[:, 0] - logits[:, 1]).float()

    def own_forward(self, batch: Batch) -> torch.Tensor:
        logits = self.model(**batch.model_inputs()).logits[:, -1]
        ab = logits[:, self.ab.to(logits.device)]
        return (ab[:, 0] - ab[:, 1]).float()


def nonfinite_weights(module: nn.Module) -> list[str]:
    """Names of the tensors of ``module``'s state dict that hold a NaN or ±inf (checked in
    chunks, so a large embedding table needs no second table of flags)."""
    tensors = [
        (name, value.detach())
        for name, value in module.state_dict().items()
        if value.is_floating_point() and not value.is_meta and value.numel()
    ]
    # one fast pass first: a NaN or ±inf anywhere makes its tensor's sum non-finite; only a
    # non-finite sum (or finite weights whose sum overflows) is looked at closer
    sums = [value.sum().float() for _, value in tensors]
    if not sums or bool(torch.isfinite(torch.stack([t.cpu() for t in sums])).all()):
        return []
    bad = []
    for name, value in tensors:
        flat = value.reshape(-1)
        step = 1 << 22
        if not all(
            bool(torch.isfinite(flat[i : i + step]).all()) for i in range(0, len(flat), step)
        ):
            bad.append(name)
    return bad


def refuse_nonfinite(module: nn.Module, where: object, command: str | None = None) -> None:
    """SpecError naming ``where`` (the weights file or model folder) when a loaded ``module``
    holds a NaN or ±inf weight: a diverged run's model would score NaN, "does not apply",
    everywhere. ``command`` is how to train it again, when rewardkit trained it."""
    from rewardkit.errors import SpecError

    bad = nonfinite_weights(module)
    if bad:
        shown = ", ".join(bad[:3]) + (", …" if len(bad) > 3 else "")
        fix = (
            f"use a model that trained, or train again with `{command}`"
            if command
            else "every score would be NaN; use a checkpoint that trained"
        )
        raise SpecError(f"{where}: weights {shown} hold NaN or ±inf (a diverged run?); {fix}")
