"""OpenRLHF's query format: one splitter for the ``reward_func`` file and the HTTP endpoint.

OpenRLHF sends each rollout as ``query`` (the decoded prompt + response text) with the prompt
alone in ``prompts`` and the ``--label_key`` column in ``labels``. :func:`split_query` is the one
place that turns such a triple into a prompt, a response and a reference, for both
``rewardkit.integrations.openrlhf`` (``--remote_rm_url /path/reward_func.py``) and
``rewardkit.serve.openrlhf`` (``--remote_rm_url http://HOST:PORT/get_reward``).
"""

from __future__ import annotations

from typing import Any

from rewardkit.data.record import as_reference

#: End-of-sequence markers that decoded rollouts often end with (removed from the response end).
EOS_MARKERS = (
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|end|>",
    "<end_of_turn>",
    "<eos>",
    "</s>",
)


def strip_eos(text: str) -> str:
    """``text`` without trailing end-of-sequence markers (and the whitespace between them)."""
    changed = True
    while changed:
        changed = False
        stripped = text.rstrip()
        for marker in EOS_MARKERS:
            if stripped.endswith(marker):
                text = stripped[: -len(marker)]
                changed = True
    return text


def split_query(query: str, prompt: str | None, remove_eos: bool = True) -> tuple[str, str]:
    """(prompt, response) of an OpenRLHF query: the response is what follows the prompt.

    The response starts after the **first** occurrence of the prompt in the query: normally the
    query starts with it; a BOS token or a lossy detokenization may put text before it. The
    first occurrence, never a later one, so a response that repeats the prompt cannot hide what
    it wrote before the copy. Without a prompt, or when the query does not contain it, the whole
    query is the response. With ``remove_eos`` trailing end-of-sequence markers are removed
    (:func:`strip_eos`).
    """
    prompt = prompt or ""
    at = query.find(prompt) if prompt else -1
    response = query[at + len(prompt) :] if at >= 0 else query
    return prompt, strip_eos(response) if remove_eos else response


def label(value: Any) -> Any:
    """The reference of an OpenRLHF label: ``""`` (a dataset without labels) is no reference,
    as everywhere (:func:`rewardkit.data.record.as_reference`)."""
    return as_reference(value)
