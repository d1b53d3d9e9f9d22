"""rule:overlong (card C8, DAPO) and rule:repetition (Demystifying long CoT / open-r1)."""

from __future__ import annotations

import pytest

from rewardkit import Query, load_reward
from rewardkit.errors import SpecError
from rewardkit.rewards.rules import overlong, repetition


def q(response: str) -> Query:
    return Query([{"role": "user", "content": "?"}], response)


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def test_overlong_card_c8_vector():
    """L_max = 50, L_cache = 15: L = 30, 40, 50, 60 → 0, −0.333333, −1, −1."""
    reward = load_reward("rule:overlong?max_len=50&cache_len=15")
    s = reward.score([q(words(n)) for n in (30, 40, 50, 60)])
    assert s.tolist() == pytest.approx([0.0, -1 / 3, -1.0, -1.0], abs=1e-6)
    assert overlong.overlong_penalty(40, 50, 15) == pytest.approx(-0.333333, abs=1e-6)
    # the ramp starts at L_max − L_cache = 35 (0 there) and is linear in between
    assert overlong.overlong_penalty(35, 50, 15) == 0.0
    assert overlong.overlong_penalty(36, 50, 15) == pytest.approx(-1 / 15)
    assert overlong.compute_score(words(40), None, max_len=50, cache_len=15) == pytest.approx(
        -1 / 3
    )


def test_overlong_units_and_defaults():
    chars = load_reward("rule:overlong?max_len=10&cache_len=5&unit=chars")
    assert chars.score([q("abcdefgh")])[0] == pytest.approx(-3 / 5)
    default = load_reward("rule:overlong")
    assert default.options["max_len"] == 20480 and default.options["cache_len"] == 4096
    assert default.score([q(words(16384)), q(words(16385 + 2047))]).tolist() == pytest.approx(
        [0.0, -0.5]
    )
    with pytest.raises(SpecError):
        load_reward("rule:overlong?max_len=10&cache_len=20")
    with pytest.raises(SpecError):
        load_reward("rule:overlong?unit=tokens")
    with pytest.raises(SpecError):
        load_reward("rule:overlong?unit=lines")


def test_repetition_hand_values():
    # "a b c a b c": 3-grams abc, bca, cab, abc → 3 unique of 4 → −(1 − 3/4) = −0.25
    assert repetition.repetition_penalty("a b c a b c") == pytest.approx(-0.25)
    # 10 × "the same": 3-grams alternate "the same the" / "same the same" → 2 unique of 18
    assert repetition.repetition_penalty("the same " * 10) == pytest.approx(-(1 - 2 / 18))
    assert repetition.repetition_penalty("A B C a b c") == pytest.approx(-0.25)  # lowercased
    assert repetition.repetition_penalty("one two three four") == 0.0
    assert repetition.repetition_penalty("one two") == 0.0  # fewer words than n
    assert repetition.repetition_penalty("") == 0.0
    reward = load_reward("rule:repetition?n=2&max_penalty=-0.5")
    # 2-grams of "a b a b": ab, ba, ab → 2 unique of 3 → −0.5 · 1/3
    assert reward.score([q("a b a b")])[0] == pytest.approx(-0.5 / 3)
    assert repetition.compute_score("a b c a b c", None) == pytest.approx(-0.25)
    with pytest.raises(SpecError):
        load_reward("rule:repetition?max_penalty=1")
