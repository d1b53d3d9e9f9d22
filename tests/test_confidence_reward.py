"""Confidence-weighted rewards (docs/methods/F7-confidence-weighted.md): the card's worked example, the
exact chunked kNN distance, and the ``confidence`` spec end to end with the embedded MiniLM."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.errors import SpecError
from rewardkit.registry import load_reward
from rewardkit.rewards.composite.confidence import (
    ConfidenceReward,
    apply_confidence,
    confidence_text,
    confidence_weight,
    knn_confidence,
    knn_distance,
    reference_offset,
)
from rewardkit.types import Capability, Query, Reward, ScoreResult

ENGINE = {"progress": False, "threads": 1}
WORDS = "rule:length?unit=words"
CHARS = "rule:length?unit=chars"

# ---- the card's worked example ------------------------------------------------------------------
REF2 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
Q2 = np.array([[2.0, 1.0], [-1.0, -1.0]])


def test_card_worked_example():
    d = knn_distance(Q2, REF2, k=2)
    # q1: distances 0.105573, 0.552786, 0.051317, 1.894427 → nearest two → mean 0.078445
    # q2: 1.707107, 1.707107, 2, 0.292893 → 0.292893 and 1.707107 → mean 1
    np.testing.assert_allclose(d, [0.078445, 1.0], atol=5e-7)
    c = confidence_weight(d, 1.0)
    np.testing.assert_allclose(c, [0.924553, 0.367879], atol=5e-7)
    assert knn_confidence(Q2[0], REF2, k=2, scale=1.0) == pytest.approx(0.924553, abs=5e-7)
    np.testing.assert_allclose(confidence_weight(d, 2.0), [0.854798, 0.135335], atol=5e-7)
    # a signed reward: multiplying lifts the distrusted bad answer toward 0 ...
    np.testing.assert_allclose(apply_confidence([-2.0, -2.0], c), [-1.849106, -0.735759], atol=5e-7)
    # ... shrinking toward a stated baseline moves it to the baseline instead
    shrunk = apply_confidence([-2.0, -2.0], c, "shrink", -1.0)
    np.testing.assert_allclose(shrunk, [-1.924553, -1.367879], atol=5e-7)
    np.testing.assert_allclose(apply_confidence([2.0, 2.0], c), [1.849106, 0.735759], atol=5e-7)


# ---- knn_distance edge cases --------------------------------------------------------------------
def test_knn_k_bounds_duplicates_and_zero_vectors():
    # k past the references takes all: the mean of the four distances of q1
    assert knn_distance(Q2[0], REF2, 10) == pytest.approx(knn_distance(Q2[0], REF2, 4))
    assert knn_distance(Q2[0], REF2, 4) == pytest.approx(
        (0.105573 + 0.552786 + 0.051317 + 1.894427) / 4, abs=1e-6
    )
    assert knn_distance(Q2[0], REF2, 1) == pytest.approx(0.051317, abs=1e-6)  # the nearest
    # duplicates count once each: a query equal to a twice-listed point has two zero distances
    dup = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0]])
    assert knn_distance([5.0, 0.0], dup, 2) == pytest.approx(0.0, abs=1e-12)
    assert knn_distance([5.0, 0.0], dup, 3) == pytest.approx(1.0 / 3.0)
    # a zero vector has cosine 0 with everything: distance 1; the result never leaves [0, 2]
    assert knn_distance([0.0, 0.0], REF2, 2) == pytest.approx(1.0)
    assert knn_distance([-1.0, 0.0], np.array([[1.0, 0.0]]), 5) == pytest.approx(2.0)
    for bad_k in (0, -1, True, 2.5, "3"):
        with pytest.raises(ValueError, match="k must be an integer"):
            knn_distance(Q2, REF2, bad_k)
    with pytest.raises(ValueError, match="empty"):
        knn_distance(Q2, np.zeros((0, 2)), 1)
    with pytest.raises(ValueError, match="dimension 2 but ref_embs has 3"):
        knn_distance(Q2, np.ones((4, 3)), 1)
    with pytest.raises(ValueError, match="row 1 holds a non-finite"):
        knn_distance([[1.0, 0.0], [math.nan, 1.0]], REF2, 1)


def test_chunking_equals_unchunked_and_brute_force():
    rng = np.random.default_rng(0)
    q, ref = rng.normal(size=(130, 8)), rng.normal(size=(517, 8))
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    rn = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    brute = np.sort(1.0 - qn @ rn.T, axis=1)[:, :7].mean(axis=1)
    whole = knn_distance(q, ref, 7, chunk=10_000)
    np.testing.assert_allclose(whole, brute, rtol=1e-12, atol=1e-12)
    for chunk in (1, 6, 7, 64, 516):  # blocks smaller than k, equal to it, uneven
        np.testing.assert_allclose(
            knn_distance(q, ref, 7, chunk=chunk), whole, rtol=1e-12, atol=1e-12
        )


def test_confidence_weight_rules():
    c = confidence_weight(np.array([0.0, math.nan, 2.0]), 0.5)
    assert c[0] == 1.0 and math.isnan(c[1]) and c[2] == pytest.approx(math.exp(-1.0))
    assert confidence_weight(0.7, 0.0) == 1.0  # scale 0: full trust everywhere
    for bad in (-1.0, math.nan, math.inf, True, "x"):
        with pytest.raises(SpecError, match="scale"):
            confidence_weight(0.3, bad)


def test_confidence_text_choices():
    q = Query(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}], "Yo."
    )
    assert confidence_text(q) == "Hi?\n\nYo."
    assert confidence_text(q, "response") == "Yo."
    assert confidence_text(q, "full") == "System: Be brief.\n\nUser: Hi?\n\nYo."


# ---- the ensemble source ------------------------------------------------------------------------
def test_ensemble_source_reads_the_members_disagreement():
    r = load_reward(
        {"confidence": {"ensemble": [WORDS, CHARS]}, "source": "ensemble", "scale": 0.1}
    )
    res = r.score_full([Query("q", "hi"), Query("q", "one two three")])
    # "hi": words 1, chars 2 → mean 1.5, std 0.5; "one two three": 3 and 13 → mean 8, std 5
    np.testing.assert_allclose(res.components["disagreement"], [0.5, 5.0])
    np.testing.assert_allclose(res.components["confidence"], [math.exp(-0.05), math.exp(-0.5)])
    assert res.scores[0] == pytest.approx(1.426844, abs=1e-6)  # the card's ensemble line
    np.testing.assert_allclose(res.scores, [1.5 * math.exp(-0.05), 8 * math.exp(-0.5)], rtol=1e-6)
    assert not r.can(Capability.MODEL_BACKED) and r.can(Capability.COMPONENTS)
    with pytest.raises(SpecError, match="is not one"):
        load_reward({"confidence": WORDS, "source": "ensemble"})
    with pytest.raises(SpecError, match="at least 2 members"):
        load_reward({"confidence": {"ensemble": [WORDS]}, "source": "ensemble"})
    with pytest.raises(SpecError, match=r"\['reference', 'k'\] apply to source 'knn' only"):
        load_reward(
            {
                "confidence": {"ensemble": [WORDS, CHARS]},
                "source": "ensemble",
                "reference": "x.jsonl",
                "k": 3,
            }
        )


# ---- the kNN source end to end ------------------------------------------------------------------
COOK = [
    ("How do I bake sourdough bread at home?", "Feed your starter, mix flour, water and salt, let it rise overnight, then bake in a hot Dutch oven."),
    ("What is a good recipe for banana bread?", "Mash three ripe bananas, mix with melted butter, sugar, an egg and flour, then bake for an hour."),
    ("How long should I knead pizza dough?", "Knead it for about ten minutes until it is smooth and springs back when pressed."),
    ("Can I substitute butter with oil in cookies?", "Yes, use about three quarters as much oil; the cookies will be a bit denser and chewier."),
    ("How do I make fluffy pancakes?", "Separate the eggs, whip the whites and fold them into the batter; do not overmix."),
    ("What temperature should I roast a chicken at?", "Roast it at 220 C for about an hour, until the thigh juices run clear."),
    ("How do I keep rice from getting sticky?", "Rinse the rice until the water runs clear and use the right ratio of water."),
    ("What spices go well in a lentil soup?", "Cumin, coriander, smoked paprika and a bay leaf work well; finish with lemon."),
    ("How do I caramelize onions?", "Cook sliced onions slowly over low heat with a little butter for 40 minutes, stirring often."),
    ("How can I make my cake more moist?", "Add sour cream or yogurt, do not overbake, and brush the layers with syrup."),
    ("What is the best way to cook salmon?", "Pan-sear it skin side down in a hot pan, then finish in the oven for a few minutes."),
    ("How do I make a simple tomato sauce?", "Simmer crushed tomatoes with olive oil, garlic and basil for twenty minutes."),
]  # fmt: skip
IN = [
    ("How do I bake a chocolate cake?", "Mix flour, sugar, cocoa and eggs, pour into a tin and bake at 180 C for 35 minutes."),
    ("How do I make crispy roast potatoes?", "Parboil them, rough up the edges and roast in hot oil until golden."),
    ("What can I use instead of eggs in muffins?", "Use mashed banana or a flax egg; the muffins will be slightly denser."),
    ("How do I make garlic bread?", "Spread butter mixed with garlic and parsley on a baguette and bake for ten minutes."),
]  # fmt: skip
OFF = [
    ("Prove that there are infinitely many primes.", "Assume finitely many primes; their product plus one has a prime factor not in the list."),
    ("Write a Python function that reverses a linked list.", "def reverse(head):\n    prev = None\n    while head:\n        head.next, prev, head = prev, head, head.next\n    return prev"),
    ("What is the capital of Mongolia?", "The capital of Mongolia is Ulaanbaatar."),
    ("Solve for x: 3x + 7 = 22.", "Subtract 7 to get 3x = 15, so x = 5."),
]  # fmt: skip


def _write_reference(folder) -> None:
    rows = [
        {"prompt": p, "chosen": a, "rejected": "Sorry, I am not sure about cooking."}
        for p, a in COOK
    ]
    (folder / "ref.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def ref_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("confidence")
    _write_reference(folder)
    return folder


@pytest.fixture(scope="module")
def knn(ref_dir) -> ConfidenceReward:
    spec = {"confidence": WORDS, "reference": str(ref_dir / "ref.jsonl"), "k": 10}
    return load_reward(spec, engine_defaults=ENGINE)


def test_in_distribution_queries_are_trusted_more(knn):
    res = knn.score_full([Query(p, a) for p, a in IN + OFF])
    c = res.components["confidence"]
    inside, outside = c[: len(IN)], c[len(IN) :]
    # measured (MiniLM, k=10, offset auto = the references' median leave-one-out distance):
    # in 1.0, off-topic 0.74–0.78 (with offset 0, the card's formula: 0.52–0.54 and 0.39–0.41)
    assert inside.min() > outside.max() + 0.05, (inside, outside)
    assert knn.offset == pytest.approx(reference_offset(knn.reference, knn.k)) and knn.offset > 0
    assert np.all((c > 0) & (c <= 1))
    words = np.array([len(a.split()) for _, a in IN + OFF], dtype=float)
    np.testing.assert_array_equal(res.components["inner"], words)
    np.testing.assert_allclose(res.scores, words * c, rtol=1e-6)
    d = res.components["distance"]
    np.testing.assert_allclose(c, np.exp(-np.maximum(d - knn.offset, 0.0)))
    card = ConfidenceReward(knn.inner, reference=knn.reference, encoder=knn.encoder, offset=0)
    c0 = card.score_full([Query(p, a) for p, a in IN + OFF]).components["confidence"]
    np.testing.assert_allclose(c0, np.exp(-d), rtol=1e-6)  # offset 0: the card's formula
    assert c0[: len(IN)].min() > c0[len(IN) :].max() + 0.05
    assert res.stats["encoder"]["unique"] == len(IN + OFF)
    assert knn.can(Capability.MODEL_BACKED) and not knn.can(Capability.IMAGES)
    # 24 reference texts: 12 chosen + 1 shared rejected answer per prompt (each with its turn)
    assert knn.reference.shape == (24, 384)
    # a reference response itself is at distance 0 from its own embedding: c of k=1 is 1
    one = ConfidenceReward(knn.inner, reference=knn.reference, k=1, encoder=knn.encoder)
    assert one.score_full([Query(*COOK[0])]).components["confidence"][0] == pytest.approx(
        1.0, abs=1e-5
    )


class _Partial(Reward):
    """1.0, or NaN for a response starting with "skip" (does not apply)."""

    def identity(self):
        return {"class": "_Partial"}

    def _score(self, queries: Sequence[Query]) -> np.ndarray:
        return np.array([math.nan if q.response.startswith("skip") else 1.0 for q in queries])


def test_nan_inner_stays_nan_and_fingerprint_tracks_settings(knn):
    r = ConfidenceReward(
        _Partial(), reference=knn.reference, encoder=knn.encoder, mode="shrink", baseline=0.25
    )
    res = r.score_full(
        [Query("How do I bake bread?", "skip it"), Query("How do I bake bread?", "Knead and bake.")]
    )
    assert math.isnan(res.scores[0]) and np.isfinite(res.components["confidence"]).all()
    c = res.components["confidence"][1]
    assert res.scores[1] == pytest.approx(c * 1.0 + (1 - c) * 0.25, rel=1e-6)
    prints = {
        ConfidenceReward(
            _Partial(), reference=knn.reference, encoder=knn.encoder, **kw
        ).fingerprint()
        for kw in (
            {},
            {"k": 3},
            {"scale": 2.0},
            {"text": "response"},
            {"mode": "shrink", "baseline": 0.0},
        )
    }
    assert len(prints) == 5
    other = ConfidenceReward(_Partial(), reference=knn.reference[:5], encoder=knn.encoder)
    assert other.fingerprint() not in prints
    with pytest.raises(SpecError, match=r"reference array has shape \(384,\)"):
        ConfidenceReward(_Partial(), reference=knn.reference[0], encoder=knn.encoder)
    two = _Partial()
    two.objectives = ("a", "b")
    with pytest.raises(SpecError, match="returns 2 objectives; weight a scalar reward"):
        ConfidenceReward(two, reference=knn.reference, encoder=knn.encoder)


class _Failing(Reward):
    """Row 0 fails (NaN), row 1 fails but is scored 0 (as rule:math on a timeout), row 2 is 1."""

    def identity(self):
        return {"class": "_Failing"}

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        errors = [
            {"index": 0, "error": "upstream 500"},
            {"index": 1, "error": "timeout", "score": 0.0},
        ]
        return ScoreResult(np.array([math.nan, 0.0, 1.0]), stats={"failed": 2, "errors": errors})


def test_an_inner_failure_stays_a_failure(knn):
    r = ConfidenceReward(_Failing(), reference=knn.reference, encoder=knn.encoder)
    res = r.score_full([Query("How do I bake bread?", t) for t in ("a", "b", "c")])
    assert math.isnan(res.scores[0]) and res.scores[1] == 0.0 and 0 < res.scores[2] <= 1
    assert res.stats["failed"] == 2 and res.stats["inner"]["failed"] == 2
    assert res.stats["errors"] == [
        {"index": 0, "error": "upstream 500"},
        {"index": 1, "error": "timeout", "score": 0.0},
    ]


def test_npy_reference_is_the_same_reward(knn, tmp_path):
    np.save(tmp_path / "ref.npy", knn.reference.astype(np.float32))
    r = load_reward(
        {"confidence": WORDS, "reference": str(tmp_path / "ref.npy")}, engine_defaults=ENGINE
    )
    assert r.fingerprint() == knn.fingerprint()
    qs = [Query(p, a) for p, a in IN[:2] + OFF[:2]]
    np.testing.assert_allclose(r.score(qs), knn.score(qs), rtol=1e-5)


def test_shrink_with_the_default_reward_model(ref_dir):
    spec = {
        "confidence": "default",
        "reference": str(ref_dir / "ref.jsonl"),
        "mode": "shrink",
        "baseline": 0.5,
    }
    r = load_reward(spec, engine_defaults=ENGINE)
    res = r.score_full([Query(p, a) for p, a in IN[:2] + OFF[:2]])
    c, inner = res.components["confidence"], res.components["inner"]
    assert np.isfinite(inner).all() and r.name.startswith("confidence[knn, scale=1, shrink, k=10")
    np.testing.assert_allclose(res.scores, c * inner + (1 - c) * 0.5, rtol=1e-5, atol=1e-6)


runner = CliRunner()


def test_score_and_eval_verbs_with_a_spec_file(tmp_path, monkeypatch):
    _write_reference(tmp_path)
    # the reference is found next to the spec file, whatever the working directory
    (tmp_path / "conf.yaml").write_text(f"confidence: '{WORDS}'\nreference: ref.jsonl\nk: 10\n")
    monkeypatch.chdir(tmp_path.parent)
    rows = [{"prompt": p, "response": a} for p, a in (IN[0], OFF[0])]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    args = ["--no-progress", "--threads", "1", "--no-cache"]
    result = runner.invoke(
        app,
        [
            "score",
            "-r",
            str(tmp_path / "conf.yaml"),
            "--data",
            str(tmp_path / "in.jsonl"),
            "--out",
            str(out),
            *args,
        ],
    )
    assert result.exit_code == 0, result.output
    rewards = [json.loads(line)["reward"] for line in out.read_text().splitlines()]
    c = [rw / len(r["response"].split()) for rw, r in zip(rewards, rows, strict=True)]
    assert c[0] > c[1] + 0.05 and 0 < c[1] < c[0] <= 1, c
    pairs = [{"prompt": p, "chosen": a, "rejected": "No idea."} for p, a in IN + OFF]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pairs))
    result = runner.invoke(
        app,
        [
            "eval",
            "-r",
            str(tmp_path / "conf.yaml"),
            "--data",
            str(tmp_path / "pairs.jsonl"),
            "--out",
            str(tmp_path / "ev"),
            *args,
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    (scored,) = [r for r in report["rewards"] if r["name"].endswith("conf.yaml")]
    assert scored["n_scored"] == 8 and scored["n_nan"] == 0 and scored["score"] == 1.0
    stats = report["run"]["rewards"][scored["name"]]["stats"]
    assert stats["source"] == "knn" and stats["encoder"]["unique"] == 16


# ---- hostile specs ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"k": 0}, "k must be an integer ≥ 1"),
        ({"k": -3}, "k must be an integer ≥ 1"),
        ({"k": True}, "k must be an integer ≥ 1"),
        ({"k": 2.5}, "k must be an integer ≥ 1"),
        ({"scale": -1.0}, "scale must be ≥ 0"),
        ({"scale": math.nan}, "scale must be finite"),
        ({"scale": math.inf}, "scale must be finite"),
        ({"scale": "big"}, "scale must be a number"),
        ({"mode": "add"}, "unknown mode 'add'"),
        ({"mode": "shrink"}, "needs baseline="),
        ({"baseline": 0.0}, "applies to mode 'shrink' only"),
        ({"mode": "shrink", "baseline": math.nan}, "baseline must be finite"),
        ({"source": "vibes"}, "unknown source 'vibes'"),
        ({"text": "title"}, "unknown text 'title'"),
        ({"reference": None}, "needs reference="),
        ({"reference": "  "}, "reference is empty"),
        ({"reference": "no/such/file.jsonl"}, "reference file 'no/such/file.jsonl' not found"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_hostile_options(options, message, tmp_path):
    spec = {"confidence": WORDS, "reference": str(tmp_path / "r.jsonl"), **options}
    if spec["reference"] is None:
        del spec["reference"]
    with pytest.raises(SpecError, match=message):
        load_reward(spec, engine_defaults=ENGINE)


def test_hostile_spec_forms():
    with pytest.raises(SpecError, match="built from a dict"):
        load_reward("confidence:default?reference=x.jsonl")
    with pytest.raises(SpecError, match="weights one reward"):
        load_reward({"confidence": [WORDS, CHARS], "reference": "x.jsonl"})
    with pytest.raises(SpecError, match=r"confidence inner reward: .*unknown rule"):
        load_reward({"confidence": "rule:nosuch", "reference": "x.jsonl"})
    with pytest.raises(SpecError, match="names several composite kinds"):
        load_reward({"confidence": WORDS, "ensemble": [WORDS]})


def test_hostile_reference_files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a", "chosen": \n')
    with pytest.raises(SpecError, match=r"bad\.jsonl.*line 2"):
        load_reward({"confidence": WORDS, "reference": str(bad)})
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(SpecError, match="holds no responses"):
        load_reward({"confidence": WORDS, "reference": str(tmp_path / "empty.jsonl")})
    cases = {
        "ints.npy": (np.ones((3, 384), dtype=np.int64), "dtype int64; expected float"),
        "flat.npy": (np.ones(384), r"shape \(384,\); expected \(n, d\)"),
        "none.npy": (np.zeros((0, 384)), "is empty"),
        "nan.npy": (np.vstack([np.ones(384), np.full(384, np.nan)]), "row 1 is not a usable"),
        "zero.npy": (np.zeros((2, 384)), "row 0 is not a usable"),
    }
    for name, (array, message) in cases.items():
        np.save(tmp_path / name, array)
        with pytest.raises(SpecError, match=message):
            load_reward({"confidence": WORDS, "reference": str(tmp_path / name)})
    np.save(tmp_path / "pickle.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(SpecError, match=r"not a plain \.npy array"):
        load_reward({"confidence": WORDS, "reference": str(tmp_path / "pickle.npy")})
    np.savez(tmp_path / "two.npz", a=np.ones((2, 384)), b=np.ones((2, 384)))
    (tmp_path / "two.npz").rename(tmp_path / "two.npy")
    with pytest.raises(SpecError, match="several arrays"):
        load_reward({"confidence": WORDS, "reference": str(tmp_path / "two.npy")})
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(SpecError, match=r"not a plain \.npy array"):
        load_reward({"confidence": WORDS, "reference": str(tmp_path / "text.npy")})
    np.save(tmp_path / "narrow.npy", np.ones((3, 5), dtype=np.float32))  # shape checked vs MiniLM
    with pytest.raises(SpecError, match="dimension 5; the encoder gives 384"):
        load_reward(
            {"confidence": WORDS, "reference": str(tmp_path / "narrow.npy")}, engine_defaults=ENGINE
        )


def test_offset_is_checked_and_auto_measures_the_references():
    ref = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
    # leave-one-out 1-NN distances: 0.2, 0.04, 0.04, 0.2 → median 0.12
    assert reference_offset(ref, 1) == pytest.approx(0.12)
    assert reference_offset(ref[:1], 5) == 0.0
    assert confidence_weight([0.1, 0.5], 1.0, offset=0.12) == pytest.approx([1.0, math.exp(-0.38)])
    inner = load_reward(WORDS)
    for bad in (-0.1, math.nan, math.inf, "soon"):
        with pytest.raises(SpecError, match="offset"):
            ConfidenceReward(inner, reference=ref, offset=bad, encoder=None)
