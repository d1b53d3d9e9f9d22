"""Card E2 (Skywork-Reward-V2, scaled down): seed errors, kNN retrieval, the judges' agreement
filter, ``curate_round`` and ``rewardkit curate retrieve`` / ``agree`` end to end with the
embedded ``default`` RM, the embedded MiniLM encoder and rule judges."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.curate import synergy as sy
from rewardkit.data import load, write_jsonl
from rewardkit.types import Example, user

runner = CliRunner()
NAN = math.nan


# -- the card's worked examples --------------------------------------------------------------


def test_card_worked_example_agreement_matrix():
    margins = np.array(
        [
            [0.8, -0.9, 0.3, -0.2],
            [0.4, -0.7, -0.6, -0.3],
            [-0.1, -0.5, 0.0, NAN],
        ]
    )
    dec = sy.agreement_decisions(margins, min_agree=2, flip_margin=0.5)
    assert dec.decisions == ["keep", "flip", "drop", "drop"]
    assert dec.votes_for.tolist() == [2, 0, 1, 0]
    assert dec.votes_against.tolist() == [0, 2, 1, 0]  # −0.5 is not < −0.5: not clearly against
    assert dec.abstain.tolist() == [0, 0, 0, 1]
    assert dec.counts == {
        "pairs": 4,
        "keep": 1,
        "flip": 1,
        "drop": 2,
        "conflict": 0,
        "abstained": 0,
    }
    # no flip_margin: never flips (against = Δ < 0), the inverted pair is dropped
    off = sy.agreement_decisions(margins, min_agree=2)
    assert off.decisions == ["keep", "drop", "drop", "drop"]
    assert off.votes_against.tolist() == [1, 3, 1, 2]
    # min_agree 1: pair 3 has one judge each way, a conflict
    one = sy.agreement_decisions(margins, min_agree=1, flip_margin=0.5)
    assert one.decisions == ["keep", "flip", "drop", "drop"] and one.counts["conflict"] == 1


def test_card_worked_example_knn():
    vec = {"s0": [1.0, 0.0], "s1": [0.0, 1.0], "p0": [1.0, 0.0], "p1": [0.6, 0.8], "p2": [0, 1]}
    seeds = [_ex(t) for t in ("s0", "s1")]
    pool = [_ex(t) for t in ("p0", "p1", "p2")]
    got = sy.knn_retrieve(seeds, pool, _embedder(vec), k=2)
    assert [(n.index, n.seed, n.hits) for n in got] == [(0, 0, 1), (2, 1, 1), (1, 1, 2)]
    assert [n.similarity for n in got] == pytest.approx([1.0, 1.0, 0.8])


def test_seed_errors_counts_ties_as_errors_and_nan_apart():
    exs = [_ex(f"q{i}") for i in range(4)] + [Example("tie", [user("t")], ["a", "b"], [0, 1])]
    scores = [np.array(s) for s in ([2.0, 1.0], [1.0, 1.0], [0.5, 3.0], [NAN, 1.0], [1.0, 0.0])]
    res = sy.seed_errors(exs, scores)
    assert res.indices == [1, 2]  # Δ = 0 ranks rejected ≥ chosen: an error
    assert res.counts == {"gold": 5, "scored": 3, "errors": 2, "unscored": 2, "identical": 0}
    with pytest.raises(ValueError, match="3 score lists for 5"):
        sy.seed_errors(exs, scores[:3])


# -- kNN on hand-made embeddings -------------------------------------------------------------


def _ex(prompt: str, responses=("a", "b"), chosen=(0,), id_: str | None = None) -> Example:
    return Example(id_ or prompt, [user(prompt)], list(responses), list(chosen))


def _embedder(vec: dict[str, list[float]]):
    calls: list[list[str]] = []

    def embed(texts):
        calls.append(list(texts))
        return np.array([vec[t] for t in texts], dtype=np.float64)

    embed.calls = calls  # type: ignore[attr-defined]
    return embed


def _brute(seed_vecs, pool_vecs, k):
    """Every seed's k nearest by a full sort (ties: lower index), merged by best similarity."""
    best: dict[int, tuple[float, int]] = {}
    for si, s in enumerate(seed_vecs):
        sims = [(float(s @ p), pi) for pi, p in enumerate(pool_vecs)]
        for sim, pi in sorted(sims, key=lambda t: (-t[0], t[1]))[:k]:
            if pi not in best or sim > best[pi][0]:
                best[pi] = (sim, si)
    return sorted(((pi, *v) for pi, v in best.items()), key=lambda t: (-t[1], t[0]))


