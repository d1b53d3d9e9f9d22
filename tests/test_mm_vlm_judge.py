"""``vlm-judge:`` / ``vlm-judge-pairwise:`` on a tiny random Llava (CLIP vision tower + Llama)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from mm_helpers import solid_png
from rewardkit.content import image_part
from rewardkit.data import load
from rewardkit.evaluate import evaluate
from rewardkit.evaluate.multimodal import mmrb2_outcome
from rewardkit.registry import load_reward
from rewardkit.rewards.judges.template import conversation_parts, fill_slots, split_template
from rewardkit.rewards.judges.verdict import yes_probability
from rewardkit.types import Query, user

#: A chat template that renders image parts as the processor's <image> token.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_llava(path, seed: int = 0) -> str:
    """A 2-layer Llava (tiny CLIP vision tower, tiny Llama) with the SmolLM2 tokenizer."""
    import transformers

    from rewardkit.models.loading import resolve_model

    tok = transformers.AutoTokenizer.from_pretrained(resolve_model("smollm2").source)
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    cfg = transformers.LlavaConfig(
        vision_config=transformers.CLIPVisionConfig(image_size=16, patch_size=8, **small),
        text_config=transformers.LlamaConfig(
            vocab_size=len(tok),
            num_key_value_heads=1,
            max_position_embeddings=1024,
            pad_token_id=tok.pad_token_id,
            tie_word_embeddings=True,
            initializer_range=0.5,
            **small,
        ),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(seed)
    transformers.LlavaForConditionalGeneration(cfg).save_pretrained(path)
    ip = transformers.CLIPImageProcessor(
        size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}
    )
    transformers.LlavaProcessor(
        image_processor=ip,
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    ).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def vlm(tmp_path_factory) -> str:
    return tiny_llava(tmp_path_factory.mktemp("vlm") / "llava")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[str]:
    d = tmp_path_factory.mktemp("img")
    return [
        solid_png(d / f"{i}.png", (60 * i, 200 - 50 * i, 30), noise=30, seed=i) for i in range(4)
    ]


def test_template_slots_and_parts(images) -> None:
    pieces = split_template("A {conversation} B {response} C", ["{conversation}", "{response}"])
    assert pieces == ["A ", " B ", " C"]
    with pytest.raises(ValueError, match="order"):
        split_template("{response} {conversation}", ["{conversation}", "{response}"])
    conv = conversation_parts([user([image_part(images[0]), {"type": "text", "text": "Q?"}])])
    parts = fill_slots(pieces, [conv, [{"type": "text", "text": "ans"}]])
    assert [p["type"] for p in parts] == ["text", "image", "text"]
    assert parts[2]["text"] == "Q? B ans C"  # adjacent text merged
    multi = conversation_parts(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    )
    assert "".join(p["text"] for p in multi) == "User: hi\n\nAssistant: yo"


def _reference_yes_prob(judge, query: Query) -> float:
    """P(yes) by hand: the full LlavaForConditionalGeneration's last-position logits."""
    text, imgs = judge.encode([query])[0].payload
    inputs = judge.processor(
        text=[text], images=[i.load() for i in imgs] or None, return_tensors="pt"
    )
    with torch.no_grad():
        logits = judge.model(**inputs).logits[0, -1].double()
    ly = torch.logsumexp(logits[judge.answers.first], 0).item()
    ln = torch.logsumexp(logits[judge.answers.second], 0).item()
    return yes_probability(ly, ln)


def test_pointwise_matches_the_full_model_and_batches(vlm, images) -> None:
    judge = load_reward(f"vlm-judge:{vlm}", progress=False)
    queries = [
        Query([user("Draw a red square.")], [image_part(images[0])]),
        Query([user("Draw a red square.")], [image_part(images[1])]),
        Query([user([image_part(images[2]), {"type": "text", "text": "What colour?"}])], "Green."),
        Query([user("Say hi.")], "Hello there, how are you today?"),
    ]
    got = judge.score(queries)
    assert ((got > 0) & (got < 1)).all()
    want = [_reference_yes_prob(judge, q) for q in queries]
    assert got == pytest.approx(want, abs=1e-4)
    assert len(set(np.round(got, 6))) == 4
    small = load_reward(f"vlm-judge:{vlm}", progress=False, max_batch_size=1)
    assert small.score(queries[::-1])[::-1] == pytest.approx(got, abs=1e-4)
    logit = load_reward(f"vlm-judge:{vlm}?output=logit", progress=False)
    assert 1 / (1 + np.exp(-logit.score(queries))) == pytest.approx(got, abs=1e-5)
    # the yes/no image reads its pixels: another image gives another score
    assert got[0] != pytest.approx(got[1], abs=1e-6)


