"""Tiny word-level tokenizers and tiny random Llama models for the PRM and token-reward tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

#: A minimal chat template in the shape of the real ones (role markers as special tokens).
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIALS = ["[PAD]", "[UNK]", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<extra_0>"]


def word_tokenizer(texts: Iterable[str], chat: bool = True, extra: Iterable[str] = ()):
    """A fast word-level tokenizer (words and punctuation runs, spaces dropped) whose vocabulary
    is every piece of ``texts`` plus ``extra`` words; specials as above."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Whitespace()
    words: dict[str, int] = {s: i for i, s in enumerate(SPECIALS)}
    for text in [*texts, *extra]:
        for piece, _ in pre.pre_tokenize_str(text):
            words.setdefault(piece, len(words))
    tok = Tokenizer(models.WordLevel(words, unk_token="[UNK]"))
    tok.pre_tokenizer = pre
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")
    fast.add_special_tokens({"additional_special_tokens": SPECIALS[2:]})
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_llama_dir(path: Path, tokenizer, kind: str = "causal", seed: int = 0) -> Path:
    """Save a 2-layer random Llama (``causal``, ``token-cls`` with 2 labels, or ``seq-cls``)
    with ``tokenizer`` to ``path``."""
    import torch
    import transformers

    cfg = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=2 if kind == "token-cls" else 1,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.5,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    cls = {
        "causal": transformers.LlamaForCausalLM,
        "token-cls": transformers.LlamaForTokenClassification,
        "seq-cls": transformers.LlamaForSequenceClassification,
    }[kind]
    cls(cfg).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
