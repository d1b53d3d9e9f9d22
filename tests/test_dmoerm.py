"""DMoERM (docs/methods/A5-dmoerm.md): the card's reduction of phase 3 to a linear head; tiny
capability experts trained by ``rewardkit train`` (one full, one LoRA) on rule labels, the
aggregator fitted over them and served as ``dmoerm:DIR`` (scores = the head on the experts' own
hidden states, BT accuracy above chance); a changed expert refused; routing by a column, by the
MiniLM router and to NaN; bad input refused with one line."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.train_helpers import categorized_pairs, tiny_cfg, tiny_llama, toy_pairs  # noqa: E402

from rewardkit.data.writer import write_jsonl  # noqa: E402
from rewardkit.errors import DataError, SpecError  # noqa: E402
from rewardkit.registry import load_reward  # noqa: E402
from rewardkit.rewards.dmoerm import Expert, aggregator, moe_aggregate  # noqa: E402
from rewardkit.train.dmoerm import DMoERMConfig, fit_aggregator  # noqa: E402
from rewardkit.types import Query, user  # noqa: E402


def test_card_reduction_to_a_linear_head():
    torch.manual_seed(0)
    c, d, n = 3, 8, 5
    head = aggregator(c * d, d)
    with torch.no_grad():
        head[0].weight.copy_(torch.cat([torch.eye(d)] * c, dim=1) / c)
        head[0].bias.zero_()
        head[1].weight.fill_(1.0)  # PReLU slope 1: the identity
    h = torch.randn(n, d)
    same = h[:, None, :].expand(n, c, d)  # identical experts
    linear = h @ head[2].weight[0] + head[2].bias[0]
    assert torch.allclose(moe_aggregate(head, same), linear, atol=1e-6)
    # (C, d) of one query, and any experts: W₁ = [I…I]/C reads their mean state
    assert torch.allclose(moe_aggregate(head, same[0]), linear[0], atol=1e-6)
    with torch.no_grad():
        head[1].weight.fill_(0.25)
    mixed = torch.randn(n, c, d)
    mean = torch.nn.functional.prelu(mixed.mean(1), torch.tensor([0.25]))
    want = mean @ head[2].weight[0] + head[2].bias[0]
    assert torch.allclose(moe_aggregate(head, mixed), want, atol=1e-6)


def by_length(examples):
    """Capability labels from a rule: the longer response is chosen (ties dropped)."""
    out = []
    for e in examples:
        a, b = (len(r) for r in e.responses)
        if a != b:
            out.append(replace(e, chosen=[0 if a > b else 1]))
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from rewardkit.train import train

    root = tmp_path_factory.mktemp("dmoerm")
    base = tiny_llama(root / "base")
    write_jsonl(toy_pairs(24), root / "facts.jsonl")
    write_jsonl(by_length(toy_pairs(24)), root / "length.jsonl")
    train(tiny_cfg(base, root / "facts", data=str(root / "facts.jsonl"), max_steps=8))
    train(tiny_cfg(base, root / "length", data=str(root / "length.jsonl"), max_steps=8, lora_r=4))
    table = {"chat": [root / "facts", root / "length"], "qa": [root / "facts"]}
    cfg = DMoERMConfig(steps=80, lr=3e-3)
    meta = fit_aggregator(categorized_pairs(), table, root / "model", cfg)
    return root, meta


def queries_of(examples):
    qs = []
    for e in examples:
        for q in e.queries():
            q.meta["category"] = e.meta["category"]
            qs.append(q)
    return qs


def own_hidden(directory: Path, q: Query) -> torch.Tensor:
    """The last non-pad token's final hidden state of the expert's own HF model on one
    unpadded row (the position ``LlamaForSequenceClassification`` reads its score at)."""
    import transformers

    row = Expert(directory).reward.encode_items([q])[0]
    model = transformers.AutoModelForSequenceClassification.from_pretrained(directory).eval()
    ids = torch.tensor([row.input_ids])
    with torch.no_grad():
        out = model(ids, output_hidden_states=True)
    pad = model.config.pad_token_id
    last = int((ids[0] != pad).nonzero().max())
    h = out.hidden_states[-1][0, last]
    assert torch.allclose(model.score(h), out.logits[0], atol=1e-5)  # where its head reads
    return h


def test_scores_are_the_head_on_the_experts_own_states(trained):
    from safetensors.torch import load_file

    root, meta = trained
    reward = load_reward(f"dmoerm:{root / 'model'}")
    exs = categorized_pairs()
    qs = queries_of(exs)
    got = reward.score_full(qs)
    assert got.stats["routed"] == {"chat": 24, "qa": 24}
    state = load_file(str(root / "model" / "dmoerm.safetensors"))
    for i in (0, 3):  # a qa query and a chat query
        cat = qs[i].meta["category"]
        entry = meta["categories"][cat]
        head = aggregator(entry["in_dim"], entry["inner"])
        p = f"{entry['index']}."
        head.load_state_dict({k[len(p) :]: v for k, v in state.items() if k.startswith(p)})
        h = torch.cat([own_hidden(Path(e["path"]), qs[i]) for e in entry["experts"]])
        with torch.no_grad():
            assert float(head(h[None])[0, 0]) == pytest.approx(got.scores[i], abs=1e-4)
    s = np.asarray(got.scores).reshape(-1, 2)
    chosen = np.array([e.chosen[0] for e in exs])
    acc = float((s[np.arange(len(exs)), chosen] > s[np.arange(len(exs)), 1 - chosen]).mean())
    assert acc >= 0.75 and meta["categories"]["chat"]["train_accuracy"] >= 0.75
    assert len(meta["categories"]["chat"]["experts"]) == 2
    assert set(meta["categories"]["chat"]["expert_accuracy"]) == {
        str((root / n).resolve()) for n in ("facts", "length")
    }


def test_routing_by_column_key_and_nan(trained):
    root, _ = trained
    reward = load_reward(f"dmoerm:{root / 'model'}")
    q = categorized_pairs()[0].queries()[0]
    as_qa, as_chat = replace(q, meta={"category": "qa"}), replace(q, meta={"category": "chat"})
    other, none = replace(q, meta={"category": "poetry"}), replace(q, meta={})
    s = reward.score([as_qa, as_chat, other, none])
    assert np.isfinite(s[:2]).all() and s[0] != s[1]  # two heads, two expert sets
    assert np.isnan(s[2:]).all()  # no experts for poetry, no category: no default to fall to
    assert [reward.route(x) for x in (as_qa, other, none)] == ["qa", None, None]
    # the rows without an expert are counted per category value, for `score`'s summary line
    stats = reward.score_full([as_qa, as_chat, other, none]).stats
    assert stats["unrouted"] == {"poetry": 1, "<no category>": 1}
    keyed = load_reward(f"dmoerm:{root / 'model'}?key=task")
    assert keyed.score([replace(q, meta={"task": "qa"})])[0] == pytest.approx(s[0], abs=1e-6)


def test_a_changed_expert_is_refused(trained, tmp_path):
    from safetensors.torch import load_file, save_file

    root, _ = trained
    expert = tmp_path / "expert"
    shutil.copytree(root / "facts", expert)
    fit_aggregator(toy_pairs(8), {"all": [expert]}, tmp_path / "m", DMoERMConfig(steps=5))
    reward = load_reward(f"dmoerm:{tmp_path / 'm'}")
    assert np.isfinite(reward.score([Query(prompt=[user("hi")], response="hello")])).all()
    weights = load_file(str(expert / "model.safetensors"))
    name = next(iter(weights))
    weights[name] = weights[name] + 0.01  # a retrained expert
    save_file(weights, str(expert / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(SpecError, match="changed since"):
        load_reward(f"dmoerm:{tmp_path / 'm'}")


ROUTER_DATA = [
    *(
        {"prompt": p, "category": "math"}
        for p in [
            "What is 17 times 23?",
            "Solve for x: 2x + 3 = 11.",
            "Compute the integral of x^2.",
            "How much is 144 divided by 12?",
            "What is the square root of 81?",
            "Add 345 and 678.",
            "Is 91 a prime number?",
            "Find the derivative of sin(x).",
        ]
    ),
    *(
        {"prompt": p, "category": "chat"}
        for p in [
            "Hi there, how are you today?",
            "Tell me about your favourite movie.",
            "I feel a bit lonely this evening.",
            "What should I cook for dinner with friends?",
            "Good morning! Any plans for the weekend?",
            "Can you recommend a good novel?",
            "My dog did something funny today.",
            "Let's just chat for a while.",
        ]
    ),
]


def test_minilm_router_routes_unlabelled_prompts(trained, tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    root, _ = trained
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROUTER_DATA))
    runner = CliRunner()
    r = runner.invoke(
        app,
        ["dmoerm", "route", "--data", str(tmp_path / "r.jsonl"), "--out", str(tmp_path / "router")],
    )
    assert r.exit_code == 0, r.output
    assert (
        json.JSONDecoder().raw_decode(r.output[r.output.index("{") :])[0]["train_accuracy"] == 1.0
    )
    pairs = [  # no category field: the router decides
        replace(e, prompt=[user(rec["prompt"])])
        for e, rec in zip(toy_pairs(len(ROUTER_DATA)), ROUTER_DATA, strict=True)
    ]
    write_jsonl(pairs, tmp_path / "p.jsonl")
    table = tmp_path / "experts.yaml"  # a table file: paths relative to it
    table.write_text(f"math: {os.path.relpath(root / 'length', tmp_path)}\n")
    r = runner.invoke(
        app,
        [
            "dmoerm",
            "fit",
            "--data",
            str(tmp_path / "p.jsonl"),
            "--out",
            str(tmp_path / "m"),
            "--expert",
            f"chat={root / 'facts'}",
            "--experts",
            str(table),
            "--router",
            str(tmp_path / "router"),
            "--default",
            "chat",
            "--steps",
            "10",
            "--inner",
            "8",
            "--weight-decay",
            "0.01",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "m" / "dmoerm.json").read_text())
    assert saved["categories"]["math"]["inner"] == 8 and saved["config"]["weight_decay"] == 0.01
    reward = load_reward(f"dmoerm:{tmp_path / 'm'}")
    math_q = Query(prompt=[user("What is 12 times 9?")], response="108")
    chat_q = Query(prompt=[user("Hello! How was your day?")], response="Lovely, thanks.")
    assert [reward.route(math_q), reward.route(chat_q)] == ["math", "chat"]
    assert reward.route("Compute 7 plus 5.") == "math"  # a prompt text routes too
    labelled_q = replace(math_q, meta={"category": "chat"})  # the column wins over the router
    assert reward.route(labelled_q) == "chat"
    assert np.isfinite(reward.score([math_q, chat_q])).all()


def test_bad_input_is_refused_in_one_line(trained, tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli import app

    root, _ = trained
    write_jsonl(toy_pairs(6), tmp_path / "p.jsonl")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    runner = CliRunner()
    fit = ["dmoerm", "fit", "--data", str(tmp_path / "p.jsonl"), "--out", str(tmp_path / "m")]
    cases = [
        (["--expert", "nodir"], "expected CATEGORY=DIR"),
        (["--expert", f"a={tmp_path / 'missing'}"], "no such model directory"),
        (["--expert", f"a={root / 'facts'}", "--expert", f"b={root / 'facts'}"], "no category"),
        (["--expert", f"a={root / 'facts'}", "--default", "b"], "has no experts"),
        ([], "give the experts"),
        (["--experts", str(tmp_path / "list.yaml")], "expected a mapping"),
    ]
    for extra, said in cases:
        r = runner.invoke(app, [*fit, *extra])
        assert r.exit_code == 2 and said in " ".join(r.output.split()), (extra, r.output)
    (tmp_path / "one.jsonl").write_text(json.dumps({"prompt": "hi", "category": "chat"}) + "\n")
    (tmp_path / "bad.jsonl").write_text(json.dumps({"prompt": 3, "category": "chat"}) + "\n")
    for data, said in (("one.jsonl", "two or more categories"), ("bad.jsonl", "line 1")):
        r = runner.invoke(
            app, ["dmoerm", "route", "--data", str(tmp_path / data), "--out", str(tmp_path / "r")]
        )
        assert r.exit_code == 2 and said in " ".join(r.output.split()), r.output
    with pytest.raises(SpecError, match="not a DMoERM model"):
        load_reward(f"dmoerm:{tmp_path}")
    with pytest.raises(SpecError, match="colour"):
        load_reward(f"dmoerm:{root / 'model'}?colour=red")
    with pytest.raises(SpecError, match="steps"):
        DMoERMConfig(steps=0)
    with pytest.raises(DataError, match="no training example"):
        fit_aggregator(
            toy_pairs(4),
            {"a": [root / "facts"], "b": [root / "facts"]},
            tmp_path / "n",
            default="a",
        )
