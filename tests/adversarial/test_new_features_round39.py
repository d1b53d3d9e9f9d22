"""Hostile input for the features of round 39 (published pair layouts, unpaired/KTO rows and
their pairing, TRL stepwise rows, summarize-axis ratings, ``completion`` rows in ``score``,
``rule:cosine``'s tokenizer, LoRA adapter folders): a located one-line error or the right
value, never a traceback, a recursion, a silent wrong result or unbounded memory."""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardkit.data import load
from rewardkit.data.unpaired import pair_by_prompt
from rewardkit.errors import DataError, SpecError
from rewardkit.registry import load_reward
from rewardkit.types import Example, Query


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> str:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


# --- JSON text in CSV cells is text unless it is a message -----------------------------------

_KEYS = st.text(min_size=1, max_size=8).filter(lambda k: k not in ("role", "from"))
_OBJECTS = st.dictionaries(_KEYS, st.integers() | st.text(max_size=8), min_size=1, max_size=3)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(answer=_OBJECTS)
def test_a_csv_side_holding_a_json_object_is_that_text(tmp_path, answer):
    text = json.dumps(answer)
    for prompt_col in ("prompt", "question"):
        path = _csv(tmp_path / "p.csv", [prompt_col, "chosen", "rejected"], [["q", text, "no"]])
        assert load(path)[0].responses == [text, "no"]


def test_a_csv_side_holding_a_message_is_still_read_as_one(tmp_path):
    cell = json.dumps({"from": "gpt", "value": "yes"})
    path = _csv(tmp_path / "p.csv", ["question", "chosen", "rejected"], [["q", cell, "no"]])
    assert load(path)[0].responses == ["yes", "no"]
    user = json.dumps({"role": "user", "content": "x"})
    bad = _csv(tmp_path / "b.csv", ["question", "chosen", "rejected"], [["q", user, "no"]])
    with pytest.raises(DataError, match=r"line 2, field 'chosen'.*role is text 'user'"):
        load(bad)


@pytest.mark.parametrize(
    ("cell", "want"),
    [
        ("[1, 2, 3]", "[1, 2, 3]"),
        ('{"a": 1}', '{"a": 1}'),
        ("['a', 'b']", "['a', 'b']"),
        ('[{"role": "assistant", "content": "x"}]', "x"),
        ("[{'content': 'x', 'role': 'assistant'}]", "x"),  # as pandas writes it
    ],
)
def test_unpaired_csv_completion_is_text_unless_it_holds_messages(tmp_path, cell, want):
    path = _csv(tmp_path / "k.csv", ["prompt", "completion", "label"], [["q", cell, "true"]])
    assert load(path)[0].responses == [want]


# --- score: completion rows -------------------------------------------------------------------


def _score_csv(tmp_path: Path, completions: list[str]) -> list[float]:
    from typer.testing import CliRunner

    from rewardkit.cli import app

    src = _csv(tmp_path / "in.csv", ["prompt", "completion"], [["p", c] for c in completions])
    out = tmp_path / "out.jsonl"
    r = CliRunner().invoke(app, ["score", "--data", src, "-r", "rule:length", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return [json.loads(line)["reward"] for line in out.read_text().splitlines()]


def test_score_reads_a_csv_completion_of_messages_as_the_assistant_text(tmp_path):
    msgs = json.dumps([{"role": "assistant", "content": "four"}])
    pandas = "[{'role': 'assistant', 'content': 'four'}]"
    scores = _score_csv(tmp_path, ["four", msgs, pandas, "[1, 2]"])
    assert scores[0] == scores[1] == scores[2]  # the message's text, not the JSON of it
    assert scores[3] != scores[0]  # a JSON-looking answer stays its own text


@pytest.mark.parametrize(
    ("completion", "field"),
    [
        (None, "'completion'"),
        (5, "'completion'"),
        ([{"role": "assistant", "content": "c"}, "x"], "'completion[1]'"),
    ],
)
def test_score_names_the_completion_field(completion, field):
    from rewardkit.data import Location
    from rewardkit.scoring import query_from_row

    loc = Location("rows.jsonl", "rows.jsonl", line=4)
    with pytest.raises(DataError, match="line 4, field " + re.escape(field)):
        query_from_row({"prompt": "p", "completion": completion}, loc)


# --- steps, summarize-axis ----------------------------------------------------------------------


def test_a_trl_stepwise_row_with_a_non_text_step_names_that_step(tmp_path):
    good = {"prompt": "q", "completions": ["a", "b"], "labels": [True, False]}
    bad = {"prompt": "q", "completions": ["a", 1], "labels": [True, True]}
    path = _jsonl(tmp_path / "s.jsonl", [good, bad])
    with pytest.raises(DataError, match=r"line 2, field 'completions\[1\]'"):
        load(path)


@pytest.mark.parametrize("rating", ["1e400", "-1e400", "1" + "0" * 400])
def test_summarize_axis_refuses_a_rating_that_is_no_finite_number(tmp_path, rating):
    info = '{"post": "a post", "id": "1"}'
    line = f'{{"info": {info}, "summary": {{"text": "s", "axes": {{"overall": 3, "accuracy": {rating}}}}}}}'
    path = tmp_path / "axis.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(
        DataError, match=r"line 1, field 'summary.axes.accuracy': expected a finite"
    ):
        load(str(path), format="summarize-axis")


# --- pair_by_prompt: counted first, bounded ---------------------------------------------------


def _row(i: int, label: float, prompt: str = "q") -> Example:
    return Example(
        f"kto.jsonl:{i}",
        [{"role": "user", "content": prompt}],
        [f"r{i}"],
        [],
        ratings=[{"label": label}],
        meta={"format": "unpaired"},
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=30))
def test_pair_counts_match_the_pairs_built(rows):
    examples = [_row(i, float(good), p) for i, (p, good) in enumerate(rows)]
    built = pair_by_prompt(examples)
    counted = pair_by_prompt(examples, build=False)
    want = sum(
        sum(1 for q, g in rows if q == p and g) * sum(1 for q, g in rows if q == p and not g)
        for p in "abc"
    )
    assert built.count == counted.count == len(built.pairs) == want
    assert counted.pairs == []
    assert (built.prompts_paired, built.rows_unpaired) == (
        counted.prompts_paired,
        counted.rows_unpaired,
    )


