"""Audit of the A-cards (docs/methods/A1…A15 but A5) against rewardkit.train: the worked numbers
no other test pinned, parity with TRL's RewardTrainer on the same tensors (and OpenRLHF's
PairWiseLoss / LogExpLoss formulas), and hostile inputs to the pure losses."""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from types import SimpleNamespace as NS

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rewardkit.train import losses as L  # noqa: E402
from rewardkit.train.objectives import compute  # noqa: E402

T = torch.tensor
NAN, INF = float("nan"), float("inf")


# -- worked numbers not pinned elsewhere --------------------------------------------------------


def test_a4_ranking_loss_and_l2_min_norm_worked_numbers():
    assert float(L.ranking_loss(T([[0.0, 1.0, 2.0]]), T([[0.0, 1.0, 2.0]]))) == pytest.approx(
        0.251150, abs=1e-6
    )
    # (1, 0) and (1, 1): unit vectors (1, 0), (0.707, 0.707) → (0.5, 0.5) under L2 (the default)
    w = L.min_norm_weights([np.array([1.0, 0.0]), np.array([1.0, 1.0])])
    assert w.tolist() == pytest.approx([0.5, 0.5], abs=1e-9)


def test_a6_simcse_rows_and_logits():
    d1, d2 = T([[1.0, 0.0], [0.0, 1.0]]), T([[1.0, 1.0], [0.0, 1.0]])
    logits = torch.nn.functional.normalize(d1, dim=-1) @ torch.nn.functional.normalize(d2, dim=-1).T
    assert (logits / 0.5).flatten().tolist() == pytest.approx([1.414214, 0, 1.414214, 2], abs=1e-6)
    rows = torch.nn.functional.cross_entropy(logits / 0.5, torch.arange(2), reduction="none")
    assert rows.tolist() == pytest.approx([0.217622, 0.442548], abs=1e-6)
    assert float(L.simcse_loss(d1, d2, 0.5)) == pytest.approx(0.330085, abs=1e-6)


def test_a7_keep_ratio_of_the_card():
    got = [L.crm_keep_ratio(p, 0.2, 0.5) for p in (0.0, 0.25, 0.5, 1.0)]
    assert got == pytest.approx([1.0, 0.9, 0.8, 0.8])


def test_a8_tie_terms_and_a13_tied_parts():
    assert float(L.bt_loss(T([2.0]), T([0.0]))) == pytest.approx(0.126928, abs=1e-6)
    assert float(L.bt_loss(T([0.0]), T([2.0]))) == pytest.approx(2.126928, abs=1e-6)
    # A13: −log σ(0 − log 5) = log 6 = 1.791759, each side of a tie at Δ = 0
    assert float(L.btt_loss(T([0.0]), T([False]))) == pytest.approx(1.791759, abs=1e-6)


def test_a14_head_of_the_card():
    from rewardkit.rewards.default_rm import FeatureHead

    head = FeatureHead(2, "mlp")
    first, _, second = head.net
    with torch.no_grad():
        first.weight.copy_(torch.eye(2))
        first.bias.zero_()
        second.weight.copy_(T([[1.0, 1.0]]))
        second.bias.zero_()
        assert float(head(T([[1.0, -1.0]]))) == pytest.approx(0.462117, abs=1e-6)
    assert FeatureHead(6, "mlp").net[0].out_features == 6  # inner = the head's input width


def test_a15_components_of_a():
    from rewardkit.rewards.domain import DomainReward
    from rewardkit.types import Query, user

    feats = {"coverage": lambda q: q.meta["c"], "faithfulness": lambda q: q.meta["f"]}
    r = DomainReward(feats, [2.0, 1.0], [0.0, 0.0], [1.0, 1.0])
    p = [user("summarise")]
    res = r.score_full(
        [Query(p, "a", meta={"c": 0.8, "f": 0.6}), Query(p, "b", meta={"c": 0.5, "f": 0.9})]
    )
    assert [res.components[k][0] for k in feats] == pytest.approx([1.6, 0.6])
    assert res.scores.tolist() == pytest.approx([2.2, 1.9])


