"""Stop 46, area s46more: the empty output paths of ``bon``, ``dmoerm`` and the research-method
verbs (``pal``, ``detect``, ``domain``, ``polar``), ``bon`` on a file without prompts
(docs/cli/bon.md, docs/cli/dmoerm.md), and ``is_dual_encoder`` deciding from local files
(docs/multimodal.md, "Training")."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_output import assert_empty_path_refused
from rewardkit.cli import app

runner = CliRunner()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A pair file (with categories) and a prompt file, outside the working directory."""
    pairs, prompts = tmp_path / "pairs.jsonl", tmp_path / "prompts.jsonl"
    rows = [{"prompt": f"q{i}", "chosen": "a b c", "rejected": "no", "category": f"c{i % 2}"} for i in range(4)]  # fmt: skip
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prompts.write_text(json.dumps({"prompt": "What is 2+2?", "answer": "4"}) + "\n")
    return {"d": pairs, "q": prompts, "m": tmp_path / "no-such-model"}


# -- 1. every output path of these verbs refuses '' (typer read it as the current directory) ----
EMPTY_OUT = [  # each line ends in the flag given as ''; {m}: a model that does not exist
    "bon --data {q} -r rule:length --policy {m} --out",
    "bon --data {q} -r rule:length --policy {m} --n 2 --out o.jsonl --pairs-out",
    "dmoerm route --data {d} --steps 1 --out",
    "dmoerm fit --data {d} --expert c0={m} --out",
    "pal personas --data {d} --out",
    "pal train --data {d} --steps 1 --out",
    "detect gsm8k --data {m} --out",
    "detect eval -r rule:length --data {d} --out",
    "detect tune --data {d} --steps 1 --out",
    "domain fit --data {d} --out",
    "polar pretrain --data {d} --steps 1 --out",
    "polar finetune {m} --data {d} --steps 1 --out",
]


@pytest.mark.parametrize("line", EMPTY_OUT)
def test_an_empty_output_path_is_refused_and_nothing_is_written(tmp_path, files, monkeypatch, line):
    # before: '' became '.', so `domain fit --out ''` fitted into the current directory and a
    # file output said "--out . is a directory" (a path the user never typed)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    args = [*line.format(**files).split(), ""]
    text = assert_empty_path_refused(runner.invoke(app, args), args, work)
    assert "no-such-model" not in text  # refused while parsing: no model was looked for


def _verb(line: str) -> str:
    """``dmoerm route`` of ``dmoerm route --data …`` (the words before the first option)."""
    return " ".join(itertools.takewhile(lambda w: w[0] not in "-{", line.split()))


def test_every_output_option_of_these_verbs_is_covered():
    # a new verb or output flag in these files must join EMPTY_OUT (or refuse '' some other way)
    import typer

    from rewardkit.cli import build_app

    root = typer.main.get_command(build_app()).commands
    covered = {(_verb(ln), ln.split()[-1]) for ln in EMPTY_OUT}
    found = set()
    for group in ("dmoerm", "pal", "detect", "domain", "polar"):
        for name, cmd in root[group].commands.items():
            found |= {(f"{group} {name}", o) for p in cmd.params for o in p.opts if o == "--out"}
    found |= {("bon", o) for p in root["bon"].params for o in p.opts if o in ("--out", "--pairs-out")}  # fmt: skip
    assert found == covered, found ^ covered


# -- 2. bon on a file that holds no prompts stops before any model loads ------------------------
@pytest.mark.parametrize(
    ("name", "text"),
    [("empty.jsonl", ""), ("blank.jsonl", "\n\n"), ("none.json", "[]"), ("header.csv", "prompt\n")],
)
def test_bon_on_a_file_without_prompts_exits_2_before_loading_a_model(tmp_path, name, text):
    data = tmp_path / name
    data.write_text(text)
    out, pairs = tmp_path / "bon.jsonl", tmp_path / "pairs.jsonl"
    args = ["bon", "--data", str(data), "-r", "rule:length", "--n", "2", "--no-progress"]
    args += ["--policy", str(tmp_path / "no-such-model"), "--out", str(out)]
    result = runner.invoke(app, [*args, "--pairs-out", str(pairs)])
    assert result.exit_code == 2, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    # before: "warning: … holds no prompts", then the policy loaded (SmolLM2 by default, 5 s),
    # and exit 0 with an empty --out and --pairs-out written
    assert len(errors) == 1, result.output
    assert f"{data}: holds no prompts" in errors[0], errors
    assert "no model loaded, nothing written" in errors[0], errors
    assert "no-such-model" not in result.output and '"prompts"' not in result.output
    assert not out.exists() and not pairs.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_bon_page_says_an_empty_prompt_file_stops():
    page = " ".join((Path(__file__).resolve().parents[1] / "docs/cli/bon.md").read_text().split())
    assert "must hold prompts" in page and "no model loads and nothing is written" in page
    assert "An empty prompt file is warned about" not in page


# -- 3. is_dual_encoder: local information first, no Hub retries -------------------------------
CLIP_CONFIG = {"model_type": "clip", "projection_dim": 512, "architectures": ["CLIPModel"]}
TEXT_CONFIG = {"model_type": "llama", "hidden_size": 64, "architectures": ["LlamaForCausalLM"]}