def test_a_pair_explosion_is_refused_before_it_is_built():
    rows = [_row(i, 1.0) for i in range(3000)] + [_row(i, 0.0) for i in range(3000, 6000)]
    start = time.perf_counter()
    assert pair_by_prompt(rows, build=False).count == 9_000_000
    with pytest.raises(DataError, match=r"9,000,000 preference pairs.*3000 desirable × 3000"):
        pair_by_prompt(rows)
    assert time.perf_counter() - start < 5  # counted, never built (~5 GB)
    one_many = pair_by_prompt([_row(0, 1.0)] + [_row(i, 0.0) for i in range(1, 1001)])
    assert one_many.count == len(one_many.pairs) == 1000  # 1 × 1,000: linear, built


# --- rule:cosine's tokenizer ------------------------------------------------------------------


def test_cosine_names_a_tokenizer_it_cannot_load(tmp_path):
    reward = load_reward(f"rule:cosine?tokenizer={tmp_path / 'no' / 'such'}&check=exact_match")
    with pytest.raises(SpecError, match=r"rule:cosine tokenizer=.*cannot be loaded"):
        reward.score([Query(prompt="p", response="5", reference="5")])


# --- LoRA adapter folders with hostile configs ------------------------------------------------


def _adapter(folder: Path, config: dict | str, rank: int = 4) -> Path:
    """An adapter folder: a config and a one-tensor LoRA weights file of rank ``rank``."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    text = config if isinstance(config, str) else json.dumps(config)
    (folder / "adapter_config.json").write_text(text)
    name = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    save_file({name: torch.zeros(rank, 8)}, str(folder / "adapter_model.safetensors"))
    return folder


_GOOD = {
    "peft_type": "LORA",
    "task_type": "SEQ_CLS",
    "r": 4,
    "lora_alpha": 8,
    "target_modules": ["q_proj"],
    "base_model_name_or_path": "smollm2",  # embedded: no download
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"r": 10**12}, r"r is 1000000000000 but the adapter weights have rank 4"),
        ({"r": -1}, r"r must be a whole number ≥ 1"),
        ({"r": True}, r"r must be a whole number ≥ 1"),
        ({"lora_alpha": "8"}, r"lora_alpha must be a number"),
        ({"target_modules": 5}, r"target_modules must be a module name"),
        ({"modules_to_save": [1]}, r"modules_to_save must be a module name"),
        ({"task_type": ["SEQ_CLS"]}, r"task_type must be a name"),
        ({"peft_type": 3}, r"peft_type must be a name"),
    ],
)
def test_hostile_adapter_config_fields_are_named(tmp_path, change, message):
    folder = _adapter(tmp_path / "a", {**_GOOD, **change})
    with pytest.raises(SpecError, match=message) as info:
        load_reward(f"classifier:{folder}", progress=False)
    assert "adapter_config.json" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (json.dumps(_GOOD).replace('"lora_alpha": 8', '"lora_alpha": NaN'), "NaN is not JSON"),
        ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deep"),
        ("[1, 2, 3]", "not a JSON object"),
    ],
)
def test_unreadable_adapter_configs_are_one_line(tmp_path, text, message):
    folder = _adapter(tmp_path / "a", text)
    with pytest.raises(SpecError, match=message):
        load_reward(f"classifier:{folder}", progress=False)


def test_an_adapter_naming_itself_or_a_cycle_is_refused(tmp_path):
    me = _adapter(tmp_path / "me", {**_GOOD, "base_model_name_or_path": str(tmp_path / "me")})
    with pytest.raises(SpecError, match="names itself as its base"):
        load_reward(f"dpo:{me}", progress=False)
    a, b = tmp_path / "a", tmp_path / "b"
    _adapter(a, {**_GOOD, "base_model_name_or_path": str(b)})
    _adapter(b, {**_GOOD, "base_model_name_or_path": str(a)})
    with pytest.raises(SpecError, match="is itself an adapter folder"):
        load_reward(f"classifier:{a}", progress=False)
