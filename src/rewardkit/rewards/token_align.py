"""Move token-level rewards from one tokenizer's tokens to another's, by character offsets
(``docs/prm-and-token-rewards.md``).

A reward model and a policy rarely share a tokenizer; token rewards are placed on the scorer's
tokens, each with its ``[start, end)`` character span in the response text
(:class:`~rewardkit.types.TokenScores`). :func:`align_offsets` gives every source token's value to
one target token — the one holding the source token's last character (for an empty span, such as
an end-of-turn token at the end of the text, the character before it) — and sums what lands on
the same target token. A character no target token covers (a space some tokenizers leave out of
their spans) belongs to the nearest target token starting before it. So the total reward of a
response is kept exactly, and a reward arrives at the first target token by which the whole source
token has been generated.

Worked example (pinned in tests): ``"Hello world"`` scored on ``Hel|lo| world`` = (1, 2, 4),
aligned to ``Hello| wor|ld`` gives (3, 0, 4); to ``H|ello world`` it gives (0, 7).
Importing this module imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardkit.types import TokenScores


def align_offsets(
    values: Sequence[float] | np.ndarray,
    src_offsets: Sequence[Sequence[int]] | np.ndarray,
    dst_offsets: Sequence[Sequence[int]] | np.ndarray,
) -> np.ndarray:
    """Values of source tokens summed onto target tokens (see the module docstring).

    ``values`` (T,) with NaN for padding; ``src_offsets`` (T, 2) and ``dst_offsets`` (U, 2)
    character spans (−1 marks padding). Returns (U,) float64; a target token that receives
    nothing gets 0.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    src = np.asarray(src_offsets, dtype=np.int64).reshape(-1, 2)
    dst = np.asarray(dst_offsets, dtype=np.int64).reshape(-1, 2)
    if src.shape[0] != v.shape[0]:
        raise ValueError(f"{v.shape[0]} token values but {src.shape[0]} source offsets")
    keep = ~np.isnan(v) & (src[:, 0] >= 0)
    v, src = v[keep], src[keep]
    dst = dst[dst[:, 0] >= 0]
    out = np.zeros(dst.shape[0], dtype=np.float64)
    if v.size == 0:
        return out
    if dst.shape[0] == 0:
        raise ValueError(
            "the target tokenization has no tokens, so the token rewards have nowhere to go"
        )
    order = np.argsort(dst[:, 0], kind="stable")
    starts = dst[order, 0]
    char = np.where(src[:, 1] > src[:, 0], src[:, 1] - 1, src[:, 0] - 1).clip(min=0)
    target = order[(np.searchsorted(starts, char, side="right") - 1).clip(min=0)]
    np.add.at(out, target, v)
    return out


def token_offsets(tokenizer: Any, text: str) -> np.ndarray:
    """(U, 2) character spans of ``text``'s tokens under a fast tokenizer (no special tokens)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)


def pad_token_rows(rows: Sequence[tuple[np.ndarray, np.ndarray]]) -> TokenScores:
    """(values (T_i,), offsets (T_i, 2)) per row as one :class:`TokenScores`, NaN / −1 padded."""
    t = max((len(v) for v, _ in rows), default=0)
    values = np.full((len(rows), t), np.nan, dtype=np.float32)
    offsets = np.full((len(rows), t, 2), -1, dtype=np.int64)
    for i, (v, o) in enumerate(rows):
        values[i, : len(v)] = v
        offsets[i, : len(v)] = np.asarray(o, dtype=np.int64).reshape(-1, 2)
    return TokenScores(values, offsets)


def align_to(tokens: TokenScores, texts: Sequence[str], tokenizer: Any) -> TokenScores:
    """``tokens`` (token rewards of the responses ``texts``) moved onto ``tokenizer``'s tokens
    of the same texts by :func:`align_offsets`; row sums are kept."""
    if len(texts) != tokens.values.shape[0]:
        raise ValueError(f"{tokens.values.shape[0]} rows of token rewards but {len(texts)} texts")
    rows = []
    for i, text in enumerate(texts):
        dst = token_offsets(tokenizer, text)
        try:
            moved = align_offsets(tokens.values[i], tokens.offsets[i], dst)
        except ValueError as exc:
            raise ValueError(f"response {i}: {exc}") from None
        rows.append((moved, dst))
    return pad_token_rows(rows)


def offsets_of_ids(tokenizer: Any, ids: Sequence[int]) -> tuple[str, np.ndarray]:
    """(text, (L, 2) spans) of a sequence of token ids a policy generated.

    The text is ``tokenizer.decode(ids)``. When the fast tokenizer re-encodes that text to the
    same ids, its own offsets are used; otherwise each token's span is read from the lengths of
    the decoded prefixes (a token that completes no character, such as the first byte of a
    multi-byte character, gets an empty span)."""
    ids = [int(i) for i in ids]
    text = tokenizer.decode(ids)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if list(enc["input_ids"]) == ids:
        return text, np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    ends = [len(tokenizer.decode(ids[: k + 1])) for k in range(len(ids))]
    starts = [0, *ends[:-1]]
    spans = np.array([[min(s, e), e] for s, e in zip(starts, ends, strict=True)], dtype=np.int64)
    return text, spans.reshape(-1, 2)
