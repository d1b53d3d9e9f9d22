"""Mask-free packed and shared-prefix attention equals the model's own plain forward (fp32, 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rewardkit.engine import attention, cuda_attention, execute

CPU = torch.device("cpu")


def _body(kind: str, attn: str = "sdpa") -> torch.nn.Module:
    import transformers

    common = {"vocab_size": 97, "hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 64}
    if kind == "llama":
        cfg = transformers.LlamaConfig(**common, num_attention_heads=4, num_key_value_heads=2)
        cls = transformers.LlamaModel
    elif kind == "qwen2":
        cfg = transformers.Qwen2Config(**common, num_attention_heads=4, num_key_value_heads=1)
        cls = transformers.Qwen2Model
    elif kind == "neox":
        cfg = transformers.GPTNeoXConfig(**common, num_attention_heads=4, rotary_pct=0.5)
        cls = transformers.GPTNeoXModel
    else:
        cfg = transformers.BertConfig(**common, num_attention_heads=4)
        cls = transformers.BertModel
    cfg._attn_implementation = attn
    torch.manual_seed(0)
    return cls(cfg).eval()


def _rows(seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, 97, size=int(n)).tolist() for n in (9, 23, 4, 17, 31, 1, 12)]


def _plain(body: torch.nn.Module, row: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return body(input_ids=torch.tensor([row])).last_hidden_state[0]


def _check(body, rows, hidden) -> None:
    for j, row in enumerate(rows):
        want = _plain(body, row)
        got = hidden[j, : len(row)]
        assert torch.allclose(got, want, atol=1e-4), (j, float((got - want).abs().max()))


def _no_dense_masks(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a dense mask was built")

    monkeypatch.setattr(execute, "_as_mask", refuse)


@pytest.mark.parametrize("kind", ["llama", "qwen2", "neox", "bert"])
def test_packed_without_masks_equals_plain_forward(kind, monkeypatch):
    body = _body(kind)
    rows = _rows()
    packs = [[rows[0], rows[1], rows[5]], [rows[2], rows[3]], [rows[4]], [rows[6]]]
    order = [0, 1, 5, 2, 3, 4, 6]
    _no_dense_masks(monkeypatch)
    with torch.inference_mode():
        hidden = execute.packed_hidden(body, packs, None, 0, kind != "bert", CPU)
    assert attention.enabled(body)
    _check(body, [rows[i] for i in order], hidden)


@pytest.mark.parametrize("kind", ["llama", "qwen2", "neox"])
def test_shared_prefix_without_masks_equals_plain_forward(kind, monkeypatch):
    body = _body(kind)
    rng = np.random.default_rng(1)
    p1, p2 = rng.integers(1, 97, 20).tolist(), rng.integers(1, 97, 7).tolist()
    rows = [[*p1, 5, 6, 7], [*p1, 8], [*p2, 9, 10, 11, 12, 13], [*p1, 3, 4], [*p2, 2]]
    members = [(20, rows[0]), (20, rows[1]), (7, rows[2]), (20, rows[3]), (7, rows[4])]
    _no_dense_masks(monkeypatch)
    with torch.inference_mode():
        hidden = execute.shared_prefix_hidden(body, members, 0, CPU)
    assert attention.enabled(body)
    _check(body, rows, hidden)


def test_padded_batches_through_a_switched_model_are_unchanged():
    body = _body("llama")
    rows = _rows(2)
    ids, mask, _ = execute.pad_rows(rows, None, 0)
    with torch.inference_mode():
        before = body(input_ids=ids, attention_mask=mask).last_hidden_state
        assert attention.enable(body, CPU)
        after = body(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(before, after)


def test_eager_models_keep_the_dense_fallback():
    body = _body("llama", attn="eager")
    assert not attention.enable(body, CPU)
    rows = _rows(3)
    with torch.inference_mode():
        hidden = execute.packed_hidden(body, [[rows[0], rows[1]], [rows[2]]], None, 0, True, CPU)
    assert not attention.enabled(body)
    _check(body, rows[:3], hidden)


def test_merge_attention_is_attention_over_the_union():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 11, 8), torch.randn(2, 3, 11, 8)
    scores = q @ k.transpose(-1, -2) / 8**0.5

    def part(s, vv):
        return torch.softmax(s, -1) @ vv, torch.logsumexp(s, -1)

    oa, la = part(scores[..., :4], v[..., :4, :])
    ob, lb = part(scores[..., 4:], v[..., 4:, :])
    whole, _ = part(scores, v)
    assert torch.allclose(cuda_attention.merge_attention(oa, la, ob, lb), whole, atol=1e-6)
    # A part with no keys at all (log-sum-exp −inf) contributes nothing.
    empty = torch.full_like(la, -torch.inf)
    assert torch.allclose(cuda_attention.merge_attention(oa, la, ob * 0, empty), oa, atol=1e-6)


def test_embedded_smollm2_scorer_layouts_equal_padded_and_its_own_forward():
    from rewardkit.registry import load_reward
    from rewardkit.types import Query, user

    prompt = [user("Explain in detail why the sky looks blue on a clear day, and at sunset.")]
    answers = ["Rayleigh scattering.", "Short light scatters more; at sunset the path is longer."]
    queries = [Query(prompt=prompt, response=a) for a in answers]
    queries.append(Query(prompt=[user("What is 17 times 23?")], response="391."))
    padded = load_reward(
        "classifier:smollm2", engine_defaults={"progress": False, "layout": "padded"}
    )
    want = padded.score(queries)
    rows = padded.encode(queries)
    with torch.inference_mode():
        own = [
            float(padded.model(input_ids=torch.tensor([r.input_ids])).logits[0, 0]) for r in rows
        ]
    np.testing.assert_allclose(want, own, atol=1e-4, rtol=0)
    for layout in ("packed", "shared"):
        twin = padded.engine_variant(layout=layout, min_shared_prefix=4)
        run = twin.score_full(queries)
        assert run.stats["layout"] == layout
        assert attention.enabled(twin.engine.adapter.backbone())
        np.testing.assert_allclose(run.scores, want, atol=1e-4, rtol=0)
        # The dense-mask fallback, asked for by name, gives the same scores.
        dense = padded.engine_variant(layout=layout, min_shared_prefix=4, attention="dense")
        np.testing.assert_allclose(dense.score(queries), want, atol=1e-4, rtol=0)


def test_attention_setting_is_checked():
    from rewardkit.engine.config import EngineConfig

    assert EngineConfig(attention="dense").attention == "dense"
    with pytest.raises(ValueError, match="attention must be one of auto, dense"):
        EngineConfig(attention="flash")


def _reference_varlen(q, k, v, cu_q, cu_k, max_q, max_k, scale, causal):
    """varlen_attn's contract on the CPU, segment by segment (bottom-right causal alignment)."""
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    out = torch.zeros_like(q)
    lse = torch.zeros(q.shape[:2])
    for i in range(len(cu_q) - 1):
        a, b, c, d = int(cu_q[i]), int(cu_q[i + 1]), int(cu_k[i]), int(cu_k[i + 1])
        s = torch.einsum("qhd,khd->hqk", q[a:b], k[c:d]) * scale
        if causal:
            allowed = torch.ones(b - a, d - c, dtype=torch.bool).tril(diagonal=(d - c) - (b - a))
            s = s.masked_fill(~allowed, -torch.inf)
        out[a:b] = torch.einsum("hqk,khd->qhd", torch.softmax(s, -1), v[c:d])
        lse[a:b] = torch.logsumexp(s, -1).transpose(0, 1)
    return out, lse


