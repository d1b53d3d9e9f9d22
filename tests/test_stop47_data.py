"""Hostile data files a fresh probe of the readers found (stop 47): a gzip stream damaged
inside, numbers beyond a float's range, names that are lists, symlinked, unreadable and
broken entries of a data folder, compressed data under the wrong name, lone CR line ends, a
byte-order mark inside a file, JSON Lines named ``.csv``, a null first prompt, a name too long.
Each is a :class:`DataError` naming the file (and line), or read whole; never an internal error
or rows dropped silently (docs/data-formats.md, Sources and Validation errors)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rewardkit.cli import app
from rewardkit.data import load
from rewardkit.errors import DataError

runner = CliRunner()
PAIR = {"prompt": "Hi", "chosen": "Hello there", "rejected": "Go away"}
LINE = json.dumps(PAIR) + "\n"
BIG = 10**400  # beyond a float's range (about 1.8e308)


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def refused(path: Path | str, **kw: Any) -> DataError:
    with pytest.raises(DataError) as ei:
        load(path, **kw)
    return ei.value


def cli_line(path: Path | str) -> str:
    """``rewardkit data PATH``'s one-line error: exit 2, no traceback, no internal error."""
    result = runner.invoke(app, ["data", str(path)])
    assert result.exit_code == 2, result.output
    out = result.output.strip()
    assert "Traceback" not in out and "internal error" not in out and "\n" not in out
    return out


def damaged_gzip(tmp_path: Path) -> Path:
    """A .jsonl.gz whose deflate stream is garbled inside (zlib.error, not a CRC or EOF)."""
    raw = gzip.compress((LINE * 50).encode(), mtime=0)
    bad = raw[:20] + bytes(b ^ 0xFF for b in raw[20:40]) + raw[40:]
    return write(tmp_path, "d.jsonl.gz", bad)


# --- 1. a gzip stream damaged inside --------------------------------------------------------


def test_gzip_damaged_inside_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    p = damaged_gzip(tmp_path)  # was zlib.error: "a bug in rewardkit", exit 1
    assert refused(p).path == str(p) and "cannot read file" in str(refused(p))
    assert refused(p, on_error="skip").path == str(p)  # a file error is never skipped
    assert str(p) in cli_line(p)


# --- 2. integers beyond a float's range, 5,000-digit CSV numbers ----------------------------

WEBGPT = {
    "question": {"full_text": "Why is the sky blue?"},
    "answer_0": "Rayleigh scattering.",
    "score_0": BIG,
    "answer_1": "The ocean.",
    "score_1": -1.0,
}
JUDGELM = {"question_body": "Q?", "answer1_body": "a", "answer2_body": "b", "score": [BIG, 8]}
STACK = {
    "qid": 5,
    "question": "Reverse a list?",
    "answers": [
        {"answer_id": 6, "pm_score": BIG, "selected": False, "text": "loop"},
        {"answer_id": 7, "pm_score": 5, "selected": True, "text": "lst[::-1]"},
    ],
}
OASST = {
    "message_tree_id": "t1",
    "tree_state": "ready_for_export",
    "prompt": {
        "message_id": "t1",
        "text": "Why?",
        "role": "prompter",
        "replies": [
            {"message_id": "a1", "text": "A", "role": "assistant", "replies": [], "rank": BIG},
            {"message_id": "a2", "text": "B", "role": "assistant", "replies": [], "rank": 0},
        ],
    },
}


@pytest.mark.parametrize(
    ("rec", "field"),
    [
        (WEBGPT, "score_0"),
        (JUDGELM, "score"),
        (STACK, "answers[0].pm_score"),
        (OASST, "prompt.replies[0].rank"),
    ],
    ids=["webgpt", "judgelm", "stack-exchange", "oasst"],
)
def test_an_integer_beyond_float_range_is_a_located_error(
    tmp_path: Path, rec: dict, field: str
) -> None:
    # each was an OverflowError traceback ("int too large to convert to float")
    err = refused(write(tmp_path, "d.jsonl", json.dumps(rec) + "\n"))
    assert (err.line, err.field) == (1, field), str(err)
    assert "9" * 30 not in str(err) and "0" * 30 not in str(err)  # one short line