def test_knn_ties_break_by_pool_index_and_k_bounds():
    vec = {"s": [1.0, 0.0], "a": [0.0, 1.0], "b": [2.0, 0.0], "c": [1.0, 0.0], "d": [1, 1]}
    seeds, pool = [_ex("s")], [_ex(t) for t in "abcd"]
    embed = _embedder(vec)
    # b and c are both at cosine 1 (b's length does not matter): k=1 takes the lower index
    assert [n.index for n in sy.knn_retrieve(seeds, pool, embed, k=1)] == [1]
    assert [n.index for n in sy.knn_retrieve(seeds, pool, embed, k=2)] == [1, 2]
    every = sy.knn_retrieve(seeds, pool, embed, k=99)  # k beyond the pool: all of it
    assert [n.index for n in every] == [1, 2, 3, 0]
    assert [n.similarity for n in every] == pytest.approx([1, 1, math.sqrt(0.5), 0])
    assert len(embed.calls[-1]) == 5  # one call over the distinct texts
    near = sy.knn_retrieve(seeds, pool, embed, k=99, min_similarity=0.5)
    assert [n.index for n in near] == [1, 2, 3]
    assert [n.index for n in sy.knn_retrieve(seeds, pool, embed, k=2, exclude={1})] == [2, 3]
    assert sy.knn_retrieve([], pool, embed, k=3) == []
    assert sy.knn_retrieve(seeds, [], embed, k=3) == []
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="k must be"):
            sy.knn_retrieve(seeds, pool, embed, k=bad)
    for bad in (1.5, NAN):
        with pytest.raises(ValueError, match="min_similarity"):
            sy.knn_retrieve(seeds, pool, embed, k=1, min_similarity=bad)


def test_knn_matches_a_full_sort_in_chunks(monkeypatch):
    rng = np.random.default_rng(0)
    raw = rng.integers(-2, 3, size=(60, 4)).astype(float)  # small integers: many exact ties
    raw[raw.sum(axis=1) == 0, 0] = 1.0
    unit = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
    seeds, pool = unit[:9], unit[9:]
    want = _brute(seeds, pool, 4)
    got = sy.nearest(seeds, pool, 4)
    assert [(n.index, n.seed) for n in got] == [(p, s) for p, _, s in want]
    assert [n.similarity for n in got] == pytest.approx([v for _, v, _ in want])
    monkeypatch.setattr(sy, "_CHUNK_CELLS", 1)  # one seed row at a time: another BLAS path
    assert sy.nearest(seeds, pool, 4) == got  # the same neighbours, similarities and ties


def test_knn_pair_field_embeds_prompt_and_responses():
    vec = {"s": [1.0, 0.0], "x": [0.0, 1.0], "y": [0.0, 1.0], "p": [0.0, 1.0], "q": [1, 0]}
    seeds = [_ex("s", ("x", "y"))]
    pool = [_ex("p", ("q", "q")), _ex("q", ("p", "p"))]
    # pair vectors: seed (1,2,…)/3 → (1/3, 2/3); pool0 (2/3, 1/3); pool1 (1/3, 2/3)
    got = sy.knn_retrieve(seeds, pool, _embedder(vec), k=2, field="pair")
    assert [n.index for n in got] == [1, 0]
    assert [n.similarity for n in got] == pytest.approx([1.0, 0.8])
    by_prompt = sy.knn_retrieve(seeds, pool, _embedder(vec), k=1, field="prompt")
    assert [n.index for n in by_prompt] == [1]
    with pytest.raises(ValueError, match="field"):
        sy.knn_retrieve(seeds, pool, _embedder(vec), k=1, field="chosen")


