"""LoRA / PEFT adapter folders (docs/families.md, "LoRA / PEFT adapter folders"): a reward
model's SEQ_CLS adapter scores as its hand-merged model, a DPO policy's CAUSAL_LM adapter scores
against its base, broken adapters are refused in one line, the cache keys on adapter and base,
and ``check-model`` names the adapter. Tiny random Llamas with the embedded SmolLM2 tokenizer."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from family_models import llama_config, smollm_tokenizer
from rewardkit.cli import app
from rewardkit.errors import MissingDependencyError, SpecError
from rewardkit.modelcheck.check import check_model
from rewardkit.registry import load_reward
from rewardkit.rewards.dpo import reference_name
from rewardkit.types import Query, user

peft = pytest.importorskip("peft")

QUERIES = [
    Query([user("What is 2 + 2?")], "It is 4."),
    Query([user("Name a colour.")], "Green, like grass in spring."),
    Query([user("Say hi")], "hi"),
]
TARGETS = ["q_proj", "v_proj", "down_proj"]
R, ALPHA = 4, 8


def load(spec: str, **options):
    return load_reward(spec, progress=False, **options)


def _base(path: Path, seed: int = 0, **extra) -> Path:
    tok = smollm_tokenizer()
    torch.manual_seed(seed)
    cfg = llama_config(tok, tie_word_embeddings=True, **extra)
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _adapter(path: Path, base: Path, task: str, seed: int = 1, head: bool = True) -> Path:
    """A LoRA adapter over ``base`` with random (non-zero) factors, saved by peft as TRL does;
    a SEQ_CLS one with its ``score`` head in modules_to_save (random too)."""
    torch.manual_seed(seed)
    if task == "SEQ_CLS":
        model = transformers.LlamaForSequenceClassification.from_pretrained(base, num_labels=1)
    else:
        model = transformers.LlamaForCausalLM.from_pretrained(base)
    saved = None if head else []
    config = peft.LoraConfig(
        r=R, lora_alpha=ALPHA, target_modules=TARGETS, task_type=task, modules_to_save=saved
    )
    wrapped = peft.get_peft_model(model, config)
    for name, param in wrapped.named_parameters():
        if "lora_B" in name or "modules_to_save" in name:
            torch.nn.init.normal_(param, std=0.3)
    wrapped.save_pretrained(path)
    if not head:  # peft keeps a classifier's head anyway: drop it from the file
        state = load_file(path / "adapter_model.safetensors")
        kept = {k: v for k, v in state.items() if "score" not in k}
        save_file(kept, str(path / "adapter_model.safetensors"))
    return path


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("peft")
    base = _base(root / "base")
    return {
        "root": root,
        "base": base,
        "seqcls": _adapter(root / "seqcls", base, "SEQ_CLS"),
        "causal": _adapter(root / "causal", base, "CAUSAL_LM", seed=2),
    }


def _hand_merged(base: Path, adapter: Path, cls, with_lora: bool = True, **kw):
    """The merged model by hand: W += (alpha / r) · B @ A on every adapted linear, and the
    saved head copied in (no peft involved)."""
    model = cls.from_pretrained(base, **kw).eval()
    state = load_file(adapter / "adapter_model.safetensors")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for key, a in state.items():
            name = key.removeprefix("base_model.model.")
            if ".lora_A." in name and with_lora:
                b = state[key.replace(".lora_A.", ".lora_B.")]
                params[name.replace(".lora_A.weight", ".weight")] += (ALPHA / R) * (b @ a)
            elif "lora_" not in name:
                params[name].copy_(state[key])
    return model


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_config(path: Path, **fields) -> None:
    config = json.loads((path / "adapter_config.json").read_text())
    config.update(fields)
    (path / "adapter_config.json").write_text(json.dumps(config))


# -- scoring ------------------------------------------------------------------------------------
def test_a_seq_cls_adapter_scores_as_the_hand_merged_models_forward(dirs):
    reward = load(f"classifier:{dirs['seqcls']}")
    scores = np.asarray(reward.score(QUERIES), dtype=np.float64)
    rows = reward.encode_items(QUERIES)
    cls = transformers.LlamaForSequenceClassification
    merged = _hand_merged(dirs["base"], dirs["seqcls"], cls, num_labels=1)
    unmerged = _hand_merged(dirs["base"], dirs["seqcls"], cls, with_lora=False, num_labels=1)
    with torch.no_grad():
        hand = [float(merged(torch.tensor([r.input_ids])).logits[0, 0]) for r in rows]
        head_only = [float(unmerged(torch.tensor([r.input_ids])).logits[0, 0]) for r in rows]
    assert np.abs(scores - hand).max() < 1e-5
    assert np.abs(scores - head_only).min() > 1e-3  # the LoRA factors changed every score
    # No tokenizer in the adapter folder: the base's (with its chat template) reads the rows.
    assert reward.use_chat_template and reward.tokenizer.chat_template
    note = reward.loaded.notes["adapter"]
    assert note["task_type"] == "SEQ_CLS" and note["r"] == R and note["base"] == str(dirs["base"])
    assert "random_init" not in reward.loaded.notes["head"]


def test_the_adapter_folders_own_tokenizer_wins_over_the_base(dirs, tmp_path):
    path = _copy(dirs["seqcls"], tmp_path / "with_tok")
    tok = smollm_tokenizer()
    tok.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    tok.save_pretrained(path)
    reward = load(f"classifier:{path}")
    assert reward.tokenizer.chat_template == tok.chat_template
    text = reward.tokenizer.decode(reward.encode_items(QUERIES[:1])[0].input_ids)
    assert text.startswith("[user] What is 2 + 2?")


def test_a_dpo_adapter_policy_is_scored_against_its_base(dirs, tmp_path):
    merged_dir = tmp_path / "merged"
    model = _hand_merged(dirs["base"], dirs["causal"], transformers.LlamaForCausalLM)
    model.save_pretrained(merged_dir)
    smollm_tokenizer().save_pretrained(merged_dir)
    adapter = load(f"dpo:{dirs['causal']}")  # no ref: the adapter's base is the reference
    assert adapter.ref is not None and adapter.reduce == "sum"
    by_hand = load(f"dpo:{merged_dir}?ref={dirs['base']}")
    got, want = adapter.score(QUERIES), by_hand.score(QUERIES)
    assert np.abs(got - want).max() < 1e-5 and np.abs(got).min() > 1e-4
    own = adapter.policy.lm.resolved.adapter  # ref=base names the same reference
    assert reference_name("base", own, "p") == reference_name(None, own, "p") == str(dirs["base"])
    # In the reference slot, and reference-free (ref=free) as reward-bench scores a policy.
    flipped = load(f"dpo:{dirs['base']}?ref={dirs['causal']}")
    assert np.abs(flipped.score(QUERIES) + want).max() < 1e-5
    free, plain = load(f"dpo:{dirs['causal']}?ref=free"), load(f"dpo:{merged_dir}")
    assert free.ref is None and np.abs(free.score(QUERIES) - plain.score(QUERIES)).max() < 1e-4


def test_a_hub_base_is_refused_and_base_option_points_at_the_folder(dirs, tmp_path):
    path = _copy(dirs["seqcls"], tmp_path / "hub_base")
    _edit_config(path, base_model_name_or_path="some-org/some-base-7b")
    with pytest.raises(SpecError) as err:
        load(f"classifier:{path}")
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "Hub id" in msg and "base=" in msg
    fixed = load(f"classifier:{path}?base={dirs['base']}")
    again = load(f"classifier:{dirs['seqcls']}")
    assert np.abs(fixed.score(QUERIES) - again.score(QUERIES)).max() < 1e-6
    causal = _copy(dirs["causal"], tmp_path / "hub_causal")
    _edit_config(causal, base_model_name_or_path="some-org/some-base-7b")
    with pytest.raises(SpecError, match="Hub id"):
        load(f"dpo:{causal}")
    dpo = load(f"dpo:{causal}?base={dirs['base']}")
    assert Path(dpo.ref.lm.resolved.source) == dirs["base"]
    # A relative base is found from the adapter folder too (the working directory is elsewhere).
    _edit_config(path, base_model_name_or_path=os.path.relpath(dirs["base"], path))
    assert load(f"classifier:{path}").loaded.notes["adapter"]["base"] == str(dirs["base"])


# -- refusals -----------------------------------------------------------------------------------
def _cut(path: Path) -> None:
    f = path / "adapter_model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _drop_lora_b(path: Path) -> None:
    f = path / "adapter_model.safetensors"
    state = load_file(f)
    state.pop(next(k for k in sorted(state) if "lora_B" in k))
    save_file(state, str(f))


@pytest.mark.parametrize(
    "adapter, break_it, spec, named",
    [
        (
            "seqcls",
            lambda p: _edit_config(p, base_model_name_or_path="/gone/base"),
            "",
            "not a folder",
        ),
        ("seqcls", lambda p: _edit_config(p, base_model_name_or_path=None), "", "names no base"),
        ("seqcls", lambda p: (p / "adapter_model.safetensors").unlink(), "", "no adapter weights"),
        ("seqcls", _cut, "", "cut short"),
        ("seqcls", lambda p: (p / "adapter_config.json").write_text("{"), "", "cut short or not"),
        ("seqcls", _drop_lora_b, "", "lacks 1 adapter tensor"),
        ("seqcls", None, "?base=WIDE", "lora_A.weight is [4, 32] in the adapter, [4, 64]"),
        ("seqcls", None, "?base=minilm", "another architecture"),
        ("causal", None, "", "CAUSAL_LM adapter (a policy's LoRA with no score head)"),
        ("seqcls", None, "dpo", "SEQ_CLS adapter (a reward model's LoRA"),
        ("nohead", None, "", "holds no score head"),
        ("seqcls", None, "?base=SELF", "is itself an adapter folder"),
    ],
)
def test_a_broken_adapter_is_refused_in_one_line_naming_folder_and_problem(
    dirs, tmp_path, adapter, break_it, spec, named
):
    if adapter == "nohead":
        path = _adapter(tmp_path / "nohead", dirs["base"], "SEQ_CLS", head=False)
    else:
        path = _copy(dirs[adapter], tmp_path / adapter)
    if break_it is not None:
        break_it(path)
    if "WIDE" in spec:
        spec = spec.replace("WIDE", str(_base(tmp_path / "wide", hidden_size=64)))
    spec = spec.replace("SELF", str(_copy(dirs["causal"], tmp_path / "other")))
    full = f"dpo:{path}" if spec == "dpo" else f"classifier:{path}{spec}"
    with pytest.raises(SpecError) as err:
        load(full)
    msg = str(err.value)
    assert named in msg and str(path) in msg and "\n" not in msg, msg


def test_base_option_and_ref_base_need_an_adapter(dirs):
    with pytest.raises(SpecError, match="whole model"):
        load(f"classifier:{dirs['base']}?base={dirs['base']}")
    with pytest.raises(SpecError, match="neither the policy"):
        load(f"dpo:{dirs['base']}?base={dirs['base']}")
    with pytest.raises(SpecError, match="ref=base is the base of a LoRA"):
        load(f"dpo:{dirs['base']}?ref=base")


def test_an_adapter_without_peft_installed_names_the_extra(dirs, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` raises ImportError
    for spec in (f"classifier:{dirs['seqcls']}", f"dpo:{dirs['causal']}"):
        with pytest.raises(MissingDependencyError) as err:
            load(spec)
        assert "rewardkit[train]" in str(err.value) and "\n" not in str(err.value)


# -- cache keys ---------------------------------------------------------------------------------
def test_the_cache_keys_on_the_adapter_weights_its_config_and_the_base(dirs, tmp_path):
    base = _copy(dirs["base"], tmp_path / "base")
    path = _copy(dirs["seqcls"], tmp_path / "rm")
    _edit_config(path, base_model_name_or_path=str(base))
    cache = str(tmp_path / "cache")

    def scores() -> tuple[np.ndarray, int]:
        run = load(f"classifier:{path}", cache_dir=cache).score_full(QUERIES)
        return np.asarray(run.scores), int(run.stats["cache_hits"])

    before, hits = scores()
    assert hits == 0 and scores()[1] == len(QUERIES)  # the same adapter: served from the cache
    shutil.rmtree(path)
    _adapter(path, base, "SEQ_CLS", seed=7)  # retrained adapter, same folder
    retrained, hits = scores()
    assert hits == 0 and np.abs(retrained - before).min() > 1e-4
    _edit_config(path, lora_alpha=2 * ALPHA)  # only the config changed
    scaled, hits = scores()
    assert hits == 0 and np.abs(scaled - retrained).min() > 1e-4
    shutil.rmtree(base)
    _base(base, seed=5)  # another base in the same folder, the adapter untouched
    rebased, hits = scores()
    assert hits == 0 and np.abs(rebased - scaled).min() > 1e-4


# -- check-model --------------------------------------------------------------------------------
def test_check_model_reports_an_adapter_over_its_base(dirs, tmp_path):
    found = check_model(str(dirs["seqcls"]), ("float32",))
    assert found.verdict in ("PASS", "WARN") and not found.problems, found.lines()
    assert found.adapter is not None and found.adapter["base"] == str(dirs["base"])
    line = next(x for x in found.lines() if x.startswith("  adapter:"))
    assert "LORA SEQ_CLS" in line and f"r={R}" in line and f"over base {dirs['base']}" in line
    assert not any("no trained score head" in w for w in found.warnings)
    hub = _copy(dirs["seqcls"], tmp_path / "hub")
    _edit_config(hub, base_model_name_or_path="some-org/some-base-7b")
    assert check_model(f"{hub}?base={dirs['base']}", ("float32",)).adapter["base"] == str(
        dirs["base"]
    )
    out = CliRunner().invoke(app, ["check-model", str(dirs["causal"])])
    assert out.exit_code == 2 and "CAUSAL_LM adapter" in out.output
    assert "Traceback" not in out.output