@pytest.mark.parametrize(
    ("rec", "key"),
    [
        ({"prompt": "Q", "responses": ["a", "b"], "ratings": [1.5, -BIG]}, "rating"),
        ({"prompt": "Q", "response": "R", "helpfulness": BIG}, "helpfulness"),
    ],
    ids=["ratings", "helpsteer2"],
)
def test_a_rating_beyond_float_range_reads_as_json_1e400_does(
    tmp_path: Path, rec: dict, key: str
) -> None:
    p = write(tmp_path, "d.jsonl", json.dumps(rec) + "\n")  # was an OverflowError traceback
    inf = [r[key] for r in load(p)[0].ratings if abs(r[key]) == float("inf")]
    as_text = json.dumps(rec).replace(str(BIG), "1e400")
    twin = [r[key] for r in load(write(tmp_path, "e.jsonl", as_text + "\n"))[0].ratings]
    assert inf and inf[0] in twin


def test_a_side_score_beyond_float_range_is_not_used(tmp_path: Path) -> None:
    rec = {**PAIR, "score_chosen": BIG, "score_rejected": 1}  # was an OverflowError traceback
    (ex,) = load(write(tmp_path, "d.jsonl", json.dumps(rec) + "\n"))
    assert ex.chosen == [0] and ex.meta["score_chosen"] == BIG


def test_a_csv_number_of_5000_digits_is_a_located_error(tmp_path: Path) -> None:
    head = "question,answer_0,score_0,answer_1,score_1\n"
    p = write(tmp_path, "w.csv", head + f"Why?,a,{'9' * 5000},b,-1\n")  # was a ValueError
    err = refused(p, format="webgpt")
    assert (err.line, err.field) == (2, "score_0") and "finite number" in err.reason


# --- 3. names that are lists (unhashable) ---------------------------------------------------


def test_a_list_where_a_model_or_role_name_belongs_is_a_located_error(tmp_path: Path) -> None:
    cuf = {
        "instruction": "Add two numbers.",
        "responses": [{"model": ["m1"], "response": "a-b"}, {"model": "m2", "response": "a+b"}],
        "annotations": [{"model": ["m1"], "rating": "2"}, {"model": "m2", "rating": "5"}],
    }
    err = refused(write(tmp_path, "c.jsonl", json.dumps(cuf) + "\n"), format="codeultrafeedback")
    assert err.field == "annotations[0].model" and "model name" in err.reason  # was TypeError
    tree = json.loads(json.dumps(OASST).replace(str(BIG), "1"))
    tree["prompt"]["role"] = ["prompter"]
    err = refused(write(tmp_path, "o.jsonl", json.dumps(tree) + "\n"), format="oasst")
    assert err.field == "prompt.role" and "prompter" in err.reason


# --- 4. data folders: symlinked subfolders, broken links, link loops, unreadable folders ----


def test_a_symlinked_subfolder_is_read(tmp_path: Path) -> None:
    write(tmp_path, "elsewhere/train/x.jsonl", LINE)
    write(tmp_path, "data/a.jsonl", LINE)
    (tmp_path / "data/linked").symlink_to(tmp_path / "elsewhere/train")
    (tmp_path / "data/self").symlink_to(".")  # a loop: each real folder is read once
    ids = [e.id for e in load(tmp_path / "data")]
    assert ids == ["a.jsonl:1", "linked/x.jsonl:1"]  # was ["a.jsonl:1"]: its rows dropped


@pytest.mark.parametrize(("target", "why"), [("gone.jsonl", "broken"), ("b.jsonl", "loop")])
def test_a_broken_link_or_link_loop_in_a_folder_is_named(
    tmp_path: Path, target: str, why: str
) -> None:
    write(tmp_path, "data/ok.jsonl", LINE)
    (tmp_path / "data/a.jsonl").symlink_to(target)
    if why == "loop":
        (tmp_path / "data/b.jsonl").symlink_to("a.jsonl")
    err = refused(tmp_path / "data")  # was: 1 example read (broken) / "no data files" (loop)
    assert err.path == str(tmp_path / "data/a.jsonl") and why in err.reason
    assert str(tmp_path / "data/a.jsonl") in cli_line(tmp_path / "data")