# -- peers --------------------------------------------------------------------------------------


def _trl_loss(rc, rr, margin=None, center=None):
    """TRL's own ``RewardTrainer.compute_loss`` on given rewards (a stub model returns them)."""
    trl = pytest.importorskip("trl")
    logits = torch.cat([rc, rr]).unsqueeze(-1)
    acc = NS(gather_for_metrics=lambda x: x, gather=lambda x: x)
    me = NS(
        model=NS(training=False),
        args=NS(center_rewards_coefficient=center),
        accelerator=acc,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )
    inputs = {"attention_mask": torch.ones(2 * len(rc), 3, dtype=torch.long)}
    if margin is not None:
        inputs["margin"] = margin
    return trl.RewardTrainer.compute_loss(me, lambda **_: NS(logits=logits), inputs)


def _batch(n, tie=None, margin=None, weight=None):
    return {
        "pair_a": torch.arange(0, 2 * n, 2),
        "pair_b": torch.arange(1, 2 * n, 2),
        "pair_tie": torch.zeros(n, dtype=torch.bool) if tie is None else tie,
        "pair_margin": torch.zeros(n) if margin is None else margin,
        "pair_weight": torch.ones(n) if weight is None else weight,
    }


def _cfg(**kw):
    base = dict(objective="bt", label_smoothing=0.0, center_coef=None, margin_kind="margin")
    return NS(**{**base, **kw})


@pytest.mark.parametrize("center", [None, 0.01, 0.5])
def test_bt_objective_equals_trl_compute_loss(center):
    g = torch.Generator().manual_seed(3)
    rc, rr, m = (torch.randn(16, generator=g) * 4 for _ in range(3))
    rc[0], rr[0], rc[1], rr[1] = 60.0, -60.0, -60.0, 60.0  # saturated both ways
    theirs = float(_trl_loss(rc, rr, m, center))
    out = torch.stack([rc, rr], 1).reshape(-1, 1)  # rows c0, r0, c1, r1, …
    ours = float(compute(_cfg(center_coef=center), out, _batch(16, margin=m)).loss)
    assert ours == pytest.approx(theirs, rel=1e-6)
    pure = L.bt_loss(rc, rr, m) + (center or 0.0) * L.center_penalty(rc, rr)
    assert float(pure) == pytest.approx(theirs, rel=1e-6)
    # A1's worked example through TRL: margin 0.2 → 0.554355
    assert float(_trl_loss(T([1.0]), T([0.5]), T([0.2]))) == pytest.approx(0.554355, abs=1e-6)


def test_openrlhf_pairwise_and_logexp_formulas():
    """OpenRLHF (not installed): PairWiseLoss = −logsigmoid(c − r − m).mean(), LogExpLoss =
    log(1 + exp(r − c)).mean() (no margin). Equal to bt_loss in float64; LogExpLoss's naive form
    overflows in float32 where bt_loss does not."""
    c, r, m = T([1.0, -2.0, 0.3]), T([0.5, 1.0, 0.3]), T([0.2, 0.0, -1.0])
    logexp = torch.log(1 + torch.exp(r.double() - c.double())).mean()
    assert float(L.bt_loss(c, r)) == pytest.approx(float(logexp), rel=1e-6)
    pairwise = torch.log(1 + torch.exp(r.double() + m.double() - c.double())).mean()
    assert float(L.bt_loss(c, r, m)) == pytest.approx(float(pairwise), rel=1e-6)
    assert math.isinf(float(torch.log(1 + torch.exp(T([100.0]) - T([0.0])))))
    assert float(L.bt_loss(T([0.0]), T([100.0]))) == pytest.approx(100.0)


# -- hostile inputs -----------------------------------------------------------------------------


