"""rule:json_match, rule:tool_call and rule:tool_call_format (OpenJudge's JsonMatchGrader,
ToolCallPrecisionRecallMatchGrader, ReasoningToolCallFormatGrader): hand-worked values, the
peer's results (pinned from /work/probes/graders/peer_equality.py, run against OpenJudge @
246192f), and hostile input."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from rewardkit import Query, load_reward
from rewardkit.content import ImageContentError
from rewardkit.errors import DataError, SpecError
from rewardkit.rewards.rules import json_match, tool_call, tool_call_format


def q(response, reference=None) -> Query:
    return Query("?", response, reference)


def full(spec, rows):
    return load_reward(spec).score_full([q(r, g) for r, g in rows])


def one(spec, response, reference) -> float:
    return float(load_reward(spec).score([q(response, reference)])[0])


def rule(name: str, **options) -> dict:
    return {"type": "rule", "arg": name, **options}


#: (response, reference, ours, JsonMatchGrader's score) at the defaults (the peer's
#: strict_order=True, ignore_extra_keys=False); the probe ran the peer on each row.
R = '{"n": "Al", "t": ["a", "b"], "age": 30}'
DEFAULT_ROWS = [
    ('{"age": 30, "n": "Al", "t": ["a", "b"]}', R, 1.0, 1.0),  # key order is free
    ('{"n": "Al", "t": ["b", "a"], "age": 30}', R, 0.0, 0.0),  # array order is not
    ('{"a": 1, "b": 2}', '{"a": 1}', 0.0, 0.0),  # extra key
    ('{"a": 1}', '{"a": 1, "b": 2}', 0.0, 0.0),  # missing key
    ('{"a": "Al"}', '{"a": "al"}', 0.0, 0.0),
    ('{"a": 1.0}', '{"a": 1}', 1.0, 1.0),  # numbers by value
    ('{"a": "1"}', '{"a": 1}', 0.0, 0.0),
    ('{"x": {"y": {"z": [1, {"w": "v"}]}}}', '{"x": {"y": {"z": [1, {"w": "v"}]}}}', 1.0, 1.0),
    ("[]", "{}", 0.0, 0.0),
    ('{"a": 1}{"a": 1}', '{"a": 1}', 0.0, 0.0),
    ("not json", '{"a": 1}', 0.0, 0.0),
    ("0.1", "0.10", 1.0, 1.0),  # numbers by exact decimal value
    ("-1e0", "-1", 1.0, 1.0),
    ("100000000000000000000", "1e20", 1.0, 1.0),
    ("0.30000000000000004", "0.3", 0.0, 0.0),
    ('{"é": 1}', '{"\\u00e9": 1}', 1.0, 1.0),
    # differences, on purpose: the peer's Python == (True == 1), a missing key read as None,
    # a duplicate key keeping its last value
    ('{"a": true}', '{"a": 1}', 0.0, 1.0),
    ("0", "false", 0.0, 1.0),
    ('{"b": 1}', '{"a": null, "b": 1}', 0.0, 1.0),
    ('{"a": 2, "a": 1}', '{"a": 1}', 0.0, 1.0),
]


def test_json_match_defaults_and_the_peer():
    result = full("rule:json_match", [(r, g) for r, g, _, _ in DEFAULT_ROWS])
    assert result.scores.tolist() == [ours for _, _, ours, _ in DEFAULT_ROWS]
    assert sum(ours != peer for _, _, ours, peer in DEFAULT_ROWS) == 4
    # the peer pairs greedily under ignore_extra_keys and misses this one (0.0)
    spec = "rule:json_match?order=any&extra_keys=ignore"
    assert one(spec, '[{"a": 1, "b": 2}, {"a": 1}]', '[{"a": 1}, {"a": 1, "b": 2}]') == 1.0


def test_json_match_order_and_extra_keys_options():
    ref = '{"tags": ["a", "b"], "id": 1}'
    resp = '{"tags": ["b", "a"], "id": 1, "note": "x"}'
    assert one("rule:json_match?order=any", resp, ref) == 0.0  # still the extra key
    assert one("rule:json_match?extra_keys=ignore", resp, ref) == 0.0  # still the order
    assert one("rule:json_match?order=any&extra_keys=ignore", resp, ref) == 1.0
    # ignore reaches nested objects, and a reference key must still be there
    spec = "rule:json_match?extra_keys=ignore"
    assert one(spec, '{"a": {"b": 1, "z": 0}}', '{"a": {"b": 1}}') == 1.0
    assert one(spec, '{"a": {"z": 0}}', '{"a": {"b": 1}}') == 0.0
    # multisets: duplicates count
    assert one("rule:json_match?order=any", "[1, 1, 2]", "[1, 2, 2]") == 0.0
    assert one("rule:json_match?order=any", "[[1, 2], [3]]", "[[3], [2, 1]]") == 1.0


def test_json_match_f1_by_hand():
    # ref leaves: a, b.c, b.d = 3; response leaves a, b.c, b.d, e = 4; met a, b.c = 2 → 4/7
    ref = '{"a": 1, "b": {"c": 2, "d": 3}}'
    resp = '{"a": 1, "b": {"c": 2, "d": 4}, "e": 5}'
    assert one("rule:json_match?credit=f1", resp, ref) == pytest.approx(4 / 7)
    # extra_keys=ignore: e is not counted → 2·2/(3+3)
    assert one("rule:json_match?credit=f1&extra_keys=ignore", resp, ref) == pytest.approx(2 / 3)
    # order=any: array elements count whole. ref leaves a, b×2, c = 4; response a, b×3 (z
    # ignored) = 4; met a, 1, 2 = 3 → 6/8
    spec = "rule:json_match?credit=f1&order=any&extra_keys=ignore"
    ref2 = '{"a": 1, "b": [1, 2], "c": "x"}'
    assert one(spec, '{"a": 1, "b": [2, 1, 3], "z": 9}', ref2) == pytest.approx(0.75)
    # arrays in order: index by index, extra elements cost precision
    assert one("rule:json_match?credit=f1", "[1, 9, 3, 4]", "[1, 2, 3]") == pytest.approx(4 / 7)
    # a wrong type at a node meets nothing there
    assert one("rule:json_match?credit=f1", '{"a": [1, 2]}', '{"a": {"x": 1}}') == 0.0
    # empty containers are leaves
    assert one("rule:json_match?credit=f1", '{"a": {}, "b": 1}', '{"a": {}, "b": 2}') == 0.5


PROPERTY_ROWS = [
    (
        '{"a": [{"b": 1, "c": [2, 3]}, {}], "d": null}',
        '{"d": null, "a": [{}, {"c": [3, 2], "b": 1}]}',
    ),
    ('{"a": [{"b": 1, "x": 0}, [1, 2]], "d": {}}', '{"a": [[2, 1], {"b": 1}], "d": {}}'),
    ('[[1, [2, {"k": []}]], {"k": [true, false]}]', '[{"k": [false, true]}, [[{"k": []}, 2], 1]]'),
    ('[1, 1, {"a": 1}]', '[1, {"a": 1}, {"a": 1}]'),
    ('{"a": {"b": {}}, "c": [[]]}', '{"a": {"b": {"z": 1}}, "c": [[], []]}'),
]


def test_json_match_f1_is_one_exactly_when_exact_is():
    seen = set()
    rows = [(r, g) for r, g, _, _ in DEFAULT_ROWS if r[0] in "[{0-1" and "}{" not in r]
    for resp, ref in rows[:-1] + PROPERTY_ROWS:  # the last: a duplicate key
        refv, respv = json_match.parse_json(ref), json_match.parse_json(resp)
        for order, extra in [(o, e) for o in ("strict", "any") for e in ("forbid", "ignore")]:
            exact = json_match.json_match(refv, respv, order, extra, "exact")
            f1 = json_match.json_match(refv, respv, order, extra, "f1")
            assert (f1 == 1.0) == (exact == 1.0) and 0.0 <= f1 <= 1.0, (resp, ref, order, extra)
            seen.add("one" if f1 == 1.0 else "partial" if f1 > 0 else "zero")
    assert seen == {"one", "partial", "zero"}


def test_json_match_reads_one_json_value():
    ref = '{"a": 1}'
    rows = [
        ('Here you go:\n```json\n{"a": 1}\n```', 1.0),
        ('```json\n{"a": 1}\n```\n```json\n{"a": 2}\n```', 0.0),  # the last block is read
        ('```json\n{"a": 2}\n```\n```json\n{"a": 1}\n```', 1.0),
        ('{"a": 2}\n{"a": 1}', 0.0),  # two values: not JSON, no alternatives
        ('The answer is {"a": 1}', 0.0),  # prose around it
        ('  {"a": 1}\n', 1.0),
    ]
    assert full("rule:json_match", [(r, ref) for r, _ in rows]).scores.tolist() == [
        s for _, s in rows
    ]
    tagged = '<think>{"a": 2}</think><answer>{"a": 1}</answer>'
    assert one("rule:json_match?answer_tag=true", tagged, ref) == 1.0
    assert one("rule:json_match", tagged, ref) == 0.0
    assert one("rule:json_match?fence=false", '```json\n{"a": 1}\n```', ref) == 0.0


def test_json_match_reference_forms_nan_and_bad_ones():
    nan = math.nan
    rows = [  # (response, reference, score)
        ('{"a": [1, 2]}', {"a": [1, 2]}, 1.0),
        ('{"a": [1, 2]}', {"a": np.array([1, 2])}, 1.0),  # a Parquet list cell
        ('{"a": [1, 2]}', {"a": (1.0, 2)}, 1.0),
        ('{"a": [1, 2]}', {"a": [2, 1]}, 0.0),
        ("[1, 2]", [1, 2], 1.0),  # a list is the JSON array itself, not alternatives
        ("1", [1, 2], 0.0),
        ("[1, 2]", np.array([1, 2]), 1.0),
        ("true", np.bool_(True), 1.0),
        ("1", None, nan),  # no reference: does not apply
        ("1", "   ", nan),
        ("1", float("nan"), nan),
        ("1", "Paris", nan),  # from here: unusable, the row fails alone
        ("1", '{"a": 1, "a": 2}', nan),
        ("1", {"a": float("inf")}, nan),
        ("1", {1: "x"}, nan),
    ]
    result = full("rule:json_match", [(r, g) for r, g, _ in rows])
    assert result.scores.tolist() == pytest.approx([s for _, _, s in rows], nan_ok=True)
    errors = {e["index"]: e["error"] for e in result.stats["errors"]}
    assert sorted(errors) == [11, 12, 13, 14]
    assert "duplicate key 'a'" in errors[12] and "not one JSON value" in errors[11]
    with pytest.raises(DataError, match="not one JSON value"):
        json_match.compute_score('{"a": 1}', "Paris")


def test_json_match_compute_score_and_options():
    assert json_match.compute_score('{"a": 1}', '{"a": 1}') == 1.0
    assert json_match.compute_score('{"a": 1}', {"a": 2}) == 0.0
    assert math.isnan(json_match.compute_score('{"a": 1}', None))
    assert json_match.compute_score("[1, 9]", "[1, 2]", credit="f1") == 0.5
    with pytest.raises(SpecError, match="order must be one of strict, any"):
        load_reward("rule:json_match?order=loose")
    with pytest.raises(SpecError, match="credit"):
        load_reward("rule:json_match?credit=partial")
    a, b = load_reward("rule:json_match"), load_reward("rule:json_match?order=any")
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == load_reward("rule:json_match?order=strict").fingerprint()
    parts = [{"type": "text", "text": '{"a": 1}'}]
    assert a.score([q(parts, '{"a": 1}')]).tolist() == [1.0]
    with pytest.raises(ImageContentError, match="reads text only"):
        a.score([q([{"type": "image", "image": "x.png"}], '{"a": 1}')])
    with pytest.raises(TypeError, match=r"Query\.response must be text"):
        json_match.compute_score({"a": 1}, '{"a": 1}')


def test_json_match_hostile_responses_are_bounded():
    ref = '{"a": 1}'
    rows = [
        ("[" * 5000 + "]" * 5000, ref),
        ("[" * 200_000 + "]" * 200_000, ref),
        ('{"a": NaN}', '{"a": 1}'),
        ('{"a": Infinity}', '{"a": 1}'),
        ('{"a": 1e999}', '{"a": 1}'),
        ('{"a": 1e-99999999999999999999}', '{"a": 0}'),
        ('{"a": 2, "a": 1}', ref),
        ("1" * 200_000, "1"),
        ("[" * 100 + "]" * 100, "[" * 100 + "]" * 100),
    ]
    start = time.perf_counter()
    result = full("rule:json_match", rows)
    assert time.perf_counter() - start < 5
    assert result.scores.tolist() == [0.0] * 8 + [1.0]
    named = [e["index"] for e in result.stats["errors"]]
    assert named == [0, 1]  # too deep: named, 0.0
    assert "nests deeper than 128 levels" in result.stats["errors"][0]["error"]


def test_json_match_quadratic_pairing_is_bounded_and_duplicates_are_linear():
    spec = "rule:json_match?order=any&extra_keys=ignore&credit=f1"
    n, dumps = 2000, json.dumps
    rows = [
        # records without an id, reversed: paired through their nested scalars
        (
            dumps([{"v": [i], "x": 1} for i in range(n)][::-1]),
            dumps([{"v": [i]} for i in range(n)]),
        ),
        # duplicates, half of them matched
        (dumps([{"v": [1], "x": 1}] * n + [{"v": [2]}] * n), dumps([{"v": [1]}] * 2 * n)),
        # every response element a candidate for every reference element, none covering
        (dumps([{"v": list(range(600))}] * 600), dumps([{"v": [i]} for i in range(600)])),
    ]
    start = time.perf_counter()
    result = full(spec, rows)
    assert time.perf_counter() - start < 10
    assert result.scores[0] == 1.0 and result.scores[1] == pytest.approx(0.5)
    assert result.scores[2] == 0.0
    (error,) = result.stats["errors"]
    assert error["index"] == 2 and "given up (over 1,000,000 steps)" in error["error"]


WEATHER = {"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}
TIME = {"name": "get_time", "arguments": {"tz": "CET"}}
OPENAI = {
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris", "days": 3}'},
}


def tag(*calls) -> str:
    return "".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>\n" for c in calls)


def test_tool_call_metrics_by_hand():
    # expected 2; made 3: get_weather right, get_time with a wrong argument, one malformed
    made = (
        tag(WEATHER, {"name": "get_time", "arguments": {"tz": "UTC"}})
        + "<tool_call>oops</tool_call>"
    )
    ref = [WEATHER, TIME]
    assert one(rule("tool_call"), made, ref) == 0.0
    assert one(rule("tool_call", metric="precision"), made, ref) == pytest.approx(1 / 3)
    assert one(rule("tool_call", metric="recall"), made, ref) == pytest.approx(1 / 2)
    assert one(rule("tool_call", metric="f1"), made, ref) == pytest.approx(2 / 5)
    # names only: get_time now counts
    assert one(rule("tool_call", metric="f1", match="name"), made, ref) == pytest.approx(4 / 5)
    # order is free; exact needs every call and no extra
    assert one(rule("tool_call"), tag(TIME, WEATHER), ref) == 1.0
    assert one(rule("tool_call"), tag(TIME, WEATHER, TIME), ref) == 0.0
    assert one(rule("tool_call", metric="recall"), tag(TIME, WEATHER, TIME), ref) == 1.0


def test_tool_call_argument_comparison():
    def call(name="get_weather", **a):
        return tag({"name": name, "arguments": a})

    rows = [  # (made, extra_args, score)
        (call(days=3.0, city="Paris"), "forbid", 1.0),  # numbers by value, keys in any order
        (call(city="Paris", days="3"), "forbid", 0.0),
        (call(city="paris", days=3), "forbid", 0.0),
        (call(city="Paris", days=3, unit="C"), "forbid", 0.0),
        (call(city="Paris", days=3, unit="C"), "ignore", 1.0),
        (call(city="Paris"), "ignore", 0.0),
        (call("Get_weather", city="Paris", days=3), "forbid", 0.0),
    ]
    for made, extra, want in rows:
        assert one(rule("tool_call", extra_args=extra), made, [WEATHER]) == want, made
    assert one(rule("tool_call"), call("f", x=True), [{"name": "f", "arguments": {"x": 1}}]) == 0.0


def test_tool_call_response_layouts():
    ref = [WEATHER]
    rows = [
        tag(WEATHER),
        "<think>the user wants weather</think>\n" + tag(WEATHER),
        json.dumps(WEATHER),
        json.dumps([WEATHER]),
        json.dumps({"role": "assistant", "content": None, "tool_calls": [OPENAI]}),
        json.dumps([OPENAI]),
        "<|python_tag|>" + json.dumps({"name": "get_weather", "parameters": WEATHER["arguments"]}),
        "[TOOL_CALLS] " + json.dumps([WEATHER]),
        "Calling it now.\n```json\n" + json.dumps(WEATHER) + "\n```",
    ]
    assert full(rule("tool_call"), [(r, ref) for r in rows]).scores.tolist() == [1.0] * len(rows)


def test_tool_call_what_is_not_a_call():
    ref = [WEATHER]
    rows = [
        "I would call get_weather for Paris.",
        "Sure: " + json.dumps(WEATHER),  # prose around the JSON: not read
        "<think>" + tag(WEATHER) + "</think>The weather is nice.",  # only while reasoning
        json.dumps({"answer": "sunny"}),
        # a call quoted inside another call's argument is text, never a call
        tag({"name": "say", "arguments": {"text": tag(WEATHER)}}),
        "<tool_call>" + json.dumps(WEATHER),  # never closed
        '<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": "}</tool_call>',
    ]
    result = full(rule("tool_call", metric="f1"), [(r, ref) for r in rows])
    assert result.scores.tolist() == [0.0] * len(rows)
    # ... and a response with no call is right where no call is expected ([])
    assert full(rule("tool_call"), [(r, []) for r in rows[:4]]).scores.tolist() == [1.0] * 4
    assert one(rule("tool_call"), rows[4], []) == 0.0


def test_tool_call_reference_forms():
    resp = tag(WEATHER)
    rows = [
        ([WEATHER], 1.0),
        (WEATHER, 1.0),
        (json.dumps([WEATHER]), 1.0),
        (tag(WEATHER), 1.0),
        (np.array([WEATHER], dtype=object), 1.0),
        ({"tool_calls": [OPENAI]}, 1.0),
        ([], 0.0),
        ("[]", 0.0),
        (None, math.nan),
        ("", math.nan),
        (float("nan"), math.nan),
    ]
    scores = full(rule("tool_call"), [(resp, g) for g, _ in rows]).scores.tolist()
    assert scores == pytest.approx([s for _, s in rows], nan_ok=True)


def test_tool_call_bad_reference_compute_score_and_options():
    rows = [
        (tag(WEATHER), [WEATHER]),
        (tag(WEATHER), [{"arguments": {}}]),  # no name
        (tag(WEATHER), {"answer": "sunny"}),  # no call at all
        (tag(WEATHER), [{"name": "f", "arguments": [1]}]),  # arguments not an object
        (tag(WEATHER), [{"name": "f", "arguments": {}}] * 300),  # over MAX_CALLS
        (tag(WEATHER), "get_weather(Paris)"),
    ]
    result = full(rule("tool_call"), rows)
    assert result.scores[0] == 1.0 and np.isnan(result.scores[1:]).all()
    assert [e["index"] for e in result.stats["errors"]] == [1, 2, 3, 4, 5]
    assert "more than 256 calls" in result.stats["errors"][3]["error"]
    with pytest.raises(DataError, match="not a list of tool calls"):
        tool_call.compute_score(tag(WEATHER), [{"arguments": {}}])
    assert tool_call.compute_score(tag(WEATHER), [WEATHER]) == 1.0
    assert tool_call.compute_score(tag(WEATHER), [WEATHER, TIME], metric="recall") == 0.5
    assert math.isnan(tool_call.compute_score(tag(WEATHER), None))
    with pytest.raises(SpecError, match="metric must be one of exact, f1, precision, recall"):
        load_reward("rule:tool_call?metric=accuracy")
    with pytest.raises(SpecError, match="match"):
        load_reward("rule:tool_call?match=args")
    assert (
        load_reward("rule:tool_call").fingerprint()
        != load_reward("rule:tool_call?match=name").fingerprint()
    )


def tc(name, **args):
    return {"name": name, "arguments": args}


#: (made, expected, peer precision, peer recall) with match_arguments=True
PEER_TOOLS = [
    ([tc("f", a=1)], [tc("f", a=1)], 1.0, 1.0),
    ([tc("f", a=2)], [tc("f", a=1)], 0.0, 0.0),
    ([], [tc("f", a=1)], 0.0, 0.0),
    ([tc("f", a=1)], [], 0.0, 0.0),
    ([], [], 1.0, 1.0),
    ([tc("f", a=1), tc("f", a=1)], [tc("f", a=1)], 0.5, 1.0),
    ([tc("f", a=1)], [tc("f", a=1), tc("f", a=1)], 1.0, 0.5),
    ([tc("a"), tc("b"), tc("c")], [tc("a"), tc("b")], 2 / 3, 1.0),
    ([tc("a", x=1), tc("a", x=2)], [tc("a", x=2), tc("a", x=3)], 0.5, 0.5),
    ([tc("f", a=[1, 2])], [tc("f", a=[2, 1])], 0.0, 0.0),
    ([tc("f", a=True)], [tc("f", a=1)], 0.0, 0.0),
]


def test_tool_call_equals_the_peer():
    for metric, col in (("precision", 2), ("recall", 3)):
        reward = load_reward(rule("tool_call", metric=metric))
        got = reward.score([q(tag(*row[0]), row[1]) for row in PEER_TOOLS]).tolist()
        assert got == pytest.approx([row[col] for row in PEER_TOOLS]), metric
    # the one documented difference: the peer compares json.dumps text, so 1.0 ≠ 1 there
    assert one(rule("tool_call", metric="precision"), tag(tc("f", a=1.0)), [tc("f", a=1)]) == 1.0


def test_tool_call_hostile_responses_are_bounded():
    ref = [WEATHER]
    good = tag(WEATHER)
    rows = [
        "<tool_call>" * 100_000,
        good * 20_000,
        '<tool_call>{"name": "' + "</tool_call><tool_call>" * 50_000,
        '<tool_call>"a</tool_call>' * 50_000,
        "<tool_call>" + "[" * 5000 + "]" * 5000 + "</tool_call>",
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "days": NaN}}</tool_call>',
        '<tool_call>{"name": "get_weather", "arguments": {"city": 1, "city": "Paris", "days": 3}}'
        "</tool_call>",
        '<tool_call>["name", "arguments"]</tool_call>',
    ]
    start = time.perf_counter()
    result = full(rule("tool_call", metric="f1"), [(r, ref) for r in rows])
    assert time.perf_counter() - start < 5
    scores = result.scores.tolist()
    assert scores[1] == pytest.approx(2 / (20_000 + 1), rel=1e-4)  # every block counted
    assert scores[:1] + scores[2:] == [0.0] * 7
    # blocks past MAX_CALLS are counted unread
    assert tool_call.response_calls(good * 300).count(None) == 300 - tool_call.MAX_CALLS


CALL = '{"name": "f", "arguments": {"a": 1}}'

#: (response, ReasoningToolCallFormatGrader's score, ours) — equal unless a reason is given
FORMAT_ROWS = [
    ("<think>r</think><answer>a</answer>", 1.0, 1.0),
    ("  <think>r</think>\n<answer>a</answer>\n", 1.0, 1.0),
    (f"<think>r</think>\n<tool_call>\n{CALL}\n</tool_call>\n", 1.0, 1.0),
    (f"<think>r</think><tool_call>{CALL}</tool_call>\n<tool_call>{CALL}</tool_call>", 1.0, 1.0),
    ('<think>r</think><tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>', 1.0, 1.0),
    ("<think>r</think>", 0.0, 0.0),
    ("<think>r</think><answer>a</answer>x", 0.0, 0.0),
    ("<think>r<think>s</think><answer>a</answer>", 0.0, 0.0),
    ("<think>r</think><answer>a</answer><answer>b</answer>", 0.0, 0.0),
    (f"<think>r</think><tool_call>{CALL}</tool_call><answer>a</answer>", 0.0, 0.0),
    ("<think>r</think><tool_call>not json</tool_call>", 0.0, 0.0),
    ('<think>r</think><tool_call>{"name": "f"}</tool_call>', 0.0, 0.0),
    (f"<think>r</think><tool_call><tool_call>{CALL}</tool_call></tool_call>", 0.0, 0.0),
    (f"<think>r</think><tool_call>{CALL}", 0.0, 0.0),
    (f"<think>r</think>{CALL}", 0.0, 0.0),
    # differences, on purpose
    ('<think>r</think><tool_call>{"name": 3, "arguments": 5}</tool_call>', 1.0, 0.0),
    ('<think>r</think><tool_call>{"name": "f", "arguments": {"a": NaN}}</tool_call>', 1.0, 0.0),
    (f"<think>r</think><tool_call>{CALL}</tool_call>x<tool_call>{CALL}</tool_call>", 1.0, 0.0),
    ("<think>r</think><answer>use <tool_call> tags</answer>", 1.0, 0.0),
    (f"<think>r <tool_call>{CALL}</tool_call></think><tool_call>{CALL}</tool_call>", 1.0, 0.0),
    (
        '<think>r</think><tool_call>{"name": "say", "arguments": {"t": "</tool_call>"}}</tool_call>',
        0.0,
        1.0,
    ),
]


def test_tool_call_format_layouts_and_the_peer():
    got = load_reward("rule:tool_call_format").score([q(r) for r, _, _ in FORMAT_ROWS]).tolist()
    assert got == [ours for _, _, ours in FORMAT_ROWS]
    same = sum(peer == ours for _, peer, ours in FORMAT_ROWS)
    assert same == len(FORMAT_ROWS) - 6
    assert tool_call_format.compute_score("<think>r</think><answer>a</answer>", "ignored") == 1.0
    parts = [{"type": "text", "text": "<think>r</think><answer>a</answer>"}]
    assert load_reward("rule:tool_call_format").score([q(parts)]).tolist() == [1.0]


def test_tool_call_format_is_linear_where_the_peer_backtracks():
    # the peer's (?:<tool_call>.*?</tool_call>\s*)+$ took 3 s at 22 blocks + "x", ×4 per 2 more
    blocks = f"<tool_call>{CALL}</tool_call>"
    rows = [
        "<think>r</think>" + blocks * 20_000 + "x",
        "<think>r</think>" + blocks * 200 + "x",
        "<think>r</think>" + (blocks + f"<tool_call>{CALL}") * 20_000,
        "<think>r</think>" + "<tool_call>" * 200_000,
        "<think>r</think>" + "<tool_call>" + "[" * 5000 + "]" * 5000 + "</tool_call>",
        "<think>r</think>" + blocks * 256,
        "<think>r</think>" + blocks * 257,  # over MAX_CALLS
    ]
    start = time.perf_counter()
    got = load_reward("rule:tool_call_format").score([q(r) for r in rows]).tolist()
    assert time.perf_counter() - start < 2
    assert got == [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "spec",
    ["rule:json_match?order=any&credit=f1", "rule:tool_call?metric=f1", "rule:tool_call_format"],
)
def test_no_response_turns_these_rules_into_nan(spec):
    hostile = ["", "null", "NaN", "[]", "{}", "```json\n```", "<tool_call></tool_call>", "\x00"]
    hostile += ["[" * 3000, '{"a": 1e999}', '{"name": "f", "arguments": {}}', "<think>"]
    scores = load_reward(spec).score([q(r, '[{"name": "f", "arguments": {}}]') for r in hostile])
    assert not np.isnan(scores).any()
