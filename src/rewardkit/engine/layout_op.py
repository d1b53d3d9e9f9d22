"""The mask-free layouts' attention as one custom operator, so compiled blocks run every layout.

A compiled transformer block (:mod:`rewardkit.engine.compiling`) cannot trace what the packed and
shared layouts do per call: the layout lives in a context variable (dynamo cannot read one: a
graph break in every block), the shared cascade loops over a batch's prefixes in Python, and it
picks the prefix keys of its layer by the attention module's ``layer_idx``, a Python int that
dynamo would bake into the graph (one graph per layer, past dynamo's recompile limit of 8).
Here all of that runs inside ``rewardkit::layout_attention``, which dynamo and inductor treat as
an opaque call: a block compiles to one graph whatever the layout, fusing the norms, rotary
embeddings and activations around it, and the operator reads the layout and its layer index
eagerly. The layer index reaches it as a one-element tensor buffer of the attention module
(:func:`tag_layers`), which, unlike an int attribute, is a graph input shared by all blocks.

The prefix pass of the shared layout runs through the same operator as a plain causal pass
whose keys and values are copied, layer by layer, into the tensors the suffix pass reads
(:class:`Capture`), instead of a transformers key/value cache (whose ``update`` also indexes by
``layer_idx``). Inference only: gradients take :func:`rewardkit.engine.attention.attention_forward`'s
plain path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

#: The buffer holding an attention module's layer index (not saved with the model).
LAYER_BUFFER = "rewardkit_layer_index"


@dataclass
class Capture:
    """A causal pass over right-padded rows whose per-layer keys and values are kept.

    Row ``i`` of the pass is row ``index[i]`` of ``layers[l]`` = (keys, values), each
    ``(rows, kv heads, width, d)``, allocated at the first layer call that needs them.
    """

    rows: int
    width: int
    index: torch.Tensor
    layers: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def keep(self, layer: int, key: torch.Tensor, value: torch.Tensor) -> None:
        """Copy one layer's keys and values (n, kv heads, L, d) into their rows."""
        if layer not in self.layers:
            self.layers[layer] = (
                key.new_zeros((self.rows, key.shape[1], self.width, key.shape[3])),
                value.new_zeros((self.rows, value.shape[1], self.width, value.shape[3])),
            )
        k_all, v_all = self.layers[layer]
        k_all[self.index, :, : key.shape[2]] = key
        v_all[self.index, :, : value.shape[2]] = value

    def ordered(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The kept (keys, values) in layer order."""
        return [self.layers[i] for i in sorted(self.layers)]


def tag_layers(body: torch.nn.Module) -> None:
    """Give each attention module of ``body`` (a module with an int ``layer_idx``) its index as a
    non-persistent one-element buffer, once."""
    for module in body.modules():
        layer = getattr(module, "layer_idx", None)
        if isinstance(layer, int) and not hasattr(module, LAYER_BUFFER):
            device = next((p.device for p in module.parameters()), torch.device("cpu"))
            index = torch.tensor([layer], dtype=torch.long, device=device)
            module.register_buffer(LAYER_BUFFER, index, persistent=False)


def layer_index(module: torch.nn.Module) -> torch.Tensor | None:
    """The layer-index buffer :func:`tag_layers` gave ``module``, if any."""
    found = getattr(module, LAYER_BUFFER, None)
    return found if isinstance(found, torch.Tensor) else None


@torch.library.custom_op("rewardkit::layout_attention", mutates_args=())
def layout_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    layer: torch.Tensor,
    scale: float,
    is_causal: bool,
) -> torch.Tensor:
    """The active layout's attention of one layer: (b, heads, q, d) → (b, q, heads, d), contiguous
    (:func:`rewardkit.engine.attention.layout_attention_eager`)."""
    from rewardkit.engine.attention import layout_attention_eager

    out = layout_attention_eager(query, key, value, int(layer.reshape(-1)[0]), scale, is_causal)
    return out.contiguous()


@layout_attention.register_fake
def _layout_attention_shape(query: torch.Tensor, *_: object) -> torch.Tensor:
    """The operator's output for tracing: (b, q, heads, d) of the (b, heads, q, d) query."""
    b, heads, q, d = query.shape
    return query.new_empty((b, q, heads, d))
