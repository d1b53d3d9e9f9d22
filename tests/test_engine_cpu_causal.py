"""The blocked causal attention for bfloat16 on the CPU (engine/cpu_causal.py) equals attention:
against a float32 computation it is as close as SDPA's own bfloat16 flash kernel, on every
block boundary, head grouping and input layout; compiled graphs call it as one operator; the
engine's padded and packed layouts use it and score as the flash kernel did."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rewardkit.engine import attention, cpu_causal, execute

CPU = torch.device("cpu")


def _inputs(n: int, heads: int, kv_heads: int, length: int, d: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, heads, length, d, generator=g) * 3  # scaled scores up to ~30, as real
    k = torch.randn(n, kv_heads, length, d, generator=g) * 3
    v = torch.randn(n, kv_heads, length, d, generator=g)
    return q, k, v


def _reference(q, k, v, scale):
    rep = q.shape[1] // k.shape[1]
    out = F.scaled_dot_product_attention(
        q.float(),
        k.float().repeat_interleave(rep, 1),
        v.float().repeat_interleave(rep, 1),
        is_causal=True,
        scale=scale,
    )
    return out.transpose(1, 2)


def _flash_bf16(q, k, v, scale):
    rep = q.shape[1] // k.shape[1]
    out = F.scaled_dot_product_attention(
        q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), is_causal=True, scale=scale
    )
    return out.transpose(1, 2)


@pytest.mark.parametrize(
    ("n", "heads", "kv_heads", "length", "d"),
    [
        (2, 9, 3, 1, 64),  # one token
        (3, 9, 3, 5, 64),
        (2, 4, 4, 32, 32),  # exactly one block, no grouping
        (2, 4, 4, 33, 32),  # one past a block
        (4, 9, 3, 129, 64),  # past the short-row block size
        (1, 8, 2, 300, 128),
        (1, 6, 1, 1100, 64),  # long-row blocks, one key/value head for all
    ],
)
def test_blocked_attention_is_as_close_to_float32_as_the_flash_kernel(
    n, heads, kv_heads, length, d
):
    q, k, v = _inputs(n, heads, kv_heads, length, d)
    scale = d**-0.5
    want = _reference(q, k, v, scale)
    qb, kb, vb = q.bfloat16(), k.bfloat16(), v.bfloat16()
    got = cpu_causal.causal_attention(qb, kb, vb, scale)
    flash = _flash_bf16(qb, kb, vb, scale)
    assert got.shape == (n, length, heads, d) and got.dtype == torch.bfloat16
    assert got.is_contiguous()
    err = float((got.float() - want).abs().max())
    err_flash = float((flash.float() - want).abs().max())
    # the flash kernel's own bfloat16 error, with room for one more rounding of the output
    assert err <= 1.5 * err_flash + 1e-2, (err, err_flash)


def test_each_position_sees_only_itself_and_earlier_keys():
    """A value planted after position t never reaches t's output (causality on every block)."""
    n, heads, length, d = 1, 2, 70, 16
    q, k, v = (x.bfloat16() for x in _inputs(n, heads, heads, length, d, seed=1))
    base = cpu_causal.causal_attention(q, k, v, 0.25)
    for t in (0, 31, 32, 33, 63, 64, 68):
        v2, k2 = v.clone(), k.clone()
        v2[:, :, t + 1 :] += 100.0
        moved = cpu_causal.causal_attention(q, k2, v2, 0.25)
        assert torch.equal(moved[:, : t + 1], base[:, : t + 1]), t
        if t + 1 < length:
            assert not torch.equal(moved[:, t + 1 :], base[:, t + 1 :]), t


def test_strided_inputs_as_transformers_passes_them_give_the_same_output():
    q, k, v = (x.bfloat16() for x in _inputs(3, 9, 3, 77, 64, seed=2))
    # transformers' projections are (n, L, heads, d) in memory, viewed as (n, heads, L, d)
    strided = [x.transpose(1, 2).contiguous().transpose(1, 2) for x in (q, k, v)]
    assert not strided[0].is_contiguous()
    assert torch.equal(
        cpu_causal.causal_attention(*strided, 0.125), cpu_causal.causal_attention(q, k, v, 0.125)
    )


def test_a_compiled_graph_calls_the_operator_for_every_length():
    q0, k0, v0 = (x.bfloat16() for x in _inputs(2, 9, 3, 200, 64, seed=3))
    fn = torch.compile(
        lambda q, k, v: cpu_causal.causal_attention_op(q, k, v, 0.125) * 2, dynamic=True
    )
    for length in (10, 70, 200):
        q, k, v = q0[:, :, :length], k0[:, :, :length], v0[:, :, :length]
        assert torch.equal(fn(q, k, v), cpu_causal.causal_attention(q, k, v, 0.125) * 2)


