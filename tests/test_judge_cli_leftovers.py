"""Three small judge/CLI defects, closed: a rating verdict written as a range (``Rating: 7-8``)
read as its first number; ``rewards list`` giving the judges' endpoint form options it refuses
(``use_chat_template=``); ``check-model`` on a model folder it cannot load ending in a traceback
or a line that does not name the file."""

from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from fault_proxy import FaultProxy
from rewardkit import Query, load_reward
from rewardkit.cli import app
from rewardkit.rewards.judges import verdict
from rewardkit.rewards.judges.parse import parse_rating, read_answer, text_reading
from rewardkit.rewards.judges.template import KINDS, RATING
from train_helpers import tiny_llama

runner = CliRunner()


# -- 1. a rating range reads as its midpoint, or is unparsed -------------------------------------
@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Rating: 7-8", 7.5),  # each of these read 7 (the first number) before
        ("[[7-8]]", 7.5),
        ("Score: 7 to 8", 7.5),
        ("Rating: 7 - 8", 7.5),
        ("7-8", 7.5),
        ("Score: 7 to 10", 8.5),
        ("Rating: 7.5-8.5", 8.0),
        ("Rating: 8 or 9", 8.5),
        ("7–8/10", 7.5),  # unparsed before: the 8 of "8/10" looked signed
        ("I'd say 7-8/10.", 7.5),
        ("7 - 8 out of 10", 7.5),
        ("Rating: 7 to 8 out of 10", 7.5),  # read 8 (the later "8 out of 10") before
        ("Rating: 8-7", None),  # descending: read 8 before
        ("[[9-11]]", None),  # off the scale: read 9 before
        ("Rating: 0-2", None),
        ("Score 1-10: 7", None),  # the scale named, not a verdict: read 1 before
        ("Rating: 7-8-9", None),  # a chain: read 7 before
        ("Score: 3-4/5", None),  # another scale: read 3 before
        # unchanged: signs, a dash that is prose, a number after the verdict's brackets
        ("-3", None),
        ("Rating: -3", None),
        ("[[-7-8]]", None),
        ("Rating: 7 - the answer is good", 7.0),
        ("Rating: 7 to the max", 7.0),
        ("[[7]] - 8 points short", 7.0),
        ("Rating: 7/10 - 8 is too high", 7.0),
        ("Score: 7 (-8 for style)", 7.0),
        ("Rating: 7-7", 7.0),
    ],
)
def test_a_rating_range_reads_as_its_midpoint(text, want):
    assert parse_rating(text) == want
    reading = text_reading("rating", text)
    if want is None:
        assert not reading.parsed
    else:
        expected = verdict.rating(verdict.softmax(reading.scores[None, :]))[0]
        assert expected == pytest.approx(want)


def _chat(tokens: list[tuple[str, dict[str, float]]]) -> dict:
    """A chat answer whose tokens spell its text, with ``top_logprobs`` per token."""
    content = [
        {
            "token": t,
            "logprob": tops.get(t, 0.0),
            "top_logprobs": [{"token": k, "logprob": v} for k, v in tops.items()],
        }
        for t, tops in tokens
    ]
    text = "".join(t for t, _ in tokens)
    return {"choices": [{"message": {"content": text}, "logprobs": {"content": content}}]}


#: The judge's certainty at its first number: P(7) = 0.9, P(8) = 0.1 (expected 7.1).
SURE_OF_7 = {" 7": math.log(0.9), " 8": math.log(0.1)}


def test_a_range_is_read_from_its_text_not_the_logprobs_of_its_first_end():
    body = _chat([("Rating", {}), (":", {}), (" 7", SURE_OF_7), ("-", {}), ("8", {})])
    reading = read_answer("rating", "Rating: 7-8", RATING.classes, (), body)
    assert reading.source == "text" and not reading.token  # read 7.1 from logprobs before
    assert verdict.rating(verdict.softmax(reading.scores[None, :]))[0] == pytest.approx(7.5)
    one = _chat([("Rating", {}), (":", {}), (" 7", SURE_OF_7)])
    single = read_answer("rating", "Rating: 7", RATING.classes, (), one)
    assert single.source == "logprobs"  # a one-number verdict still reads its token
    assert verdict.rating(verdict.softmax(single.scores[None, :]))[0] == pytest.approx(7.1)


#: What the stub judge answers for each judged response.
ANSWERS = {"alpha": "Rating: 7-8", "beta": "Rating: 7", "gamma": "Rating: 8-7"}


def _rating_stub(path: str, body):
    prompt = body["messages"][-1]["content"]
    word = next(w for w in ANSWERS if w in prompt)
    head, _, tail = ANSWERS[word].partition(" 7")
    tokens = [(head, {}), (" 7", SURE_OF_7), *((c, {}) for c in tail)]
    answer = _chat(tokens)
    if not body.get("logprobs"):
        del answer["choices"][0]["logprobs"]
    return 200, answer


def test_an_http_rating_judge_scores_a_range_as_its_midpoint():
    queries = [Query([{"role": "user", "content": "Rate it."}], w) for w in ANSWERS]
    with FaultProxy(handler=_rating_stub) as proxy:
        url = proxy.url.replace("http://", "openai://")
        for extra in ("", "&logprobs=false"):
            judge = load_reward(f"judge-rating:{url}/v1?model=stub{extra}")
            full = judge.score_full(queries)
            assert full.scores[0] == pytest.approx(7.5)  # 7.1 (logprobs) or 7.0 (text) before
            assert full.scores[1] == pytest.approx(7.0 if extra else 7.1)
            assert math.isnan(full.scores[2]) and full.stats["unparsed"] == 1  # was 8
            assert full.stats["logprob_verdicts"] == (0 if extra else 1)


