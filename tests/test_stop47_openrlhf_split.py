"""OpenRLHF query splitting in linear time (stop 47, found by the serve fuzz round): each hostile
case runs in a subprocess with a deadline, because before the fix the regex held the GIL (no
in-process timeout stops it) and SIGTERM did not stop a server running it."""

from __future__ import annotations

import subprocess
import sys

import pytest

PAD = "<|image_pad|>"


def _split(query: str, prompt: str | None, timeout: float = 120) -> str:
    code = (
        "import json, sys; from rewardkit.data.openrlhf import split_query; "
        "q, p = json.load(sys.stdin); print(json.dumps(split_query(q, p)[1]))"
    )
    import json

    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps([query, prompt]),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-500:]
    return json.loads(done.stdout)


def test_adjacent_image_placeholders_do_not_backtrack_exponentially():
    """Before: 12 placeholders in a row against 34 in the query took 40 s; 20 against 60 (a
    736-byte /get_reward body) froze the server for good, /health included."""
    assert _split(PAD * 60 + "Y", PAD * 20 + "X", timeout=60) is None


@pytest.mark.parametrize(
    ("k", "n", "found"), [(1, 1, True), (3, 7, True), (2, 2, True), (3, 2, False)]
)
def test_a_run_of_placeholders_stands_for_at_least_as_many(k, n, found):
    prompt = f"<|vision_start|>{PAD * k}<|vision_end|>Describe it."
    query = f"<|vision_start|>{PAD * n}<|vision_end|>Describe it. A cat."
    assert _split(query, prompt) == (" A cat." if found else None)


def test_a_long_tail_of_end_markers_is_stripped_in_linear_time():
    """Before: ~18 s for 400,000 ``"</s> "`` (quadratic: a copy per marker); 2,000,000 took
    minutes."""
    assert _split("x" + "</s> " * 2_000_000, None, timeout=120) == "x"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("answer</s>", "answer"),
        ("answer </s>  <|im_end|>\n", "answer "),  # the space before the markers is the text's
        ("answer  ", "answer  "),  # no marker: nothing stripped
        ("</s></s>", ""),
        ("a</s>b", "a</s>b"),  # a marker inside the text stays
    ],
)
def test_strip_eos_keeps_its_meaning(text, want):
    from rewardkit.data.openrlhf import strip_eos

    assert strip_eos(text) == want