@pytest.mark.parametrize("kind", ["llama", "bert"])
def test_the_cuda_varlen_path_on_a_reference_kernel(kind, monkeypatch):
    """The CUDA branch (flat tokens, cumulative lengths, cascade merge) with varlen_attn replaced
    by a per-segment reference, so its indexing is tested where no GPU is lent."""
    body = _body(kind)
    rows = _rows(4)
    monkeypatch.setattr(attention, "uses_varlen", lambda device: True)
    monkeypatch.setattr(cuda_attention, "varlen", _reference_varlen)
    _no_dense_masks(monkeypatch)
    with torch.inference_mode():
        hidden = execute.packed_hidden(
            body, [[rows[0], rows[1]], [rows[2], rows[3], rows[4]]], None, 0, kind != "bert", CPU
        )
        _check(body, rows[:5], hidden)
        if kind == "bert":
            return
        prefix = rows[4][:20]
        shared = [[*prefix, 7, 8, 9], [*prefix, 5], [*rows[1][:9], 3, 3]]
        members = [(20, shared[0]), (20, shared[1]), (9, shared[2])]
        hidden = execute.shared_prefix_hidden(body, members, 0, CPU)
    _check(body, shared, hidden)


@pytest.mark.parametrize("mask_free", [True, False])
def test_shared_prefix_in_sub_batches_equals_plain_forward(mask_free, monkeypatch):
    """Prefixes and suffixes cut into length-sorted sub-batches (a sub-batch holding only some
    prefixes, a prefix whose rows are not adjacent) still give each row its own forward."""
    body = _body("llama")
    rng = np.random.default_rng(5)
    p1, p2, p3 = (rng.integers(1, 97, n).tolist() for n in (25, 9, 14))
    rows = [
        [*p1, *rng.integers(1, 97, 12).tolist()],
        [*p2, 4],
        [*p1, 6, 7],
        [*p3, *rng.integers(1, 97, 8).tolist()],
        [*p2, *rng.integers(1, 97, 10).tolist()],
        [*p1, 9],
    ]
    members = [
        (25, rows[0]),
        (9, rows[1]),
        (25, rows[2]),
        (14, rows[3]),
        (9, rows[4]),
        (25, rows[5]),
    ]
    cuts: list[list[int]] = []

    def pairs_by_length(lengths: list[int]) -> list[list[int]]:
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        parts = [order[i : i + 2] for i in range(0, len(order), 2)]
        cuts.append(lengths)
        return parts

    if mask_free:
        _no_dense_masks(monkeypatch)
    with torch.inference_mode():
        hidden = execute.shared_prefix_hidden(
            body, members, 0, CPU, pairs_by_length, mask_free=mask_free
        )
    assert len(cuts) == 2  # the prefixes were cut, then the suffixes
    _check(body, rows, hidden)


