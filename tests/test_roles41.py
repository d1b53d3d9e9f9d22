"""Message roles under real chat templates (docs/families.md, "Roles under a chat template").

``developer`` (OpenAI's newer name for the system turn) is rendered as ``system`` by templates
that have no such role, and kept by those that name it (gpt-oss, Gemma 4); a template that refuses
a system turn (Gemma 2) gets its text at the start of the first user turn, as Gemma 3's own
template does; what a template still refuses is a DataError naming the model, the roles and the
template's message. The templates are the real ones TRL ships (``trl/chat_templates``), over the
embedded SmolLM2 tokenizer; the models are tiny random ones built in ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import transformers
from jinja2.exceptions import TemplateError

from family_models import smollm_tokenizer
from rewardkit.engine.encoding import encode_chat, render_slots
from rewardkit.errors import DataError
from rewardkit.models.chat_roles import knows_developer, render_chat, template_roles
from rewardkit.registry import load_reward
from rewardkit.rewards.judges.template import DEFAULT_SYSTEM
from rewardkit.types import Query
from train_helpers import tiny_llama

TEMPLATES = Path(pytest.importorskip("trl").__file__).parent / "chat_templates"
SYS = "Answer in French, in one word."
DEV = [{"role": "developer", "content": SYS}, {"role": "user", "content": "Say hi"}]
AS_SYSTEM = [{"role": "system", "content": SYS}, {"role": "user", "content": "Say hi"}]


def template(name: str) -> str:
    return (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tok():
    return smollm_tokenizer()


def with_template(tok, name: str):
    out = transformers.AutoTokenizer.from_pretrained(tok.name_or_path)
    if name != "smollm2":
        out.chat_template = template(name)
    return out


def raw(tok, messages, gen=True):
    """The template applied as is (what rewardkit rendered before)."""
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)


# SmolLM2 and Llama 3.1 wrote an unknown "developer" header (after SmolLM2's default system
# turn); Qwen 2.5/3 and Phi-3 dropped the text; Gemma 3 and Qwen 3.6 raised.
@pytest.mark.parametrize(
    ("name", "before"),
    [
        ("smollm2", "header"),
        ("llama3_1", "header"),
        ("qwen2_5", "dropped"),
        ("qwen3", "dropped"),
        ("phi3", "dropped"),
        ("gemma3", "raised"),
        ("qwen3_6", "raised"),
    ],
)
def test_developer_renders_as_system_where_the_template_has_no_such_role(tok, name, before):
    t = with_template(tok, name)
    assert not knows_developer(t.chat_template)
    try:
        old = raw(t, DEV)
        seen = "header" if "developer" in old else "dropped" if SYS not in old else "?"
    except TemplateError:
        seen = "raised"
    assert seen == before
    new = render_chat(t, DEV, add_generation_prompt=True)
    assert new == raw(t, AS_SYSTEM) and SYS in new and "developer" not in new
    assert DEV[0]["role"] == "developer"  # the caller's messages are not changed


@pytest.mark.parametrize("name", ["gptoss", "gemma4"])
def test_templates_naming_the_developer_role_get_it_as_it_is(tok, name):
    t = with_template(tok, name)
    assert knows_developer(t.chat_template)
    assert template_roles(t.chat_template, DEV) == DEV
    text = render_chat(t, DEV, add_generation_prompt=True)
    assert text == raw(t, DEV) and SYS in text
    if name == "gptoss":
        assert f"<|start|>developer<|message|># Instructions\n\n{SYS}" in text


def test_cohere2_prose_about_developers_is_not_the_role():
    text = template("cohere2")
    assert "developer preamble" in text and not knows_developer(text)


def test_a_system_and_a_developer_turn_become_one_system_turn(tok):
    messages = [{"role": "system", "content": "Be brief."}, *DEV]
    text = render_chat(tok, messages, add_generation_prompt=True)
    assert text.count("<|im_start|>system") == 1
    assert f"<|im_start|>system\nBe brief.\n\n{SYS}<|im_end|>" in text
    # a developer turn later in the conversation is a system turn where it stands
    later = [*AS_SYSTEM, {"role": "assistant", "content": "Salut"}, DEV[0], DEV[1]]
    assert [m["role"] for m in template_roles(tok.chat_template, later)] == [
        "system", "user", "assistant", "system", "user"
    ]  # fmt: skip


def test_gemma2_gets_the_system_text_in_the_first_user_turn_as_gemma3_writes_it(tok):
    gemma2, gemma3 = with_template(tok, "gemma"), with_template(tok, "gemma3")
    with pytest.raises(TemplateError, match="System role not supported"):
        raw(gemma2, AS_SYSTEM)
    chat = [*AS_SYSTEM, {"role": "assistant", "content": "Bonjour"}]
    for messages in (AS_SYSTEM, DEV, chat):
        text = render_chat(gemma2, messages, add_generation_prompt=messages is not chat)
        assert text == render_chat(gemma3, messages, add_generation_prompt=messages is not chat)
        assert f"<start_of_turn>user\n{SYS}\n\nSay hi<end_of_turn>" in text


def test_a_conversation_the_template_refuses_is_a_data_error_naming_model_and_roles(tok):
    qwen36 = with_template(tok, "qwen3_6")
    mid = [{"role": "user", "content": "Hi"}, {"role": "system", "content": SYS}]
    with pytest.raises(DataError) as err:
        render_chat(qwen36, mid, add_generation_prompt=True, who="classifier:rm")
    msg = str(err.value)
    assert "classifier:rm" in msg and "[user, system]" in msg
    assert "System message must be at the beginning" in msg
    # the encoder names the tokenizer's model folder when no name is given
    with pytest.raises(DataError, match=r"\[user, system\].*must be at the beginning"):
        encode_chat(qwen36, [Query(mid, "Salut")], 128, "left")


def test_a_template_that_fails_rather_than_refuses_is_not_folded(tok):
    """LLaVA-NeXT reads text parts only: on text content its Jinja fails (no refusal of the
    system role), so the system text is not moved into the user turn to hide that."""
    llava = with_template(tok, "llava_next")
    with pytest.raises(DataError, match=r"\[system, user\].*has no attribute 'text'"):
        render_chat(llava, AS_SYSTEM, add_generation_prompt=True)
    parts = [{**m, "content": [{"type": "text", "text": m["content"]}]} for m in DEV]
    assert f"<<SYS>>\n{SYS}\n<</SYS>>" in render_chat(llava, parts, add_generation_prompt=True)


@pytest.fixture(scope="module")
def models(tmp_path_factory, tok):
    """Tiny classifiers and causal LMs over the SmolLM2 tokenizer with Gemma 2's template."""
    root = tmp_path_factory.mktemp("roles41")
    out = {}
    for kind, causal in (("cls", False), ("lm", True)):
        for name in ("smollm2", "gemma"):
            path = tiny_llama(root / f"{kind}-{name}", causal=causal)
            if name != "smollm2":
                t = with_template(tok, name)
                t.save_pretrained(path)
            out[f"{kind}-{name}"] = path
    return out


