"""Round 3: image rewards through the TRL adapter, ``eval --on-error skip`` reading a bad image
once, MMRB2 text answers that end in ``.png``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mm_helpers import solid_png, tiny_clip
from rewardkit.content import image_part
from rewardkit.integrations.trl import reward_func
from rewardkit.registry import load_reward
from rewardkit.types import Query, user


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> str:
    return tiny_clip(tmp_path_factory.mktemp("clip") / "clip")


@pytest.fixture(scope="module")
def pngs(tmp_path_factory) -> list[str]:
    d = tmp_path_factory.mktemp("img")
    return [solid_png(d / "red.png", (220, 20, 20)), solid_png(d / "blue.png", (20, 20, 220))]


def _trl_kwargs(n: int, **columns) -> dict:
    """What GRPOTrainer._calculate_rewards adds to prompts/completions (TRL 1.x)."""
    logged: dict = {}
    return dict(
        completion_ids=[[1, 2]] * n,
        trainer_state=None,
        log_extra=lambda *a, **k: None,
        log_metric=lambda k, v: logged.setdefault(k, v),
        **columns,
    )


def _direct(clip_dir: str, pngs: list[str]) -> np.ndarray:
    reward = load_reward(f"clip:{clip_dir}", progress=False)
    return reward.score(
        [Query([user([image_part(p), {"type": "text", "text": "Describe."}])], "red") for p in pngs]
    )


def test_trl_filled_image_parts_reach_clip(clip_dir, pngs) -> None:
    """TRL 1.x: prompts hold filled image parts (PIL), the ``image`` column the same images."""
    pils = [Image.open(p) for p in pngs]
    prompts = [
        [
            {
                "role": "user",
                "content": [{"type": "image", "image": im}, {"type": "text", "text": "Describe."}],
            }
        ]
        for im in pils
    ]
    completions = [[{"role": "assistant", "content": "red"}]] * 2
    got = reward_func(f"clip:{clip_dir}")(
        prompts=prompts, completions=completions, **_trl_kwargs(2, image=pils)
    )
    assert None not in got  # before: no image reached clip: [None, None]
    assert got == pytest.approx(_direct(clip_dir, pngs).tolist(), abs=1e-4)
    assert got[0] != pytest.approx(got[1], abs=1e-6)  # each prompt's own image


@pytest.mark.parametrize("column", ["image", "images"])
def test_trl_placeholders_filled_from_the_image_column(clip_dir, pngs, column) -> None:
    """Older TRL: ``{"type": "image"}`` placeholders, images only in the column."""
    pils = [Image.open(p) for p in pngs]
    prompts = [
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}]
        for _ in pils
    ]
    values = pils if column == "image" else [[im] for im in pils]
    fn = reward_func(f"clip:{clip_dir}", asynchronous=False)
    got = fn(prompts=prompts, completions=["red", "red"], **_trl_kwargs(2, **{column: values}))
    assert got == pytest.approx(_direct(clip_dir, pngs).tolist(), abs=1e-4)
    # a dataset prompt still in text form gets the column image before its text, as TRL does
    plain = [[{"role": "user", "content": "Describe."}]] * 2
    got2 = fn(prompts=plain, completions=["red", "red"], **_trl_kwargs(2, **{column: values}))
    assert got2 == pytest.approx(got, abs=1e-6)


def test_trl_placeholder_without_image_is_refused(clip_dir) -> None:
    prompts = [
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}]
    ]
    fn = reward_func(f"clip:{clip_dir}")
    with pytest.raises(
        ValueError, match=r"prompts\[0\]\[0\]\.content\[0\] is an image placeholder"
    ):
        fn(prompts=prompts, completions=["red"], **_trl_kwargs(1))
    with pytest.raises(
        ValueError, match=r"prompts\[0\] has 1 image placeholder\(s\) but TRL passed 2"
    ):
        fn(prompts=prompts, completions=["red"], **_trl_kwargs(1, images=[["a.png", "b.png"]]))


def test_text_reward_gets_text_as_before(pngs) -> None:
    """A text-only reward still sees the prompt's text, the images dropped."""
    pil = Image.open(pngs[0])
    prompts = [
        [
            {
                "role": "user",
                "content": [{"type": "image", "image": pil}, {"type": "text", "text": "Describe."}],
            }
        ],
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}],
    ]
    fn = reward_func("rule:length")
    qs = fn.queries(prompts, ["red", "blue!"], _trl_kwargs(2, image=[pil, pil]))
    assert [q.prompt for q in qs] == [[{"role": "user", "content": "Describe."}]] * 2
    got = fn(prompts=prompts, completions=["red", "blue!"], **_trl_kwargs(2, image=[pil, pil]))
    want = load_reward("rule:length").score(
        [Query([user("Describe.")], r) for r in ("red", "blue!")]
    )
    assert got == pytest.approx(want.tolist())


def test_trl_images_reach_a_vlm_judge(tmp_path, pngs) -> None:
    """``vlm-judge:`` (a tiny Llava) as a TRL reward scores what it scores given the images."""
    from test_mm_vlm_judge import tiny_llava

    vlm = tiny_llava(tmp_path / "llava")
    pils = [Image.open(p) for p in pngs]
    prompts = [
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Colour?"}]}]
        for _ in pils
    ]
    judge = load_reward(f"vlm-judge:{vlm}", progress=False)
    got = reward_func(judge)(
        prompts=prompts, completions=["Red.", "Red."], **_trl_kwargs(2, image=pils)
    )
    want = judge.score(
        [Query([user([image_part(p), {"type": "text", "text": "Colour?"}])], "Red.") for p in pngs]
    )
    assert got == pytest.approx(want.tolist(), abs=1e-4)
    text_only = judge.score([Query([user("Colour?")], "Red.")])[0]
    assert got[0] != pytest.approx(float(text_only), abs=1e-6)  # before: the image was dropped


