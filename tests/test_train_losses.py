"""Every training loss pinned on hand-computed numbers (the worked examples of docs/methods/ cards)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rewardkit.train import losses as L  # noqa: E402

T = torch.tensor


def test_bt_loss_card_a1_and_margin():
    assert float(L.bt_loss(T([1.0]), T([0.5]))) == pytest.approx(0.474077, abs=1e-6)
    assert float(L.bt_loss(T([1.0]), T([0.5]), margin=0.2)) == pytest.approx(0.554355, abs=1e-6)
    per = L.bt_loss(T([1.0, 0.0]), T([0.5, 0.0]), reduction="none")
    assert per.tolist() == pytest.approx([0.474077, math.log(2)], abs=1e-6)
    w = L.bt_loss(T([1.0, 0.0]), T([0.5, 0.0]), weight=T([1.0, 0.0]), reduction="sum")
    assert float(w) == pytest.approx(0.474077, abs=1e-6)


def test_label_smoothing_card_e1():
    # −0.9·log σ(0.5) − 0.1·log σ(−0.5) = 0.9·0.474077 + 0.1·0.974077 = 0.524077
    assert float(L.bt_loss(T([0.5]), T([0.0]), label_smoothing=0.1)) == pytest.approx(
        0.524077, abs=1e-6
    )
    with pytest.raises(ValueError, match="label_smoothing"):
        L.bt_loss(T([0.5]), T([0.0]), label_smoothing=0.6)


def test_center_penalty():
    # ((1 + 0.5)² + (−1 + −2)²) / 2 = (2.25 + 9) / 2
    assert float(L.center_penalty(T([1.0, -1.0]), T([0.5, -2.0]))) == pytest.approx(5.625)


def test_scaled_bt_card_a3():
    # Δ = 0.5 with b preferred at strength 3: r_a = 0, r_b = 0.5
    a, b, s = T([0.0]), T([0.5]), T([3.0])
    assert float(L.scaled_bt_loss(a, b, s, "regular")) == pytest.approx(0.474077, abs=1e-6)
    assert float(L.scaled_bt_loss(a, b, s, "margin")) == pytest.approx(2.578889, abs=1e-6)
    assert float(L.scaled_bt_loss(a, b, s, "scaled")) == pytest.approx(1.422231, abs=1e-6)
    # negative strength: a preferred
    assert float(L.scaled_bt_loss(b, a, T([-3.0]), "scaled")) == pytest.approx(1.422231, abs=1e-6)


def test_btt_card_a13():
    assert float(L.btt_loss(T([2.0]), T([False]))) == pytest.approx(0.516814, abs=1e-5)
    assert float(L.btt_loss(T([0.0]), T([True]))) == pytest.approx(0.405465, abs=1e-5)
    # a tie is cheapest at Δ = 0: it pulls the rewards together
    tied = [float(L.btt_loss(T([d]), T([True]))) for d in (-1.0, 0.0, 1.0)]
    assert tied[1] < tied[0] and tied[1] < tied[2]


def test_gaussian_bt_reduces_to_bt():
    g = torch.Generator().manual_seed(0)
    v = L.gaussian_bt_loss(T([0.5]), T([-20.0]), T([0.0]), T([-20.0]), 100, generator=g)
    assert float(v) == pytest.approx(0.474077, abs=1e-5)


def test_plackett_luce_full_and_partial():
    s = T([[2.0, 1.0, 0.0]])
    # full ranking 0>1>2: [lse(2,1,0) − 2] + [lse(1,0) − 1]
    lse3 = math.log(math.exp(2) + math.exp(1) + 1)
    lse2 = math.log(math.exp(1) + 1)
    full = (lse3 - 2) + (lse2 - 1)
    assert float(L.plackett_luce_loss(s, T([[0, 1, 2]]))) == pytest.approx(full, abs=1e-6)
    # top-1 partial: only the first choice
    part = float(L.plackett_luce_loss(s, T([[0, 1, 2]]), T([1])))
    assert part == pytest.approx(lse3 - 2, abs=1e-6)
    # K=2, one ranked = BT
    bt = float(L.plackett_luce_loss(T([[1.0, 0.5]]), T([[0, 1]]), T([1])))
    assert bt == pytest.approx(0.474077, abs=1e-6)
    # padding (−1) is ignored: a 2-list in a width-3 batch
    padded = float(L.plackett_luce_loss(T([[1.0, 0.5, 9.0]]), T([[0, 1, -1]])))
    assert padded == pytest.approx(0.474077, abs=1e-6)


def test_ranking_loss_card_a4():
    # labels 2 > 1 > 0 on rewards (0, 1, 2): pairs (1>0), (2>0), (2>1)
    r, lab = T([[0.0, 1.0, 2.0]]), T([[0.0, 1.0, 2.0]])
    want = (-math.log(1 / (1 + math.exp(-1))) * 2 - math.log(1 / (1 + math.exp(-2)))) / 3
    assert float(L.ranking_loss(r, lab)) == pytest.approx(want, abs=1e-6)
    # padding label < 0 is ignored
    assert float(L.ranking_loss(T([[1.0, 0.5, 7.0]]), T([[1.0, 0.0, -1.0]]))) == pytest.approx(
        0.474077, abs=1e-6
    )


def test_masked_mse_and_scalarize_card_a2():
    pred = T([[3.0, 4.0, 0.0, 2.0, 2.0]])
    target = T([[4.0, 4.0, -100.0, 2.0, 1.0]])
    assert float(L.masked_mse(pred, target)) == pytest.approx(0.5)
    assert float(L.scalarize(np.array([4, 4, 4, 2, 1]), L.HELPSTEER2_WEIGHTS_340B)) == (
        pytest.approx(6.61)
    )


def test_gated_reward():
    # softmax(0, ln 3) = (0.25, 0.75); 0.25·2 + 0.75·(−2) = −1
    r = L.gated_reward(T([[2.0, -2.0]]), T([[0.0, math.log(3.0)]]))
    assert float(r[0]) == pytest.approx(-1.0, abs=1e-6)


def test_min_norm_weights_card_a4():
    assert L.min_norm_weights([np.array([1.0, 0.0]), np.array([0.0, 1.0])]).tolist() == (
        pytest.approx([0.5, 0.5])
    )
    w = L.min_norm_weights([np.array([1.0, 0.0]), np.array([1.0, 1.0])], normalize="none")
    assert w.tolist() == pytest.approx([0.999, 0.001])
    three = L.min_norm_weights([np.eye(3)[i] for i in range(3)])
    assert three.tolist() == pytest.approx([1 / 3] * 3, abs=1e-3)


def test_verdict_ce_card_b3():
    # logits (1.2, 0.4) over a 2-token vocabulary, target 0: −log σ(0.8) = 0.371101
    assert float(L.verdict_ce(T([[1.2, 0.4]]), T([0]))) == pytest.approx(0.371101, abs=1e-6)


def test_peer_select_card_a7():
    mask = L.peer_select(T([2.0, -1.0, 0.5, 0.1, -0.3]), 0.6)
    assert mask.tolist() == [True, False, True, True, False]
    assert L.crm_keep_ratio(0.0, 0.4, 0.5) == pytest.approx(1.0)
    assert L.crm_keep_ratio(0.25, 0.4, 0.5) == pytest.approx(0.8)
    assert L.crm_keep_ratio(0.9, 0.4, 0.5) == pytest.approx(0.6)


def test_pairwise_ece_card_d7():
    # pairwise, both orderings: Δ = 0 puts (0.5, 1) and (0.5, 0) in one bin: |1 − 1| = 0
    assert L.pairwise_ece(np.array([0.0]), np.array([0.0])) == pytest.approx(0.0)
    # Δ = ln 4: (0.8, 1) and (0.2, 0) in two bins: (0.2 + 0.2) / 2
    assert L.pairwise_ece(np.array([math.log(4.0)]), np.array([0.0])) == pytest.approx(0.2)


def test_pairwise_accuracy_strict():
    assert L.pairwise_accuracy(T([1.0, 0.0, 2.0]), T([0.0, 0.0, 3.0])) == pytest.approx(1 / 3)
