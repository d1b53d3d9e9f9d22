"""Reward-guided search: best-of-N, TTSnap pruning (docs/methods/F3-ttsnap.md) and ReNO (F2, B15)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rewardkit.multimodal import search as S

# docs/methods/F3-ttsnap.md worked example (TTSnap README values).
X, Y, STEPS, KEEP, N_STEPS = 9.9, 1.2, (2, 6, 11), (0.4, 0.4, 0.5), 20


def quality(seed: int) -> float:
    """The final reward of a seed's candidate in the toy generator (distinct per seed)."""
    return float(np.sin(seed * 1.7) + 0.01 * seed)


class CountingGenerator:
    """A toy step-wise generator that counts every call. The state walks from 0 to the seed's
    quality; ``preview`` is the current value (a noisy-free Tweedie estimate stand-in)."""

    def __init__(self, n_steps: int, noise: float = 0.0) -> None:
        self.n_steps, self.noise = n_steps, noise
        self.calls = {"start": 0, "step": 0, "preview": 0, "finish": 0}
        self.steps_of: dict[int, int] = {}

    def start(self, seed: int) -> dict:
        self.calls["start"] += 1
        return {"seed": seed, "t": 0}

    def step(self, state: dict) -> dict:
        self.calls["step"] += 1
        self.steps_of[state["seed"]] = self.steps_of.get(state["seed"], 0) + 1
        return {"seed": state["seed"], "t": state["t"] + 1}

    def _value(self, state: dict) -> float:
        frac = state["t"] / (self.n_steps - 1)
        wobble = self.noise * math.cos(state["seed"] * 3.1) * (1 - frac)
        return quality(state["seed"]) * frac + wobble

    def preview(self, state: dict) -> dict:
        self.calls["preview"] += 1
        return {"seed": state["seed"], "value": self._value(state)}

    def finish(self, state: dict) -> dict:
        self.calls["finish"] += 1
        assert state["t"] == self.n_steps - 1, "finish must see the last step index"
        return {"seed": state["seed"], "value": quality(state["seed"])}


class CountingReward:
    def __init__(self) -> None:
        self.calls, self.items = 0, 0

    def __call__(self, cands: list[dict]) -> np.ndarray:
        self.calls += 1
        self.items += len(cands)
        return np.array([c["value"] for c in cands])


# --- cost model (card F3) -------------------------------------------------------------------


def test_ttsnap_cost_pins_card_example():
    c = S.ttsnap_cost(STEPS, KEEP, N_STEPS, X, Y)
    # c = 21.0 + 16.32 + 8.112 + 6.432
    assert c == pytest.approx(51.864, abs=1e-9)
    assert S.bon_cost(N_STEPS, X, Y) == pytest.approx(199.2)
    assert S.bon_cost(N_STEPS, X, Y) / c == pytest.approx(3.84, abs=0.005)
    # No pruning: the card's model counts S − 1 steps and one reward call per candidate.
    assert S.ttsnap_cost((), (), N_STEPS, X, Y) == pytest.approx(19 * X + Y)


def test_alive_counts_and_exact_cost_round_like_ttsnap():
    assert S.alive_counts(25, KEEP) == [25, 10, 4, 2]
    assert S.ttsnap_search_cost(25, STEPS, KEEP, N_STEPS, X, Y) == pytest.approx(25 * 51.864)
    # 7 seeds: 7 → round(2.8)=3 → round(1.2)=1 → max(1, round(0.5)=0)=1
    assert S.alive_counts(7, KEEP) == [7, 3, 1, 1]
    exact = 7 * (2 * X + Y) + 3 * (4 * X + Y) + 1 * (5 * X + Y) + 1 * (8 * X + Y)
    assert S.ttsnap_search_cost(7, STEPS, KEEP, N_STEPS, X, Y) == pytest.approx(exact)


def test_bad_schedules_are_rejected():
    with pytest.raises(ValueError, match="increasing"):
        S.ttsnap_cost((6, 2), (0.5, 0.5), 20, 1, 1)
    with pytest.raises(ValueError, match="n_steps − 1"):
        S.ttsnap_cost((19,), (0.5,), 20, 1, 1)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        S.ttsnap_cost((2,), (0.0,), 20, 1, 1)
    with pytest.raises(ValueError, match="keep fractions"):
        S.ttsnap_cost((2, 4), (0.5,), 20, 1, 1)


# --- the search spends exactly the documented budget ----------------------------------------


