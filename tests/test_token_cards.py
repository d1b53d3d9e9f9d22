"""Worked examples of the T-REG (B12) and AlignDistil (B13) cards, computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rewardkit.rewards.token_rewards import log_ratio_tokens
from rewardkit.train.aligndistil import aligndistil_loss, aligndistil_teacher


def test_treg_card_example():
    # d_t = log π(y_t|p⁺) − log π(y_t|p⁻) = (0.5, −1.0); token rewards tanh(d_t).
    out = log_ratio_tokens(np.array([-1.0, -2.0]), np.array([-1.5, -1.0]), squash=True)
    np.testing.assert_allclose(out, [0.462117, -0.761594], atol=1e-6)


def test_aligndistil_card_example():
    q, z, w = aligndistil_teacher(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0]), beta2=1.0)
    # π_dpo = (0.880797, 0.119203), π_rev = (0.268941, 0.731059), L1 = 1.223711
    assert float(w) == pytest.approx(1.224711, abs=1e-6)
    np.testing.assert_allclose(z.numpy(), [4.449423, -1.224711], atol=1e-5)
    np.testing.assert_allclose(q.numpy(), [0.996578, 0.003422], atol=1e-6)
    # Default β₂ = 15: w = 15 · 1.223711 + 0.001.
    _, _, w15 = aligndistil_teacher(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0]))
    assert float(w15) == pytest.approx(18.356665, abs=1e-4)
    # Batched (b, T, V) and temperature: q = softmax(z*/T).
    zd = torch.randn(2, 3, 5)
    zr = torch.randn(2, 3, 5)
    q2, z2, _ = aligndistil_teacher(zd, zr, beta2=2.0, temperature=2.0)
    torch.testing.assert_close(q2, torch.softmax(z2 / 2.0, dim=-1))


def test_aligndistil_loss_by_hand():
    zd = torch.tensor([[[2.0, 0.0]]])
    zr = torch.tensor([[[0.0, 1.0]]])
    student = torch.tensor([[[1.0, 1.0]]], requires_grad=True)  # uniform student
    loss = aligndistil_loss(student, zd, zr, torch.ones(1, 1), beta=0.1, beta2=1.0)
    # KL(u ‖ q) = Σ 0.5 (log 0.5 − log q_v); weight β / w = 0.1 / 1.224711.
    q = [0.996578, 0.003422]
    kl = sum(0.5 * (math.log(0.5) - math.log(v)) for v in q)
    assert float(loss.detach()) == pytest.approx(0.1 / 1.224711 * kl, rel=1e-4)
    loss.backward()
    assert student.grad is not None and float(student.grad[0, 0, 0]) < 0  # pulled towards q
    # Masked positions do not count; the mean is over tokens with len_norm.
    two = aligndistil_loss(
        torch.cat([student.detach(), torch.zeros(1, 1, 2)], 1),
        torch.cat([zd, zd], 1),
        torch.cat([zr, zr], 1),
        torch.tensor([[1.0, 0.0]]),
        beta=0.1,
        beta2=1.0,
    )
    assert float(two) == pytest.approx(float(loss.detach()), rel=1e-6)
