"""The score cache's keys follow every input that changes a score (real files, tiny models).

A stale hit is the worst cache defect: a run reports scores for inputs it never scored. Each test
scores, changes one thing (weights rewritten in place with their time kept, a Hub model moved to
a new commit, a remote-code PRM's code, a processor folder, a database file...), and checks that
the cache no longer answers (or that the key moved) and that the scores equal a fresh run's.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from prm_helpers import tiny_llama_dir, word_tokenizer
from rewardkit import load_reward
from rewardkit.types import Query, stable_hash

QUERIES = [
    Query("What is 2+2?", "The answer is 4."),
    Query([{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}], "Hey."),
]
ENGINE = {"progress": False, "threads": 1}


@pytest.fixture(scope="module")
def two_classifiers(tmp_path_factory):
    """Two tiny Llama classifiers of one architecture (same file sizes), other weights."""
    root = tmp_path_factory.mktemp("cls42")
    tok = word_tokenizer(["What is 2+2?", "The answer is 4.", "Be terse.", "Hi", "Hey."])
    return tuple(tiny_llama_dir(root / n, tok, "seq-cls", seed=s) for n, s in (("a", 1), ("b", 7)))


def _scores(spec: str, cache: Path | None) -> tuple[np.ndarray, int, str]:
    engine = {**ENGINE, **({"cache_dir": str(cache)} if cache else {})}
    reward = load_reward(spec, engine_defaults=engine)
    full = reward.score_full(QUERIES)
    hits = int(full.stats.get("cache_hits", 0))
    out = (np.asarray(full.scores), hits, reward.fingerprint())
    del reward
    gc.collect()
    return out


def _rewrite_keeping_times(target: Path, source: Path) -> None:
    """``source``'s bytes into ``target`` in place (same inode), its times put back
    (what ``cp -p``, ``rsync -t`` or ``tar x`` leave)."""
    st = target.stat()
    with source.open("rb") as src, target.open("r+b") as dst:
        shutil.copyfileobj(src, dst)
        dst.truncate()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_mtime_ns == st.st_mtime_ns and target.stat().st_size == st.st_size


# -- a local model folder -------------------------------------------------------------------
def test_weights_rewritten_in_place_with_their_time_kept_are_scored_anew(two_classifiers, tmp_path):
    a, b = two_classifiers
    folder = tmp_path / "model"
    shutil.copytree(a, folder)
    spec = f"classifier:{folder}"
    first, hits, fp_a = _scores(spec, tmp_path / "cache")
    assert hits == 0
    _rewrite_keeping_times(folder / "model.safetensors", Path(b) / "model.safetensors")
    again, hits, fp_b = _scores(spec, tmp_path / "cache")
    fresh, _, _ = _scores(f"classifier:{b}", None)
    # before: the weight hash was memoised by (path, size, mtime): 2 stale hits of model a
    assert fp_b != fp_a and hits == 0
    np.testing.assert_allclose(again, fresh, atol=1e-5)
    assert not np.allclose(first, fresh, atol=1e-3)


def test_a_touched_weights_file_keeps_its_key(tmp_path):
    """The key is the content: a new mtime (same bytes) rehashes once and finds the same key."""
    from rewardkit.models.loading import resolve_model

    (tmp_path / "model.safetensors").write_bytes(os.urandom(3 << 20))
    first = resolve_model(str(tmp_path)).identity
    later = (tmp_path / "model.safetensors").stat().st_mtime_ns + 10**9
    os.utime(tmp_path / "model.safetensors", ns=(later, later))
    assert resolve_model(str(tmp_path)).identity == first


def test_an_adapter_rewritten_in_place_with_its_time_kept_moves_the_key(tmp_path):
    from rewardkit.models.loading import resolve_model

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text('{"model_type": "llama"}')
    (base / "model.safetensors").write_bytes(b"base weights")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    import torch
    from safetensors.torch import save_file

    save_file({"lora_A": torch.zeros(64, 8)}, adapter / "adapter_model.safetensors")
    first = resolve_model(str(adapter)).identity
    save_file({"lora_A": torch.ones(64, 8)}, tmp_path / "retrained")
    _rewrite_keeping_times(adapter / "adapter_model.safetensors", tmp_path / "retrained")
    assert resolve_model(str(adapter)).identity != first


def test_a_tiktoken_vocabulary_is_part_of_the_key(tmp_path):
    """Remote-code tokenizers (Qwen-7B's qwen.tiktoken) keep their vocabulary in *.tiktoken."""
    from rewardkit.models.loading import resolve_model

    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "qwen.tiktoken").write_text("IQ== 0\nIg== 1\n")
    first = resolve_model(str(tmp_path)).identity
    (tmp_path / "qwen.tiktoken").write_text("IQ== 1\nIg== 0\n")
    assert resolve_model(str(tmp_path)).identity != first