@pytest.fixture
def no_hub(monkeypatch) -> list[str]:
    """Names the Hub was asked about (config reads and downloads); every ask fails."""
    import huggingface_hub
    import transformers

    import rewardkit.models.loading as loading

    asked: list[str] = []

    def record(name, *a, **k):
        asked.append(str(name))
        raise OSError("no Hub here")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", record)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", record)
    monkeypatch.setattr(loading, "_hub_unreachable", lambda *a: asked.append("connect") or "down")
    return asked


def _folder(root: Path, name: str, config: object | None, raw: bytes | None = None) -> str:
    path = root / name
    path.mkdir()
    if config is not None:
        (path / "config.json").write_text(json.dumps(config))
    if raw is not None:
        (path / "config.json").write_bytes(raw)
    return str(path)


def test_a_local_folder_is_decided_by_its_config_json(tmp_path, no_hub):
    from rewardkit.multimodal.image_rm import is_dual_encoder

    assert is_dual_encoder(_folder(tmp_path, "clip", CLIP_CONFIG)) is True
    assert is_dual_encoder(_folder(tmp_path, "siglip", {"model_type": "siglip"})) is True
    assert is_dual_encoder(_folder(tmp_path, "llama", TEXT_CONFIG)) is False
    assert is_dual_encoder(_folder(tmp_path, "bare", None)) is False
    assert is_dual_encoder(_folder(tmp_path, "broken", None, raw=b"{not json")) is False
    assert (
        is_dual_encoder(_folder(tmp_path, "latin1", None, raw=b'{"model_type": "\xe9"}')) is False
    )
    assert is_dual_encoder(_folder(tmp_path, "list", ["clip"])) is False
    assert is_dual_encoder(_folder(tmp_path, "typed", {"model_type": ["clip"]})) is False
    saved = Path(_folder(tmp_path, "saved", None))
    (saved / "image_rm.json").write_text(json.dumps({"head": "mlp"}))
    assert is_dual_encoder(str(saved)) is True
    assert (
        is_dual_encoder("minilm") is False
        and is_dual_encoder(str(saved / "image_rm.json")) is False
    )
    assert no_hub == []  # local answers ask no Hub


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty local Hub cache; ``_cached(cache, repo, config)`` adds a snapshot to it."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("REWARDKIT_REVISION", raising=False)
    return cache


def _cached(cache: Path, repo: str, config: dict) -> None:
    root = cache / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    (root / "snapshots" / commit).mkdir(parents=True)
    (root / "snapshots" / commit / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("offline", [True, False])
def test_a_hub_id_in_the_local_cache_is_decided_from_it(hub_cache, monkeypatch, no_hub, offline):
    from huggingface_hub import constants

    from rewardkit.multimodal.image_rm import is_dual_encoder

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    _cached(hub_cache, "org/clipish", CLIP_CONFIG)
    _cached(hub_cache, "org/texty", TEXT_CONFIG)
    assert is_dual_encoder("org/clipish") is True
    assert is_dual_encoder("org/texty") is False
    assert no_hub == []  # a cached config answers, online or not


def test_offline_an_uncached_hub_id_is_not_looked_up(hub_cache, monkeypatch, no_hub):
    from huggingface_hub import constants

    from rewardkit.multimodal.image_rm import is_dual_encoder

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    # before: AutoConfig.from_pretrained('org/bogus') (0.7 s offline; 24 s of retries with no
    # network, when HF_HUB_OFFLINE is not set), and any error at all read as "not an image model"
    assert is_dual_encoder("org/bogus") is False
    assert is_dual_encoder("a/b/c") is False and is_dual_encoder("not an id!") is False
    assert no_hub == []


def test_online_an_uncached_hub_id_is_looked_up_once_without_retries(
    hub_cache, monkeypatch, no_hub
):
    from huggingface_hub import constants

    from rewardkit.multimodal.image_rm import is_dual_encoder

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert is_dual_encoder("org/bogus") is False
    assert no_hub == ["connect"]  # one connect test said "down": no download, no config read


def test_online_a_config_fetched_into_the_cache_decides(hub_cache, monkeypatch):
    from huggingface_hub import constants

    import rewardkit.models.loading as loading
    from rewardkit.multimodal.image_rm import is_dual_encoder

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    located: list[str] = []

    def fetch(name: str) -> None:  # what hf_hub_download leaves behind: a cached snapshot
        located.append(name)
        _cached(hub_cache, name, CLIP_CONFIG)

    monkeypatch.setattr(loading, "locate_hub_model", fetch)
    assert is_dual_encoder("org/fresh") is True
    assert is_dual_encoder("org/fresh") is True
    assert located == ["org/fresh"]  # the second answer came from the cache


def test_an_unexpected_error_is_not_read_as_a_text_model(hub_cache, monkeypatch):
    from huggingface_hub import constants

    import rewardkit.models.loading as loading
    from rewardkit.multimodal.image_rm import is_dual_encoder

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def broken(name: str) -> None:
        raise RuntimeError("a bug, not a missing model")

    monkeypatch.setattr(loading, "locate_hub_model", broken)
    with pytest.raises(RuntimeError, match="a bug"):  # before: every Exception meant False
        is_dual_encoder("org/anything")