def test_center_penalty_of_a_batch_of_ties_is_zero_not_nan():
    """center_coef with a batch of ties only: mean of no pairs was NaN, and the run stopped as
    "training diverged (try a lower learning rate)"."""
    assert float(L.center_penalty(torch.zeros(0), torch.zeros(0))) == 0.0
    out = T([[1.0], [0.5], [0.2], [0.1]], requires_grad=True)
    loss = compute(_cfg(center_coef=0.01), out, _batch(2, tie=T([True, True]))).loss
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert out.grad is not None and float(out.grad.abs().sum()) == 0.0
    with pytest.raises(ValueError, match="one shape"):
        L.center_penalty(T([1.0, 2.0]), T([[0.0], [1.0]]))


def test_center_coef_trains_through_tie_only_batches(tmp_path):
    from tests.train_helpers import tiny_bert, tiny_cfg, toy_pairs

    from rewardkit.train.run import train_model

    torch.set_num_threads(1)
    d = tiny_bert(tmp_path / "bert")
    cfg = tiny_cfg(d, tmp_path / "o", batch_size=1, max_steps=4, center_coef=0.01)
    res = train_model(cfg, examples=(toy_pairs(2, ties=4), []))
    assert (res.output_dir / "config.json").exists()
    assert all(math.isfinite(h["loss"]) for h in res.history if "loss" in h)


@pytest.mark.parametrize(
    "margin",
    [np.array([[0.1], [0.2]]), [0.1, 0.2], np.array([0.1, 0.2])],
    ids=["np2d", "list", "np"],
)
def test_a_margin_that_is_no_tensor_is_refused(margin):
    # a numpy (n, 1) margin broadcast to (n, n) against (n,) rewards: 0.2512, no error
    with pytest.raises(TypeError, match=r"margin (ndarray|list)"):
        L.bt_loss(T([1.0, 2.0]), T([0.0, 0.0]), margin=margin)


def test_bt_loss_on_non_finite_and_empty_rewards():
    assert math.isnan(float(L.bt_loss(T([NAN]), T([0.0]))))
    assert math.isnan(float(L.bt_loss(T([INF]), T([INF]))))
    assert float(L.bt_loss(T([INF]), T([0.0]))) == 0.0
    assert float(L.bt_loss(T([-INF]), T([0.0]))) == INF
    assert float(L.bt_loss(torch.zeros(0), torch.zeros(0))) == 0.0


@pytest.mark.parametrize("p", [2.0, -0.5, NAN, T([1.0, 1.5])])
def test_soft_target_outside_zero_one_is_refused(p):
    # p = 2 gave −4.99 at Δ = 5, falling without bound: a loss with no minimum
    d = T([5.0]) if not isinstance(p, torch.Tensor) else T([5.0, 0.0])
    with pytest.raises(ValueError, match=r"p_target must be a probability in \[0, 1\]"):
        L.soft_bt_loss(d, p)


@pytest.mark.parametrize("k", [NAN, INF, 1.0])
def test_tie_parameter_must_be_finite_above_one(k):
    with pytest.raises(ValueError, match="finite number > 1"):
        L.btt_loss(T([0.0]), T([True]), k)


def test_gaussian_bt_large_sigma_and_empty_batch():
    args = (T([0.5]), T([50.0]), T([0.0]), T([50.0]))  # σ² = e^100 overflows float32
    loss = L.gaussian_bt_loss(*args, 256, generator=torch.Generator().manual_seed(0))
    eps = torch.randn((256, 1), generator=torch.Generator().manual_seed(0)).double()
    sig = math.sqrt(2 * math.exp(100.0))
    want = -torch.nn.functional.logsigmoid(0.5 + sig * eps).mean()
    assert math.isfinite(float(loss)) and float(loss) == pytest.approx(float(want), rel=1e-5)
    empty = torch.zeros(0)
    assert float(L.gaussian_bt_loss(empty, empty, empty, empty)) == 0.0
    # σ → 0 is still plain BT (the card's worked example)
    small = L.gaussian_bt_loss(T([0.5]), T([-20.0]), T([0.0]), T([-20.0]), 64)
    assert float(small) == pytest.approx(0.474077, abs=1e-5)


