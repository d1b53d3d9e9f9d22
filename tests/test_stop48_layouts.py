"""Held-out preference layouts as the Hugging Face Hub ships them (every column, a few rows):
how ``load`` (the data path of ``eval`` and ``train``) reads each — the number of examples,
which response is chosen (in every row the preferred response is the long one, on either
side), ties, the prompt with its multi-turn context — in JSON Lines and Parquet, through
``rewardkit eval`` and ``train``'s ``load_examples``; and a one-line error for a layout that
holds no preference. Layout sources: docs/data-formats.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.errors import DataError

LONG = "This is the long preferred answer with plenty of helpful detail in it."
SHORT = "Short bad."
TIE_A, TIE_B = "Tie answer one, medium.", "Tie answer two, medium!"


def _u(text: str) -> dict:
    return {"role": "user", "content": text}


def _a(text: str) -> dict:
    return {"role": "assistant", "content": text}


def _ufb(prompt: str, good: str, bad: str, sc: float, sr: float) -> dict:
    """HuggingFaceH4/ultrafeedback_binarized (train_prefs)."""
    chosen = [_u(prompt), _a(good)]
    return {
        "prompt": prompt,
        "prompt_id": prompt[:4],
        "chosen": chosen,
        "rejected": [_u(prompt), _a(bad)],
        "messages": chosen,
        "score_chosen": sc,
        "score_rejected": sr,
    }


def _uf_completion(text: str, rating: str, fine: float, overall: float) -> dict:
    """One completion of openbmb/UltraFeedback (aspect ratings are text)."""
    note = {"Rating": rating, "Rationale": "r"}
    typed = {**note, "Rationale For Rating": "why", "Type": ["1"]}
    return {
        "annotations": {
            "helpfulness": typed,
            "honesty": note,
            "instruction_following": note,
            "truthfulness": typed,
        },
        "critique": "c",
        "custom_system_prompt": "s",
        "fine-grained_score": fine,
        "model": "m",
        "overall_score": overall,
        "principle": "helpfulness",
        "response": text,
    }


def _pku(prompt: str, r0: str, r1: str, better: int) -> dict:
    """PKU-Alignment/PKU-SafeRLHF: the safer response is the other one in these rows."""
    return {
        "prompt": prompt,
        "response_0": r0,
        "response_1": r1,
        "prompt_source": "Alpaca3-70B",
        "response_0_source": "Alpaca-7B",
        "response_1_source": "Alpaca-7B",
        "is_response_0_safe": better == 1,
        "is_response_1_safe": better == 0,
        "response_0_harm_category": {"Privacy Violation": better == 0},
        "response_1_harm_category": {"Privacy Violation": better == 1},
        "response_0_severity_level": 0,
        "response_1_severity_level": 2,
        "better_response_id": better,
        "safer_response_id": 1 - better,
        "response_0_sha256": "a",
        "response_1_sha256": "b",
    }


def _shp(post: str, ref_a: str, ref_b: str, label: int) -> dict:
    """stanfordnlp/SHP and SHP-2: labels 1 = A preferred."""
    return {
        "post_id": post,
        "domain": "askculinary_train",
        "upvote_ratio": 0.9,
        "history": post,
        "c_root_id_A": "a",
        "c_root_id_B": "b",
        "created_at_utc_A": 1,
        "created_at_utc_B": 2,
        "score_A": 10 if label else 2,
        "score_B": 2 if label else 10,
        "human_ref_A": ref_a,
        "human_ref_B": ref_b,
        "labels": label,
        "seconds_difference": 1.0,
        "score_ratio": 5.0,
    }


def _arena(conv_a: list, conv_b: list, winner: str, turn: int) -> dict:
    """lmsys/chatbot_arena_conversations, lmarena-ai/arena-human-preference-100k."""
    return {
        "question_id": "q",
        "model_a": "ma",
        "model_b": "mb",
        "winner": winner,
        "judge": "arena_user",
        "conversation_a": conv_a,
        "conversation_b": conv_b,
        "turn": turn,
        "anony": True,
        "language": "English",
        "tstamp": 1.0,
        "openai_moderation": {"flagged": False},
        "toxic_chat_tag": {"roberta-large": {"flagged": False}},
    }


def _parts(conv: list) -> list:
    """arena-human-preference-140k content: a list of typed parts."""
    part = {"type": "text", "image": None, "mimeType": None}
    return [{"role": m["role"], "content": [{**part, "text": m["content"]}]} for m in conv]


def _arena140k(conv_a: list, conv_b: list, winner: str) -> dict:
    return {
        "id": "x",
        "model_a": "ma",
        "model_b": "mb",
        "winner": winner,
        "conversation_a": _parts(conv_a),
        "conversation_b": _parts(conv_b),
        "conv_metadata": {"sum_user_tokens": 3},
        "language": "en",
        "is_code": False,
        "timestamp": "2025-01-01",
        "evaluation_order": 1,
    }


def _arena55k(prompt: list, ra: list, rb: list, win: str) -> dict:
    """lmsys/lmsys-arena-human-preference-55k: turns as JSON-encoded lists, one-hot winner."""
    flags = {f"winner_{k}": int(win == k) for k in ("model_a", "model_b", "tie")}
    enc = {
        k: json.dumps(v) for k, v in (("prompt", prompt), ("response_a", ra), ("response_b", rb))
    }
    return {"id": 1, "model_a": "ma", "model_b": "mb", **enc, **flags}


def _rb2(prompt: str, chosen: list, rejected: list, subset: str) -> dict:
    """allenai/reward-bench-2."""
    n = len(chosen) + len(rejected)
    return {
        "id": prompt,
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "num_correct": len(chosen),
        "num_incorrect": len(rejected),
        "total_completions": n,
        "models": ["m"] * n,
        "subset": subset,
        "additional_metadata": {"note": None},
    }


def _msg(mid: str, parent: str | None, role: str, text: str, rank: int | None) -> dict:
    """OpenAssistant/oasst1 messages."""
    return {
        "message_id": mid,
        "parent_id": parent,
        "text": text,
        "role": role,
        "lang": "en",
        "review_result": True,
        "deleted": False,
        "rank": rank,
        "synthetic": False,
        "message_tree_id": "t1",
        "tree_state": "ready_for_export",
    }


MULTI = [_u("q1"), _a("earlier"), _u("q2")]  # the context of a multi-turn row


def _hs3(response1: str, response2: str, preference: int) -> dict:
    """nvidia/HelpSteer3 (preference): negative overall_preference = response1 is better."""
    return {
        "domain": "stem",
        "language": "english",
        "context": MULTI,
        "response1": response1,
        "response2": response2,
        "overall_preference": preference,
        "individual_preference": [{"score": preference, "reasoning": "r"}],
    }


def _rated_pair(good: str, bad: str, key: str, rc: float, rr: float) -> dict:
    """argilla/dpo-mix-7k (``chosen_rating``), Capybara-DPO (``rating_chosen``)."""
    return {
        "chosen": [*MULTI, _a(good)],
        "rejected": [*MULTI, _a(bad)],
        key: rc,
        key.replace("chosen", "rejected"): rr,
        "chosen_model": "x",
        "rejected_model": "y",
    }


#: layout → (rows, format read, chosen per example, prompt of the last example)
LAYOUTS: dict[str, tuple[list[dict], str, list[list[int]], list[dict]]] = {
    "ultrafeedback_binarized": (
        [_ufb("What is 2+2?", LONG, SHORT, 8.0, 5.0), _ufb("Tie?", TIE_A, TIE_B, 7.0, 7.0)],
        "trl",
        [[0], [0, 1]],
        [_u("Tie?")],
    ),
    "ultrafeedback_raw": (
        [
            {
                "source": "evol_instruct",
                "instruction": "Explain gravity.",
                "models": ["a", "b", "c", "d"],
                "completions": [
                    _uf_completion(SHORT, "2", 2.0, 3.0),
                    _uf_completion(LONG, "5", 5.0, 8.0),
                    _uf_completion("Mid answer.", "3", 3.0, 9.0),
                    _uf_completion("Two.", "N/A", 3.5, 5.0),
                ],
                "correct_answers": ["None"],
                "incorrect_answers": ["None"],
            }
        ],
        "ultrafeedback",
        [[1]],
        [_u("Explain gravity.")],
    ),
    "skywork_preference": (
        [
            {"chosen": [_u("q"), _a(LONG)], "rejected": [_u("q"), _a(SHORT)], "source": "s"},
            {"chosen": [*MULTI, _a(LONG)], "rejected": [*MULTI, _a(SHORT)], "source": "s"},
        ],
        "trl",
        [[0], [0]],
        MULTI,
    ),
    "helpsteer3_preference": (
        [_hs3(LONG, SHORT, -2), _hs3(SHORT, LONG, 3), _hs3(TIE_A, TIE_B, 0)],
        "helpsteer3",
        [[0], [1], [0, 1]],
        MULTI,
    ),
    "nectar": (
        [
            {
                "prompt": "\n\nHuman: q1\n\nAssistant: earlier\n\nHuman: q2\n\nAssistant:",
                "answers": [
                    {"answer": SHORT, "model": "m1", "rank": 3.0},
                    {"answer": LONG, "model": "m2", "rank": 1.0},
                    {"answer": "Middle answer", "model": "m3", "rank": 2.0},
                ],
                "turns": 2,
                "num_responses": 3,
                "source": ["anthropic-hh"],
                "good_natured": True,
            }
        ],
        "nectar",
        [[1]],
        MULTI,
    ),
    "pku_saferlhf": (
        [_pku("q1", LONG, SHORT, 0), _pku("q2", SHORT, LONG, 1)],
        "pku-saferlhf",
        [[0], [1]],
        [_u("q2")],
    ),
    "shp": (
        [_shp("post1", LONG, SHORT, 1), _shp("post2", SHORT, LONG, 0)],
        "shp",
        [[0], [1]],
        [_u("post2")],
    ),
    "chatbot_arena": (
        [
            _arena([_u("q"), _a(LONG)], [_u("q"), _a(SHORT)], "model_a", 1),
            _arena([_u("q"), _a(SHORT)], [_u("q"), _a(LONG)], "model_b", 1),
            _arena([_u("q"), _a(TIE_A)], [_u("q"), _a(TIE_B)], "tie", 1),
            _arena([_u("q"), _a(TIE_A)], [_u("q"), _a(TIE_B)], "tie (bothbad)", 1),
            _arena([*MULTI, _a(SHORT)], [*MULTI, _a(LONG)], "model_b", 2),
        ],
        "mt-bench-human",
        [[0], [1], [0, 1], [0, 1], [1]],
        MULTI,
    ),
    "arena_140k": (
        [
            _arena140k([*MULTI, _a(LONG)], [*MULTI, _a(SHORT)], "model_a"),
            _arena140k([_u("q"), _a(TIE_A)], [_u("q"), _a(TIE_B)], "both_bad"),
            _arena140k([*MULTI, _a(SHORT)], [*MULTI, _a(LONG)], "model_b"),
        ],
        "mt-bench-human",
        [[0], [0, 1], [1]],
        MULTI,
    ),
    "arena_55k": (
        [
            _arena55k(["q"], [LONG], [SHORT], "model_a"),
            _arena55k(["q"], [TIE_A], [TIE_B], "tie"),
            _arena55k(["q1", "q2"], ["earlier", SHORT], ["earlier", LONG], "model_b"),
        ],
        "arena-human-preference",
        [[0], [0, 1], [1]],
        MULTI,
    ),
    "reward_bench_2": (
        [
            _rb2("q focus", [LONG], [SHORT, "No.", "Bad."], "Focus"),
            _rb2("q ties", [LONG, LONG + "!"], [SHORT], "Ties"),
        ],
        "rewardbench2",
        [[0], [0, 1]],
        [_u("q ties")],
    ),
    "dpo_mix_7k": (
        [
            _rated_pair(LONG, SHORT, "chosen_rating", 5, 2),
            _rated_pair(TIE_A, TIE_B, "chosen_rating", 4, 4),
        ],
        "trl",
        [[0], [0, 1]],
        MULTI,
    ),
    "capybara_dpo": (  # argilla/distilabel-capybara-dpo-7k-binarized: prompt = the last turn
        [
            {
                **_rated_pair(LONG, SHORT, "rating_chosen", 5, 2),
                "source": "Airoboros",
                "conversation": [{"input": "q1", "output": "earlier"}, {"input": "q2"}],
                "original_response": "o",
                "prompt": "q2",
            }
        ],
        "trl",
        [[0]],
        MULTI,
    ),
    "oasst1_messages": (
        [
            _msg("m0", None, "prompter", "q1", None),
            _msg("m1", "m0", "assistant", "earlier", 0),
            _msg("m2", "m0", "assistant", "No.", 1),
            _msg("m3", "m1", "prompter", "q2", None),
            _msg("m4", "m3", "assistant", SHORT, 1),
            _msg("m5", "m3", "assistant", LONG, 0),
            _msg("m6", "m3", "assistant", "An unranked reply.", None),
        ],
        "oasst-messages",
        [[0], [1]],
        MULTI,
    ),
}


def _write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


#: The responses each layout's label ranks below another (or ties).
LOSERS = {SHORT, TIE_A, TIE_B, "No.", "Bad.", "Middle answer", "Mid answer.", "Two."}


def _preferred(ex: Any) -> set[int]:
    """The indices of the preferred responses (each longer than every loser of its row)."""
    return {i for i, r in enumerate(ex.responses) if r not in LOSERS}


@pytest.mark.parametrize("ext", ["jsonl", "parquet"])
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_a_hub_layout_reads_its_count_orientation_ties_and_context(tmp_path, name, ext):
    rows, fmt, chosen, last_prompt = LAYOUTS[name]
    exs = load(_write(tmp_path / f"{name}.{ext}", rows))
    assert [e.meta["format"] for e in exs] == [fmt] * len(chosen)
    assert [e.chosen for e in exs] == chosen
    for ex in exs:
        if ex.is_tie:
            assert not _preferred(ex)  # a tie is never read as a preference
        else:
            assert set(ex.chosen) == _preferred(ex)  # on whichever side it stands
    assert exs[-1].prompt == last_prompt  # the earlier turns are kept, in order


def _eval(data: Path, out: Path) -> dict:
    args = ["eval", "-r", "rule:length", "--data", str(data), "--out", str(out), "--no-html"]
    res = CliRunner().invoke(app, [*args, "--n-boot", "10"])
    assert res.exit_code == 0, res.output
    return json.loads((out / "report.json").read_text())


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_rewardkit_eval_scores_every_preference_and_skips_only_the_ties(tmp_path, name):
    rows, _, chosen, _ = LAYOUTS[name]
    report = _eval(_write(tmp_path / f"{name}.parquet", rows), tmp_path / "out")
    # RewardBench 2's Ties subset has several chosen responses, never every one: no tie
    ties = 0 if name == "reward_bench_2" else sum(c == [0, 1] for c in chosen)
    ds = report["dataset"]
    assert (ds["n_examples"], ds["n_evaluable"]) == (len(chosen), len(chosen) - ties)
    assert ds["skipped"] == ({"labelled tie": ties} if ties else {})
    assert report["rewards"][0]["score"] == 1.0  # length prefers the chosen side every time


@pytest.mark.parametrize("name", ["shp", "helpsteer3_preference", "arena_55k", "pku_saferlhf"])
def test_training_mines_each_pair_with_the_preferred_response_first(tmp_path, name):
    from rewardkit.train.common import load_examples
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.pairs import mined_pairs

    rows, _, chosen, _ = LAYOUTS[name]
    data = _write(tmp_path / f"{name}.parquet", rows)
    train, _ = load_examples(TrainConfig(data=str(data), output_dir=str(tmp_path / "run")))
    assert len(train) == len(chosen)
    for ex in train:
        for better, worse, tied in mined_pairs(ex):
            if not tied:
                assert (ex.responses[better], ex.responses[worse]) == (LONG, SHORT)


def test_kto_rows_are_paired_by_prompt_with_the_desirable_completion_first(tmp_path):
    from rewardkit.train.common import load_examples
    from rewardkit.train.config import TrainConfig

    rows = [  # trl-lib/kto-mix-14k: conversational prompt and completion, boolean label
        {"prompt": [_u("q")], "completion": [_a(SHORT)], "label": False},
        {"prompt": [_u("q")], "completion": [_a(LONG)], "label": True},
        {"prompt": [_u("other")], "completion": [_a(LONG)], "label": True},
    ]
    data = _write(tmp_path / "kto.parquet", rows)
    exs = load(data)
    assert [e.ratings for e in exs] == [[{"label": 0.0}], [{"label": 1.0}], [{"label": 1.0}]]
    train, _ = load_examples(TrainConfig(data=str(data), output_dir=str(tmp_path / "run")))
    assert [(e.responses, e.chosen) for e in train] == [([LONG, SHORT], [0])]


def test_a_pandas_csv_export_of_message_lists_reads_as_the_parquet_does(tmp_path):
    pd = pytest.importorskip("pandas")
    for name in ("ultrafeedback_binarized", "helpsteer3_preference", "chatbot_arena"):
        pqf = _write(tmp_path / f"{name}.parquet", LAYOUTS[name][0])
        csv = tmp_path / f"{name}.csv"
        pd.read_parquet(pqf).to_csv(csv, index=False)  # numpy-array reprs in the cells
        got = [(e.prompt, e.responses, e.chosen) for e in load(csv)]
        assert got == [(e.prompt, e.responses, e.chosen) for e in load(pqf)], name


def test_a_split_without_a_preference_is_one_line_naming_file_line_and_field(tmp_path):
    # ultrafeedback_binarized's train_sft split: messages only, no preference
    rows = [{"prompt": "q", "prompt_id": "p", "messages": [_u("q"), _a(LONG)]}]
    field = "chosen"
    data = _write(tmp_path / "held.jsonl", rows)
    with pytest.raises(DataError) as err:
        load(data)
    assert (err.value.line, err.value.field) == (1, field)
    res = CliRunner().invoke(
        app, ["eval", "-r", "rule:length", "--data", str(data), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"held.jsonl, line 1, field '{field}'" in res.output
    assert not (tmp_path / "o" / "report.json").exists()


def test_a_hub_snapshot_with_sft_and_pref_splits_is_read_one_split_at_a_time(tmp_path):
    rows = LAYOUTS["ultrafeedback_binarized"][0]
    sft = [{k: r[k] for k in ("prompt", "prompt_id", "messages")} for r in rows]
    (tmp_path / "data").mkdir()
    for split, data in (("train_prefs", rows), ("test_prefs", rows[:1]), ("test_sft", sft)):
        _write(tmp_path / "data" / f"{split}-00000-of-00001.parquet", data)
    assert [e.chosen for e in load(f"{tmp_path}:test_prefs")] == [[0]]
    with pytest.warns(UserWarning, match="3 splits"), pytest.raises(DataError, match="test_sft"):
        load(tmp_path)