# -- 2. `rewards list` gives each form only the options it reads ---------------------------------
def _blocks() -> dict[str, str]:
    """``rewards list`` as kind → its block (wrapped lines joined)."""
    result = runner.invoke(app, ["rewards", "list"])
    assert result.exit_code == 0, result.output
    blocks: dict[str, list[str]] = {}
    for line in result.output.splitlines():
        if line and not line[0].isspace():
            current = blocks.setdefault(re.split(r"[:\s]", line, maxsplit=1)[0], [])
        current.append(line.strip())
    return {k: " ".join(v) for k, v in blocks.items()}


def _form(block: str, label: str) -> str:
    """The paragraph of ``block`` from ``options (LABEL`` to the next paragraph."""
    start = block.index(f"options ({label}")
    end = min(
        (i for i in (block.find(s, start + 1) for s in ("options (", "method card:")) if i > 0),
        default=len(block),
    )
    return block[start:end]


JUDGES = ("judge", "judge-pairwise", "judge-rating", "judge-listwise")


def _value(kind: str, name: str, listed: str, tmp_path) -> object:
    """A value of option ``name`` an HTTP judge of ``kind`` should take."""
    choices = re.search(rf"\b{name}=([\w|]+)", listed)
    kind_obj = KINDS[{"judge": "yes_no"}.get(kind, kind.removeprefix("judge-"))]
    plain = {
        "template": kind_obj.default_templates[0],
        "system": "Judge fairly.",
        "principle": "Be brief.",
        "rubric": "correct|clear",
        "order_seed": 3,
        "api_key_env": "RK_LEFTOVER_KEY",
        "temperature": 0.2,
        "max_tokens": 8,
        "seed": 1,
        "logprobs": False,
        "prices": {"stub": {"prompt": 1.0, "completion": 2.0}},
        "cache_dir": str(tmp_path / "cache"),
        "progress": False,
        "api_key_header": "api-key",
        "api_version": "2024-06-01",
        "query": {"deployment": "d1"},
        "headers": {"X-Title": "rewardkit tests"},
    }
    if name in plain:
        return plain[name]
    assert choices and choices.group(1), (kind, name)
    return choices.group(1).split("|")[-1]


@pytest.mark.parametrize("kind", JUDGES)
def test_the_endpoint_form_lists_only_what_an_http_judge_reads(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("RK_LEFTOVER_KEY", "sk-test-0123456789")
    block = _blocks()[kind]
    local, endpoint = _form(block, "local model"), _form(block, "endpoint")
    assert "use_chat_template=" in local and "use_chat_template" not in endpoint  # listed before
    base = {"type": kind, "base_url": "http://127.0.0.1:9/v1", "model": "stub"}
    for name in re.findall(r"\b([a-z_]+)=", endpoint):
        if name in ("base_url", "model"):
            continue
        value = _value(kind, name, endpoint, tmp_path)
        key = {"api_key_env": "RK_LEFTOVER_KEY"} if name == "api_key_header" else {}
        load_reward({**base, **key, name: value})  # every listed option is taken
    with pytest.raises(ValueError, match="use_chat_template"):
        load_reward({**base, "use_chat_template": False})
    if kind == "judge-rating":  # "output=expected|probs" before; probs is refused
        assert "output=expected," in endpoint and "|probs" not in endpoint
        with pytest.raises(ValueError, match="output=expected only"):
            load_reward({**base, "output": "probs"})


def test_only_kinds_with_an_endpoint_form_list_one():
    blocks = _blocks()
    with_endpoint = {k for k, b in blocks.items() if "options (endpoint" in b}
    assert with_endpoint == {*JUDGES, "verifier", "genorm"}  # B5's and B4's verifiers too
    for kind, block in blocks.items():
        assert "on an endpoint instead" not in block, kind


# -- 3. check-model on a folder it cannot load: one line naming the file, exit 2 ----------------
@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("leftovers") / "good")


def _broken(good, tmp_path, change) -> str:
    folder = tmp_path / "model"
    shutil.copytree(good, folder)
    change(folder)
    return str(folder)


def _cut(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _config(**fields):
    def change(folder) -> None:
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, **fields}))

    return change


@pytest.mark.parametrize(
    ("change", "named"),
    [
        # before: these two already exited 2 with this line (kept as they are)
        (lambda f: _cut(f / "model.safetensors"), "model.safetensors: cannot read the weights"),
        (_config(hidden_size=64, intermediate_size=128), "config.json does not describe"),
        # before: a huggingface_hub traceback and exit 1
        (_config(num_attention_heads=3), "config.json: transformers refuses the model config"),
        # before: "error: Expecting value: line 97580 column 6" (no file named)
        (lambda f: _cut(f / "tokenizer.json"), "tokenizer.json: not valid JSON"),
    ],
)
def test_check_model_names_the_file_it_cannot_load(good, tmp_path, change, named):
    folder = _broken(good, tmp_path, change)
    result = runner.invoke(app, ["check-model", folder, "--dtype", "float32"])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert named in lines[0] and folder in lines[0]
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_a_sound_folder_still_checks(good):
    result = runner.invoke(app, ["check-model", str(good), "--dtype", "float32", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["verdict"] in ("PASS", "WARN")
    assert np.isfinite([c["max_delta"] for c in json.loads(result.output)["comparisons"]]).all()
