"""Compiled blocks serve the shared and packed layouts through one opaque attention operator
(rewardkit.engine.layout_op): one graph for every layer, scores equal to eager ones, the prefix
pass's kept keys and values equal to a transformers cache's, and the operator's plain path equal
to the model's own attention."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from rewardkit.engine import attention, compiling, execute, layout_op
from rewardkit.registry import load_reward
from rewardkit.types import Query, user
from train_helpers import tiny_llama_config

LAYERS = 10  # past dynamo's recompile limit (8): a graph per layer would warn


@pytest.fixture(scope="module")
def deep_model(tmp_path_factory):
    import transformers

    from rewardkit.models.loading import resolve_model

    path = tmp_path_factory.mktemp("deep") / "cls"
    tok = transformers.AutoTokenizer.from_pretrained(resolve_model("smollm2").source)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    cfg = tiny_llama_config(
        tok, num_hidden_layers=LAYERS, max_position_embeddings=256, num_labels=1
    )
    torch.manual_seed(3)
    transformers.LlamaForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(autouse=True)
def _own_records(tmp_path, monkeypatch):
    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(compiling, "_WARNED", set())


def _queries() -> list[Query]:
    prompts = ["Explain why the sky is blue, in two sentences, for a child.", "Name a prime."]
    answers = ["Light scatters.", "Seven, since only 1 and 7 divide it.", "ok", "Blue light bends."]
    return [Query(prompt=[user(p)], response=a) for p in prompts for a in answers]


def _reward(model, **extra):
    options = {"progress": False, "dtype": "float32", "min_shared_prefix": 4, **extra}
    return load_reward(f"classifier:{model}", engine_defaults=options)


@pytest.mark.slow  # compiles a 10-block model once (~10-20 s)
def test_a_ten_block_model_compiled_by_a_padded_run_scores_every_layout_in_few_graphs(
    deep_model,
):
    from torch._dynamo.utils import counters

    queries = _queries()
    eager = _reward(deep_model, layout="shared", compile=False)
    adapter = eager.engine.adapter
    plain = np.array([float(adapter.plain(row)[0]) for row in eager.encode(queries)])
    torch._dynamo.reset()
    counters.clear()
    reward = _reward(deep_model, layout="padded", compile=True, max_batch_size=3)
    runs = {"padded": reward.score_full(queries)}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for layout in ("shared", "packed"):
            runs[layout] = reward.engine_variant(layout=layout).score_full(queries)
        dense = reward.engine_variant(layout="shared", attention="dense").score_full(queries)
    for layout, run in runs.items():
        assert run.stats["layout"] == layout and run.stats["compile"] == "compiled", layout
        np.testing.assert_allclose(run.scores, plain, atol=1e-4, rtol=0, err_msg=layout)
    # On dense masks (a transformers cache) the compiled blocks step aside: eager, same scores.
    assert dense.stats["layout"] == "shared" and dense.stats["compile"] == "eager"
    np.testing.assert_allclose(dense.scores, plain, atol=1e-4, rtol=0)
    assert not [w for w in seen if "recompile" in str(w.message).lower()]
    # Ten blocks, three layouts, a few first shapes: a handful of graphs, not one per block
    # (that stops at dynamo's limit of 8 with a frame it refuses; its warning goes to logging).
    assert counters["stats"]["unique_graphs"] <= 5
    assert counters["frames"]["total"] == counters["frames"]["ok"]


def test_kept_prefix_keys_and_values_equal_a_transformers_cache(deep_model):
    import transformers

    body = transformers.AutoModel.from_pretrained(deep_model, attn_implementation="sdpa").eval()
    cpu = torch.device("cpu")
    prefixes = [[5, 9, 11, 40, 41, 42], [7, 8], [3, 3, 3, 9]]
    plan = lambda lengths: [[0, 2], [1]]  # noqa: E731 - two sub-batches, out of order
    with torch.inference_mode():
        hidden_c, layers_c, like = execute.run_prefixes(body, prefixes, 0, cpu, plan)
        assert attention.enable(body, cpu)
        hidden_k, layers_k, none = execute.run_prefixes(body, prefixes, 0, cpu, plan, True)
    assert like is not None and none is None
    assert len(layers_k) == len(layers_c) == LAYERS
    torch.testing.assert_close(hidden_k, hidden_c, atol=1e-6, rtol=0)
    for (kc, vc), (kk, vk) in zip(layers_c, layers_k, strict=True):
        for i, p in enumerate(prefixes):  # real positions only: padding is never read
            torch.testing.assert_close(kk[i, :, : len(p)], kc[i, :, : len(p)], atol=1e-6, rtol=0)
            torch.testing.assert_close(vk[i, :, : len(p)], vc[i, :, : len(p)], atol=1e-6, rtol=0)


def test_the_operator_without_a_layout_is_the_models_own_attention(deep_model, monkeypatch):
    """Another thread's layout makes this thread's maskless passes take the operator; with no
    layout of its own it computes plain causal attention, equal to the sdpa path."""
    import transformers

    body = transformers.AutoModel.from_pretrained(deep_model, attn_implementation="sdpa").eval()
    ids = torch.tensor([[5, 9, 11, 40, 41, 42, 43], [7, 8, 9, 10, 11, 12, 13]])
    with torch.inference_mode():
        expected = body(input_ids=ids, use_cache=False).last_hidden_state
        assert attention.enable(body, torch.device("cpu"))
        calls: list[int] = []
        real = attention.layout_attention_eager

        def counted(*args):
            calls.append(args[3])
            return real(*args)

        monkeypatch.setattr(attention, "layout_attention_eager", counted)
        monkeypatch.setattr(attention, "_any_active", True)  # as if another thread had one
        got = body(input_ids=ids, use_cache=False).last_hidden_state
    assert calls == list(range(LAYERS))  # each layer's own index, through the operator
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_layer_index_buffers_are_not_saved_with_the_model(deep_model, tmp_path):
    import transformers

    body = transformers.AutoModel.from_pretrained(deep_model, attn_implementation="sdpa")
    assert attention.enable(body, torch.device("cpu"))
    tagged = [m for m in body.modules() if layout_op.layer_index(m) is not None]
    assert [int(layout_op.layer_index(m)[0]) for m in tagged] == list(range(LAYERS))
    assert not [k for k in body.state_dict() if layout_op.LAYER_BUFFER in k]
    layout_op.tag_layers(body)  # twice: no second buffer, no error
    body.save_pretrained(tmp_path / "saved")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "saved" / "model.safetensors"), "pt") as saved:
        assert not [k for k in saved.keys() if layout_op.LAYER_BUFFER in k]  # noqa: SIM118
        assert len(list(saved.keys())) > 0


def test_threads_scoring_one_model_in_different_layouts_get_their_own_scores(deep_model):
    """A shared pass in one thread puts every maskless pass of the process on the operator;
    a padded or packed pass in another thread still computes its own layout (its context)."""
    from concurrent.futures import ThreadPoolExecutor

    queries = _queries()
    shared = _reward(deep_model, layout="shared", compile=False, max_batch_size=3)
    variants = [shared.engine_variant(layout=x) for x in ("padded", "packed")] + [shared]
    runs = [v.score_full(queries) for v in variants]
    assert [r.stats["layout"] for r in runs] == ["padded", "packed", "shared"]
    alone = [r.scores for r in runs]

    def rounds(i: int) -> list[np.ndarray]:
        return [variants[i].score_full(queries).scores for _ in range(6)]

    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(rounds, range(3)))
    for expected, got in zip(alone, together, strict=True):
        for scores in got:
            np.testing.assert_allclose(scores, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(alone[0], alone[2], atol=1e-4, rtol=0)