def test_a_broken_link_given_as_the_data_says_so(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").symlink_to("gone.jsonl")
    assert "broken symbolic link" in refused(tmp_path / "d.jsonl").reason  # was "no such file"


def test_an_unreadable_subfolder_is_an_error_not_skipped() -> None:
    root = Path(tempfile.mkdtemp(prefix="rk-s47-"))  # not under pytest's 0700 folder
    try:
        root.chmod(0o755)
        write(root, "a.jsonl", LINE)
        write(root, "sub/b.jsonl", LINE)
        (root / "sub").chmod(0)
        code = f"from rewardkit.data import load\nprint(len(load({str(root)!r})))"
        if os.geteuid() == 0:  # root reads anything: load as nobody
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv")
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        else:
            cmd = []
        proc = subprocess.run([*cmd, sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.returncode == 1, proc.stdout  # was exit 0 printing 1: sub/ dropped
        assert f"DataError: {root / 'sub'}: cannot read directory" in proc.stderr
    finally:
        (root / "sub").chmod(0o755)
        shutil.rmtree(root)


# --- 5. compressed data under the wrong name ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "said"),
    [
        ("d.jsonl", gzip.compress(LINE.encode()), "gzip-compressed data; decompress"),
        ("d.jsonl.gz", gzip.compress(gzip.compress(LINE.encode())), "holds gzip-compressed"),
        ("d.csv.gz", b"\x28\xb5\x2f\xfd" + bytes(20), "holds zstd-compressed data, not gzip"),
    ],
    ids=["gzip-named-jsonl", "gzip-in-gzip", "zstd-named-gz"],
)
def test_compressed_data_where_text_belongs_says_what_it_is(
    tmp_path: Path, name: str, data: bytes, said: str
) -> None:
    p = write(tmp_path, name, data)
    err = refused(p, on_error="skip")  # was a record error per line (skippable) or "not gzip"
    assert err.path == str(p) and said in err.reason, str(err)


def test_json_lines_named_csv_is_refused_not_read_as_a_header(tmp_path: Path) -> None:
    p = write(tmp_path, "d.csv", LINE)  # was 0 examples: the record read as the header row
    err = refused(p)
    assert err.line == 1 and "looks like JSON Lines" in err.reason
    assert "d.csv, line 1" in cli_line(p)


# --- 6. invisible causes of a bad line ------------------------------------------------------


def test_lone_cr_line_ends_are_named(tmp_path: Path) -> None:
    err = refused(write(tmp_path, "d.jsonl", LINE.replace("\n", "\r") * 2))
    assert err.line == 1 and "lone CR" in err.reason  # was only "Extra data (column 66)"
    head = "prompt,chosen,rejected\r"
    err = refused(write(tmp_path, "d.csv", head + "Hi,a,b\r"))
    assert "lone CR" in err.reason and "universal-newline" not in err.reason


def test_a_byte_order_mark_inside_a_jsonl_file_is_named(tmp_path: Path) -> None:
    p = write(tmp_path, "d.jsonl", LINE.encode() + b"\xef\xbb\xbf" + LINE.encode())
    err = refused(p)  # two files joined with cat; was "Expecting value (column 1)"
    assert err.line == 2 and "byte-order mark" in err.reason
    with pytest.warns(UserWarning, match="skipped 1 malformed"):
        assert len(load(p, on_error="skip")) == 1


def test_a_null_first_prompt_is_called_null_not_missing(tmp_path: Path) -> None:
    p = write(tmp_path, "d.jsonl", json.dumps({**PAIR, "prompt": None}) + "\n")
    err = refused(p)  # was "missing required field (fields found: 'prompt', …)" + format advice
    assert err.field == "prompt" and err.reason.startswith("required field is null")


def test_a_name_too_long_is_a_data_error(tmp_path: Path) -> None:
    p = tmp_path / ("x" * 300 + ".jsonl")
    assert "too long" in refused(p).reason  # was OSError from Path.exists


def test_an_hh_transcript_saved_with_windows_line_ends_reads_as_its_turns(tmp_path):
    """Before: ``\\r\\n\\r\\nAssistant:`` was no turn, and the row failed with "expected an
    assistant turn after a prompt shared with 'chosen'"."""
    import json as _json

    from rewardkit.data import load

    row = {
        "chosen": "\n\nHuman: Hi there\n\nAssistant: Hello!",
        "rejected": "\n\nHuman: Hi there\n\nAssistant: Go away.",
    }
    crlf = {k: v.replace("\n", "\r\n") for k, v in row.items()}
    (tmp_path / "lf.jsonl").write_text(_json.dumps(row) + "\n", encoding="utf-8")
    (tmp_path / "crlf.jsonl").write_text(_json.dumps(crlf) + "\n", encoding="utf-8")
    (lf,) = load(tmp_path / "lf.jsonl")
    (got,) = load(tmp_path / "crlf.jsonl")
    assert got.prompt == lf.prompt == [{"role": "user", "content": "Hi there"}]
    assert got.responses == lf.responses == ["Hello!", "Go away."]