def test_knn_refuses_a_bad_embedding():
    seeds, pool = [_ex("s")], [_ex("a")]
    with pytest.raises(ValueError, match="shape"):
        sy.knn_retrieve(seeds, pool, lambda t: np.zeros((1, 3)), k=1)
    with pytest.raises(ValueError, match="non-finite"):
        sy.knn_retrieve(seeds, pool, lambda t: np.full((len(t), 3), NAN), k=1)


def test_agreement_nan_judges_single_judge_and_bad_options():
    all_nan = sy.agreement_decisions(np.full((2, 3), NAN), min_agree=1, flip_margin=0.0)
    assert all_nan.decisions == ["drop"] * 3 and all_nan.counts["abstained"] == 3
    one = sy.agreement_decisions(np.array([[0.2, -0.2, 0.0, NAN]]), 1, 0.0)
    assert one.decisions == ["keep", "flip", "drop", "drop"]
    assert sy.agreement_decisions(np.zeros((2, 0)), 1).counts["pairs"] == 0
    with pytest.raises(ValueError, match="more than the 2 judge"):
        sy.agreement_decisions(np.zeros((2, 1)), 3)
    for bad in (0, True, 1.0):
        with pytest.raises(ValueError, match="min_agree"):
            sy.agreement_decisions(np.zeros((2, 1)), bad)
    for bad in (-0.1, NAN, math.inf):
        with pytest.raises(ValueError, match="flip_margin"):
            sy.agreement_decisions(np.zeros((2, 1)), 1, bad)
    with pytest.raises(ValueError, match="finite"):
        sy.agreement_decisions(np.array([[math.inf]]), 1)
    with pytest.raises(ValueError, match="judges, pairs"):
        sy.agreement_decisions(np.zeros(3), 1)


def test_apply_decisions_flips_as_card_e1_and_leaves_inputs_alone():
    exs = [
        _ex("a", ("good", "bad")),
        Example("b", [user("b")], ["x", "y", "z"], [2], meta={"margin": 0.7}),
        _ex("c"),
    ]
    margins = np.array([[1.0, -2.0, 0.1], [0.5, -1.0, -0.1]])
    dec = sy.agreement_decisions(margins, 2, 0.5)
    out = sy.apply_decisions(exs, margins, dec)
    assert [e.id for e in out] == ["a", "b"]
    assert out[0].chosen == [0] and out[0].meta["agree_decision"] == "keep"
    assert out[0].meta["agree_margins"] == [1.0, 0.5] and "flipped" not in out[0].meta
    flipped = out[1]
    assert flipped.responses == ["x", "z"] and flipped.chosen == [0]  # E1: the pair, reversed
    assert flipped.meta["flipped"] is True and flipped.meta["margin"] == -0.7
    assert flipped.meta["agree_against"] == 2 and flipped.meta["agree_for"] == 0
    assert exs[1].chosen == [2] and exs[1].meta == {"margin": 0.7}  # the input is unchanged


# -- end to end on data the test writes: real rewards, real encoder --------------------------

GOOD = {
    "python": "Call my_list.sort() to sort in place, or sorted(my_list) for a new sorted list; "
    "pass reverse=True for descending order.",
    "dog": "Hold a treat above its nose, say 'sit' once, reward the moment it sits, and practise "
    "in short daily sessions.",
    "bread": "Mix flour, water, yeast and salt, knead ten minutes, let it rise an hour, shape "
    "the loaf and bake at 220 C for 35 minutes.",
    "tax": "Gather your income statements and receipts, pick the standard or itemized deduction, "
    "fill in the return and file before the deadline.",
}
BAD = "I don't know, figure it out yourself."


