"""OpenRLHF prompts rendered with the policy's chat template (docs/rl.md, "OpenRLHF").

OpenRLHF's ``--apply_chat_template`` sends ``prompts`` as the template's text and ``queries`` as
``tokenizer.decode(prompt_ids + response_ids, skip_special_tokens=False)``. The prompt is read
back as its messages when a known template (ChatML, Llama 3, Gemma) rendered it, so a reward
model renders them with its own template; any other text is one user turn, as before. The
templates are the real ones TRL ships, over the embedded SmolLM2 tokenizer (ChatML itself)."""

from __future__ import annotations

import numpy as np
import pytest

from family_models import smollm_tokenizer
from openrlhf_chat import CONV, RESPONSE, SYS, TEMPLATES
from rewardkit.integrations._messages import chat_exchange, chat_prompt, split_chat_query
from rewardkit.integrations.openrlhf import make_reward_func
from rewardkit.integrations.verl import cached_reward
from rewardkit.types import Query, user

#: the BOS each family's real tokenizer renders (the SmolLM2 tokenizer's own is ChatML's)
BOS = {
    "llama3": "<|begin_of_text|>",
    "llama3_1": "<|begin_of_text|>",
    "gemma": "<bos>",
    "gemma3": "<bos>",
}


@pytest.fixture(scope="module")
def tok():
    return smollm_tokenizer()


def render(tok, name: str, messages, **kwargs) -> str:
    template = None if name == "smollm2" else (TEMPLATES / f"{name}.jinja").read_text("utf-8")
    bos = {"bos_token": BOS[name]} if name in BOS else {}
    return tok.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=True,
        **bos, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "system"),
    [
        ("smollm2", True),
        ("qwen2_5", True),
        ("qwen3", True),
        ("llama3", True),
        ("gemma", False),
        ("gemma3", False),
    ],
)
def test_a_prompt_a_known_template_rendered_reads_back_as_its_messages(tok, name, system):
    messages = [SYS, *CONV] if system else CONV
    text = render(tok, name, messages)
    assert "What is the capital of France?" in text and text != messages[-1]["content"]
    assert chat_prompt(text) == messages
    assert render(tok, name, chat_prompt(text)) == text  # the same template renders it again


def test_a_template_default_system_turn_is_kept_as_a_system_message(tok):
    # SmolLM2 adds its own system turn; Llama 3.1 its knowledge-date preamble
    smol = chat_prompt(render(tok, "smollm2", CONV))
    assert smol[0]["role"] == "system" and "SmolLM" in smol[0]["content"] and smol[1:] == CONV
    llama = chat_prompt(render(tok, "llama3_1", [SYS, *CONV]))
    assert llama[0]["content"].startswith("Cutting Knowledge Date")
    assert llama[0]["content"].endswith(SYS["content"]) and llama[1:] == CONV


def test_qwen3_empty_thinking_block_is_part_of_the_generation_prompt(tok):
    text = render(tok, "qwen3", [SYS, *CONV], enable_thinking=False)
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert chat_prompt(text) == [SYS, *CONV]


@pytest.mark.parametrize(
    "text",
    [
        "Question: what is the capital of France?\nAnswer:",  # plain prompt
        "<|user|>2+2?<|assistant|>",  # an --input_template of another shape
        "Context first\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",  # text outside
        "<|im_start|>narrator\nHi<|im_end|>\n<|im_start|>assistant\n",  # a role no template has
        "<|im_start|>user\nHi <|im_start|>assistant\n",  # a turn opened before the last closed
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>assistant\n",  # no user turn
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>user\nWhat",  # open at a user turn
    ],
)
def test_text_that_is_not_wholly_known_markup_stays_text(text):
    assert chat_prompt(text) is None
    assert split_chat_query(text + "R", text) == (text, "R")


def test_phi3_markup_is_read_back(tok):
    # Phi-3 writes the role inside its token (<|user|>): read back since stop 47
    # (tests/test_stop47_openrlhf.py covers Phi-3, Zephyr, prefills and runaway answers)
    text = render(tok, "phi3", CONV)
    assert "<|user|>" in text and chat_prompt(text) == CONV


