"""Multi-objective classifier heads: named objectives, weighted reduction, ArmoRM-style gating."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rewardkit import Query, load_reward
from rewardkit.rewards.classifier import objective_weight_vector, reduce_objectives

QUERIES = [
    Query([{"role": "user", "content": "Say hi."}], "Hi there!"),
    Query([{"role": "user", "content": "Say hi."}], "Go away."),
    Query([{"role": "user", "content": "What is 2+2?"}], "4"),
]
NAMES = ["helpfulness", "safety", "verbosity"]


def test_weight_vector_and_reduction_by_hand():
    w = objective_weight_vector(NAMES, "helpfulness:0.7, safety:0.3")
    np.testing.assert_array_equal(w, [0.7, 0.3, 0.0])
    assert list(objective_weight_vector(NAMES, {"verbosity": -1})) == [0, 0, -1]
    values = np.array([[1.0, 2.0, np.nan], [0.5, -1.0, 3.0]])
    # 0.7*1 + 0.3*2 = 1.3; 0.7*0.5 - 0.3 = 0.05; the NaN objective has weight 0 and is ignored
    np.testing.assert_allclose(reduce_objectives(values, w), [1.3, 0.05])
    with pytest.raises(ValueError, match="unknown objectives"):
        objective_weight_vector(NAMES, {"honesty": 1.0})
    with pytest.raises(ValueError, match="name:w"):
        objective_weight_vector(NAMES, "helpfulness=1")


def _tokenizer_dir() -> str:
    from rewardkit.models.loading import resolve_model

    return resolve_model("minilm").source


def _tiny_bert(tmp_path: Path, k: int, **extra) -> Path:
    import torch
    import transformers

    src = _tokenizer_dir()
    cfg = transformers.BertConfig(
        vocab_size=transformers.AutoTokenizer.from_pretrained(src).vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=k,
        id2label=dict(enumerate(NAMES[:k])),
        label2id={n: i for i, n in enumerate(NAMES[:k])},
        **extra,
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(cfg)
    out = tmp_path / "tiny"
    model.save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


def test_named_objectives_and_weighted_reduction(tmp_path):
    path = _tiny_bert(tmp_path, 3, objective_weights={"helpfulness": 1.0, "safety": 0.5})
    multi = load_reward(f"classifier:{path}?progress=false")
    assert multi.objectives == tuple(NAMES)
    full = multi.score(QUERIES)
    assert full.shape == (3, 3)

    # weights from the checkpoint's config
    from_config = load_reward(f"classifier:{path}?reduce=weighted&progress=false")
    assert from_config.objectives is None
    res = from_config.score_full(QUERIES)
    s = res.scores
    np.testing.assert_allclose(s, full[:, 0] + 0.5 * full[:, 1], atol=1e-5)
    np.testing.assert_allclose(np.column_stack(list(res.components.values())), full, atol=1e-6)

    # weights in the spec win and change the fingerprint
    given = load_reward(f"classifier:{path}?reduce=weighted&weights=verbosity:2&progress=false")
    np.testing.assert_allclose(given.score(QUERIES), 2 * full[:, 2], atol=1e-5)
    assert given.fingerprint() != from_config.fingerprint()

    plain = _tiny_bert(tmp_path / "b", 3)
    with pytest.raises(ValueError, match="objective_weights"):
        load_reward(f"classifier:{plain}?reduce=weighted")
    with pytest.raises(ValueError, match="neither 'score'"):
        load_reward(f"classifier:{plain}?reduce=gating&progress=false").score(QUERIES)


GATED_MODEL = '''
import torch
from dataclasses import dataclass
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.utils import ModelOutput


class GatedConfig(BertConfig):
    model_type = "gated-test-rm"


@dataclass
class GatedOutput(ModelOutput):
    logits: torch.Tensor = None
    gating_output: torch.Tensor = None


class GatedRM(BertPreTrainedModel):
    """ArmoRM's output shape: per-objective rewards and a per-row gating over them."""

    config_class = GatedConfig

    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config)
        self.rewards = torch.nn.Linear(config.hidden_size, config.num_labels)
        self.gate = torch.nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **kw):
        h = self.bert(input_ids, attention_mask=attention_mask,
                      token_type_ids=token_type_ids).last_hidden_state[:, 0]
        return GatedOutput(logits=self.rewards(h), gating_output=self.gate(h).softmax(-1))
'''


def test_gating_reduction_uses_the_models_gates(tmp_path):
    import torch
    import transformers

    src = _tokenizer_dir()
    out = tmp_path / "gated"
    out.mkdir()
    (out / "modeling_gated.py").write_text(textwrap.dedent(GATED_MODEL))
    import sys

    sys.path.insert(0, str(out))
    try:
        import modeling_gated as mg

        cfg = mg.GatedConfig(
            vocab_size=transformers.AutoTokenizer.from_pretrained(src).vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=3,
            id2label=dict(enumerate(NAMES)),
            label2id={n: i for i, n in enumerate(NAMES)},
            architectures=["GatedRM"],
        )
        torch.manual_seed(1)
        model = mg.GatedRM(cfg)
        model.save_pretrained(out)
    finally:
        sys.path.remove(str(out))
        sys.modules.pop("modeling_gated", None)
    conf = json.loads((out / "config.json").read_text())
    conf["auto_map"] = {
        "AutoConfig": "modeling_gated.GatedConfig",
        "AutoModelForSequenceClassification": "modeling_gated.GatedRM",
    }
    (out / "config.json").write_text(json.dumps(conf))
    transformers.AutoTokenizer.from_pretrained(src).save_pretrained(out)

    with pytest.raises(Exception, match="trust_remote_code"):
        load_reward(f"classifier:{out}?reduce=gating&progress=false")
    r = load_reward(f"classifier:{out}?reduce=gating&trust_remote_code=true&progress=false")
    res = r.score_full(QUERIES)
    s, objectives = res.scores, np.column_stack(list(res.components.values()))
    assert s.shape == (3,) and objectives.shape == (3, 3)

    # by hand: the same forward, Σ_k g_k r_k
    tok = transformers.AutoTokenizer.from_pretrained(out)
    m = transformers.AutoModelForSequenceClassification.from_pretrained(
        out, trust_remote_code=True
    ).eval()
    with torch.no_grad():
        for i, q in enumerate(QUERIES):
            enc = tok(q.prompt[0]["content"], q.response, return_tensors="pt")
            o = m(**enc)
            expected = float((o.gating_output * o.logits).sum())
            assert s[i] == pytest.approx(expected, abs=1e-5)
            np.testing.assert_allclose(objectives[i], o.logits[0].numpy(), atol=1e-5)