def _gold() -> list[Example]:
    return [
        Example("g-bread", [user("How do I bake bread at home?")], [GOOD["bread"], BAD], [0]),
        Example("g-python", [user("How do I sort a list in Python?")], [GOOD["python"], BAD], [1]),
        Example("g-dog", [user("How can I train my dog to sit?")], [BAD, GOOD["dog"]], [0]),
        Example("g-tax", [user("How do I file my taxes?")], [BAD, GOOD["tax"]], [1]),
        Example("g-tie", [user("Say hi.")], ["hi", "hello"], [0, 1]),  # a tie: unscored
    ]


def _pool() -> list[Example]:
    rows = [
        ("p-py1", "What is the best way to sort a Python list?", GOOD["python"], "No idea.", 0),
        ("p-py2", "Sorting a list in Python, how?", "Lists cannot be sorted.", GOOD["python"], 0),
        ("p-dog1", "How do I teach my puppy to sit?", GOOD["dog"], "Dogs can't learn.", 1),
        ("p-dog2", "Tips for training a dog to sit down?", GOOD["dog"], "Ask a vet.", 0),
        ("p-fr", "What is the capital of France?", "Paris.", "Berlin.", 0),
        ("p-tire", "How do I change a flat car tire?", "Loosen the nuts, jack it up.", "Call.", 0),
        ("p-dup", "Write a haiku about autumn.", "Leaves fall, cold wind sings", "Autumn.", 0),
        ("p-dup", "Explain photosynthesis briefly.", "Plants turn light into sugar.", "Eh.", 1),
    ]
    return [Example(i, [user(p)], [a, b], [c]) for i, p, a, b, c in rows]


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """The CLI's retrieve and agree outputs on the test's own gold and pool, the rewards they
    used (loaded here again, sharing the score cache) and the inputs."""
    from rewardkit.registry import load_reward

    tmp = tmp_path_factory.mktemp("e2")
    gold, pool = tmp / "gold.jsonl", tmp / "pool.jsonl"
    write_jsonl(_gold(), gold)
    write_jsonl(_pool(), pool)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REWARDKIT_CACHE", str(tmp / "cache"))
        ret = _run("retrieve", "--gold", gold, "--pool", pool, "-r", "default", "-k", 2,
                   "--out", tmp / "ret.jsonl")  # fmt: skip
        agr = _run("agree", "--data", tmp / "ret.jsonl", "-r", "default", "-r", "rule:length",
                   "--min-agree", 1, "--flip-margin", 0, "--out", tmp / "agr.jsonl")  # fmt: skip
        cache = {"cache_dir": str(tmp / "cache" / "scores"), "progress": False}
        rewards = {
            s: load_reward(s, engine_defaults=cache)
            for s in ("default", "rule:length", "similarity:minilm")
        }
    return {"tmp": tmp, "retrieve": ret, "agree": agr, "rewards": rewards}


