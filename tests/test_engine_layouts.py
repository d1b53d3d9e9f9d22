"""The shared-prompt and packed layouts give the padded layout's scores (issue 6)."""

from __future__ import annotations

import numpy as np
import pytest

from rewardkit.engine.layout import (
    attention_cost,
    attention_width,
    pack_rows,
    plan_shared_batches,
    prefix_groups,
    shared_tokens,
)
from rewardkit.registry import load_reward
from rewardkit.types import Query, user
from train_helpers import tiny_bert, tiny_llama

# -- pure planning ------------------------------------------------------------------------------


def test_prefix_groups_find_per_prompt_groups_under_a_shared_template():
    header = list(range(100, 120))  # 20 tokens every row shares (a judge's template)
    p1, p2 = list(range(200, 240)), list(range(300, 330))
    rows = [
        header + p1 + [1, 2, 3],
        header + p2 + [4, 5],
        header + p1 + [6, 7],
        header + p2 + [8, 9, 10],
        header + p1 + [11],
        [9, 9, 9],
    ]
    groups, singles = prefix_groups(rows, min_prefix=16)
    by_rows = {tuple(sorted(g.rows)): g.prefix for g in groups}
    # One group per prompt (saves 2·60 + 1·50 = 170 tokens), not one template group (saves 5·20).
    assert by_rows == {(0, 2, 4): 60, (1, 3): 50}
    assert singles == [5]
    assert shared_tokens(rows, groups) == sum(map(len, rows)) - 2 * 60 - 50


def test_prefix_group_leaves_every_row_a_token_of_its_own():
    rows = [[1] * 20, [1] * 20 + [2, 3], [1] * 20 + [4]]
    groups, _ = prefix_groups(rows, min_prefix=4)
    for g in groups:
        assert all(g.prefix <= len(rows[r]) - 1 for r in g.rows)
    # Identical rows group too, keeping their last token apart.
    groups, singles = prefix_groups([[5] * 30, [5] * 30], min_prefix=4)
    assert [(g.prefix, sorted(g.rows)) for g in groups] == [(29, [0, 1])] and singles == []


def test_no_groups_below_min_prefix():
    groups, singles = prefix_groups([[1, 2, 3, 4], [1, 2, 3, 5]], min_prefix=16)
    assert groups == [] and singles == [0, 1]


def test_shared_batches_cover_every_row_once_under_the_budget():
    rng = np.random.default_rng(0)
    rows, truth = [], []
    for g in range(30):
        prefix = [1000 + g, *rng.integers(0, 50, size=int(rng.integers(20, 80))).tolist()]
        for _ in range(int(rng.integers(2, 9))):
            rows.append(prefix + rng.integers(50, 99, size=int(rng.integers(1, 40))).tolist())
            truth.append(g)
    groups, singles = prefix_groups(rows, min_prefix=16)
    assert singles == []
    assert {frozenset(g.rows) for g in groups} == {
        frozenset(i for i, t in enumerate(truth) if t == g) for g in range(30)
    }
    for overhead in (0, 64):
        batches = plan_shared_batches(
            rows, groups, token_budget=600, max_batch_size=64, batch_overhead=overhead
        )
        seen = [r for b in batches for _, members in b for r in members]
        assert sorted(seen) == list(range(len(rows)))
        for b in batches:
            members = [(groups[g].prefix, r) for g, ms in b for r in ms]
            prefixes = sum(groups[g].prefix for g, _ in b)
            suffix = max(len(rows[r]) - p for p, r in members)
            assert len(members) == 1 or prefixes + len(members) * suffix <= 600


def test_attention_cost_and_width():
    # SmolLM2-135M: H 576, 30 layers, ~106M non-embedding parameters -> W0 ~ 3,000 tokens.
    w0 = attention_width(576, 30, 106_000_000)
    assert w0 == pytest.approx(2 * 106e6 / (4 * 576 * 30))
    assert attention_cost(4, 100, None) == 400
    assert attention_cost(1, 1000, 1000.0) == pytest.approx(2000)


def test_pack_rows_respects_capacity_and_covers_rows():
    lengths = [300, 200, 200, 90, 50, 700, 10, 1200]
    bins = pack_rows(lengths, capacity=512)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    for b in bins:
        assert len(b) == 1 or sum(lengths[i] for i in b) <= 512


