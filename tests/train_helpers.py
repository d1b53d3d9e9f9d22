"""Tiny random models and toy preference data for the training tests."""

from __future__ import annotations

from pathlib import Path

from rewardkit.types import Example, user


def tiny_bert(path: Path, seed: int = 0, dropout: float = 0.0) -> Path:
    """A 2-layer BERT with the embedded MiniLM tokenizer (``dropout``: hidden and attention)."""
    import torch
    import transformers

    from rewardkit.models.loading import resolve_model

    src = resolve_model("minilm").source
    tok = transformers.AutoTokenizer.from_pretrained(src)
    cfg = transformers.BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
        initializer_range=0.2,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(seed)
    transformers.BertForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def tiny_llama_config(tok, **fields):
    """A 2-layer, 32-wide Llama config over ``tok``'s vocabulary (``fields`` override)."""
    import transformers

    base = {
        "vocab_size": len(tok),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "intermediate_size": 64,
        "pad_token_id": tok.pad_token_id,
        "initializer_range": 0.2,
    }
    return transformers.LlamaConfig(**{**base, **fields})


def tiny_llama(path: Path, seed: int = 0, causal: bool = False) -> Path:
    """A 2-layer Llama with the embedded SmolLM2 tokenizer (and chat template)."""
    import torch
    import transformers

    from rewardkit.models.loading import resolve_model

    src = resolve_model("smollm2").source
    tok = transformers.AutoTokenizer.from_pretrained(src)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    cfg = tiny_llama_config(
        tok, max_position_embeddings=256, num_labels=1, tie_word_embeddings=True
    )
    torch.manual_seed(seed)
    cls = transformers.LlamaForCausalLM if causal else transformers.LlamaForSequenceClassification
    cls(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


GOOD = [
    "Paris is the capital of France.",
    "Water boils at 100 degrees Celsius at sea level.",
    "Seven is a prime number.",
    "The Earth orbits the Sun once a year.",
    "A triangle has three sides.",
    "Photosynthesis turns light into chemical energy.",
]
BAD = [
    "no idea lol",
    "whatever, ask someone else",
    "I refuse.",
    "banana banana banana",
    "?? not sure",
    "that is a silly question",
]


def toy_pairs(
    n: int = 12, ties: int = 0, ratings: bool = False, three: bool = False
) -> list[Example]:
    """Pairs whose chosen response is a fact and rejected one is junk (easy to learn)."""
    out = []
    for i in range(n):
        g, b = GOOD[i % len(GOOD)], BAD[(i * 5) % len(BAD)]
        responses = [g, b] if i % 2 == 0 else [b, g]
        chosen = [0] if i % 2 == 0 else [1]
        rat = None
        if ratings:
            rat = [
                {"helpfulness": 4.0 if r == g else 0.0, "verbosity": float(len(r) // 20)}
                for r in responses
            ]
        if three:
            responses = [*responses, "meh, maybe"]
            if rat:
                rat.append({"helpfulness": 2.0, "verbosity": 0.0})
        out.append(
            Example(
                id=f"p{i}",
                prompt=[user(f"Tell me a fact #{i}.")],
                responses=responses,
                chosen=chosen,
                ratings=rat,
            )
        )
    for j in range(ties):
        out.append(
            Example(
                id=f"t{j}",
                prompt=[user("Say something.")],
                responses=[GOOD[j % 6], GOOD[(j + 1) % 6]],
                chosen=[0, 1],
            )
        )
    return out


def categorized_pairs(n: int = 24) -> list[Example]:
    """:func:`toy_pairs` alternately of category ``qa`` and ``chat`` (``meta["category"]``,
    what DMoERM routes by)."""
    exs = toy_pairs(n)
    for i, e in enumerate(exs):
        e.meta["category"] = "chat" if i % 2 else "qa"
    return exs


def tiny_cfg(model, out, **kw):
    """A TrainConfig for quick tests: short sequences, one thread, no progress bars or plots."""
    from rewardkit.train.config import TrainConfig

    base = dict(
        model=str(model),
        output_dir=str(out),
        max_length=64,
        batch_size=6,
        lr=3e-3,
        logging_steps=1,
        progress=False,
        plot=False,
        threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


#: The collator's batch fields a reward model's forward takes.
FORWARD_KEYS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "pool_index")


def packed_and_padded_rewards(module, collator, items):
    """(packed rewards, padded rewards) of ``items`` from ``module`` in eval mode: the same
    items collated packed, then padded (the packed batch must need fewer token slots)."""
    import torch

    collator.packing = True
    packed = collator(items)
    collator.packing = False
    padded = collator(items)
    assert packed["input_ids"].numel() < padded["input_ids"].numel()
    with torch.no_grad():
        a = module(**{k: packed[k] for k in FORWARD_KEYS if k in packed})
        b = module(**{k: padded[k] for k in FORWARD_KEYS if k in padded})
    return a, b
