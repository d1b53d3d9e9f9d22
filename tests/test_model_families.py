"""The model-family table: each family loads a tiny checkpoint of its real shape and scores
exactly as a hand-written forward of that shape (docs/families.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file

from family_models import (
    pair_lm_model,
    pairrm_model,
    remote_model,
    smollm_tokenizer,
    value_head_model,
)
from rewardkit.errors import SpecError
from rewardkit.models.checkpoint import inspect_checkpoint
from rewardkit.models.families import BY_NAME, FAMILIES, PAIR_MARKERS, pick_family
from rewardkit.models.loading import resolve_model
from rewardkit.registry import load_reward
from rewardkit.rewards.pairwise_model import AB_TEMPLATE, turn_context
from rewardkit.types import Capability, Query, assistant, user
from train_helpers import tiny_llama

QUERIES = [
    Query([user("What is 2 + 2?")], "It is 4."),
    Query(
        [
            {"role": "system", "content": "Be brief."},
            user("Name a colour."),
            assistant("Blue."),
            user("Another one?"),
        ],
        "Green, like grass in spring.",
    ),
    Query([user("Say hi")], "hi"),
]
FAST = {"progress": False}


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {
        "starling": value_head_model(root / "starling", "starling"),
        "ultrarm": value_head_model(root / "ultrarm", "ultrarm", seed=1),
        "beaver": value_head_model(root / "beaver", "beaver", seed=2),
        "eurus": remote_model(root / "eurus", "eurus"),
        "reward-token": remote_model(root / "reward_token", "reward-token"),
        "pairrm": pairrm_model(root / "pairrm"),
        "pair-lm": pair_lm_model(root / "pair_lm"),
        "classifier": tiny_llama(root / "classifier"),
    }


def chat_ids(tok, q: Query) -> list[int]:
    """The authors' input: the whole conversation through the chat template, tokenized once."""
    text = tok.apply_chat_template([*q.prompt, assistant(q.response)], tokenize=False)
    return tok(text, add_special_tokens=False)["input_ids"]


def llama_body(path, prefix: str):
    cfg = transformers.AutoConfig.from_pretrained(path)
    body = transformers.LlamaModel(cfg).eval()
    state = load_file(str(path / "model.safetensors"))
    body.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    return body, state


def test_the_table_picks_each_family_from_the_checkpoint(dirs, tmp_path):
    expected = {
        "starling": "value-head",
        "ultrarm": "value-head",
        "beaver": "value-head",
        "eurus": "remote-score",
        "reward-token": "reward-token",
        "pairrm": "pair-cross-encoder",
        "classifier": "sequence-classifier",
    }
    for key, family in expected.items():
        assert pick_family(inspect_checkpoint(str(dirs[key]))).name == family, key
    # A base LM keeps today's behaviour: a sequence classifier with a seeded fresh head.
    base = inspect_checkpoint(resolve_model("smollm2").source)
    assert pick_family(base).name == "sequence-classifier"
    # The RLHFlow shape is a plain causal LM: it must be named.
    assert pick_family(inspect_checkpoint(str(dirs["pair-lm"]))).name == "sequence-classifier"
    assert pick_family(inspect_checkpoint(str(dirs["pair-lm"])), "pair-lm").name == "pair-lm"
    # An unknown layout is an error naming what was found.
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text(
        json.dumps({"architectures": ["FooScorer"], "model_type": "x"})
    )
    with pytest.raises(SpecError, match=r"no model family.*FooScorer.*family=NAME"):
        pick_family(inspect_checkpoint(str(odd)))
    with pytest.raises(SpecError, match="unknown model family 'nope'"):
        pick_family(inspect_checkpoint(str(odd)), "nope")
    assert len(BY_NAME) == len(FAMILIES)