class _Module(torch.nn.Module):
    def __init__(self, causal: bool) -> None:
        super().__init__()
        self.is_causal = causal


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, True),
        ({"dtype": torch.float32}, False),  # float32 keeps the flash kernel
        ({"dtype": torch.float16}, False),
        ({"mask": True}, False),
        ({"length": 1}, False),  # one query: no causal call
        ({"length": 512}, True),
        ({"length": 513}, False),  # long rows keep the flash kernel
        ({"keys": 9}, False),  # a key/value cache longer than the queries
        ({"causal": False}, False),  # an encoder
        ({"kwargs": {"softcap": 30.0}}, False),
        ({"kwargs": {"s_aux": torch.zeros(4)}}, False),
        ({"kwargs": {"is_causal": False}}, False),
        ({"dropout": 0.1}, False),
        ({"kv_heads": 3}, False),  # 4 query heads are no whole groups of 3
        ({"grad": True}, False),  # a backward pass needs SDPA's autograd
        ({"not_chosen": True}, False),  # this machine runs the flash kernel faster
    ],
)
def test_applies_only_to_plain_causal_bfloat16_self_attention(change, expected, monkeypatch):
    dtype = change.get("dtype", torch.bfloat16)
    length = change.get("length", 6)
    q = torch.zeros(1, 4, length, 8, dtype=dtype, requires_grad=change.get("grad", False))
    k = torch.zeros(1, change.get("kv_heads", 2), change.get("keys", length), 8, dtype=dtype)
    mask = torch.ones(1, 1, length, length, dtype=torch.bool) if change.get("mask") else None
    module = _Module(change.get("causal", True))
    chosen = {(4, 2, 8): not change.get("not_chosen", False), (4, 3, 8): True}
    monkeypatch.setattr(cpu_causal, "_USE", chosen)
    got = cpu_causal.applies(
        module, q, k, mask, change.get("dropout", 0.0), change.get("kwargs", {})
    )
    assert got is expected


@pytest.mark.parametrize(
    ("length", "block"), [(1, 32), (128, 32), (129, 64), (1024, 64), (1025, 128)]
)
def test_query_block_sizes(length, block):
    assert cpu_causal.query_block(length) == block


def _tiny_llama() -> torch.nn.Module:
    import transformers

    cfg = transformers.LlamaConfig(
        vocab_size=97,
        hidden_size=64,
        num_hidden_layers=2,
        intermediate_size=128,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    return transformers.LlamaModel(cfg).eval().to(torch.bfloat16)


def test_padded_and_packed_layouts_run_on_it_and_match_the_flash_kernel(monkeypatch):
    monkeypatch.setenv(cpu_causal.MODE_ENV, "blocked")
    monkeypatch.setattr(cpu_causal, "_USE", {})
    body = _tiny_llama()
    rng = np.random.default_rng(0)
    rows = [rng.integers(1, 97, size=int(n)).tolist() for n in (9, 40, 4, 70, 33)]
    ids, _, _ = execute.pad_rows(rows, None, 0)
    calls = []
    real = cpu_causal.causal_attention

    def spy(q, k, v, scale):
        calls.append(q.shape)
        return real(q, k, v, scale)

    monkeypatch.setattr(cpu_causal, "causal_attention", spy)
    with torch.inference_mode():
        padded = execute.padded_hidden(body, ids)
        assert attention.enabled(body) and len(calls) == 2  # one call per layer
        packed = execute.packed_hidden(body, [rows[:2], rows[2:]], None, 0, True, CPU)
        assert len(calls) > 2  # its length buckets too
        monkeypatch.setattr(cpu_causal, "DTYPES", ())  # back to the flash kernel
        flash = execute.padded_hidden(body, ids)
        plain = [body.float()(input_ids=torch.tensor([r])).last_hidden_state[0] for r in rows]
    for j, row in enumerate(rows):
        want = plain[j]
        a, b, c = (x[j, : len(row)].float() for x in (padded, flash, packed))
        err_flash = float((b - want).abs().max())
        assert float((a - want).abs().max()) <= 1.5 * err_flash + 1e-2, j
        assert float((c - want).abs().max()) <= 1.5 * err_flash + 1e-2, j


def _fresh(monkeypatch, setting: str | None) -> None:
    """A fresh process's choice with ``REWARDKIT_CPU_ATTENTION`` set to ``setting``."""
    monkeypatch.setattr(cpu_causal, "_USE", {})
    if setting is None:
        monkeypatch.delenv(cpu_causal.MODE_ENV, raising=False)
    else:
        monkeypatch.setenv(cpu_causal.MODE_ENV, setting)


@pytest.mark.parametrize(
    ("setting", "used"),
    [(None, False), ("flash", False), ("blocked", True), (" Blocked ", True), ("x", False)],
)
def test_the_blocked_path_is_opt_in(setting, used, monkeypatch):
    _fresh(monkeypatch, setting)
    assert cpu_causal.prepare(9, 3, 64) is used
    assert cpu_causal.prepare(9, 4, 64) is False  # no whole groups of query heads
    # decided once per process: compiled graphs read the decision, not the environment
    monkeypatch.setenv(cpu_causal.MODE_ENV, "flash" if used else "blocked")
    assert cpu_causal.prepare(9, 3, 64) is used


def test_a_switched_bfloat16_body_gets_its_decision_and_a_float32_one_none(monkeypatch):
    _fresh(monkeypatch, "blocked")
    body = _tiny_llama()
    assert attention.enable(body, CPU) and cpu_causal._USE == {(4, 2, 16): True}
    _fresh(monkeypatch, "blocked")
    assert attention.enable(body.float(), CPU) and cpu_causal._USE == {}


def test_by_default_a_bfloat16_padded_run_keeps_the_flash_kernel(monkeypatch):
    _fresh(monkeypatch, None)
    body = _tiny_llama()
    calls = []
    monkeypatch.setattr(cpu_causal, "causal_attention", lambda *a: calls.append(1))
    ids, _, _ = execute.pad_rows([[5, 6, 7, 8], [9, 10]], None, 0)
    with torch.inference_mode():
        execute.padded_hidden(body, ids)
    assert attention.enabled(body) and calls == []
