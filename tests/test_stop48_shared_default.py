"""The shared-prompt layout gives the padded layout's scores on any batch (float32).

``layout="auto"`` picks the shared layout on CPUs without AMX for pairs and best-of-N
(:func:`rewardkit.engine.planning.cpu_shared_overhead`), so every odd batch a user can bring must
score as the padded layout scores it: one prompt shared by many rows next to rows sharing none,
empty / one-token / long responses, duplicate rows, a row whose prompt is another row's whole
text, prefixes at ``min_shared_prefix`` and one below, truncation that keeps different prompt
tails, multi-turn prompts differing in the last turn, emoji and RTL text, groups split across
sub-batches, and any row order. docs/performance.md, "Choosing a layout".
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardkit.engine.adapter import EncodedRow
from rewardkit.engine.runner import Engine
from rewardkit.registry import load_reward
from rewardkit.types import Query, assistant, user
from train_helpers import tiny_llama

TOL = 1e-4
PROMPT = "Explain in detail why the sky looks blue on a clear day, and what changes at sunset."
_LOADED: dict[str, object] = {}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    base = tmp_path_factory.mktemp("shared_default")
    return {"cls": tiny_llama(base / "cls"), "lm": tiny_llama(base / "lm", causal=True)}


def _reward(spec: str, layout: str, options: str = ""):
    """``spec`` loaded with the given layout in float32 (one load per spec and options)."""
    full = f"{spec}?progress=false&layout={layout}&dtype=float32{options}"
    if full not in _LOADED:
        _LOADED[full] = load_reward(full)
    return _LOADED[full]


def _score(spec: str, layout: str, queries: list[Query], options: str = ""):
    out = _reward(spec, layout, options).score_full(queries)
    return np.asarray(out.scores, dtype=np.float64), out


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


def _pair(prompt, *responses: str) -> list[Query]:
    msgs = [user(prompt)] if isinstance(prompt, str) else prompt
    return [Query(prompt=msgs, response=r) for r in responses]


CONVERSATION = [
    user("Hello there, how are you doing today, my friend?"),
    assistant("I am fine, thank you for asking. How can I help?"),
]
BATCHES = {
    "one prompt, many rows, and rows sharing none": [
        *_pair(PROMPT, *[f"answer number {i} " * (1 + i % 4) for i in range(12)]),
        *_pair("Hi", "Hello!"),
        *_pair("What is 2 + 2?", "4"),
    ],
    "empty, one-token and long responses": _pair(PROMPT, "", "a", "word " * 120, "b", ""),
    "duplicate rows": _pair(PROMPT, "same", "same", "same", "other", "other"),
    "a prompt that is another row's whole text": [
        *_pair(PROMPT, "Because of Rayleigh scattering."),
        *_pair([user(PROMPT), assistant("Because of Rayleigh scattering."), user("More?")], "Yes."),
        *_pair(PROMPT, "No idea."),
    ],
    "multi-turn, all but the last turn shared": [
        *_pair([*CONVERSATION, user("Tell me a joke.")], "No.", "Knock knock."),
        *_pair([*CONVERSATION, user("Tell me a story.")], "Once upon a time."),
    ],
    "emoji and right-to-left text": _pair(
        "مرحبا 🌍🔥 שלום " * 4, "👍", "نعم", "\u200fRTL\u200f mark", "\u200d\u200d", "🇺🇸🇫🇷"
    ),
    "one group's suffixes far longer than another's": [
        *_pair(PROMPT, "long " * 150, "longer " * 160),
        *_pair("Write a poem about the sea, four lines, with a rhyme.", "a", "b", "c"),
    ],
}
OPTIONS = {
    "default": "",
    "split across sub-batches": "&token_budget=200&max_batch_size=3",
    "left truncation": "&max_length=48&truncation=left",
    "right truncation": "&max_length=48&truncation=right",
    "dense masks": "&attention=dense",
    "server padding": "&pad_multiple=16",
}


@pytest.mark.parametrize("batch", list(BATCHES))
def test_shared_and_auto_score_as_padded(models, batch):
    spec, queries = f"classifier:{models['cls']}", BATCHES[batch]
    plain, out = _score(spec, "padded", queries, "&min_shared_prefix=4")
    assert out.stats["layout"] == "padded"
    shared, out = _score(spec, "shared", queries, "&min_shared_prefix=4")
    assert out.stats["layout"] == "shared"
    assert out.stats["model_tokens"] < out.stats["tokens"]  # the prompt really ran once
    _close(shared, plain)
    # auto with the no-AMX CPU figure (what a user on such a CPU runs): shared or padded, same
    auto, out = _score(spec, "auto", queries, "&min_shared_prefix=4&shared_overhead=0.05")
    assert out.stats["layout"] in ("shared", "padded")
    _close(auto, plain)


@pytest.mark.parametrize("options", list(OPTIONS))
def test_engine_options_keep_shared_scores(models, options):
    spec = f"classifier:{models['cls']}"
    queries = [
        *BATCHES["one prompt, many rows, and rows sharing none"],
        *BATCHES["empty, one-token and long responses"],
    ]
    extra = "&min_shared_prefix=4" + OPTIONS[options]
    plain, out_p = _score(spec, "padded", queries, extra)
    shared, out = _score(spec, "shared", queries, extra)
    assert out.stats["layout"] == "shared"
    assert out.stats["truncated_rows"] == out_p.stats["truncated_rows"]
    _close(shared, plain)
    if "truncation" in options:
        assert out.stats["truncated_rows"] > 0  # the long rows really lost prompt tokens


def test_pairs_pick_shared_on_a_cpu_without_amx(models):
    """Preference pairs (two responses per prompt) at the no-AMX overhead: auto shares them."""
    spec = f"classifier:{models['cls']}"
    queries = [
        q
        for i in range(6)
        for q in _pair(f"{PROMPT} Question {i}.", f"Chosen answer {i}.", f"Rejected {i}.")
    ]
    plain, _ = _score(spec, "padded", queries)
    auto, out = _score(spec, "auto", queries, "&shared_overhead=0.05")
    assert out.stats["layout"] == "shared"
    _close(auto, plain)


def test_scores_do_not_depend_on_row_order(models):
    spec = f"classifier:{models['cls']}"
    queries = [q for qs in BATCHES.values() for q in qs]
    plain, _ = _score(spec, "padded", queries, "&min_shared_prefix=4&token_budget=400")
    for seed in (0, 1):
        perm = np.random.default_rng(seed).permutation(len(queries))
        got, out = _score(
            spec, "shared", [queries[i] for i in perm], "&min_shared_prefix=4&token_budget=400"
        )
        assert out.stats["layout"] == "shared"
        back = np.empty_like(got)
        back[perm] = got
        _close(back, plain)


@pytest.mark.parametrize("kind", ["judge", "judge-rating", "dpo", "dpo-tokens", "treg"])
def test_language_model_rewards_score_as_padded(models, kind, monkeypatch):
    spec = f"{kind}:{models['lm']}"
    queries = [
        *BATCHES["empty, one-token and long responses"][:4],
        *BATCHES["multi-turn, all but the last turn shared"],
    ]
    plain, ref = _score(spec, "padded", queries, "&min_shared_prefix=4")
    assert ref.stats["layout"] == "padded" and ref.stats["model_tokens"] > 0
    # and every engine run's layout, read where it ran (a composite's members too)
    layouts: list[str] = []
    run = Engine.run

    def spy(self, *args, **kwargs):
        out = run(self, *args, **kwargs)
        layouts.append(out.stats["layout"])
        return out

    monkeypatch.setattr(Engine, "run", spy)
    shared, out = _score(spec, "shared", queries, "&min_shared_prefix=4")
    assert layouts and set(layouts) == {"shared"}
    assert out.stats["layout"] == "shared"  # token rewards report it as the others do
    assert out.stats["model_tokens"] < ref.stats["model_tokens"]  # the prompts ran once
    _close(shared, plain)
    if kind == "dpo-tokens":  # per-token scores too, NaN past each row's length
        _close(out.tokens.values.astype(np.float64), ref.tokens.values.astype(np.float64))


# -- raw token rows: the boundary and a property over odd batches ---------------------------------


def _run_rows(reward, layout: str, seqs: list[list[int]], **config) -> tuple[np.ndarray, str]:
    """Scores of raw token rows (each its own key, so duplicates are computed, not cached)."""
    twin = reward.engine_variant(layout=layout, **config)
    run = twin.engine.run(
        [tuple(s) for s in seqs],
        [str(i) for i in range(len(seqs))],
        lambda items: [EncodedRow(list(x), response_start=len(x) - 1) for x in items],
    )
    return run.values[:, 0].astype(np.float64), run.stats["layout"]


@pytest.mark.parametrize("shared_len,layout", [(16, "shared"), (15, "padded")])
def test_prefix_at_min_shared_prefix_and_one_below(models, shared_len, layout):
    reward = _reward(f"classifier:{models['cls']}", "padded")
    rng = random.Random(shared_len)
    head = [rng.randrange(100, 40000) for _ in range(shared_len)]
    seqs = [head + [30000 + i, 1000 + i, 2000 + i][: 1 + i % 3] for i in range(4)]
    plain, _ = _run_rows(reward, "padded", seqs, min_shared_prefix=16)
    got, used = _run_rows(reward, "shared", seqs, min_shared_prefix=16)
    assert used == layout
    _close(got, plain)


@st.composite
def odd_batches(draw) -> list[list[int]]:
    """Rows from a few prompts (1 to 120 tokens, 15/16/17 around the default minimum), with
    suffixes of 1 to 130 tokens, duplicates, rows extending another row, and rows that are
    another row's prefix."""
    tok = st.integers(100, 40000)
    length = st.sampled_from([1, 15, 16, 17, 40, 120])
    prompt = length.flatmap(lambda n: st.lists(tok, min_size=n, max_size=n))
    prompts = draw(st.lists(prompt, min_size=1, max_size=3))
    seqs: list[list[int]] = []
    for _ in range(draw(st.integers(1, 10))):
        how = draw(st.sampled_from(["new", "new", "new", "duplicate", "extend", "cut"]))
        if how == "new" or not seqs:
            p = draw(st.sampled_from(prompts))
            n = draw(st.sampled_from([1, 2, 5, 40, 130]))
            seqs.append(p + draw(st.lists(tok, min_size=n, max_size=n)))
        else:
            other = draw(st.sampled_from(seqs))
            if how == "duplicate":
                seqs.append(list(other))
            elif how == "extend":  # the other row's whole text is this row's prefix
                seqs.append(other + draw(st.lists(tok, min_size=1, max_size=5)))
            else:
                seqs.append(other[: max(1, len(other) - draw(st.integers(1, 3)))])
    return [s[:250] for s in seqs]


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seqs=odd_batches(),
    min_prefix=st.sampled_from([1, 15, 16]),
    budget=st.sampled_from([64, 300, 16384]),
    rows=st.sampled_from([1, 3, 256]),
    attention=st.sampled_from(["auto", "dense"]),
    order=st.randoms(use_true_random=False),
)
def test_shared_equals_padded_on_any_batch(
    models, seqs, min_prefix, budget, rows, attention, order
):
    reward = _reward(f"classifier:{models['cls']}", "padded")
    config = {
        "min_shared_prefix": min_prefix,
        "token_budget": budget,
        "max_batch_size": rows,
        "attention": attention,
    }
    plain, _ = _run_rows(reward, "padded", seqs, **config)
    shared, _ = _run_rows(reward, "shared", seqs, **config)
    _close(shared, plain)
    perm = list(range(len(seqs)))
    order.shuffle(perm)
    permuted, _ = _run_rows(reward, "shared", [seqs[i] for i in perm], **config)
    back = np.empty_like(permuted)
    back[perm] = permuted
    _close(back, plain)


# -- the embedded models -------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["classifier:smollm2", "judge:default"])
def test_embedded_models_share_pairs_as_padded(spec):
    queries = [
        *_pair(PROMPT, "Rayleigh scattering: short wavelengths scatter more.", "", "🌅"),
        *_pair([*CONVERSATION, user("Tell me a joke.")], "No."),
        *_pair([*CONVERSATION, user("Tell me a story.")], "Once upon a time."),
    ]
    plain, _ = _score(spec, "padded", queries)
    shared, out = _score(spec, "shared", queries)
    assert out.stats["layout"] == "shared"
    _close(shared, plain)


def test_default_encoder_refuses_shared_and_runs_padded():
    queries = _pair(PROMPT, "Because of Rayleigh scattering.", "No idea.")
    plain, _ = _score("default", "padded", queries)
    with pytest.warns(UserWarning, match="layout=shared refused"):
        got, out = _score("default", "shared", queries)
    assert out.stats["layout"] == "padded"
    _close(got, plain)