@pytest.mark.parametrize("shape", ["starling", "ultrarm", "beaver"])
def test_value_head_equals_hand_forward_in_every_layout(dirs, shape):
    path = dirs[shape]
    prefix, head = {
        "starling": ("transformer.", "v_head"),
        "ultrarm": ("model.", "regression_head"),
        "beaver": ("model.", "score_head"),
    }[shape]
    tok = smollm_tokenizer()
    body, state = llama_body(path, prefix)
    w, b = state[f"{head}.weight"], state.get(f"{head}.bias")
    with torch.no_grad():
        hand = []
        for q in QUERIES:
            h = body(torch.tensor([chat_ids(tok, q)])).last_hidden_state[0, -1]
            hand.append(float(h @ w[0] + (b[0] if b is not None else 0.0)))
    for layout in ("padded", "packed", "shared"):
        reward = load_reward(
            {
                "kind": "classifier",
                "arg": str(path),
                "layout": layout,
                "min_shared_prefix": 2,
                **FAST,
            }
        )
        assert reward.family.name == "value-head"
        np.testing.assert_allclose(reward.score(QUERIES), hand, atol=1e-4, err_msg=layout)


def test_remote_score_family_runs_the_checkpoints_own_code_only_when_trusted(dirs):
    path = dirs["eurus"]
    with pytest.raises(SpecError, match="trust_remote_code=true"):
        load_reward(f"classifier:{path}")
    reward = load_reward(f"classifier:{path}?trust_remote_code=true&progress=false")
    assert reward.family.name == "remote-score"
    tok = smollm_tokenizer()
    body, state = llama_body(path, "model.")
    with torch.no_grad():
        hand = [
            float(
                body(torch.tensor([chat_ids(tok, q)])).last_hidden_state[0, -1]
                @ state["regression_head.weight"][0]
            )
            for q in QUERIES
        ]
    np.testing.assert_allclose(reward.score(QUERIES), hand, atol=1e-4)
    # Its weights fit the value-head family too, read without running its code.
    named = load_reward(f"classifier:{path}?family=value-head&progress=false")
    np.testing.assert_allclose(named.score(QUERIES), hand, atol=1e-4)


def test_reward_token_family_equals_the_authors_get_score(dirs):
    path = dirs["reward-token"]
    reward = load_reward(f"classifier:{path}?trust_remote_code=true&progress=false")
    assert reward.family.name == "reward-token"
    model = transformers.AutoModel.from_pretrained(path, trust_remote_code=True).eval()
    tok = smollm_tokenizer()
    own = [model.get_score(tok, [*q.prompt, assistant(q.response)]) for q in QUERIES]
    body, state = llama_body(path, "model.")
    token = json.loads((path / "config.json").read_text())["reward_token_id"]
    with torch.no_grad():
        hand = [
            float(
                body(torch.tensor([[*chat_ids(tok, q), token]])).last_hidden_state[0, -1]
                @ state["v_head.weight"][0]
            )
            for q in QUERIES
        ]
    np.testing.assert_allclose(own, hand, atol=1e-5)
    np.testing.assert_allclose(reward.score(QUERIES), hand, atol=1e-4)


def _pairrm_hand(path, prompts, a, b) -> np.ndarray:
    """PairRM-hf's README: tokenize_pair, then DebertaV2PairRM.forward, written out."""
    tok = transformers.AutoTokenizer.from_pretrained(path)
    cfg = json.loads((path / "config.json").read_text())
    body = transformers.DebertaV2Model(transformers.DebertaV2Config.from_pretrained(path)).eval()
    state = load_file(str(path / "model.safetensors"))
    body.load_state_dict({k[17:]: v for k, v in state.items() if k.startswith("pretrained_model.")})
    w1, b1 = state["head_layer.1.weight"], state["head_layer.1.bias"]
    w2, b2 = state["head_layer.4.weight"], state["head_layer.4.bias"]

    def head(x):
        return torch.tanh(x @ w1.T + b1) @ w2.T + b2

    out = []
    for x, y1, y2 in zip(prompts, a, b, strict=True):
        src = tok.encode(PAIR_MARKERS[0] + x, max_length=1224, truncation=True)
        cand_max = (2048 - len(src)) // 2
        c1 = tok.encode(PAIR_MARKERS[1] + y1, max_length=cand_max, truncation=True)
        c2 = tok.encode(PAIR_MARKERS[2] + y2, max_length=cand_max, truncation=True)
        ids = torch.tensor([src + c1 + c2])
        with torch.no_grad():
            h = body(ids).last_hidden_state[0]
        pos = [
            ids[0].tolist().index(cfg[k])
            for k in ("source_prefix_id", "cand1_prefix_id", "cand2_prefix_id")
        ]
        left = head(torch.cat([h[pos[0]], h[pos[1]]]))
        right = head(torch.cat([h[pos[0]], h[pos[2]]]))
        out.append(float((left - right).mean()))
    return np.array(out)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


