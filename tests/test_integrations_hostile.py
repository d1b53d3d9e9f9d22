"""Hostile arguments to the TRL / verl / OpenRLHF adapters: refused with an error naming the
argument (and index), never silently dropped or scored as something else
(repro: r13_integrations.py, r14_inf_through_adapters.py)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pytest

import rewardkit.integrations.openrlhf as orl
import rewardkit.integrations.verl as vrl
from rewardkit.integrations._common import as_prompt, as_response
from rewardkit.integrations.trl import reward_func
from rewardkit.types import Capability, Query, Reward, ScoreResult

EM = "rule:exact_match"
P = ["q1", "q2"]


class Table(Reward):
    """A fixed score per response text; ``parts`` adds components (no model)."""

    def __init__(self, table: dict[str, float], parts: dict[str, dict[str, float]] | None = None):
        self.table, self.parts, self.name = table, parts or {}, "table"

    def identity(self) -> dict:
        return {"class": "Table", "name": self.name, "table": repr(self.table)}

    def _score(self, queries: Sequence[Query]) -> ScoreResult:
        scores = np.array([self.table[q.response] for q in queries], dtype=np.float64)
        comps = {
            k: np.array([t[q.response] for q in queries], dtype=np.float64)
            for k, t in self.parts.items()
        }
        return ScoreResult(scores, components=comps)


class Parts(Table):
    capabilities = frozenset({Capability.COMPONENTS})


# --- TRL columns -------------------------------------------------------------------------------


@pytest.mark.parametrize("col", ["ground_truth", "data_source", "reference", "other"])
def test_trl_wrong_length_column_is_refused_naming_it(col):
    with pytest.raises(ValueError, match=f"column '{col}' has 3 values for 2 completions"):
        reward_func(EM)(P, ["4", "5"], **{"ground_truth": ["4", "4"], col: ["4", "4", "4"]})


def test_trl_wrong_length_reference_column_is_refused_naming_it():
    rf = reward_func(EM, reference_column="gold")
    with pytest.raises(ValueError, match="column 'gold' has 1 values for 2 completions"):
        rf(P, ["4", "5"], gold=["4"])


@pytest.mark.parametrize("wrap", [np.array, tuple, lambda v: np.array(v, dtype=object)])
def test_trl_numpy_and_tuple_columns_are_read(wrap):
    assert reward_func(EM)(P, ["4", "5"], ground_truth=wrap(["4", "4"])) == [1.0, 0.0]
    route = reward_func({"route": {"a": EM, "b": EM}})
    out = route(P, ["4", "5"], ground_truth=wrap(["4", "4"]), data_source=wrap(["a", "b"]))
    assert out == [1.0, 0.0]


def test_trl_numpy_scalar_columns_reach_meta_as_python_values():
    rf = reward_func(EM)
    qs = rf.queries(P, ["4", "5"], {"ground_truth": ["4", "4"], "idx": np.array([3, 4])})
    assert [q.meta["idx"] for q in qs] == [3, 4]
    assert all(type(q.meta["idx"]) is int for q in qs)


def test_trl_keywords_that_are_not_columns_are_still_ignored():
    # TRL's own keywords (trainer_state, log_metric, environments...) and scalars are no columns
    out = reward_func(EM)(
        P, ["4", "5"], ground_truth=["4", "4"], environments=[1, 2, 3], trainer_state=None, x=3
    )
    assert out == [1.0, 0.0]


# --- completions and prompts -------------------------------------------------------------------


def test_completion_list_of_strings_is_refused_naming_the_index():
    with pytest.raises(TypeError, match=r"completions\[0\]\[0\] is str.*pass plain text"):
        reward_func(EM)(P, [["4"], "5"], ground_truth=["4", "4"])


@pytest.mark.parametrize("msg", [{"role": "assistant"}, {"role": "assistant", "content": None}])
def test_completion_message_without_content_is_refused_naming_the_index(msg):
    with pytest.raises(ValueError, match=r"completions\[1\]\[0\] is an assistant message without"):
        reward_func(EM)(P, ["4", [msg]], ground_truth=["4", "4"])


def test_completion_without_assistant_message_is_refused():
    with pytest.raises(ValueError, match=r"completions\[0\] has no assistant message"):
        reward_func(EM)(P, [[{"role": "tool", "content": "4"}], "5"], ground_truth=["4", "4"])
    with pytest.raises(ValueError, match=r"completions\[0\] has no assistant message"):
        reward_func(EM)(P, [[], "5"], ground_truth=["4", "4"])


def test_conversational_completions_still_read_as_today():
    conv = [
        [{"role": "assistant", "content": "4"}],
        [{"content": [{"type": "text", "text": "4"}]}],  # no role: assistant; multimodal parts
        # a tool-call turn may carry no text (TRL normalizes it to ""; None is accepted too)
        [
            {"role": "assistant", "content": None, "tool_calls": [{"type": "function"}]},
            {"role": "tool", "content": "12"},
            {"role": "assistant", "content": "4"},
        ],
    ]
    # tools41: the tool-call turn reads as its (here malformed) call, as verl's decoded text
    # holds it, so exact_match no longer sees "4" alone there; the last turn is still read
    assert reward_func(EM)(["q"] * 3, conv, ground_truth=["4"] * 3) == [1.0, 1.0, 0.0]
    assert as_response(conv[2]).endswith("</tool_call>\n4")
    assert as_response("x") == "x"


def test_prompt_message_without_role_is_refused_naming_the_index():
    with pytest.raises(ValueError, match=r"prompts\[0\]\[0\] has no 'role'"):
        reward_func(EM)([[{"content": "q"}], "q2"], ["4", "5"], ground_truth=["4", "4"])
    with pytest.raises(TypeError, match=r"prompts\[1\]\[0\] is str"):
        reward_func(EM)(["q", ["q"]], ["4", "5"], ground_truth=["4", "4"])
    assert as_prompt([{"role": "system", "content": None}]) == [{"role": "system", "content": ""}]


# --- verl --------------------------------------------------------------------------------------


def test_verl_solution_none_is_refused_not_scored_as_the_text_none():
    with pytest.raises(TypeError, match="solution_str must be the decoded response text"):
        vrl.compute_score("x", None, "None", None, spec=EM)
    with pytest.raises(TypeError, match=r"solution_strs\[1\] must be the decoded response text"):
        vrl.compute_score_batch(["x", "x"], ["4", None], ["4", "None"], spec=EM)


def test_verl_batch_short_extra_infos_names_the_argument_and_lengths():
    with pytest.raises(ValueError, match="extra_infos has 1 values for 2 responses"):
        vrl.compute_score_batch(["x", "x"], ["4", "5"], ["4", "4"], [None], spec=EM)
    with pytest.raises(ValueError, match="data_sources has 1 values for 2 responses"):
        vrl.compute_score_batch(["x"], ["4", "5"], ["4", "4"], spec=EM)
    with pytest.raises(ValueError, match="ground_truths has 3 values for 2 responses"):
        vrl.compute_score_batch(["x", "x"], ["4", "5"], ["4", "4", "4"], spec=EM)


def test_verl_batch_refuses_a_dict_or_text_where_a_list_is_due():
    # list({"a": 1, "b": 2}) would have been two extra_infos "a" and "b"
    with pytest.raises(TypeError, match="extra_infos must be a list"):
        vrl.compute_score_batch(["x", "x"], ["4", "5"], ["4", "4"], {"a": 1, "b": 2}, spec=EM)
    with pytest.raises(TypeError, match="solution_strs must be a list"):
        vrl.compute_score_batch(["x", "x"], "45", ["4", "4"], spec=EM)


def test_verl_batch_accepts_numpy_arrays_as_verl_passes_them():
    out = vrl.compute_score_batch(
        np.array(["x", "x"], dtype=object),
        np.array(["4", "5"], dtype=object),
        np.array(["4", "4"], dtype=object),
        np.array([{"prompt": "2+2?"}, None], dtype=object),
        spec=EM,
    )
    assert [r["score"] for r in out] == [1.0, 0.0]


def test_verl_unknown_keyword_warns_once_and_verls_own_do_not(monkeypatch):
    monkeypatch.setattr(vrl, "_WARNED", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # the reward loop's extras (verl 0.9 with a reward router): no warning
        out = vrl.compute_score(
            "x", "4", "4", None, spec=EM, reward_router_address="h:1", reward_model_tokenizer=None
        )
        assert out["score"] == 1.0 and not caught
        vrl.compute_score("x", "4", "4", None, spec=EM, spce=EM)
        vrl.compute_score("x", "4", "4", None, spec=EM, spce=EM)
        vrl.compute_score_batch(["x"], ["4"], ["4"], spec=EM, spce=EM)
    assert len(caught) == 1
    assert "unknown keyword(s) ['spce']" in str(caught[0].message)


# --- infinite scores ---------------------------------------------------------------------------


def test_infinite_score_is_refused_by_every_adapter():
    r = Table({"a": float("inf"), "b": 0.5})
    with pytest.raises(ValueError, match=r"'table' scores\[0\] is inf: a reward must be finite"):
        reward_func(r)(["q", "q"], ["a", "b"])
    with pytest.raises(ValueError, match=r"'table' scores\[0\] is inf"):
        vrl.compute_score_batch(["s", "s"], ["a", "b"], [None, None], spec=r)
    with pytest.raises(ValueError, match=r"'table' scores\[0\] is inf"):
        vrl.compute_score("s", "a", None, spec=r)
    with pytest.raises(ValueError, match=r"'table' scores\[1\] is -inf"):
        orl.score_queries(["b", "a"], ["", ""], None, spec=Table({"a": -np.inf, "b": 0.5}))


def test_infinite_component_is_refused_where_it_becomes_a_reward_value():
    r = Parts({"a": 1.0, "b": 0.5}, parts={"m": {"a": 1.0, "b": float("inf")}})
    with pytest.raises(ValueError, match=r"component 'm' scores\[1\] is inf"):
        vrl.compute_score_batch(["s", "s"], ["a", "b"], [None, None], spec=r)
    with pytest.raises(ValueError, match=r"component 'm' scores\[1\] is inf"):
        orl.score_queries(["a", "b"], ["", ""], None, spec=r)


def test_infinite_value_from_shape_is_refused():
    rf = reward_func(Table({"a": 1.0, "b": 0.5}), shape=lambda s, q: s / 0.0)
    with np.errstate(divide="ignore"), pytest.raises(ValueError, match=r"shape\(\.\.\.\) scores"):
        rf(["q", "q"], ["a", "b"])


def test_nan_still_means_does_not_apply_in_every_adapter():
    r = Table({"a": float("nan"), "b": 0.5})
    assert reward_func(r)(["q", "q"], ["a", "b"]) == [None, 0.5]
    out = vrl.compute_score_batch(["s", "s"], ["a", "b"], [None, None], spec=r)
    assert out == [
        {"score": 0.0, "applies": 0.0, "failed": 0.0},
        {"score": 0.5, "applies": 1.0, "failed": 0.0},
    ]


# --- OpenRLHF ----------------------------------------------------------------------------------


def test_openrlhf_none_query_is_refused_naming_the_index():
    with pytest.raises(TypeError, match=r"queries\[0\] must be the decoded prompt \+ response"):
        orl.score_queries([None, "q5"], ["q", "q"], ["4", "4"], spec=EM)
    with pytest.raises(TypeError, match=r"prompts\[1\] must be the prompt text"):
        orl.score_queries(["q4", "q5"], ["q", 3], ["4", "4"], spec=EM)


def test_openrlhf_labels_as_text_or_dict_are_refused():
    # list("44") would have been two labels, list({...}) the keys
    with pytest.raises(TypeError, match="labels must be a list"):
        orl.score_queries(["q4", "q5"], ["q", "q"], "44", spec=EM)
    with pytest.raises(TypeError, match="labels must be a list"):
        orl.score_queries(["q4", "q5"], ["q", "q"], {"a": 1, "b": 2}, spec=EM)
    out = orl.score_queries(["q4", "q5"], ["q", None], np.array(["4", "4"]), spec=EM)
    assert np.asarray(out["rewards"]).tolist() == [1.0, 0.0]