@pytest.mark.parametrize("n", [25, 7, 1])
def test_ttsnap_search_spends_documented_budget(n):
    gen, rew = CountingGenerator(N_STEPS), CountingReward()
    res = S.ttsnap_search(gen, rew, n, N_STEPS, STEPS, KEEP)
    alive = S.alive_counts(n, KEEP)
    # Counted by the generator and the reward themselves, not by the search.
    steps_expected = sum(
        alive[j] * (s - p) for j, (s, p) in enumerate(zip(STEPS, (0, *STEPS[:-1]), strict=True))
    ) + alive[-1] * (N_STEPS - 1 - STEPS[-1])
    assert gen.calls == {
        "start": n,
        "step": steps_expected,
        "preview": sum(alive[:-1]),
        "finish": alive[-1],
    }
    assert (rew.calls, rew.items) == (len(STEPS) + 1, sum(alive))
    b = res.budget
    assert (b.generator_calls, b.step_calls, b.preview_calls, b.finish_calls) == (
        n,
        steps_expected,
        sum(alive[:-1]),
        alive[-1],
    )
    assert (b.reward_calls, b.reward_items) == (rew.calls, rew.items)
    # The card's cost model prices exactly what was spent.
    assert b.cost(X, Y) == pytest.approx(S.ttsnap_search_cost(n, STEPS, KEEP, N_STEPS, X, Y))
    # Survivors ran all S − 1 steps; pruned seeds stopped at their pruning step.
    assert sorted(v for v in gen.steps_of.values() if v == N_STEPS - 1) == [N_STEPS - 1] * alive[-1]
    if n == 25:
        assert b.cost(X, Y) == pytest.approx(25 * 51.864)


def test_ttsnap_search_prunes_by_intermediate_reward_and_picks_best():
    n = 25
    gen = CountingGenerator(N_STEPS)
    res = S.ttsnap_search(gen, CountingReward(), n, N_STEPS, STEPS, KEEP, seeds=range(100, 125))
    qs = {s: quality(s) for s in range(100, 125)}
    # Previews are proportional to the final quality, so the global best survives every round.
    assert res.best_seed == max(qs, key=qs.get)
    assert res.best["value"] == pytest.approx(qs[res.best_seed])
    assert [len(r.kept) for r in res.rounds] == [10, 4, 2]
    for r in res.rounds:  # each round kept the top of its alive seeds
        top = sorted(r.alive, key=lambda s: -qs[s])[: len(r.kept)]
        assert sorted(r.kept) == sorted(top)
    assert np.isnan(res.scores).sum() == n - 2
    assert res.seeds[res.best_index] == res.best_seed
    bon = S.best_of_n_seeds(lambda s: {"seed": s, "value": qs[s]}, CountingReward(), seeds=qs)
    assert bon.best_seed == res.best_seed


def test_ttsnap_search_uses_a_separate_prune_reward():
    n, seen = 8, []

    def noisy_prune(cands):  # prefers low seeds, whatever their quality
        seen.append(len(cands))
        return np.array([-c["seed"] for c in cands], dtype=float)

    res = S.ttsnap_search(
        CountingGenerator(10), CountingReward(), n, 10, (3,), (0.25,), noisy_prune
    )
    assert seen == [8]
    assert res.rounds[0].kept == [0, 1]
    assert res.best_seed == max([0, 1], key=quality)


def test_best_of_n_budget_and_choice():
    calls = []

    def generate(seed):
        calls.append(seed)
        return {"seed": seed, "value": quality(seed)}

    rew = CountingReward()
    res = S.best_of_n_seeds(generate, rew, n=12)
    assert calls == list(range(12))
    assert (res.budget.generator_calls, res.budget.reward_calls, res.budget.reward_items) == (
        12,
        1,
        12,
    )
    assert (rew.calls, rew.items) == (1, 12)
    assert res.best_seed == max(range(12), key=quality)
    assert res.scores.shape == (12,)
    with pytest.raises(ValueError, match="n=3 but 2 seeds"):
        S.best_of_n_seeds(generate, rew, n=3, seeds=[1, 2])


def test_seeds_for_budget_fits_the_budget():
    budget = 10 * S.bon_cost(N_STEPS, X, Y)
    assert S.bon_seeds_for_budget(budget, N_STEPS, X, Y) == 10
    n = S.ttsnap_seeds_for_budget(budget, STEPS, KEEP, N_STEPS, X, Y)
    cost = S.ttsnap_search_cost
    assert cost(n, STEPS, KEEP, N_STEPS, X, Y) <= budget < cost(n + 1, STEPS, KEEP, N_STEPS, X, Y)
    assert 35 <= n <= 40  # ≈ 3.84 × 10 by the per-candidate model
    res = S.ttsnap_search(CountingGenerator(N_STEPS), CountingReward(), n, N_STEPS, STEPS, KEEP)
    assert res.budget.cost(X, Y) <= budget
    assert S.ttsnap_seeds_for_budget(1.0, STEPS, KEEP, N_STEPS, X, Y) == 0


def test_rank_sum_multi_reward_selection():
    scores = np.array([[3.0, 0.0], [2.0, 2.0], [1.0, 1.0], [0.0, 3.0]])
    # ranks col0: [4,3,2,1], col1: [1,3,2,4] -> sums [5,6,4,5]
    np.testing.assert_allclose(S.rank_sum(scores), [5, 6, 4, 5])
    assert list(S.best_first(scores)) == [1, 0, 3, 2]  # tie 0/3 keeps the earlier first
    np.testing.assert_allclose(S.rank_sum(np.array([1.0, 1.0, np.nan])), [2.5, 2.5, 1])
    res = S.best_of_n_seeds(lambda s: s, lambda c: scores[c], n=4)
    assert res.best_seed == 1


