"""Held-out layouts, round 3: OpenAssistant oasst1/oasst2 (flat messages and the nested trees
export) and Vezora's Code-Preference-Pairs. Rows are hand-written in each published schema (the
dataset cards; TRL's dataset-formats guide for Code-Preference-Pairs) and the expected
prompt / responses / chosen are hand-checked (rank 0 is the most preferred reply)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from rewardkit.data import load
from rewardkit.errors import DataError

Q = "Why can't we divide by 0?"
A1 = "Because no number times 0 gives a nonzero number."
A2 = "Division by zero is undefined in arithmetic."
A3 = "You can, it is infinity."


def _msg(mid, pid, role, text, rank=None, **kw) -> dict:
    row = {
        "message_id": mid,
        "parent_id": pid,
        "user_id": "u1",
        "created_date": "2023-02-05T14:23:50.983374+00:00",
        "text": text,
        "role": role,
        "lang": "en",
        "review_count": 3,
        "review_result": True,
        "deleted": False,
        "rank": rank,
        "synthetic": False,
        "model_name": None,
        "message_tree_id": "t1",
        "tree_state": "ready_for_export",
    }
    row.update(kw)
    return row


MESSAGES = [
    _msg("t1", None, "prompter", Q),
    _msg("a1", "t1", "assistant", A1, 1.0),
    _msg("a2", "t1", "assistant", A2, 0.0),
    _msg("a3", "t1", "assistant", A3, 2.0),
    _msg("p1", "a2", "prompter", "What about limits?", 0.0),
    _msg("b1", "p1", "assistant", "Limits describe behaviour near 0.", 0.0),
    _msg("b2", "p1", "assistant", "Limits are not real.", 1.0),
    _msg("b3", "p1", "assistant", "Unranked reply.", None),  # no rank: not compared
]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _check_oasst(ex: list, fmt: str) -> None:
    assert len(ex) == 2
    first, second = ex
    assert first.prompt == [{"role": "user", "content": Q}]
    assert first.responses == [A1, A2, A3]
    assert first.chosen == [1]
    assert first.meta["ranks"] == [1.0, 0.0, 2.0]
    assert first.meta["format"] == fmt
    assert first.id == "t1" and first.language == "en"
    assert second.prompt == [
        {"role": "user", "content": Q},
        {"role": "assistant", "content": A2},
        {"role": "user", "content": "What about limits?"},
    ]
    assert second.responses == ["Limits describe behaviour near 0.", "Limits are not real."]
    assert second.chosen == [0]


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "csv"])
def test_oasst_messages_every_file_type(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"oasst.{kind}"
    if kind == "jsonl":
        _jsonl(path, MESSAGES)
    elif kind == "parquet":
        pd.DataFrame(MESSAGES).to_parquet(path)  # rank: float with NaN for unranked
    else:
        pd.DataFrame(MESSAGES).to_csv(path, index=False)
    _check_oasst(load(path), "oasst-messages")


def test_oasst_messages_out_of_order_and_deleted(tmp_path: Path) -> None:
    rows = [
        MESSAGES[2],
        MESSAGES[0],
        MESSAGES[1],
        _msg("a3", "t1", "assistant", A3, 2.0, deleted=True),
    ]
    (ex,) = load(_jsonl(tmp_path / "m.jsonl", rows))
    assert ex.responses == [A2, A1] and ex.chosen == [0]  # the deleted reply is not compared


def test_oasst_equal_ranks_are_all_chosen(tmp_path: Path) -> None:
    rows = [MESSAGES[0], _msg("a1", "t1", "assistant", A1, 0), _msg("a2", "t1", "assistant", A2, 0)]
    (ex,) = load(_jsonl(tmp_path / "m.jsonl", rows))
    assert ex.chosen == [0, 1] and ex.is_tie


def _node(mid, role, text, rank=None, replies=()) -> dict:
    node = {"message_id": mid, "text": text, "role": role, "lang": "en", "replies": list(replies)}
    if rank is not None:
        node["rank"] = rank
    return node


TREE = {
    "message_tree_id": "t1",
    "tree_state": "ready_for_export",
    "prompt": _node(
        "t1",
        "prompter",
        Q,
        None,
        [
            _node("a1", "assistant", A1, 1),
            _node(
                "a2",
                "assistant",
                A2,
                0,
                [
                    _node(
                        "p1",
                        "prompter",
                        "What about limits?",
                        0,
                        [
                            _node("b1", "assistant", "Limits describe behaviour near 0.", 0),
                            _node("b2", "assistant", "Limits are not real.", 1),
                        ],
                    )
                ],
            ),
            _node("a3", "assistant", A3, 2),
        ],
    ),
}


def test_oasst_trees_export(tmp_path: Path) -> None:
    ex = load(_jsonl(tmp_path / "x.trees.jsonl", [TREE]))
    _check_oasst(ex, "oasst")
    assert ex[0].meta["message_tree_id"] == "t1"


def test_oasst_limit_counts_examples(tmp_path: Path) -> None:
    assert len(load(_jsonl(tmp_path / "x.trees.jsonl", [TREE]), limit=1)) == 1
    assert len(load(_jsonl(tmp_path / "m.jsonl", MESSAGES), limit=1)) == 1


def test_oasst_malformed_rows_are_located(tmp_path: Path) -> None:
    bad_rank = [MESSAGES[0], _msg("a1", "t1", "assistant", A1, "best")]
    with pytest.raises(DataError) as e:
        load(_jsonl(tmp_path / "r.jsonl", bad_rank))
    assert e.value.line == 2 and e.value.field == "rank" and "rank >= 0" in str(e.value)

    orphan = [MESSAGES[0], _msg("a1", "gone", "assistant", A1, 0)]
    with pytest.raises(DataError) as e:
        load(_jsonl(tmp_path / "o.jsonl", orphan))
    assert e.value.line == 2 and e.value.field == "parent_id" and "'gone'" in str(e.value)

    same_role = [MESSAGES[0], _msg("p2", "t1", "prompter", "again?", 0)]
    with pytest.raises(DataError, match="alternate") as e:
        load(_jsonl(tmp_path / "s.jsonl", same_role))
    assert e.value.line == 2

    dup = [MESSAGES[0], MESSAGES[0]]
    with pytest.raises(DataError, match="duplicate message id") as e:
        load(_jsonl(tmp_path / "d.jsonl", dup))
    assert e.value.line == 2

    cycle = [MESSAGES[0], _msg("x", "y", "prompter", "?"), _msg("y", "x", "assistant", "!", 0)]
    with pytest.raises(DataError, match="cycle"):
        load(_jsonl(tmp_path / "c.jsonl", cycle))

    # skip mode drops the bad message (and its subtree) and keeps the rest
    errors: list[DataError] = []
    with pytest.warns(UserWarning, match="skipped 1"):
        ex = load(
            _jsonl(tmp_path / "k.jsonl", [*MESSAGES, _msg("z", "gone", "assistant", A1, 0)]),
            on_error="skip",
            skipped_out=errors,
        )
    assert len(ex) == 2 and errors[0].field == "parent_id"


def test_oasst_tree_malformed_reply_is_located(tmp_path: Path) -> None:
    tree = json.loads(json.dumps(TREE))
    tree["prompt"]["replies"][1]["replies"][0]["replies"][1]["rank"] = math.inf
    path = tmp_path / "x.trees.jsonl"
    path.write_text(json.dumps(tree) + "\n")  # Python writes the JSON5 Infinity
    with pytest.raises(DataError) as e:
        load(path)
    assert e.value.line == 1
    assert e.value.field == "prompt.replies[1].replies[0].replies[1].rank"
    tree["prompt"]["role"] = "assistant"
    with pytest.raises(DataError, match="prompter"):
        load(_jsonl(tmp_path / "y.trees.jsonl", [tree]))


CODE = [
    {
        "input": "Write add(a, b).",
        "accepted": "def add(a, b):\n    return a + b",
        "rejected": "def add(a, b):\n    return a - b",
    }
]


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "csv"])
def test_code_preference_pairs(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"code.{kind}"
    if kind == "jsonl":
        _jsonl(path, CODE)
    elif kind == "parquet":
        pd.DataFrame(CODE).to_parquet(path)
    else:
        pd.DataFrame(CODE).to_csv(path, index=False)
    (ex,) = load(path)
    assert ex.meta["format"] == "code-preference-pairs"
    assert ex.prompt == [{"role": "user", "content": "Write add(a, b)."}]
    assert ex.responses == [CODE[0]["accepted"], CODE[0]["rejected"]] and ex.chosen == [0]


def test_code_preference_pairs_malformed(tmp_path: Path) -> None:
    rows = [*CODE, {"input": "x", "accepted": None, "rejected": "y"}]
    with pytest.raises(DataError) as e:
        load(_jsonl(tmp_path / "c.jsonl", rows))
    assert e.value.line == 2 and e.value.field == "accepted"