def test_a_classifier_scores_a_developer_turn_as_the_same_system_turn(models):
    reward = load_reward(f"classifier:{models['cls-smollm2']}", progress=False, cache_dir=None)
    dev, system = Query(DEV, "Bonjour"), Query(AS_SYSTEM, "Bonjour")
    scores = reward.score([dev, system, Query("Say hi", "Bonjour")])
    assert scores[0] == pytest.approx(scores[1], abs=1e-6)  # before: -0.654 against 0.454
    assert abs(scores[0] - scores[2]) > 1e-4  # the instruction is read, not dropped
    assert dev.prompt[0]["role"] == "developer" and dev.key() != system.key()


def test_gemma2_models_score_system_turns_instead_of_raising(models):
    folded = Query([{"role": "user", "content": f"{SYS}\n\nSay hi"}], "Bonjour")
    cls = load_reward(f"classifier:{models['cls-gemma']}", progress=False, cache_dir=None)
    scores = cls.score([Query(AS_SYSTEM, "Bonjour"), Query(DEV, "Bonjour"), folded])
    np.testing.assert_allclose(scores[:2], [scores[2]] * 2, atol=1e-6)
    dpo = load_reward(
        f"dpo:{models['lm-gemma']}?ref={models['lm-smollm2']}", progress=False, cache_dir=None
    )
    assert np.isfinite(dpo.score([Query(DEV, "Bonjour")])).all()


def test_a_gemma2_judge_takes_its_default_system_prompt_in_the_user_turn(models, tok):
    gemma2 = with_template(tok, "gemma")
    parts = render_slots(gemma2, "Q: {conversation}\nA: {response}", ("{conversation}", "{response}"), DEFAULT_SYSTEM)  # fmt: skip
    assert parts[0].endswith(f"<start_of_turn>user\n{DEFAULT_SYSTEM}\n\nQ: ")
    judge = load_reward(f"judge:{models['lm-gemma']}", progress=False, cache_dir=None)
    assert np.isfinite(judge.score([Query("Say hi", "hello"), Query(DEV, "Bonjour")])).all()


def test_left_truncation_keeps_a_leading_developer_message(tok):
    gptoss = with_template(tok, "gptoss")
    long = " ".join(["word"] * 60)
    chat = [DEV[0], {"role": "user", "content": long}, {"role": "assistant", "content": "ok"}]
    full = encode_chat(gptoss, [Query([*chat, DEV[1]], "Bonjour")], 4096, "left")[0]
    row = encode_chat(gptoss, [Query([*chat, DEV[1]], "Bonjour")], len(full.input_ids) - 20, "left")
    text = gptoss.decode(row[0].input_ids)
    assert row[0].prompt_dropped > 0 and SYS in text  # before: the developer turn went first


def test_token_rewards_render_gemma2_system_turns(models):
    spec = f"dpo-tokens:{models['lm-gemma']}?ref={models['lm-smollm2']}"
    reward = load_reward(spec, progress=False, cache_dir=None)
    res = reward.score_full([Query(DEV, "Bonjour")])  # before: a Jinja TemplateError
    values = res.tokens.values[0]
    assert np.isfinite(res.scores).all() and np.isfinite(values[: len(values) - 1]).any()
