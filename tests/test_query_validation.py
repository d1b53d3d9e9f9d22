"""A malformed Query or reward spec is named where it is given, not deep inside a tokenizer."""

from __future__ import annotations

import pytest

from rewardkit import Query, load_reward
from rewardkit.types import user


@pytest.mark.parametrize(
    "prompt, response, where",
    [
        ([{"role": "user"}], "4", r"Query.prompt\[0\] has no 'content'"),
        ([{"content": "hi"}], "4", r"Query.prompt\[0\] must be a message with a string 'role'"),
        (["hi"], "4", r"Query.prompt\[0\] must be a message"),
        ([user("hi")], None, r"Query.response must be text"),
        ([user("hi")], b"4", r"Query.response must be text"),
        ([user("hi")], ["four"], r"Query.response must be text"),
        ([user(5)], "4", r"Query.prompt\[0\]\['content'\] must be text"),
        (5, "4", r"Query.prompt must be a list of messages"),
    ],
)
def test_malformed_queries_are_named(prompt, response, where):
    with pytest.raises(TypeError, match=where):
        Query(prompt, response)


def test_a_string_prompt_is_one_user_message():
    q = Query("What is 2+2?", "4")
    assert q.prompt == [user("What is 2+2?")]
    assert q.key() == Query([user("What is 2+2?")], "4").key()
    assert load_reward("rule:length?unit=chars").score([q])[0] == 1.0


def test_spec_mistakes_are_named():
    from rewardkit.errors import SpecError

    with pytest.raises(SpecError, match=r"spec file 'configs/typo\.yaml' not found"):
        load_reward("configs/typo.yaml")
    with pytest.raises(SpecError, match="option 'unit' is given twice"):
        load_reward("rule:length?unit=words&unit=chars")
