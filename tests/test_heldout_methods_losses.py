"""Held-out inputs for the A-cards' losses: per-pair operands whose shapes do not line up
(docs/methods/A1, A3, A8, A13). ``(n,)`` against ``(n, 1)`` used to broadcast to an ``(n, n)``
matrix of every chosen against every rejected, a wrong loss with no error."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rewardkit.train import losses as L  # noqa: E402


def col(*values: float) -> torch.Tensor:
    return torch.tensor(values).unsqueeze(1)


def vec(*values: float) -> torch.Tensor:
    return torch.tensor(values)


CALLS = {
    "bt rejected (n,1)": lambda: L.bt_loss(vec(1.0, 2.0, 3.0), col(0.0, 1.0, 5.0)),
    "bt margin (n,1)": lambda: L.bt_loss(vec(1.0, 2.0), vec(0.0, 1.0), margin=col(0.0, 1.0)),
    "bt weight (n,1)": lambda: L.bt_loss(vec(1.0, 2.0), vec(0.0, 1.0), weight=col(1.0, 2.0)),
    "soft target (n,1)": lambda: L.soft_bt_loss(vec(1.0, 2.0), col(1.0, 0.5)),
    "scaled strength (n,1)": lambda: L.scaled_bt_loss(vec(1.0, 2.0), vec(0.0, 1.0), col(3.0, 1.0)),
    "btt tied (n,1)": lambda: L.btt_loss(vec(1.0, 2.0), torch.tensor([[True], [False]])),
    "gaussian mu_r (n,1)": lambda: L.gaussian_bt_loss(
        vec(1.0, 2.0), vec(-20.0, -20.0), col(0.0, 1.0), vec(-20.0, -20.0), n_samples=8
    ),
    "accuracy rejected (n,1)": lambda: L.pairwise_accuracy(vec(1.0, 2.0), col(0.0, 1.0)),
    "masked mse pred (n,1)": lambda: L.masked_mse(col(1.0, 2.0), torch.ones(2, 5)),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_per_pair_operands_of_another_shape_are_refused(name):
    with pytest.raises(ValueError, match="one shape"):
        CALLS[name]()


def test_scalars_still_broadcast_and_card_vectors_hold():
    # A1: Δ = 0.5 → 0.474077; margin 0.2 → 0.554355 (a float and a 0-d tensor margin)
    assert float(L.bt_loss(vec(1.0), vec(0.5))) == pytest.approx(0.474077, abs=1e-6)
    assert float(L.bt_loss(vec(1.0), vec(0.5), 0.2)) == pytest.approx(0.554355, abs=1e-6)
    assert float(L.bt_loss(vec(1.0), vec(0.5), torch.tensor(0.2))) == pytest.approx(
        0.554355, abs=1e-6
    )
    # A3: Δ = 0.5, s = 3 → margin 2.578889, scaled 1.422231 (strength > 0: b preferred)
    s = vec(3.0)
    assert float(L.scaled_bt_loss(vec(0.0), vec(0.5), s, "margin")) == pytest.approx(2.578889, 1e-6)
    assert float(L.scaled_bt_loss(vec(0.0), vec(0.5), s, "scaled")) == pytest.approx(1.422231, 1e-6)
    # A13: BTT non-tied Δ = 2 → 0.516814; tied Δ = 0 → 2·1.7918 − log 24 = 0.405465
    assert float(L.btt_loss(vec(2.0), torch.tensor([False]))) == pytest.approx(0.516814, abs=1e-6)
    assert float(L.btt_loss(vec(0.0), torch.tensor([True]))) == pytest.approx(0.405465, abs=1e-6)
    # A8 soft target: p = ½ at Δ = 0 is log 2
    assert float(L.soft_bt_loss(vec(0.0), 0.5)) == pytest.approx(0.693147, abs=1e-6)


def test_bt_loss_matches_trl_reward_trainer_with_margin():
    """TRL's RewardTrainer: ``−logsigmoid(r_c − r_r − margin).mean()`` on the same tensors."""
    F = torch.nn.functional
    g = torch.Generator().manual_seed(0)
    rc, rr, m = (torch.randn(32, generator=g) * 3 for _ in range(3))
    rc[0], rr[0] = 40.0, -40.0  # saturated
    rc[1], rr[1] = -40.0, 40.0
    theirs = -F.logsigmoid(rc - rr - m).mean()
    assert float(L.bt_loss(rc, rr, m)) == pytest.approx(float(theirs), rel=1e-6)


def test_gaussian_bt_needs_at_least_one_draw():
    # 0 draws used to average an empty tensor: a NaN loss with no error
    args = (vec(1.0), vec(-20.0), vec(0.5), vec(-20.0))
    assert float(L.gaussian_bt_loss(*args, n_samples=64)) == pytest.approx(0.474077, abs=1e-4)
    with pytest.raises(ValueError, match="n_samples must be ≥ 1"):
        L.gaussian_bt_loss(*args, n_samples=0)


def test_peer_select_of_an_empty_batch_is_empty():
    assert L.peer_select(torch.zeros(0), 0.5).shape == (0,)  # topk(·, 1) of nothing used to raise
    mask = L.peer_select(vec(0.3, -1.0, 2.0, 0.1), 0.5)
    assert mask.tolist() == [True, False, True, False]
