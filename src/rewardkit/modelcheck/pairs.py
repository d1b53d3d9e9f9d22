"""The built-in chat pairs ``rewardkit check-model`` scores (no files, no randomness).

They cover what breaks reward-model scoring in practice: single and multi-turn chats, system
prompts, a response that repeats the previous turn, very short and long inputs (past a small
``max_length`` they are truncated), non-ASCII text, and pairs built to probe pooling: two chats
equal up to and past their first end-of-turn that differ only in the last response, and two
that differ only in the final characters of the response.
"""

from __future__ import annotations

import itertools

from rewardkit.types import Message, Query, assistant, user

SYSTEM: Message = {"role": "system", "content": "You are a careful, concise assistant."}
LONG_TEXT = " ".join(
    f"Step {i}: the committee reviewed item {i} and recorded that it met every requirement."
    for i in range(1, 121)
)
MULTI_TURN = [
    user("Can you suggest a name for a grey cat?"),
    assistant("How about Ash?"),
    user("Something longer, please."),
]


def chat_queries() -> list[Query]:
    """The checked queries, in a fixed order."""
    return [
        Query([user("What is 12 * 12?")], "12 * 12 = 144."),
        Query([user("What is 12 * 12?")], "It is 124."),
        Query([SYSTEM, user("Translate 'thank you' to French.")], "Merci."),
        Query([SYSTEM, user("Translate 'thank you' to French.")], "Gracias."),
        Query(list(MULTI_TURN), "Sir Reginald Cinderpaws."),
        Query(list(MULTI_TURN), "Ash."),
        Query([SYSTEM, *MULTI_TURN], "Perhaps Professor Smokey Whiskerton."),
        Query([user("hi")], "Hello! How can I help?"),
        Query(
            [user("Résumé the plot of Faust in one line, s'il vous plaît.")],
            "Un savant vend son âme à Méphistophélès pour le savoir et l'amour.",
        ),
        Query([user("Summarise these minutes.\n" + LONG_TEXT)], "Every item met its requirements."),
        Query([user("List the steps.")], LONG_TEXT),
    ]


def probe_pairs() -> list[tuple[Query, Query, str]]:
    """(a, b, what differs): pairs whose scores a sound model should tell apart."""
    return [
        (
            Query(list(MULTI_TURN), "Sir Reginald Cinderpaws the Third."),
            Query(list(MULTI_TURN), "no"),
            "the last response, after the first end-of-turn",
        ),
        (
            Query([SYSTEM, user("Name a prime number.")], "Seven is prime."),
            Query([SYSTEM, user("Name a prime number.")], "Nine is prime."),
            "the response, after the system turn",
        ),
        (
            Query([user("Finish the sentence: the sky is")], "blue during a clear day"),
            Query([user("Finish the sentence: the sky is")], "blue during a clear night"),
            "only the response's last word",
        ),
    ]


def chat_pairs() -> list[tuple[list[Message], str, str]]:
    """(prompt, a, b) pairs for pairwise families, from consecutive queries on one prompt."""
    qs = chat_queries()
    out = []
    for a, b in itertools.pairwise(qs):
        if a.prompt == b.prompt:
            out.append((list(a.prompt), str(a.response), str(b.response)))
    out.append((list(MULTI_TURN), "Ash.", LONG_TEXT))
    return out