# -- MMRB2: a text answer ending in .png is text ------------------------------------------------
def test_mmrb2_text_answer_ending_in_png_is_text(tmp_path, pngs) -> None:
    from rewardkit.data import load

    rows = [
        {
            "pair_id": "r1",
            "task": "reasoning",
            "prompt_content": [["image", pngs[0]], ["text", "Where is the plot saved?"]],
            "response_a": "The file is saved as output.png",
            "response_b": "It was not saved.",
            "chosen": "A",
        },
        {  # the authors' release layout: response_content parts
            "pair_id": "t1",
            "task": "text-to-image",
            "prompt_content": [["text", "a red square"]],
            "response_a": {"response_content": [["image", pngs[0]]]},
            "response_b": pngs[1],  # rewardkit's shorthand: one bare path
            "chosen": "A",
        },
    ]
    path = tmp_path / "mmrb2.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    a, b = load(str(path))  # before: 'image file not found: The file is saved as output.png'
    assert a.responses == ["The file is saved as output.png", "It was not saved."]
    assert [r[0]["image"].path for r in b.responses] == pngs


# -- eval --on-error skip: a bad image costs one failed read, scoring runs once -----------------
def _serve(files: dict[str, bytes], hits: dict[str, int]):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits[self.path] = hits.get(self.path, 0) + 1
            body = files.get(self.path)
            self.send_response(404 if body is None else 200)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_skip_reads_each_bad_image_once_and_scores_once(tmp_path, clip_dir, pngs) -> None:
    from pathlib import Path

    from typer.testing import CliRunner

    from rewardkit.cli import app
    from rewardkit.data import load
    from rewardkit.evaluate import evaluate
    from rewardkit.evaluate.multimodal import skip_unreadable

    raw = bytearray(Path(solid_png(tmp_path / "d.png", (9, 9, 9), noise=60)).read_bytes())
    raw[40:200] = b"\0" * 160  # damaged inside, its PNG ending intact: found only by decoding
    (tmp_path / "damaged.png").write_bytes(bytes(raw))
    hits: dict[str, int] = {}
    files = {"/good.png": Path(pngs[0]).read_bytes(), "/page.png": b"<html>moved</html>"}
    server = _serve(files, hits)
    url = f"http://127.0.0.1:{server.server_port}"
    rows = [
        {"prompt": "red", "image_a": f"{url}/good.png", "image_b": pngs[1], "label": 0},
        {"prompt": "red", "image_a": pngs[0], "image_b": f"{url}/gone1.png", "label": 0},
        {"prompt": "red", "image_a": f"{url}/gone2.png", "image_b": pngs[1], "label": 0},
        {"prompt": "red", "image_a": f"{url}/page.png", "image_b": pngs[1], "label": 0},
        {"prompt": "red", "image_a": str(tmp_path / "damaged.png"), "image_b": pngs[1], "label": 0},
        {"prompt": "blue", "image_a": pngs[1], "image_b": pngs[0], "label": 0},
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    try:
        out = tmp_path / "out"
        args = ["eval", "-r", f"clip:{clip_dir}", "--data", str(data), "--out", str(out)]
        result = CliRunner().invoke(app, [*args, "--on-error", "skip", "--no-progress"])
        assert result.exit_code == 0, result.output
        # before: the page was downloaded twice (hash, then scoring); bad URLs once, good twice
        assert {k: v for k, v in hits.items() if k != "/good.png"} == {
            "/gone1.png": 1,
            "/gone2.png": 1,
            "/page.png": 1,
        }
        assert hits["/good.png"] <= 2
        report = json.loads((out / "report.json").read_text())
        assert report["dataset"]["load_skipped"]["n"] == 4
        first = report["dataset"]["load_skipped"]["first"]
        assert first.startswith(f"{data}, line 2, field 'image_b': cannot download image")
        assert report["settings"]["data"]["n_examples"] == 2
        # the same run in process: scoring runs once (before: once per bad URL, plus one)
        examples = load(str(data), on_error="skip")
        reward = load_reward(f"clip:{clip_dir}", progress=False)
        passes: list[int] = []
        skipped: list = []

        def run(kept: list) -> object:
            passes.append(len(kept))
            return evaluate(kept, [reward], n_boot=10)

        with pytest.warns(UserWarning, match="skipped 4 record"):
            skip_unreadable(run, examples, skipped)
        assert passes == [2]
        reasons = [e.reason for e in skipped]
        assert [r.split(": ")[0] for r in reasons] == [
            f"cannot download image {url}/gone1.png",
            f"cannot download image {url}/gone2.png",
            f"cannot decode image {url}/page.png",
            f"cannot decode image {tmp_path / 'damaged.png'}",
        ]
        assert [str(e).split(",")[1] for e in skipped] == [
            " line 2",
            " line 3",
            " line 4",
            " line 5",
        ]
    finally:
        server.shutdown()
