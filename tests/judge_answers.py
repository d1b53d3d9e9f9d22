"""Chat-completions answers for the HTTP judge tests (built by hand, served by a loopback proxy)."""

from __future__ import annotations


def chat(content, tokens=None, finish_reason="stop"):
    """A chat-completions answer; ``tokens``: ``(token, {candidate: logprob})`` per position."""
    choice = {"index": 0, "message": {"role": "assistant", "content": content}}
    choice["finish_reason"] = finish_reason
    if tokens is not None:
        choice["logprobs"] = {
            "content": [
                {
                    "token": t,
                    "logprob": tops.get(t, -0.1),
                    "top_logprobs": [{"token": k, "logprob": v} for k, v in tops.items()],
                }
                for t, tops in tokens
            ]
        }
    return {"choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": 1}}


def spoken(*tokens):
    """An answer whose text is its tokens joined (as servers send them)."""
    return chat("".join(t for t, _ in tokens), list(tokens))