# -- real (tiny) models: scores equal across layouts ----------------------------------------------


def _queries() -> list[Query]:
    prompts = [
        "Explain in detail why the sky looks blue on a clear day, and what changes at sunset.",
        "Write a short poem about the sea, with four lines and a rhyme.",
        "What is 17 times 23? Show the steps.",
    ]
    answers = [
        "Because of Rayleigh scattering.",
        "Short light scatters more, so blue fills the sky; at sunset the path is longer.",
        "I am not sure.",
        "The answer is 391, since 17 * 23 = 17 * 20 + 17 * 3 = 340 + 51.",
    ]
    out = [Query(prompt=[user(p)], response=a) for p in prompts for a in answers]
    out.append(Query(prompt=[user("Hi")], response="Hello! How can I help you today?"))
    return out


def _scores(spec: str, layout: str, queries: list[Query], **extra) -> tuple[np.ndarray, dict]:
    r = load_reward(
        spec,
        engine_defaults={"progress": False, "layout": layout, "min_shared_prefix": 4, **extra},
    )
    full = r.score_full(queries)
    return full.scores, dict(full.stats)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    base = tmp_path_factory.mktemp("layout_models")
    return {
        "llama_cls": tiny_llama(base / "llama_cls"),
        "llama_lm": tiny_llama(base / "llama_lm", causal=True),
        "bert": tiny_bert(base / "bert"),
    }


@pytest.mark.parametrize(
    "kind,spec",
    [
        ("llama_cls", "classifier:{}"),
        ("llama_lm", "judge:{}"),
        ("llama_lm", "judge-rating:{}"),
        ("llama_lm", "dpo:{}"),
    ],
)
@pytest.mark.parametrize("layout", ["shared", "packed"])
def test_decoder_layouts_equal_padded_scores(models, kind, spec, layout):
    queries = _queries()
    spec = spec.format(models[kind])
    plain, _ = _scores(spec, "padded", queries)
    other, stats = _scores(spec, layout, queries, pack_length=200)
    assert stats["layout"] == layout
    np.testing.assert_allclose(other, plain, atol=1e-4, rtol=0)
    if layout == "shared":
        assert stats["model_tokens"] < stats["tokens"]  # prompts really ran once


def test_bert_packs_but_does_not_share(models):
    queries = _queries()
    spec = f"classifier:{models['bert']}"
    plain, _ = _scores(spec, "padded", queries)
    packed, stats = _scores(spec, "packed", queries, pack_length=128)
    assert stats["layout"] == "packed"
    np.testing.assert_allclose(packed, plain, atol=1e-4, rtol=0)
    _, stats = _scores(spec, "shared", queries)
    assert stats["layout"] == "padded"  # an encoder sees the response in the prompt's states


def test_auto_shares_when_it_saves_tokens(models):
    queries = _queries()
    # Costed without the CPU's measured per-unit overhead, sharing these prompts is cheaper.
    _, stats = _scores(f"judge:{models['llama_lm']}", "auto", queries, shared_overhead=0.0)
    assert stats["layout"] == "shared"
    distinct = [Query(prompt=[user(f"question number {i} " * 3)], response="ok") for i in range(5)]
    _, stats = _scores(f"judge:{models['llama_lm']}", "auto", distinct, min_shared_prefix=64)
    assert stats["layout"] == "padded"


def test_batch_overhead_cuts_trade_padding_for_launches():
    from rewardkit.engine.batching import padded_tokens, plan_batches

    lengths = [500, 490, 480, 100, 90, 80, 20, 10]
    greedy = plan_batches(lengths, token_budget=100_000, max_batch_size=64)
    assert greedy == [list(range(8))]  # one batch, every row padded to 500
    cut = plan_batches(lengths, token_budget=100_000, max_batch_size=64, batch_overhead=50)
    # 3·500 + 3·100 + 2·20 + 3·50 = 1990 beats every other split, e.g. one batch (4050).
    assert cut == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert padded_tokens(lengths, cut) == 1840
    # The budget still binds: no batch over 1000 padded tokens.
    tight = plan_batches(lengths, token_budget=1000, max_batch_size=64, batch_overhead=50)
    assert all(len(b) * max(lengths[i] for i in b) <= 1000 for b in tight)
    assert sorted(i for b in tight for i in b) == list(range(8))