def test_cpu_cascade_equals_attention_over_prefix_and_own_tokens():
    """The CPU cascade (one causal call, one unmasked call per prefix with rows and shared
    key/value heads folded into the queries, a log-sum-exp merge) against plain softmax attention
    over each row's prefix keys and its own causal keys, grouped-query heads included."""
    from rewardkit.engine import cpu_attention

    torch.manual_seed(0)
    heads, kv, d, width = 4, 2, 8, 6
    prefix_len, suffix_len, owner = [7, 3], [6, 2, 4], [0, 1, 0]
    pk, pv = torch.randn(2, kv, 7, d), torch.randn(2, kv, 7, d)
    q = torch.randn(3, heads, width, d)
    k, v = torch.randn(3, kv, width, d), torch.randn(3, kv, width, d)
    groups = [(7, 6, (0, 2)), (3, 2, (1,))]
    got = cpu_attention.shared_prefix_attention(q, k, v, pk, pv, groups, d**-0.5)
    assert got.shape == (3, width, heads, d) and got.is_contiguous()
    for r in range(3):
        p, n = prefix_len[owner[r]], suffix_len[r]
        keys = torch.cat([pk[owner[r], :, :p], k[r, :, :n]], 1).repeat_interleave(2, 0)
        vals = torch.cat([pv[owner[r], :, :p], v[r, :, :n]], 1).repeat_interleave(2, 0)
        scores = q[r, :, :n] @ keys.transpose(-1, -2) * d**-0.5
        causal = torch.ones(n, p + n, dtype=torch.bool).tril(diagonal=p)
        want = torch.softmax(scores.masked_fill(~causal, -torch.inf), -1) @ vals
        assert torch.allclose(got[r, :n].transpose(0, 1), want, atol=1e-5)