def _rollout(tok, prompt: str, response: str) -> str:
    """The query as OpenRLHF 0.11 decodes it: prompt ids + response ids (closed by the policy's
    end of turn), special tokens kept."""
    ids = tok(prompt, add_special_tokens=False).input_ids
    ids += tok(response + "<|im_end|>", add_special_tokens=False).input_ids
    return tok.decode(ids, skip_special_tokens=False)


@pytest.mark.parametrize("spec", ["default", "classifier:smollm2?progress=false"])
def test_a_model_reward_scores_the_conversation_not_the_markup(tok, spec):
    """Scored before as one user turn holding the whole rendered prompt: the classifier
    rendered SmolLM2's template around the policy's (escaped) markup, the default RM embedded
    the system text and the markup as the request."""
    prompt = render(tok, "smollm2", [SYS, *CONV])
    query = _rollout(tok, prompt, RESPONSE)
    assert query.startswith(prompt) and query.endswith("<|im_end|>")
    out = make_reward_func(spec)([query], [prompt], None)
    reward = cached_reward(spec)  # the instance the reward_func scores with
    # each scored alone, as the reward_func scored its one query: a batch of two pads the
    # shorter item, which moves a float32 score by ~1e-6 (CI saw 1.07e-6)
    (right,) = reward.score([Query([SYS, *CONV], RESPONSE)])
    (old,) = reward.score([Query([user(prompt)], RESPONSE)])
    assert out["rewards"].tolist() == pytest.approx([right], abs=1e-5)
    assert abs(right - old) > 1e-4
    assert out["extra_logs"]["rewardkit_failed"].tolist() == [0.0]


def test_a_query_sent_without_its_prompt_is_split_at_its_last_assistant_turn(tok):
    prompt = render(tok, "smollm2", [SYS, *CONV])
    query = _rollout(tok, prompt, RESPONSE)
    assert chat_exchange(query) == ([SYS, *CONV], RESPONSE)
    assert split_chat_query(query, None) == ([SYS, *CONV], RESPONSE)
    assert split_chat_query(query, prompt) == ([SYS, *CONV], RESPONSE)
    assert chat_exchange(prompt) == ([SYS, *CONV], "")  # nothing generated: an empty response
    # a conversation that does not end with the assistant's turn is no exchange, nor plain text
    assert chat_exchange(prompt[: prompt.rindex("<|im_start|>assistant")]) is None
    assert split_chat_query("plain", None) == ("", "plain")
    spec = "default"
    both = make_reward_func(spec)([query, query], [prompt, None], None)["rewards"].tolist()
    assert both[0] == pytest.approx(both[1], abs=1e-7) and np.isfinite(both).all()


def test_the_served_get_reward_reads_the_rendered_prompt_back_as_the_reward_func_does(tok):
    """`rewardkit serve`'s /get_reward (a real server on loopback) splits as the reward_func
    file does: the same score for a ChatML-rendered prompt, the conversation's, not the markup's."""
    import httpx

    from rewardkit.serve.app import create_app
    from rewardkit.serve.background import BackgroundServer
    from rewardkit.serve.config import ServeConfig

    spec = "classifier:smollm2?progress=false"
    prompt = render(tok, "smollm2", [SYS, *CONV])
    query = _rollout(tok, prompt, RESPONSE)
    offline = make_reward_func(spec)([query], [prompt], None)["rewards"].tolist()
    right, old = cached_reward(spec).score(
        [Query([SYS, *CONV], RESPONSE), Query([user(prompt)], RESPONSE)]
    )
    with BackgroundServer(create_app(ServeConfig(rewards={"default": spec}))) as srv:
        body = {"query": [query, "plain question plain answer"], "prompts": [prompt, "plain"]}
        r = httpx.post(srv.url + "/get_reward", json=body, timeout=120)
    assert r.status_code == 200, r.text
    served = r.json()["rewards"]
    assert served[0] == pytest.approx(offline[0], abs=1e-4)
    assert served[0] == pytest.approx(right, abs=1e-4) and abs(right - old) > 1e-4
    assert np.isfinite(served[1])  # a plain prompt still scores as one user turn
