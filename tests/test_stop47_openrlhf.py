"""OpenRLHF prompts in Phi-3 and Zephyr markup, prefilled answers and runaway generations
(docs/rl.md, "OpenRLHF").

``--apply_chat_template`` prompts of every known family are read back as messages
(``_messages.split_chat_query``): Phi-3/3.5 (``<|user|>\\n…<|end|>``) and Zephyr
(``<|user|>\\n…</s>``) too; a prompt that ends with the start of the answer (a prefill) scores
prefill + generated text as the answer; a generation that ran past its end of turn is cut there.
Templates: TRL's shipped ones over the embedded SmolLM2 tokenizer, Zephyr's written below."""

from __future__ import annotations

import numpy as np
import pytest

from family_models import smollm_tokenizer
from openrlhf_chat import CONV, RESPONSE, SYS, TEMPLATES
from rewardkit.integrations._messages import chat_exchange, chat_prompt, split_chat_query
from rewardkit.integrations.openrlhf import make_reward_func
from rewardkit.integrations.verl import cached_reward
from rewardkit.types import Query, user

#: The chat_template of HuggingFaceH4/zephyr-7b-beta (tokenizer_config.json), verbatim; no
#: installed package ships it.
ZEPHYR = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
    "{% endfor %}"
)
#: each family's special tokens as its real tokenizer has them; its end of turn
TOKENS = {
    "llama3": {"bos_token": "<|begin_of_text|>"},
    "gemma": {"bos_token": "<bos>"},
    "phi3": {"eos_token": "<|endoftext|>"},
    "phi3_5": {"eos_token": "<|endoftext|>"},
    "zephyr": {"eos_token": "</s>"},
}
END = {"llama3": "<|eot_id|>", "gemma": "<end_of_turn>", "phi3": "<|end|>", "phi3_5": "<|end|>"}
END |= {"zephyr": "</s>", "smollm2": "<|im_end|>", "qwen2_5": "<|im_end|>", "qwen3": "<|im_end|>"}
FAMILIES = ["smollm2", "llama3", "gemma", "phi3", "zephyr"]


@pytest.fixture(scope="module")
def tok():
    return smollm_tokenizer()


def render(tok, name: str, messages, generation: bool = True, **kwargs) -> str:
    template = {"smollm2": None, "zephyr": ZEPHYR}.get(name)
    if name not in ("smollm2", "zephyr"):
        template = (TEMPLATES / f"{name}.jinja").read_text("utf-8")
    return tok.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=generation,
        **TOKENS.get(name, {}), **kwargs,
    )  # fmt: skip


def conversation(name: str) -> list[dict]:
    """System + multi-turn, without the system turn where the template refuses one (Gemma)."""
    return CONV if name == "gemma" else [SYS, *CONV]


@pytest.mark.parametrize("name", ["phi3", "phi3_5", "zephyr"])
def test_phi3_and_zephyr_prompts_read_back_as_their_messages(tok, name):
    text = render(tok, name, [SYS, *CONV])
    assert text.startswith("<|system|>\n") and text.endswith("<|assistant|>\n")
    assert chat_prompt(text) == [SYS, *CONV]
    assert render(tok, name, chat_prompt(text)) == text  # the same template renders it again
    # the decoded query: the response closed by the end of turn (Phi-3: then its end of text)
    query = text + RESPONSE + END[name] + ("<|endoftext|>" if name != "zephyr" else "")
    assert split_chat_query(query, text) == ([SYS, *CONV], RESPONSE)
    # a whole conversation sent without its prompt: split at its last assistant turn
    whole = render(tok, name, [SYS, *CONV, {"role": "assistant", "content": RESPONSE}], False)
    assert chat_exchange(whole) == ([SYS, *CONV], RESPONSE)
    assert split_chat_query(whole, None) == ([SYS, *CONV], RESPONSE)


def test_pipe_markup_content_may_hold_pipes_that_open_no_turn(tok):
    messages = [{"role": "user", "content": "What does <|x|> mean in a template?"}]
    assert chat_prompt(render(tok, "phi3", messages)) == messages
    assert chat_prompt(render(tok, "zephyr", messages)) == messages


@pytest.mark.parametrize("name", [*FAMILIES, "qwen2_5", "qwen3"])
def test_a_prefilled_answer_is_scored_whole_after_the_conversation(tok, name):
    """The policy was given the start of its answer: the answer the reward judges is that start
    plus what it generated; the conversation is the turns before (Qwen3's empty thinking block,
    part of its generation prompt, dropped)."""
    think = {"enable_thinking": False} if name == "qwen3" else {}
    prompt = render(tok, name, conversation(name), **think) + "The capital of France is "
    query = prompt + "Paris." + END[name]  # the prefill's last space is the answer's
    assert split_chat_query(query, prompt) == (
        conversation(name),
        "The capital of France is Paris.",
    )
    assert chat_prompt(prompt) == conversation(name)


