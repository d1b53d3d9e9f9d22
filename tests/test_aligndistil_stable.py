"""AlignDistil's loss (card B13) stays exact where the teacher's softmax underflows."""

from __future__ import annotations

import math

import pytest
import torch

from rewardkit.train.aligndistil import (
    aligndistil_loss,
    aligndistil_teacher,
    aligndistil_teacher_log,
)


def _exact(student, dpo, rev, mask, beta=0.1, beta2=15.0, temperature=1.0) -> float:
    """The card's loss in float64 from log-probabilities."""
    s, d, r = student.double(), dpo.double(), rev.double()
    w = beta2 * (d.softmax(-1) - r.softmax(-1)).abs().sum(-1) + 1e-3
    log_q = torch.log_softmax((d + w.unsqueeze(-1) * (d - r)) / temperature, -1)
    logp = torch.log_softmax(s, -1)
    kl = (logp.exp() * (logp - log_q)).sum(-1)
    m = mask.double()
    return float(((beta / w * kl * m).sum(-1) / m.sum(-1).clamp(min=1)).mean())


def test_two_token_default_beta2_is_exact():
    # z_dpo = (5, 0), z_rev = (0, 5), β₂ = 15: w ≈ 29.6, z* ≈ (153, −148): log q₂ ≈ −301.
    s, d, r = torch.zeros(1, 1, 2), torch.tensor([[[5.0, 0.0]]]), torch.tensor([[[0.0, 5.0]]])
    m = torch.ones(1, 1)
    log_q, _, w = aligndistil_teacher_log(d, r)
    assert float(log_q[0, 0, 1]) == pytest.approx(-300.9943, abs=1e-3)  # a clamp read −69
    assert float(aligndistil_loss(s, d, r, m)) == pytest.approx(0.5061043503, abs=1e-4)
    assert _exact(s, d, r, m) == pytest.approx(0.5061043503, abs=1e-9)
    # By hand: KL(u ‖ q) = log 0.5 − ½ (log q₁ + log q₂); weight β / w.
    lq = log_q[0, 0].double()
    kl = math.log(0.5) - 0.5 * float(lq.sum())
    assert float(aligndistil_loss(s, d, r, m)) == pytest.approx(0.1 / float(w) * kl, rel=1e-5)


def test_random_vocab_matches_float64():
    g = torch.Generator().manual_seed(0)
    d = torch.randn(1, 8, 2000, generator=g) * 3
    r = d + torch.randn(1, 8, 2000, generator=g) * 3
    m = torch.ones(1, 8)
    assert float(aligndistil_loss(d.clone(), d, r, m)) == pytest.approx(0.9440991260, abs=1e-4)


def test_gradient_matches_float64():
    d, r = torch.tensor([[[5.0, 0.0]]]), torch.tensor([[[0.0, 5.0]]])
    s32 = torch.zeros(1, 1, 2, requires_grad=True)
    s64 = torch.zeros(1, 1, 2, dtype=torch.float64, requires_grad=True)
    aligndistil_loss(s32, d, r, torch.ones(1, 1)).backward()
    aligndistil_loss(s64, d.double(), r.double(), torch.ones(1, 1)).backward()
    assert s32.grad is not None and s64.grad is not None
    torch.testing.assert_close(s32.grad.double(), s64.grad, atol=1e-5, rtol=1e-4)
    assert float(s64.grad[0, 0, 0]) < -1e-3  # pulled hard towards the first token


def test_card_example_unchanged():
    # Card B13: vocab 2, z_dpo = (2, 0), z_rev = (0, 1), β₂ = 1.
    q, z, w = aligndistil_teacher(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0]), beta2=1.0)
    assert float(w) == pytest.approx(1.224711, abs=1e-6)
    torch.testing.assert_close(z, torch.tensor([4.449423, -1.224711]), atol=1e-5, rtol=0)
    torch.testing.assert_close(q, torch.tensor([0.996578, 0.003422]), atol=1e-6, rtol=0)
    s, zd, zr = torch.ones(1, 1, 2), torch.tensor([[[2.0, 0.0]]]), torch.tensor([[[0.0, 1.0]]])
    loss = aligndistil_loss(s, zd, zr, torch.ones(1, 1), beta=0.1, beta2=1.0)
    kl = sum(0.5 * (math.log(0.5) - math.log(v)) for v in (0.996578, 0.003422))
    assert float(loss) == pytest.approx(0.1 / 1.224711 * kl, rel=1e-4)
    assert float(loss) == pytest.approx(_exact(s, zd, zr, torch.ones(1, 1), beta2=1.0), rel=1e-6)
