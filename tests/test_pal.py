"""PAL (docs/methods/A10-pal.md): the worked example, planted user groups, few-shot users, the
``pal:DIR?user=ID`` reward and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rewardkit.curate.personas import PERSONAS, attribute_matrix, markdown, persona_pairs, words
from rewardkit.errors import DataError, SpecError
from rewardkit.rewards.pal import ideal_point_reward, ideal_points, mixture_reward
from rewardkit.train.pal import (
    Pairs,
    PALConfig,
    accuracy,
    fit_pal,
    fit_user,
    population_mixture,
    train_pal,
)
from rewardkit.types import Example, user


def test_card_worked_example():
    prototypes = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    w = torch.tensor([[0.75, 0.25]])
    a = ideal_points(w, prototypes)
    assert torch.allclose(a, torch.tensor([[0.75, 0.25]]))
    r_left = ideal_point_reward(torch.tensor([[1.0, 0.0]]), a)
    r_right = ideal_point_reward(torch.tensor([[0.0, 1.0]]), a)
    assert float(-r_left) == pytest.approx(0.353553, abs=1e-6)
    assert float(-r_right) == pytest.approx(1.060660, abs=1e-6)
    s = float(-r_left) - float(-r_right)  # the card's distance difference
    assert s == pytest.approx(-0.707107, abs=1e-6)  # < 0: left preferred
    assert float(mixture_reward(torch.tensor([[2.0, -1.0]]), w)) == pytest.approx(1.25)


def _planted(n_users=8, n_pairs=2000, seed=0):
    """Two user groups with opposite tastes on one feature direction, a shared taste on another."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, 16)).astype(np.float32)
    v, s = np.eye(16)[0], 0.3 * np.eye(16)[1]
    groups = np.arange(n_users) % 2

    def make(m):
        ch, rj, us = [], [], []
        for _ in range(m):
            u = int(rng.integers(n_users))
            i, j = rng.choice(len(x), 2, replace=False)
            util = x @ ((v if groups[u] == 0 else -v) + s)
            if util[i] < util[j]:
                i, j = j, i
            ch.append(i)
            rj.append(j)
            us.append(u)
        return Pairs(torch.tensor(ch), torch.tensor(rj), torch.tensor(us))

    return torch.from_numpy(x), make(n_pairs), make(1000), groups


@pytest.mark.parametrize("form", ["ideal", "mixture"])
def test_pal_recovers_two_planted_groups_one_bt_cannot(form):
    x, train, test, groups = _planted()
    head, hist = fit_pal(x, train, len(groups), PALConfig(form=form, d_pref=16, steps=300))
    assert np.mean(hist[-20:]) < 0.5 * np.mean(hist[:5])  # the objective falls
    pal_acc = accuracy(head, x, test, head.user_weights(test.user).detach()).mean()
    one = Pairs(train.chosen, train.rejected, torch.zeros_like(train.user))
    bt, _ = fit_pal(x, one, 1, PALConfig(form="mixture", k=1, d_pref=16, steps=300))
    bt_acc = accuracy(bt, x, test, torch.ones(len(test), 1)).mean()
    assert pal_acc > 0.85 and bt_acc < 0.7 and pal_acc - bt_acc > 0.2
    # The learned mixtures split the users into the planted groups.
    top = torch.softmax(head.user_logits, -1).argmax(-1).numpy()
    assert len(set(top[groups == 0])) == 1 and len(set(top[groups == 1])) == 1
    assert top[groups == 0][0] != top[groups == 1][0]

    # Few-shot: a new user of group 1 from 10 comparisons, prototypes frozen.
    rng = np.random.default_rng(1)
    new = [int(i) for i in rng.permutation(len(test))]
    mine = test.take([i for i in new if groups[int(test.user[i])] == 1])
    shots, held = mine.take(range(10)), mine.take(range(10, len(mine)))
    pop = population_mixture(head, train, len(groups))
    theta = fit_user(head, x, shots, pop)
    w_new = torch.softmax(torch.from_numpy(theta), -1).expand(len(held), -1)
    w_pop = torch.from_numpy(pop).float().expand(len(held), -1)
    few = accuracy(head, x, held, w_new).mean()
    assert few > 0.8 and few > accuracy(head, x, held, w_pop).mean() + 0.2


def _texts_examples(n=12):
    exs = []
    for i in range(n):
        short = f"Use item {i}."
        long = (
            f"Here is a careful, step by step answer about item {i}:\n- first point\n- second "
            "point\n- third point with more words to read"
        )
        exs.append(Example(f"e{i}", [user(f"How do I use item {i}?")], [short, long], [0]))
    return exs


