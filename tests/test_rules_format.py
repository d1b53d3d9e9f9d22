"""rule:format, rule:json, rule:json_schema."""

from __future__ import annotations

import json
import math

import pytest

from rewardkit import Query, load_reward
from rewardkit.errors import DataError, SpecError
from rewardkit.rewards.rules import format as format_rule
from rewardkit.rewards.rules import json_schema, json_valid


def q(response: str, reference=None) -> Query:
    return Query([{"role": "user", "content": "?"}], response, reference)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("<think>reasoning</think><answer>42</answer>", 1.0),
        ("<think>\nstep 1\nstep 2\n</think>\n\n<answer>\n42\n</answer>\n", 1.0),
        ("  <think></think> <answer>42</answer>", 1.0),
        ("<answer>42</answer><think>x</think>", 0.0),  # wrong order
        ("<think>x</think>", 0.0),  # missing block
        ("prefix <think>x</think><answer>42</answer>", 0.0),  # text outside the blocks
        ("<think>x</think><answer>42</answer> trailing", 0.0),
        ("<think>x</think><answer>1</answer><answer>2</answer>", 0.0),  # duplicate block
        ("<think>a <think>b</think></think><answer>1</answer>", 0.0),  # nested
        ("<think>x</think><answer>see <think> here</answer>", 0.0),  # stray tag inside
        ("", 0.0),
    ],
)
def test_format_default_layout(response, expected):
    assert load_reward("rule:format").score([q(response)])[0] == expected
    assert format_rule.compute_score(response, None) == expected


def test_format_tags_and_pattern_options():
    tags = load_reward("rule:format?tags=reasoning,code,answer")
    s = tags.score(
        [
            q("<reasoning>r</reasoning>\n<code>c</code>\n<answer>a</answer>"),
            q("<reasoning>r</reasoning><answer>a</answer>"),
        ]
    )
    assert s.tolist() == [1.0, 0.0]
    pattern = load_reward({"type": "rule", "arg": "format", "pattern": r"^Answer: \d+$"})
    assert pattern.score([q("Answer: 12"), q("Answer: twelve"), q("x\nAnswer: 12")]).tolist() == [
        1.0,
        0.0,
        0.0,
    ]
    search = load_reward({"type": "rule", "arg": "format", "pattern": r"\\boxed\{.+\}"})
    assert search.score([q("so \\boxed{3} done")])[0] == 1.0  # re.search semantics
    with pytest.raises(SpecError):
        load_reward({"type": "rule", "arg": "format", "pattern": "(", "tags": "a"})
    with pytest.raises(SpecError):
        load_reward({"type": "rule", "arg": "format", "pattern": "("})
    with pytest.raises(SpecError):
        load_reward("rule:format?tags=a b")
    assert load_reward("rule:format").fingerprint() != tags.fingerprint()


def test_json_rule():
    reward = load_reward("rule:json")
    s = reward.score(
        [
            q('{"a": 1, "b": [1, 2]}'),
            q("  [1, 2, 3]\n"),
            q('Here you go:\n```json\n{"a": 1}\n```\nDone.'),
            q('```\n{"a": 1}\n```'),
            q('```python\nx = 1\n```\n```json\n{"ok": true}\n```'),
            q('{"a": 1,}'),
            q('{"a": NaN}'),
            q("not json"),
            q(""),
            q('"just a string"'),
        ]
    )
    assert s.tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    no_fence = load_reward("rule:json?fence=false")
    assert no_fence.score([q('```json\n{"a": 1}\n```')])[0] == 0.0
    assert json_valid.compute_score('{"a": 1}') == 1.0
    assert json_valid.compute_score("[" * 100000 + "]" * 100000) in (0.0, 1.0)  # no crash


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name"],
    "additionalProperties": False,
}


def test_json_schema_from_reference_and_option(tmp_path):
    reward = load_reward("rule:json_schema")
    s = reward.score(
        [
            q('{"name": "Ada", "age": 36}', SCHEMA),
            q('{"name": "Ada", "age": -1}', SCHEMA),
            q('{"age": 3}', SCHEMA),
            q('{"name": "Ada", "x": 1}', SCHEMA),
            q("not json", SCHEMA),
            q('```json\n{"name": "Ada"}\n```', json.dumps(SCHEMA)),
            q('{"name": "Ada"}', None),
        ]
    )
    assert s[:6].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert math.isnan(s[6])

    spec = "rule:json_schema?schema=" + json.dumps(SCHEMA, separators=(",", ":"))
    fixed = load_reward(spec)
    assert fixed.score([q('{"name": "Ada"}'), q('{"name": 1}')]).tolist() == [1.0, 0.0]
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    from_file = load_reward(f"rule:json_schema?schema={path}")
    assert from_file.score([q('{"name": "Ada"}')])[0] == 1.0
    assert from_file.fingerprint() == fixed.fingerprint()
    assert load_reward({"type": "rule", "arg": "json_schema", "schema": SCHEMA}).fingerprint() == (
        fixed.fingerprint()
    )

    assert json_schema.compute_score('{"name": "Ada"}', SCHEMA) == 1.0
    assert json_schema.compute_score('{"name": 2}', None, schema=SCHEMA) == 0.0
    assert math.isnan(json_schema.compute_score('{"name": 2}', None))


def test_json_schema_invalid_schemas_are_errors():
    with pytest.raises(SpecError):
        load_reward({"type": "rule", "arg": "json_schema", "schema": {"type": "nonsense"}})
    with pytest.raises(SpecError):
        load_reward("rule:json_schema?schema=/no/such/file.json")
    reward = load_reward("rule:json_schema")
    with pytest.raises(DataError):
        reward.score_one(q("{}", {"type": 12}))
    # in a call, a bad reference schema fails its row alone; the others score
    res = reward.score_full([q("{}", {"type": 12}), q('{"a": 1}', {"type": "object"})])
    assert math.isnan(res.scores[0]) and res.scores[1] == 1.0
    assert res.stats["failed"] == 1 and res.stats["errors"][0]["index"] == 0


def test_json_schema_formats_option():
    schema = {"type": "string", "format": "email"}
    assert load_reward("rule:json_schema").score([q('"not-an-email"', schema)])[0] == 1.0
    strict = load_reward("rule:json_schema?formats=true")
    assert strict.score([q('"not-an-email"', schema), q('"a@b.org"', schema)]).tolist() == [
        0.0,
        1.0,
    ]
