"""Stop 50: references a rule cannot read say so; ratings that are not finite are refused; a
``layout=shared`` call with nothing to share says so; an empty call still reports its size."""

from __future__ import annotations

import math
import warnings

import pytest

from rewardkit.data import load
from rewardkit.errors import DataError
from rewardkit.registry import load_reward
from rewardkit.rewards.rules.iou import compute_score as iou_score
from rewardkit.types import Query, user
from train_helpers import tiny_llama


def _q(response: str, reference) -> Query:
    return Query(prompt=[user("Where is it? Answer 42.")], response=response, reference=reference)


def test_math_with_a_mapping_reference_without_an_answer_key_fails_that_row_alone():
    # {"solution": "42"} was read as its str(): "\boxed{42}" scored 0.0, silently
    queries = [
        _q(r"\boxed{42}", {"solution": "42"}),
        _q(r"\boxed{42}", {"answer": "42"}),
        _q(r"\boxed{42}", "42"),
    ]
    result = load_reward("rule:math").score_full(queries)
    assert math.isnan(result.scores[0]) and result.scores[1:].tolist() == [1.0, 1.0]
    (error,) = result.stats["errors"]
    assert error["index"] == 0 and "['solution']" in error["error"]
    assert "rule:math" in error["error"] and math.isnan(error["score"])


def test_iou_with_a_reference_that_holds_no_box_fails_that_row_alone():
    queries = [
        _q("[0, 0, 2, 2]", "[0, 0, x, 2]"),
        _q("[0, 0, 2, 2]", {"bbox": "none"}),
        _q("[0, 0, 2, 2]", [1, 2, 3]),
        _q("[0, 0, 2, 2]", None),  # no reference: does not apply, no error
        _q("[0, 0, 2, 2]", [0, 0, 2, 2]),
    ]
    result = load_reward("rule:iou").score_full(queries)
    assert all(math.isnan(s) for s in result.scores[:4]) and result.scores[4] == 1.0
    errors = result.stats["errors"]
    assert [e["index"] for e in errors] == [0, 1, 2]
    assert "'[0, 0, x, 2]' holds no box" in errors[0]["error"]
    assert "[1, 2, 3] holds no box" in errors[2]["error"]
    # verl's compute_score shape never raises inside a trainer: NaN
    assert math.isnan(iou_score("[0, 0, 2, 2]", "[0, 0, x, 2]"))


def test_an_infinite_ultrafeedback_rating_is_refused_naming_line_and_field(tmp_path):
    # Infinity outranked every rated completion (or made it unrated) without a word
    good = (
        '{"instruction": "hi", "completions": [{"response": "a", "model": "m1", '
        '"overall_score": 3, "fine-grained_score": 3.5}, {"response": "b", "model": "m2", '
        '"overall_score": 5, "fine-grained_score": 4.5}]}'
    )
    bad = good.replace('"overall_score": 3, "fine-grained_score": 3.5', '"overall_score": 1e400')
    path = tmp_path / "uf.jsonl"
    path.write_text(good + "\n" + bad + "\n")
    with pytest.raises(DataError) as caught:
        load(path)
    text = str(caught.value)
    assert "line 2" in text and "completions[0].overall_score" in text and "finite" in text
    with pytest.warns(UserWarning, match="skipped 1 malformed record"):
        examples = load(path, on_error="skip")
    assert len(examples) == 1 and examples[0].chosen == [1]


def test_layout_shared_with_nothing_to_share_warns_once_and_runs_padded(tmp_path):
    model = tiny_llama(tmp_path / "llama")
    reward = load_reward(
        f"classifier:{model}",
        engine_defaults={"progress": False, "layout": "shared", "min_shared_prefix": 10_000},
    )
    queries = [_q("one answer", None), _q("another answer", None)]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        first = reward.score_full(queries)
        reward.score_full([_q("a third answer", None), _q("a fourth", None)])
    said = [str(w.message) for w in seen if "nothing to share" in str(w.message)]
    assert len(said) == 1 and "min_shared_prefix" in said[0]
    assert first.stats["layout"] == "padded"


def test_an_empty_call_reports_that_it_scored_nothing():
    result = load_reward("rule:length").score_full([])
    assert result.scores.shape == (0,) and result.stats == {"queries": 0}
