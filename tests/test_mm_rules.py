"""``rule:vqa`` — visual-QA answer match (card B9), on image prompts."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from rewardkit.content import image_part
from rewardkit.registry import load_reward
from rewardkit.rewards.rules.vqa import compute_score, extract_choice, reference_mode
from rewardkit.types import Query, user


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B", "B"),
        ("(c)", None),
        ("(C)", "C"),
        ("B. a dog", "B"),
        ("I think the answer is (D).", "D"),
        ("Answer: a", "A"),
        ("The option is C because ...", "C"),
        ("A cat sits on a mat.", None),
        ("no letter here", None),
    ],
)
def test_extract_choice(text: str, letter: str | None) -> None:
    assert extract_choice(text) == letter


def test_modes_and_compute_score() -> None:
    assert [reference_mode(r) for r in ["B", "(b)", "42", "3.5%", "1,200", "a red car"]] == [
        "choice",
        "choice",
        "number",
        "number",
        "number",
        "text",
    ]
    assert compute_score("<think>..</think><answer>(B)</answer>", "B") == 1.0
    assert compute_score("The answer is C.", "(b)") == 0.0
    assert compute_score("about 104 units", "100") == 1.0  # within 5 %
    assert compute_score("about 106 units", "100") == 0.0
    assert compute_score("The value is \\boxed{0.25}", "1/4") == 1.0
    assert compute_score("0.1", "0") == 0.0 and compute_score("0", "0") == 1.0
    assert compute_score("Yes, there is a dog.", "yes") == 1.0
    assert compute_score("No.", "Yes") == 0.0
    assert compute_score("The Red car", ["blue car", "red car"]) == 1.0
    assert math.isnan(compute_score("anything", None))
    assert compute_score("about 104", "100", tol=0.01) == 0.0


def test_rule_on_image_questions(tmp_path) -> None:
    path = tmp_path / "q.png"
    Image.new("RGB", (4, 4), (0, 0, 255)).save(path)
    prompt = [user([image_part(str(path)), {"type": "text", "text": "Colour? A) red B) blue"}])]
    rule = load_reward("rule:vqa")
    qs = [
        Query(prompt, "B) blue", reference="B"),
        Query(prompt, "A", reference="B"),
        Query(prompt, "blue", reference=None),
    ]
    got = rule.score(qs)
    assert got[:2].tolist() == [1.0, 0.0] and math.isnan(got[2])
    text_mode = load_reward("rule:vqa?mode=text")
    assert text_mode.score([Query(prompt, "b", reference="B")]).tolist() == [1.0]
    with pytest.raises(ValueError, match="mode must be one of"):
        load_reward("rule:vqa?mode=fuzzy")