# --- ReNO (card F2) and the B15 reward losses ------------------------------------------------


def test_chi_regularizer_pins_card_example():
    import torch

    assert float(S.chi_regularizer(torch.ones(4))) == pytest.approx(-0.079442, abs=1e-6)
    eps = torch.ones(2, 2)  # d = numel: the shape does not matter
    assert float(S.chi_regularizer(eps)) == pytest.approx(-0.079442, abs=1e-6)


def test_reward_losses_match_b15():
    import torch

    a = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    t = torch.tensor([[2.0, 0.0]])
    cos = torch.tensor([1.0, 0.6])
    assert float(S.clip_loss(a, t)) == pytest.approx(float((100 - 100 * cos).mean()))
    assert float(S.clip_loss(a[:1], t)) == pytest.approx(0.0, abs=1e-5)
    assert float(S.pickscore_loss(a[1:], t, math.log(40.0))) == pytest.approx(
        30 - 40 * 0.6, abs=1e-4
    )
    assert float(S.pickscore_loss(a[1:], t)) == pytest.approx(30 - 100 * 0.6, abs=1e-4)
    assert float(S.hps_loss(torch.tensor([0.3]))) == pytest.approx(0.7)
    assert float(S.imagereward_loss(torch.tensor([0.5, 1.5]))) == pytest.approx(1.0)
    assert float(S.aesthetic_loss(torch.tensor(7.0))) == pytest.approx(3.0)


def _toy_generator_and_reward(tmp_path):
    """A fixed random conv generator (noise 4x8x8 -> image 3x32x32) and a CLIP-loss reward
    through a tiny random CLIP vision tower towards a fixed target embedding."""
    import torch
    from tests.mm_helpers import tiny_clip
    from transformers import CLIPModel

    clip = CLIPModel.from_pretrained(tiny_clip(tmp_path / "clip")).eval()
    for p in clip.parameters():
        p.requires_grad_(False)
    torch.manual_seed(1)
    net = torch.nn.Sequential(
        torch.nn.Upsample(scale_factor=4), torch.nn.Conv2d(4, 3, 3, padding=1), torch.nn.Tanh()
    )
    for p in net.parameters():
        p.requires_grad_(False)
    target = torch.randn(1, clip.config.projection_dim)

    def embed(image):
        return clip.get_image_features(pixel_values=image).pooler_output

    def loss(image):
        return S.clip_loss(embed(image), target)

    return net, loss


def test_reno_raises_reward_monotonically_and_keeps_best(tmp_path):
    import torch

    net, loss = _toy_generator_and_reward(tmp_path)
    # The card's settings (SGD, Nesterov momentum 0.9, lr 5.0, grad clip 0.1, λ = 0.01) but 25
    # iterations instead of 50: on this toy every one of the first ~40 updates is a descent step
    # (near the optimum, after ~40 steps, momentum starts to overshoot).
    res = S.reno_optimize(net, [(1.0, loss)], (1, 4, 8, 8), iters=25, seed=0)
    assert len(res.losses) == 25 and res.generator_calls == 25
    assert all(b < a for a, b in zip(res.losses, res.losses[1:], strict=False)), res.losses
    assert res.rewards[-1] > res.rewards[0] + 20.0
    assert res.best_iteration == 24
    with torch.no_grad():
        assert float(loss(net(res.noise))) == pytest.approx(res.best_loss, rel=1e-5)
        torch.testing.assert_close(net(res.noise), res.output)
    start = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(0))
    assert not torch.equal(start, res.noise)


def test_reno_returns_best_iterate_when_not_monotone(tmp_path):
    import torch

    net, loss = _toy_generator_and_reward(tmp_path)
    # A score term (raised) plus a huge step: the losses jump around; the best is kept.
    res = S.reno_optimize(
        net,
        [(1.0, loss), (0.5, lambda img: img.mean(), "score")],
        (1, 4, 8, 8),
        iters=8,
        lr=400.0,
        grad_clip=1.0,
        seed=3,
    )
    best = int(np.argmin(res.losses))
    assert 0 < best < len(res.losses) - 1  # neither the first nor the last iterate
    assert res.best_iteration == best and res.best_loss == pytest.approx(min(res.losses))
    total = lambda img: loss(img) - 0.5 * img.mean()  # noqa: E731
    with torch.no_grad():
        assert float(total(net(res.noise))) == pytest.approx(res.best_loss, rel=1e-4)
    assert res.term_losses[0][1] == pytest.approx(
        -float(net(torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(3))).mean()),
        rel=1e-4,
    )
    with pytest.raises(ValueError, match="kind must be"):
        S.reno_optimize(net, [(1.0, loss, "gain")], (1, 4, 8, 8), iters=1)
