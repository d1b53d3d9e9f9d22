"""The model-adapter contract: what the engine needs from a model, and nothing more.

The engine (:class:`rewardkit.engine.runner.Engine`) owns encoding order, caching, batching,
layouts and statistics; an adapter owns one model and turns one :class:`Batch` into scores::

    adapter.forward(batch) -> tensor (b,) or (b, k)

A :class:`Batch` always holds the rows' token ids right-padded with the adapter's pad id, the
attention mask, optional token types and response starts, and the encoded rows themselves (for
adapters whose rows carry more than ids, such as images). In the shared-prompt and packed layouts
the engine also fills :attr:`Batch.hidden` with the backbone's last hidden states, laid out as the
padded batch would have them; an adapter that reads hidden states takes them from
:meth:`ModelAdapter.last_hidden`, which runs the backbone only when they were not given. The
forward signature never changes and no state passes through attributes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class EncodedRow:
    """Token ids of one query, ready for the model, and what truncation removed."""

    input_ids: list[int]
    token_type_ids: list[int] | None = None
    prompt_dropped: int = 0
    response_dropped: int = 0
    #: Index in ``input_ids`` of the first response token (None: the row has no response span).
    #: Log-prob rewards score the tokens from here to the end of the row.
    response_start: int | None = None


@dataclass(frozen=True)
class Batch:
    """One batch as the engine hands it to :meth:`ModelAdapter.forward`."""

    #: (b, w) long, right-padded with the adapter's pad id.
    input_ids: torch.Tensor
    #: (b, w) long, 1 on real tokens.
    attention_mask: torch.Tensor
    #: (b, w) long, or None when the rows have no token types.
    token_type_ids: torch.Tensor | None
    #: (b,) long index of each row's first response token, -1 where a row has none.
    response_start: torch.Tensor
    #: The encoded rows, in batch order (adapters whose rows carry payloads read them).
    rows: Sequence[EncodedRow]
    #: (b, w, H) backbone hidden states computed by the engine (shared/packed layouts), else None.
    hidden: torch.Tensor | None = None

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """``input_ids``, ``attention_mask`` and, when present, ``token_type_ids``."""
        out = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.token_type_ids is not None:
            out["token_type_ids"] = self.token_type_ids
        return out


class ModelAdapter(ABC):
    """One model behind the engine (see the module docstring)."""

    #: Layouts beyond "padded" the adapter's readout supports ("packed", "shared"); the engine
    #: runs them only where the backbone allows too (:func:`rewardkit.engine.execute.model_layouts`).
    layouts: frozenset[str] = frozenset()
    #: Whether the backbone attends causally (decoders) rather than both ways (encoders).
    causal: bool = True

    @property
    @abstractmethod
    def pad_token_id(self) -> int:
        """The id batches are padded with."""

    @abstractmethod
    def forward(self, batch: Batch) -> torch.Tensor:
        """Scores of a batch: shape (b,) or (b, k)."""

    def backbone(self) -> torch.nn.Module | None:
        """The transformer body whose ``last_hidden_state`` the readout uses (None: opaque)."""
        return None

    def last_hidden(self, batch: Batch) -> torch.Tensor:
        """Backbone hidden states (b, w, H) of the batch: the engine's when given, else computed."""
        if batch.hidden is not None:
            return batch.hidden
        body = self.backbone()
        if body is None:
            raise TypeError(f"{type(self).__name__} has no backbone to read hidden states from")
        return body(**batch.model_inputs()).last_hidden_state


class OwnForwardAdapter(ModelAdapter):
    """A model run by its own forward on a batch's ids and mask (no backbone, padded layout
    only); ``readout(batch, output)`` turns the model's output into scores (b,) or (b, k)."""

    def __init__(
        self,
        model: torch.nn.Module,
        pad_token_id: int,
        readout: Callable[[Batch, Any], torch.Tensor],
    ) -> None:
        self.model = model
        self._pad = int(pad_token_id)
        self.readout = readout

    @property
    def pad_token_id(self) -> int:
        return self._pad

    def forward(self, batch: Batch) -> torch.Tensor:
        out = self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        return self.readout(batch, out)


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real token, for right- or left-padded masks.

    ``mask.cumsum(1).argmax(1)``: the first position where the running count of real tokens
    reaches its total, which is where UltraRM, Eurus-RM and InternLM2-reward read their score.
    """
    return attention_mask.long().cumsum(dim=1).argmax(dim=1)


def gather_rows(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[i, index[i]]`` for a (b, w, ...) tensor."""
    rows = torch.arange(values.shape[0], device=values.device)
    return values[rows, index.to(values.device)]


def squeeze_scores(logits: torch.Tensor) -> torch.Tensor:
    """(b, 1) → (b,); (b, k > 1) kept."""
    return logits[:, 0] if logits.dim() == 2 and logits.shape[-1] == 1 else logits


def text_config(config: Any) -> Any:
    """The config a model's text layers use: a multimodal wrapper's ``text_config`` (Gemma 3),
    else ``config`` itself."""
    get = getattr(config, "get_text_config", None)
    found = get() if callable(get) else None
    return found if found is not None else config


def model_device(model: Any) -> torch.device:
    """The device of a module's first parameter (CPU for a module without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