def _run(*args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = runner.invoke(app, ["curate", *map(str, args)])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_e2e_retrieve_returns_the_nearest_pool_pairs(e2e):
    from rewardkit.curate.scores import response_scores

    rw, gold, pool = e2e["rewards"], _gold(), _pool()
    seeds = sy.seed_errors(gold, response_scores(gold, rw["default"]))
    assert [gold[i].id for i in seeds.indices] == ["g-python", "g-dog"]  # the planted errors
    assert seeds.counts == {"gold": 5, "scored": 4, "errors": 2, "unscored": 1, "identical": 0}
    s = e2e["retrieve"]
    assert (s["gold"], s["gold_scored"], s["seed_errors"], s["pool"]) == (5, 4, 2, 8)
    emb = rw["similarity:minilm"].embed
    seed_vecs = np.array(emb([gold[i].prompt[0]["content"] for i in seeds.indices]))
    pool_vecs = np.array(emb([ex.prompt[0]["content"] for ex in pool]))
    want = _brute(seed_vecs, pool_vecs, 2)
    got = load(str(e2e["tmp"] / "ret.jsonl"))
    assert s["retrieved"] == s["written"] == len(got) == len(want)
    assert [ex.prompt for ex in got] == [pool[p].prompt for p, _, _ in want]
    assert [ex.meta["seed_id"] for ex in got] == [gold[seeds.indices[i]].id for *_, i in want]
    assert [ex.meta["seed_similarity"] for ex in got] == pytest.approx([v for _, v, _ in want])
    # MiniLM puts each error's paraphrases nearest: the Python and dog pool pairs
    assert sorted(ex.id for ex in got) == ["p-dog1", "p-dog2", "p-py1", "p-py2"]


def test_e2e_agree_counts_equal_a_hand_count_from_the_scores(e2e):
    from rewardkit.curate.scores import response_scores

    retrieved = load(str(e2e["tmp"] / "ret.jsonl"))
    d = {
        j: [
            float(s[ex.chosen[0]] - s[1 - ex.chosen[0]])
            for ex, s in zip(retrieved, sc, strict=True)
        ]
        for j in ("default", "rule:length")
        for sc in [response_scores(retrieved, e2e["rewards"][j])]
    }
    want = {"keep": 0, "flip": 0, "drop": 0}
    decided = {}
    for i, ex in enumerate(retrieved):
        pro = sum(d[j][i] > 0 for j in d)
        con = sum(d[j][i] < 0 for j in d)
        who = "keep" if pro >= 1 > con else "flip" if con >= 1 > pro else "drop"
        want[who] += 1
        decided[ex.id] = who
    s = e2e["agree"]
    assert {k: s[k] for k in want} == want and s["judges"] == 2 and s["min_agree"] == 1
    assert want["keep"] and want["flip"]  # the data exercises both
    out = load(str(e2e["tmp"] / "agr.jsonl"))
    assert s["written"] == len(out) == want["keep"] + want["flip"]
    for ex in out:
        assert ex.meta["agree_decision"] == decided[ex.id]
        assert ex.meta.get("flipped", False) == (decided[ex.id] == "flip")
        assert ex.meta["seed_id"] in ("g-python", "g-dog")  # retrieve's meta travels on


def test_curate_round_gives_what_the_two_commands_give(e2e):
    rw, pool = e2e["rewards"], _pool()
    res = sy.curate_round(
        _gold(),
        pool,
        rw["default"],
        [rw["default"], rw["rule:length"]],
        rw["similarity:minilm"].embed,
        k=2,
        min_agree=1,
        flip_margin=0.0,
    )
    cli = load(str(e2e["tmp"] / "agr.jsonl"))
    read = [{k: v for k, v in e.meta.items() if k != "format"} for e in cli]  # load adds it
    assert [(e.id, e.chosen, e.meta) for e in res.examples] == [
        (e.id, e.chosen, m) for e, m in zip(cli, read, strict=True)
    ]
    s = e2e["agree"]
    assert {k: res.counts[k] for k in ("keep", "flip", "drop")} == {
        k: s[k] for k in ("keep", "flip", "drop")
    }
    assert res.counts["gold_errors"] == 2 and res.counts["retrieved"] == 4
    assert pool == _pool()  # not mutated
    again = sy.curate_round(
        _gold(), pool, rw["default"], [rw["rule:length"]], rw["similarity:minilm"].embed,
        k=2, min_agree=1, exclude={n.index for n in res.neighbours},
    )  # fmt: skip
    assert not {n.index for n in again.neighbours} & {n.index for n in res.neighbours}
    with pytest.raises(ValueError, match="at least one judge"):
        sy.curate_round(_gold(), pool, rw["default"], [], rw["similarity:minilm"].embed)


# -- the CLI on hostile input (rule rewards; no encoder is loaded) ---------------------------


def _invoke(*args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return runner.invoke(app, ["curate", *map(str, args)])


def test_cli_empty_pool_and_malformed_pool_line(tmp_path):
    gold, pool, empty = tmp_path / "gold.jsonl", tmp_path / "pool.jsonl", tmp_path / "e.jsonl"
    write_jsonl(_gold(), gold)
    write_jsonl(_pool(), pool)
    empty.write_text("")
    with pytest.warns(UserWarning, match="e.jsonl holds no examples.*check --pool"):
        res = runner.invoke(app, ["curate", "retrieve", "--gold", str(gold), "--pool",
                                  str(empty), "-r", "rule:length", "--out",
                                  str(tmp_path / "o.jsonl")])  # fmt: skip
    s = json.loads(res.stdout.splitlines()[-1])
    assert s["pool"] == 0 and s["retrieved"] == 0 and s["seed_errors"] == 2
    assert (tmp_path / "o.jsonl").read_text() == ""
    twice = tmp_path / "twice.jsonl"
    write_jsonl(_gold() + _gold()[:2], twice)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = runner.invoke(app, ["curate", "retrieve", "--gold", str(twice), "--pool",
                                  str(empty), "-r", "rule:length", "--out",
                                  str(tmp_path / "o.jsonl")])  # fmt: skip
    said = [str(w.message) for w in caught]
    assert any("--gold: 2 example id(s) occur more than once" in m for m in said), said
    assert res.exit_code == 0 and json.loads(res.stdout.splitlines()[-1])["seed_errors"] == 3
    with pool.open("a") as fh:
        fh.write('{"prompt": "q", "chosen": 3}\n')
    res = _invoke("retrieve", "--gold", gold, "--pool", pool, "-r", "rule:length", "--out",
                  tmp_path / "o2.jsonl")  # fmt: skip
    assert res.exit_code == 2 and "pool.jsonl" in res.output and "line 9" in res.output
    assert not (tmp_path / "o2.jsonl").exists()
    res = _invoke("agree", "--data", pool, "-r", "rule:length", "--out", tmp_path / "o3.jsonl")
    assert res.exit_code == 2 and "line 9" in res.output
    skip = _run("--on-error", "skip", "agree", "--data", pool, "-r", "rule:length", "--out",
                tmp_path / "o3.jsonl")  # fmt: skip
    assert skip["skipped_malformed"] == 1 and skip["examples"] == 8


def test_cli_agree_nan_judge_single_judge_duplicate_ids(tmp_path):
    data = tmp_path / "d.jsonl"
    rows = _pool()
    rows[0] = Example("p-py1", rows[0].prompt, ["Paris", "Rome"], [0], reference="Paris")
    write_jsonl(rows, data)  # two rows share the id p-dup
    single = _run("agree", "--data", data, "-r", "rule:length", "--out", tmp_path / "a.jsonl")
    lengths = [len(r.responses[r.chosen[0]]) - len(r.responses[1 - r.chosen[0]]) for r in rows]
    assert single["min_agree"] == 1 and single["keep"] == sum(x > 0 for x in lengths)
    assert single["drop"] == sum(x <= 0 for x in lengths) and single["flip"] == 0  # no margin
    out = load(str(tmp_path / "a.jsonl"))
    assert [e.id for e in out].count("p-dup") == sum(
        x > 0 for r, x in zip(rows, lengths, strict=True) if r.id == "p-dup"
    )
    # exact_match applies only where a reference is given (row 0): NaN elsewhere, an abstention
    both = _run("agree", "--data", data, "-r", "rule:exact_match", "-r", "rule:length",
                "--min-agree", 2, "--out", tmp_path / "b.jsonl")  # fmt: skip
    assert both["keep"] == 1 and both["abstained"] == 0 and both["drop"] == 7
    nan_only = _run("agree", "--data", data, "-r", "rule:exact_match", "--flip-margin", 0,
                    "--out", tmp_path / "c.jsonl")  # fmt: skip
    assert nan_only["abstained"] == 7 and nan_only["keep"] == 1
    kept = load(str(tmp_path / "b.jsonl"))[0]
    assert kept.meta["agree_margins"][0] == 1.0 and kept.meta["agree_abstain"] == 0


@pytest.mark.parametrize(
    ("cmd", "args", "hint"),
    [
        ("agree", ["--min-agree", 3], "--min-agree"),  # more than the two judges
        ("agree", ["--min-agree", 0], "--min-agree"),
        ("agree", ["--flip-margin", -1], "--flip-margin"),
        ("agree", ["--flip-margin", "nan"], "--flip-margin"),
        ("retrieve", ["-k", 0], "-k"),
        ("retrieve", ["--field", "chosen"], "--field"),
        ("retrieve", ["--encoder", "sentence-transformers/all-mpnet-base-v2"], "--encoder"),
        ("retrieve", ["--min-similarity", 2], "--min-similarity"),
    ],
)
def test_cli_refuses_bad_options(tmp_path, cmd, args, hint):
    data = tmp_path / "d.jsonl"
    write_jsonl(_gold(), data)
    ins = (
        ["--data", data, "-r", "rule:length"]
        if cmd == "agree"
        else ["--gold", data, "--pool", data]
    )
    res = _invoke(cmd, *ins, "-r", "rule:length", *args, "--out", tmp_path / "o.jsonl")
    assert res.exit_code == 2 and hint in res.output


def test_cli_retrieve_refuses_an_output_that_is_an_input(tmp_path):
    gold, pool = tmp_path / "g.jsonl", tmp_path / "p.jsonl"
    write_jsonl(_gold(), gold)
    write_jsonl(_pool(), pool)
    res = _invoke("retrieve", "--gold", gold, "--pool", pool, "-r", "rule:length", "--out", pool)
    assert res.exit_code == 2 and "--pool" in res.output
    assert len(load(str(pool))) == 8


# -- real data: HH-RLHF ----------------------------------------------------------------------


@pytest.mark.shared_data
def test_real_hh_round_retrieves_the_nearest_and_counts_by_hand(shared_data: Path, tmp_path):
    from rewardkit.curate.scores import response_scores
    from rewardkit.registry import load_reward

    hh = shared_data / "hh_rlhf"
    gold, pool = hh / "helpful-base" / "test.jsonl.gz", hh / "helpful-online" / "test.jsonl.gz"
    if not (gold.is_file() and pool.is_file()):
        pytest.skip(f"HH-RLHF helpful-base/online test files not found under {hh}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REWARDKIT_CACHE", str(tmp_path / "cache"))
        s = _run("retrieve", "--gold", gold, "--limit", 24, "--pool", pool, "--pool-limit", 40,
                 "-r", "default", "-k", 3, "--out", tmp_path / "r.jsonl")  # fmt: skip
        a = _run("agree", "--data", tmp_path / "r.jsonl", "-r", "default", "-r", "rule:length",
                 "--out", tmp_path / "a.jsonl")  # fmt: skip
    cache = {"cache_dir": str(tmp_path / "cache" / "scores"), "progress": False}
    rm, length, enc = (
        load_reward(x, engine_defaults=cache)
        for x in ("default", "rule:length", "similarity:minilm")
    )
    g, p = load(gold, limit=24), load(pool, limit=40)
    seeds = sy.seed_errors(g, response_scores(g, rm))
    assert s["seed_errors"] == len(seeds.indices) > 0 and s["gold"] == 24 and s["pool"] == 40
    texts = [[sy.example_texts(ex)[0] for ex in xs] for xs in ([g[i] for i in seeds.indices], p)]
    want = _brute(np.array(enc.embed(texts[0])), np.array(enc.embed(texts[1])), 3)
    got = load(str(tmp_path / "r.jsonl"))
    assert [ex.id for ex in got] == [p[i].id for i, _, _ in want]
    assert [ex.meta["seed_similarity"] for ex in got] == pytest.approx([v for _, v, _ in want])
    margins = [
        [float(sc[0] - sc[1]) for sc in response_scores(got, r)] for r in (rm, length)
    ]  # HH pairs: chosen is response 0
    keep = sum(m0 > 0 and m1 > 0 for m0, m1 in zip(*margins, strict=True))
    assert (a["keep"], a["flip"], a["drop"]) == (keep, 0, len(got) - keep)