# -- a Hub id: the snapshot it loads --------------------------------------------------------
def _fake_hub(root: Path, name: str, commits: dict[str, Path]) -> Path:
    repo = root / ("models--" + name.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    for commit, folder in commits.items():
        shutil.copytree(folder, repo / "snapshots" / commit)
    return repo


def test_a_hub_model_moved_to_a_new_commit_moves_the_key(two_classifiers, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from rewardkit.models.loading import resolve_model

    a, b = two_classifiers
    repo = _fake_hub(tmp_path / "hub", "org/tiny", {"a" * 40: Path(a), "b" * 40: Path(b)})
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv("REWARDKIT_REVISION", raising=False)
    (repo / "refs" / "main").write_text("a" * 40)
    first = resolve_model("org/tiny").identity
    (repo / "refs" / "main").write_text("b" * 40)  # `huggingface-cli download` of an update
    second = resolve_model("org/tiny").identity
    # before: {"model": "org/tiny", "revision": None} both times (2 stale hits in the probe)
    assert first != second
    assert first["commit"] == "a" * 40 and second["commit"] == "b" * 40
    # online with the Hub out of reach: the local cache's ref still names the snapshot
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    assert resolve_model("org/tiny").identity == second


# -- PRM: its own code, and meta["steps"] -----------------------------------------------------
PRM_WORDS = ["What is 3 + 4 ?", "Step 1 : 3 + 4 = 7 .", "Step 2 : The answer is 7 ."]
PRM_CODE = """from transformers import LlamaForTokenClassification
SCALE = {scale}
class ScaledPRMForTokenClassification(LlamaForTokenClassification):
    def forward(self, *a, **k):
        out = super().forward(*a, **k)
        out.logits = out.logits * SCALE
        return out
"""


@pytest.fixture
def remote_code_prm(tmp_path):
    folder = tiny_llama_dir(tmp_path / "prm_rc", word_tokenizer(PRM_WORDS), "token-cls", seed=1)
    (folder / "modeling_scaled.py").write_text(PRM_CODE.format(scale=1.0))
    cfg = json.loads((folder / "config.json").read_text())
    cfg["architectures"] = ["ScaledPRMForTokenClassification"]
    cfg["auto_map"] = {
        "AutoModelForTokenClassification": "modeling_scaled.ScaledPRMForTokenClassification"
    }
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_a_remote_code_prm_whose_code_changed_is_scored_anew(remote_code_prm, tmp_path):
    spec = f"prm:{remote_code_prm}?trust_remote_code=true&convention=qwen"
    q = [Query(PRM_WORDS[0], "Step 1 : 3 + 4 = 7 .\n\nStep 2 : The answer is 7 .")]
    cache = {"cache_dir": str(tmp_path / "cache"), **ENGINE}
    first = load_reward(spec, engine_defaults=cache)
    assert first.score_full(q).stats["cache_hits"] == 0
    fp = first.fingerprint()
    (remote_code_prm / "modeling_scaled.py").write_text(PRM_CODE.format(scale=3.0))
    second = load_reward(spec, engine_defaults=cache)
    # before: same fingerprint, 1 cached (stale) step score served
    assert second.fingerprint() != fp
    assert second.score_full(q).stats["cache_hits"] == 0


def test_a_prm_reading_meta_steps_keys_on_meta(tmp_path):
    folder = tiny_llama_dir(tmp_path / "prm", word_tokenizer(PRM_WORDS), "token-cls", seed=1)
    reward = load_reward(f"prm:{folder}?convention=qwen", engine_defaults=ENGINE)
    text = "Step 1 : 3 + 4 = 7 .\nStep 2 : The answer is 7 ."
    split = Query(PRM_WORDS[0], text)
    given = Query(PRM_WORDS[0], text, meta={"steps": [text]})  # one step, as the data says
    a, b = reward.score([split, given])
    assert a != pytest.approx(b, abs=1e-4)  # meta["steps"] changes the score...
    # ...so it must change the key the server and Ray cache this reward's scores under
    assert split.key(reward.uses_meta) != given.key(reward.uses_meta)


# -- image-rm: a processor from another folder -----------------------------------------------
def test_an_image_rm_processor_folder_edited_moves_the_key(tmp_path):
    from mm_helpers import tiny_clip

    model = tiny_clip(tmp_path / "clip", seed=0)
    proc = Path(tiny_clip(tmp_path / "proc", seed=1))
    spec = f"image-rm:{model}?processor={proc}"
    first = load_reward(spec, engine_defaults=ENGINE).fingerprint()
    cfg = json.loads((proc / "processor_config.json").read_text())
    cfg["image_processor"]["image_mean"] = [0.0, 0.0, 0.0]  # other pixels reach the model
    (proc / "processor_config.json").write_text(json.dumps(cfg))
    # before: the identity held the processor's path only
    assert load_reward(spec, engine_defaults=ENGINE).fingerprint() != first


# -- the query key ----------------------------------------------------------------------------
def test_numpy_references_hash_exactly():
    big = np.arange(2000)
    other = big.copy()
    other[1000] = -5  # numpy's str() shows "0 1 2 ... 1997 1998 1999" for both
    assert Query("p", "r", reference=big).key() != Query("p", "r", reference=other).key()
    near = np.array([0.1234567890])
    assert stable_hash(near) != stable_hash(np.array([0.1234567899]))  # str() rounds to 8
    assert stable_hash({"tests": big}) != stable_hash({"tests": other})
    assert stable_hash(big) == stable_hash(np.arange(2000))  # still stable


# -- rule:sql: the database file ---------------------------------------------------------------
def _db(path: Path, value: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        db.execute("DELETE FROM t")
        db.execute("INSERT INTO t VALUES (?)", (value,))
    db.close()


def test_a_sql_database_edited_in_place_moves_the_key(tmp_path):
    db = tmp_path / "d.sqlite"
    _db(db, 1)
    q = [Query("x?", "SELECT 1", reference="SELECT x FROM t")]
    first = load_reward(f"rule:sql?db={db}")
    fp, before = first.fingerprint(), first.score(q)[0]
    size = db.stat().st_size
    _db(db, 2)  # edited in place: same path, same size
    assert db.stat().st_size == size
    second = load_reward(f"rule:sql?db={db}")
    assert (before, second.score(q)[0]) == (1.0, 0.0)
    assert second.fingerprint() != fp  # before: the identity held the path only


def test_a_sql_root_whose_database_changed_moves_the_key(tmp_path):
    root = tmp_path / "dbs"
    (root / "shop").mkdir(parents=True)
    _db(root / "shop" / "shop.sqlite", 1)
    fp = load_reward(f"rule:sql?db_root={root}").fingerprint()
    assert load_reward(f"rule:sql?db_root={root}").fingerprint() == fp  # stable
    _db(root / "shop" / "shop.sqlite", 2)
    assert load_reward(f"rule:sql?db_root={root}").fingerprint() != fp