def test_ranking_loss_ignores_padding_rewards_and_checks_shapes():
    # a padded position's reward NaN made the loss NaN (NaN × 0)
    assert float(L.ranking_loss(T([[1.0, 0.5, NAN]]), T([[1.0, 0.0, -1.0]]))) == pytest.approx(
        0.474077, abs=1e-6
    )
    assert math.isnan(float(L.ranking_loss(T([[NAN, 0.5]]), T([[1.0, 0.0]]))))
    with pytest.raises(ValueError, match="groups, K"):
        L.ranking_loss(T([1.0, 0.0]), T([1.0, 0.0]))  # was an IndexError traceback
    with pytest.raises(ValueError, match="one shape"):
        L.ranking_loss(T([[1.0, 0.0]]), T([[1.0, 0.0, 2.0]]))


def test_min_norm_weights_hostile():
    with pytest.raises(ValueError, match="at least one"):
        L.min_norm_weights([])  # was ZeroDivisionError
    with pytest.raises(ValueError, match="one size"):
        L.min_norm_weights([np.ones(2), np.ones(3)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for bad in (np.array([INF, 0.0]), np.array([NAN, 0.0])):
            w = L.min_norm_weights([bad, np.array([0.0, 1.0]), np.array([1.0, 1.0])])
            assert w.shape == (3,) and np.isnan(w).all()


def test_peer_select_never_hands_on_a_nan_margin():
    # topk ranks NaN first: pair 1 displaced the clean pair 0
    mask = L.peer_select(T([2.0, NAN, 0.5, 0.1]), 0.25)
    assert mask.tolist() == [True, False, False, False]
    assert L.peer_select(T([NAN, NAN]), 1.0).tolist() == [False, False]


def test_pairwise_accuracy_leaves_nan_pairs_out():
    assert L.pairwise_accuracy(T([NAN, 1.0, 0.0]), T([0.0, 0.0, 1.0])) == pytest.approx(0.5)
    assert math.isnan(L.pairwise_accuracy(T([NAN]), T([0.0])))
    assert L.pairwise_accuracy(T([1.0, 0.0]), T([1.0, -1.0])) == pytest.approx(0.5)  # tie: 0


def test_crm_eval_loss_is_the_bt_loss_with_weights_and_smoothing():
    """crm's eval loss dropped the pairs' weights and curated per-pair smoothing that its
    training loss and bt's eval loss use (card A7: "BT with margins, weights, smoothing")."""
    from rewardkit.train.trainer import eval_batch_loss

    r = T([1.0, 0.2, -0.5, 0.4, 2.0, 1.0])
    batch = _batch(3, margin=T([0.1, 0.0, 0.3]), weight=T([0.25, 1.0, 0.5]))
    batch["pair_smoothing"] = T([0.2, NAN, 0.0])
    crm = _cfg(objective="crm", crm_noise_rate=0.2, crm_warmup=0.5, label_smoothing=0.1)
    res = compute(crm, torch.stack([r, r], 1), batch)
    bt = compute(_cfg(label_smoothing=0.1), r.reshape(-1, 1), batch).loss
    assert float(eval_batch_loss(crm, res, batch)) == pytest.approx(float(bt), rel=1e-6)
    alpha, w = T([0.2, 0.1, 0.0]), T([0.25, 1.0, 0.5])
    z = T([1.0 - 0.2 - 0.1, -0.5 - 0.4, 2.0 - 1.0 - 0.3])
    hand = (
        w
        * ((1 - alpha) * torch.nn.functional.softplus(-z) + alpha * torch.nn.functional.softplus(z))
    ).mean()
    assert float(bt) == pytest.approx(float(hand), rel=1e-6)