def test_persona_pairs_label_by_attributes():
    z = attribute_matrix(["a b", "a b c d e f g h", "- x\n- y"], ["length", "markdown"])
    assert z.shape == (3, 2) and np.allclose(z.mean(0), 0)
    assert words("a b c") == pytest.approx(np.log(4)) and markdown("- a\n- b") == 1.0
    pairs = persona_pairs(_texts_examples(), users_per_persona=2, pairs_per_user=30, beta=8.0)
    assert len(pairs) == 3 * 2 * 30 and {p.meta["persona"] for p in pairs} == set(PERSONAS)
    for persona, sign in (("concise", -1), ("thorough", 1)):
        mine = [p for p in pairs if p.meta["persona"] == persona]
        agree = np.mean([np.sign(p.meta["z_diff"]["length"]) == sign for p in mine])
        assert agree > 0.8
    with pytest.raises(DataError, match="unknown persona attributes"):
        persona_pairs(_texts_examples(), {"x": {"colour": 1.0}})


def test_pal_reward_end_to_end(tmp_path):
    from rewardkit import load_reward
    from rewardkit.train.pal import adapt_user
    from rewardkit.types import Query

    pairs = persona_pairs(_texts_examples(), users_per_persona=2, pairs_per_user=40, beta=8.0)
    meta = train_pal(pairs, tmp_path / "pal", PALConfig(d_pref=16, steps=150))
    assert meta["train_accuracy"] > 0.75 and len(meta["users"]) == 6
    q = [user("How do I use item 99?")]
    queries = [Query(q, "Use item 99."), Query(q, _texts_examples(100)[99].responses[1])]
    concise = load_reward(f"pal:{tmp_path / 'pal'}?user=concise-0").score(queries)
    thorough = load_reward(f"pal:{tmp_path / 'pal'}?user=thorough-1").score(queries)
    assert concise[0] > concise[1] and thorough[1] > thorough[0]
    unseen = load_reward(f"pal:{tmp_path / 'pal'}?user=nobody")
    pop = load_reward(f"pal:{tmp_path / 'pal'}")
    assert np.allclose(unseen.score(queries), pop.score(queries))
    assert (
        unseen.fingerprint()
        == pop.fingerprint()
        != load_reward(f"pal:{tmp_path / 'pal'}?user=concise-0").fingerprint()
    )
    # A new user from a few comparisons, stored in the model directory.
    shots = [p for p in pairs if p.meta["user"] == "concise-1"][:8]
    for p in shots:
        p.meta["user"] = "newbie"
    w = adapt_user(tmp_path / "pal", "newbie", shots)
    assert len(w) == 2 and abs(sum(w) - 1) < 1e-6
    newbie = load_reward(f"pal:{tmp_path / 'pal'}?user=newbie").score(queries)
    assert newbie[0] > newbie[1]


def test_pal_errors(tmp_path):
    from rewardkit import load_reward

    with pytest.raises(SpecError, match="needs a model directory"):
        load_reward("pal")
    with pytest.raises(SpecError, match="not a PAL model"):
        load_reward(f"pal:{tmp_path}")
    with pytest.raises(DataError, match="'user' field"):
        train_pal(_texts_examples(2), tmp_path / "x", PALConfig(steps=1))


PERSONA_ARGS = ["--users-per-persona", "2", "--pairs-per-user", "20"]
TRAIN_ARGS = ["--steps", "50", "--d-pref", "8", "--no-progress"]


def test_pal_cli(tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app
    from rewardkit.data.writer import write_jsonl

    src = tmp_path / "src.jsonl"
    write_jsonl(_texts_examples(), src)
    runner = CliRunner()
    r = runner.invoke(
        app,
        ["pal", "personas", "--data", str(src), "--out", str(tmp_path / "p.jsonl"), *PERSONA_ARGS],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["written"] == 120
    r = runner.invoke(
        app,
        [
            "pal",
            "train",
            "--data",
            str(tmp_path / "p.jsonl"),
            "--out",
            str(tmp_path / "m"),
            *TRAIN_ARGS,
        ],
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "m" / "pal.json").is_file()
    r = runner.invoke(app, ["pal", "train", "--data", str(src), "--out", str(tmp_path / "n")])
    assert r.exit_code == 2 and "'user' field" in r.output