def test_pairwise_both_orders_and_mmrb2_eval(vlm, images, tmp_path) -> None:
    judge = load_reward(f"vlm-judge-pairwise:{vlm}", progress=False, cache_dir=str(tmp_path))
    prompt = [user("Draw a red square.")]
    j = judge.compare_many(
        [prompt, prompt],
        [[image_part(images[0])], "text answer"],
        [[image_part(images[1])], [image_part(images[3])]],
    )
    assert j.p == pytest.approx(0.5 * (j.p_forward + j.p_reverse))
    swapped = judge.compare_many([prompt], [[image_part(images[1])]], [[image_part(images[0])]])
    assert swapped.p[0] == pytest.approx(1 - j.p[0], abs=1e-6)  # order-symmetric by design
    assert swapped.stats["computed"] == 0  # both orders of the swap were already cached
    q = Query(prompt, [image_part(images[0])], reference=[image_part(images[1])])
    assert judge.score([q])[0] == pytest.approx(j.p[0], abs=1e-6)
    assert math.isnan(judge.score([Query(prompt, "no reference")])[0])

    rows = [
        {
            "pair_id": f"t{i}",
            "task": "text-to-image",
            "prompt_content": [["text", f"picture {i}"]],
            "response_a": images[i],
            "response_b": images[(i + 1) % 4],
            "chosen": "AB"[i % 2],
        }
        for i in range(4)
    ]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    examples = load(str(tmp_path / "m.jsonl"))
    res = evaluate(examples, judge, n_boot=20)
    col = res.rewards[0]
    jd = judge.compare_many(  # the pairs evaluate judged (chosen, rejected), now from the cache
        [ex.prompt for ex in examples],
        [ex.responses[ex.chosen[0]] for ex in examples],
        [ex.responses[1 - ex.chosen[0]] for ex in examples],
    )
    assert [e.outcome for e in col.examples] == [
        mmrb2_outcome(f, r) for f, r in zip(jd.p_forward, jd.p_reverse, strict=True)
    ]
    assert col.position_bias is not None


def test_plain_text_fallback_without_chat_template(vlm, images) -> None:
    judge = load_reward(f"vlm-judge:{vlm}?use_chat_template=false", progress=False)
    text, imgs = judge.render([[{"type": "text", "text": "Q"}], [image_part(images[0])]])
    assert text.endswith("\nAnswer:") and text.count("<image>") == 1 and len(imgs) == 1
    assert 0 < judge.score([Query([user("Q")], [image_part(images[0])])])[0] < 1


def test_pil_images_score_like_files(vlm, images) -> None:
    judge = load_reward(f"vlm-judge:{vlm}", progress=False)
    a = judge.score([Query([user("x")], [image_part(images[0])])])
    b = judge.score([Query([user("x")], [image_part(Image.open(images[0]).convert("RGB"))])])
    assert a == pytest.approx(b, abs=1e-6)


def test_listwise_ranks_image_responses_in_one_call(vlm, images, tmp_path) -> None:
    from rewardkit.types import Capability

    judge = load_reward(f"vlm-judge-listwise:{vlm}", progress=False, cache_dir=str(tmp_path))
    assert judge.can(Capability.LISTWISE) and judge.can(Capability.IMAGES)
    prompt = [user("Draw a red square.")]
    group = [[image_part(images[i])] for i in range(3)] + ["a text answer"]
    res = judge.rank_many([prompt], [group])
    s = res.scores[0]
    assert s.shape == (4,) and np.isfinite(s).all() and s.sum() == pytest.approx(1.0)
    assert res.stats["computed"] == 1  # the whole group in one row
    back = judge.rank_many([prompt], [group[::-1]])  # same responses, other order: same slots
    np.testing.assert_allclose(back.scores[0][::-1], s, atol=1e-6)
    assert back.stats["computed"] == 0
