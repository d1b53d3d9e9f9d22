"""OpenRLHF's query format: one splitter for the ``reward_func`` file and the HTTP endpoint.

OpenRLHF sends each rollout as ``query`` (the decoded prompt + response text) with the prompt
alone in ``prompts`` and the ``--label_key`` column in ``labels``. :func:`split_query` is the one
place that turns such a triple into a prompt, a response and a reference, for both
``rewardkit.integrations.openrlhf`` (``--remote_rm_url /path/reward_func.py``) and
``rewardkit.serve.openrlhf`` (``--remote_rm_url http://HOST:PORT/get_reward``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rewardkit.data.record import as_reference

#: The keys OpenRLHF 0.11 puts in a sample's ``info`` beside ``extra_logs`` (``reward``, ``score``
#: set before it, the rest after): a component keyed ``reward`` was logged as the rollout's
#: reward (``rollout/reward_mean``), one keyed ``kl`` lost to the KL.
OPENRLHF_INFO_KEYS = (
    "reward",
    "score",
    "response_clip_ratio",
    "kl",
    "logprobs_diff",
    "return",
    "group_reward_std",
)

#: End-of-sequence markers that decoded rollouts often end with (removed from the response end):
#: Qwen/ChatML, GPT-2/Qwen base, Llama 3, Phi-3, Gemma, Llama 2/Mistral, DeepSeek (fullwidth
#: bars and U+2581), gpt-oss.
EOS_MARKERS = (
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|end|>",
    "<|return|>",
    "<end_of_turn>",
    "<eos>",
    "</s>",
    "<\uff5cend\u2581of\u2581sentence\uff5c>",
)

#: Image/video placeholder tokens a VLM processor repeats once per patch in the tokenized prompt
#: (OpenRLHF 0.11 ``process_prompt_with_images``), so the decoded query holds a run of each
#: where the prompt text holds one: Qwen2-VL/2.5-VL/3-VL, LLaVA, Gemma 3, InternVL, Llama 4.
IMAGE_PAD_TOKENS = (
    "<|image_pad|>",
    "<|video_pad|>",
    "<image>",
    "<image_soft_token>",
    "<IMG_CONTEXT>",
    "<|image|>",
    "<|patch|>",
)

#: Characters of the prompt's end that must open the query when the whole prompt does not
#: (OpenRLHF cut it from the left); a shorter prompt must be found whole.
MIN_PROMPT_OVERLAP = 16


def strip_eos(text: str) -> str:
    """``text`` without trailing end-of-sequence markers (and the whitespace between them).
    Linear: an end index moves back over them (a copy cut per marker was quadratic: a query
    ending in 400,000 ``"</s> "`` held a worker 17.6 s, a 256 KiB one the event loop 0.3 s)."""
    end = len(text)
    while True:
        bare = end
        while bare and text[bare - 1].isspace():
            bare -= 1
        marker = next((m for m in EOS_MARKERS if text.endswith(m, 0, bare)), None)
        if marker is None:
            return text[:end]
        end = bare - len(marker)


def prefix_function(seq: Sequence[Any]) -> list[int]:
    """KMP prefix function: ``pi[i]`` is the length of the longest proper prefix of
    ``seq[: i + 1]`` that is also its suffix. Linear: at most ``4·len(seq)`` item reads."""
    pi = [0] * len(seq)
    k = 0
    for i in range(1, len(seq)):
        c = seq[i]
        while k and seq[k] != c:
            k = pi[k - 1]
        if seq[k] == c:
            k += 1
        pi[i] = k
    return pi


def kept_prompt_end(query: str, prompt: str) -> int:
    """Length of the longest proper end of ``prompt`` (from index 1 on, at least
    :data:`MIN_PROMPT_OVERLAP` characters) that the query starts with, 0 when none: OpenRLHF cuts
    an over-long prompt from the left (``prompt_token_ids[-max_prompt_length:]``) and decodes the
    rest with the response.

    Linear in the lengths: the first end that opens with the query's first characters is tried
    directly (the common case); when it does not fit, the KMP prefix function of
    ``query-prefix + separator + prompt-end`` gives the longest shorter one (trying each
    candidate in turn is quadratic: seconds on a 400,000-character ``"ab" * 200_000``)."""
    at = prompt.find(query[:MIN_PROMPT_OVERLAP], 1) if len(query) >= MIN_PROMPT_OVERLAP else -1
    if at < 0:
        return 0
    if query.startswith(prompt[at:]):  # the leftmost candidate: the longest end
        return len(prompt) - at
    longest = min(len(query), len(prompt) - at - 1)  # the answer starts after ``at``
    if longest < MIN_PROMPT_OVERLAP:
        return 0
    kept = prefix_function([*query[:longest], None, *prompt[len(prompt) - longest :]])[-1]
    return kept if kept >= MIN_PROMPT_OVERLAP else 0


def expanded_prompt_end(query: str, prompt: str) -> int:
    """Where the prompt ends in ``query`` when the query opens with the prompt whose image
    placeholders (:data:`IMAGE_PAD_TOKENS`) each stand for a run of themselves (a VLM
    processor expanded them before generation), 0 when it does not."""
    pads = [t for t in IMAGE_PAD_TOKENS if t in prompt]
    if not pads:
        return 0
    split = re.split("(" + "|".join(map(re.escape, pads)) + ")", prompt)
    pattern, i = re.escape(split[0]), 1
    while i < len(split):
        token, count = split[i], 1
        while i + 2 < len(split) and not split[i + 1] and split[i + 2] == token:
            count, i = count + 1, i + 2
        # k placeholders in a row: a run of at least k, taken whole (atomic): runs that could
        # give each other pads were tried in every split (exponential: a 736-byte query held
        # the GIL, and so the whole server, for minutes)
        pattern += f"(?>(?:{re.escape(token)}){{{count},}})" + re.escape(split[i + 1])
        i += 2
    found = re.match(pattern, query)
    return found.end() if found else 0


def split_query(query: str, prompt: str | None, remove_eos: bool = True) -> tuple[str, str | None]:
    """(prompt, response) of an OpenRLHF query: the response is what follows the prompt.

    The response starts after the **first** occurrence of the prompt in the query: normally the
    query starts with it; a BOS token or a lossy detokenization may put text before it. The
    first occurrence, never a later one, so a response that repeats the prompt cannot hide what
    it wrote before the copy. When the query does not start with the whole prompt but with its
    end (OpenRLHF cut a long prompt from the left), the longest such end of at least
    :data:`MIN_PROMPT_OVERLAP` characters is cut off (:func:`kept_prompt_end`), even where a
    whole copy of the prompt follows: that copy is the response's. A VLM prompt's image
    placeholders may stand for runs of themselves (:func:`expanded_prompt_end`). When none is
    found the response is None (the item fails: scoring the whole query would score the prompt
    as the answer). Without a prompt the whole query is the response. With ``remove_eos``
    trailing end-of-sequence markers are removed (:func:`strip_eos`).
    """
    prompt = prompt or ""
    if not prompt:
        response: str | None = query
    elif query.startswith(prompt):
        response = query[len(prompt) :]
    elif kept := kept_prompt_end(query, prompt):
        # the query opens with the (cut) prompt's end: a whole copy of the prompt further on
        # is the response's, and cutting there hid everything the response wrote before it
        response = query[kept:]
    elif (at := query.find(prompt)) >= 0:
        response = query[at + len(prompt) :]
    elif end := expanded_prompt_end(query, prompt):
        response = query[end:]  # a VLM prompt: its image placeholders expanded, one a patch
    else:
        response = None
    if response is None or not remove_eos:
        return prompt, response
    return prompt, strip_eos(response)


def label(value: Any) -> Any:
    """The reference of an OpenRLHF label: ``""`` (a dataset without labels) is no reference,
    as everywhere (:func:`rewardkit.data.record.as_reference`)."""
    return as_reference(value)