def test_a_prefilled_thinking_block_stays_in_the_answer(tok):
    prompt = render(tok, "qwen3", [SYS, *CONV]) + "<think>\n"
    query = prompt + "France: Paris.\n</think>\n\nParis.<|im_end|>"
    assert split_chat_query(query, prompt) == (
        [SYS, *CONV],
        "<think>\nFrance: Paris.\n</think>\n\nParis.",
    )


@pytest.mark.parametrize("name", FAMILIES)
def test_a_generation_past_its_end_of_turn_ends_there(tok, name):
    """The policy wrote its answer, its end of turn, then the next turns (the real template's
    markup): the answer ends at the first end of turn of the prompt's family."""
    prompt = render(tok, name, conversation(name))
    more = [{"role": "assistant", "content": RESPONSE}, {"role": "user", "content": "Rate: 10/10"}]
    query = render(tok, name, [*conversation(name), *more])
    assert query.startswith(prompt) and "10/10" in query
    assert split_chat_query(query, prompt) == (conversation(name), RESPONSE)
    kept = split_chat_query(query, prompt, remove_eos=False)
    assert kept == (conversation(name), RESPONSE + END[name])


def test_through_the_reward_func_the_prefill_counts_and_the_runaway_does_not(tok):
    """rule:math reads the last number: 0 before for both (the continuation ``4}`` alone; the
    boxed 5 of the invented next turn)."""
    prompt = render(tok, "phi3", [{"role": "user", "content": "7 + 7?"}]) + "\\boxed{1"
    runaway = "<|im_end|>"  # not Phi-3's end of turn: a plain prompt's response is untouched
    plain = "7 + 7? Answer:"
    queries = [
        prompt + "4}<|end|><|endoftext|>",
        prompt + "4}<|end|>\n<|user|>\nNo, it is \\boxed{5}<|end|>",
        plain + " \\boxed{14}" + runaway + "\n<|im_start|>user\n\\boxed{5}",
    ]
    out = make_reward_func("rule:math")(queries, [prompt, prompt, plain], ["14", "14", "14"])
    assert out["rewards"].tolist() == [1.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "text",
    [
        "<|narrator|>\nHi<|end|>\n<|assistant|>\n",  # a role no template has
        "<|user|>\nHi<|end|>\n<|model|>\n",  # Gemma's role, not Phi-3's
        "<|user|>\nHi\n<|assistant|>\n",  # a turn opened before the last closed
        "<|user|>\nHi</s>\n<|assistant|>\nX<|end|>\n<|user|>\nQ<|end|>\n<|assistant|>\n",  # mixed
        "Context first\n<|user|>\nHi<|end|>\n<|assistant|>\n",  # text before the turns
        "<|user|>\nHi</s>\nnote\n<|assistant|>\n",  # text between turns
        "<|system|>\nBe brief.<|end|>\n<|assistant|>\nSure",  # no user turn (a prefill)
        "<|user|>\nHi<|end|>\n<|user|>\nWhat",  # open at a user turn
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<|im_start|>user\n",  # unclosed
    ],
)
def test_text_that_is_not_wholly_one_family_stays_one_user_turn(text):
    assert chat_prompt(text) is None
    tail = "R<|end|>\n<|user|>\nmore</s>\n<|im_end|>\n<|im_start|>user\nx"  # no cut for text
    assert split_chat_query(text + tail, text) == (text, tail)


def test_served_get_reward_and_reward_func_score_a_phi3_prompt_alike(tok):
    """`rewardkit serve`'s /get_reward (a real server on loopback) and the reward_func file read
    a Phi-3 prompt back as its conversation: the same score, the conversation's (each item
    scored alone: padding a batch moves a float32 score by ~1e-6)."""
    import httpx

    from rewardkit.serve.app import create_app
    from rewardkit.serve.background import BackgroundServer
    from rewardkit.serve.config import ServeConfig

    prompt = render(tok, "phi3", [SYS, *CONV])
    query = prompt + RESPONSE + "<|end|><|endoftext|>"
    offline = make_reward_func("default")([query], [prompt], None)["rewards"].tolist()
    reward = cached_reward("default")
    (right,) = reward.score([Query([SYS, *CONV], RESPONSE)])
    (old,) = reward.score([Query([user(prompt)], RESPONSE)])
    with BackgroundServer(create_app(ServeConfig(rewards={"default": "default"}))) as srv:
        r = httpx.post(
            srv.url + "/get_reward", json={"query": [query], "prompts": [prompt]}, timeout=120
        )
    assert r.status_code == 200, r.text
    served = r.json()["rewards"]
    assert served[0] == pytest.approx(offline[0], abs=1e-4)
    assert offline[0] == pytest.approx(right, abs=1e-4) and abs(right - old) > 1e-4
    assert np.isfinite(served).all()