PAIRS = (
    ["What is 2 + 2?", "Name a colour.", "Say hi"],
    ["It is 4.", "Blue.", "hello there, friend"],
    ["Five.", "Green, like grass.", "hi"],
)


def test_pairrm_shape_equals_hand_forward_in_both_orders(dirs):
    path = dirs["pairrm"]
    reward = load_reward(f"classifier:{path}?progress=false")
    assert reward.family.name == "pair-cross-encoder" and reward.can(Capability.PAIRWISE)
    prompts, a, b = PAIRS
    fwd, rev = _pairrm_hand(path, prompts, a, b), _pairrm_hand(path, prompts, b, a)
    judged = reward.compare_many(prompts, a, b)
    np.testing.assert_allclose(judged.logit_forward, fwd, atol=1e-4)
    np.testing.assert_allclose(judged.logit_reverse, rev, atol=1e-4)
    np.testing.assert_allclose(judged.p, 0.5 * (_sigmoid(fwd) + _sigmoid(-rev)), atol=1e-5)


def test_pair_lm_shape_equals_the_rlhflow_procedure(dirs):
    path = dirs["pair-lm"]
    reward = load_reward(f"classifier:{path}?family=pair-lm&progress=false")
    assert reward.can(Capability.PAIRWISE)
    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path).eval()
    a_id, b_id = (
        tok.encode("A", add_special_tokens=False)[0],
        tok.encode("B", add_special_tokens=False)[0],
    )
    prompts, a, b = PAIRS
    expected = []
    for x, y1, y2 in zip(prompts, a, b, strict=True):
        context = turn_context([user(x)])
        probs = []
        for chosen in (0, 1):  # RLHFlow swaps the order to mitigate position bias
            ra, rb = (y1, y2) if chosen == 0 else (y2, y1)
            text = AB_TEMPLATE.format(context=context, response_a=ra, response_b=rb)
            rendered = tok.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
            ids = tok.encode(rendered.replace(tok.bos_token or "\0", ""), add_special_tokens=False)
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0, -1]
            la, lb = float(logits[a_id]), float(logits[b_id])
            z = np.exp(la) + np.exp(lb)
            probs.append(np.exp([la, lb][chosen]) / z)
        expected.append(np.mean(probs))
    for layout in ("padded", "shared"):
        r = load_reward(
            {"kind": "classifier", "arg": str(path), "family": "pair-lm", "layout": layout, **FAST}
        )
        np.testing.assert_allclose(r.compare_many(prompts, a, b).p, expected, atol=1e-5)
    # Pointwise fallback: P(response ≻ reference), NaN without a reference.
    q = [Query([user("Say hi")], "hi", reference="hello"), Query([user("x")], "y")]
    s = reward.score(q)
    assert np.isnan(s[1]) and s[0] == pytest.approx(
        reward.compare("Say hi", "hi", "hello"), abs=1e-6
    )


def test_a_pairwise_family_model_evaluates_rewardbench2_rows_as_a_judge(dirs):
    from rewardkit.evaluate.run import evaluate
    from rewardkit.types import Example

    reward = load_reward(f"classifier:{dirs['pairrm']}?progress=false")
    examples = [
        Example(f"e{i}", [user(p)], [a, b, c, d], [0], subset="Focus")
        for i, (p, a, b, c, d) in enumerate(
            [
                ("What is 2 + 2?", "4", "5", "22", "four hundred"),
                ("Name a colour.", "Blue.", "Seven.", "A chair.", "Yes."),
            ]
        )
    ]
    res = evaluate(examples, [reward], include_length_baseline=False, n_boot=20)
    assert res.settings["benchmark"] == "rewardbench2"
    # Best-of-4 by hand: the chosen response must beat each of the three others (P > 0.5).
    for ex, got in zip(examples, res.rewards[0].examples, strict=True):
        n = len(ex.responses) - 1
        p = reward.compare_many([ex.prompt] * n, [ex.responses[0]] * n, ex.responses[1:]).p
        assert got.outcome == (1.0 if (p > 0.5).all() else 0.0)
