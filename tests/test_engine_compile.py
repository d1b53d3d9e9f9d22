"""``EngineConfig.compile``: the automatic policy, the eager fallback, and compiled scores equal to
eager ones (fp32 within 1e-4) in every layout, and the shared layout on dense masks kept eager
(rewardkit.engine.compiling)."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from rewardkit.engine import compiling
from rewardkit.engine.config import EngineConfig
from rewardkit.registry import load_reward
from rewardkit.types import Query, user
from train_helpers import tiny_llama


def _queries(n: int = 12) -> list[Query]:
    # Prompts and answers of very different lengths: many batch shapes, shared prompts.
    prompts = [
        "Explain in detail why the sky looks blue on a clear day, and what changes at sunset.",
        "Hi",
        "What is 17 times 23? Show the steps, one line each, and check the result twice.",
    ]
    answers = [
        "Rayleigh scattering.",
        "391, since 17 * 20 + 17 * 3 = 340 + 51.",
        "ok",
        "Short light scatters more, so blue fills the sky; at sunset the path is longer.",
    ]
    return [Query(prompt=[user(p)], response=a) for p in prompts for a in answers][:n]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("compile_models") / "cls")


def _reward(model, **extra):
    # One pass at a time: with passes at once "auto" stays eager (tests/test_engine_workers.py).
    options = {"progress": False, "layout": "padded", "dtype": "float32", "workers": 1, **extra}
    return load_reward(f"classifier:{model}", engine_defaults=options)


@pytest.fixture(autouse=True)
def _own_records(tmp_path, monkeypatch):
    monkeypatch.setenv("REWARDKIT_CACHE", str(tmp_path / "cache"))  # warm-up records
    monkeypatch.setattr(compiling, "_WARNED", set())


def test_worth_compiling_weighs_the_saving_against_the_warmup():
    # 40 s eager left at 1.6x: 40 * (1 - 1/1.6) = 15 s saved > 12 s warm-up.
    assert compiling.worth_compiling(40.0, 12.0, 1.6)
    assert not compiling.worth_compiling(20.0, 12.0, 1.6)  # 7.5 s saved
    assert compiling.worth_compiling(20.0, 3.0, 1.6)  # a warm inductor cache
    assert not compiling.worth_compiling(1e6, 1.0, 1.0)  # no measured gain: never


def test_outputs_agree_within_the_dtype_tolerance():
    eager = [np.array([1.0]), np.array([-2.0, np.nan])]
    assert compiling.outputs_agree(eager, [np.array([1.002]), np.array([-2.0, np.nan])], "fp32")
    assert not compiling.outputs_agree(eager, [np.array([1.01]), np.array([-2, np.nan])], "fp32")
    assert compiling.outputs_agree(eager, [np.array([1.2]), np.array([-2, np.nan])], "bf16")
    assert not compiling.outputs_agree(eager, [np.array([1.0]), np.array([-2.0, 0.0])], "fp32")
    assert not compiling.outputs_agree(eager, [np.array([np.inf]), np.array([-2, np.nan])], "bf16")


def test_compile_option_is_auto_by_default_and_parsed_from_specs():
    assert EngineConfig().compile == "auto"
    assert EngineConfig(compile="true").compile is True
    assert EngineConfig(compile="False").compile is False
    with pytest.raises(ValueError, match="compile must be auto, true or false"):
        EngineConfig(compile="sometimes")


def test_warmup_records_survive_the_process(tmp_path):
    key = "torch|Llama|32|2|bfloat16|cpu"
    import torch

    assert compiling.expected_warmup(key, torch.device("cpu")) == compiling.DEFAULT_WARMUP["cpu"]
    compiling.record_warmup(key, 2.5)
    assert compiling.expected_warmup(key, torch.device("cpu")) == 2.5


def test_small_jobs_stay_eager_under_auto(model):
    reward = _reward(model, max_batch_size=2)
    full = reward.score_full(_queries())
    assert full.stats["batches"] > 2 and full.stats["compile"] == "eager"
    body = reward.engine.adapter.backbone()
    assert all(b._compiled_call_impl is None for b in compiling.blocks(body))


def test_no_cpp_compiler_falls_back_to_eager_with_one_warning(model, monkeypatch):
    from torch._inductor import config as inductor_config

    # eager in the fallback's batches of 2: other batch shapes move float32 scores by ~1e-6
    eager = _reward(model, compile=False, max_batch_size=2).score(_queries())
    reward = _reward(model, compile=True, max_batch_size=2)
    with (
        inductor_config.patch({"cpp.cxx": ("/nonexistent/c++",)}),
        warnings.catch_warnings(record=True) as seen,
    ):
        warnings.simplefilter("always")
        full = reward.score_full(_queries())
        reward.engine_variant(compile=True).score_full(_queries())  # the model is marked failed
    lines = [str(w.message) for w in seen if issubclass(w.category, compiling.CompileWarning)]
    assert lines == [
        "torch.compile unavailable, scoring eagerly (no C++ compiler found (/nonexistent/c++))"
    ]
    assert full.stats["compile"] == "fallback"
    np.testing.assert_allclose(full.scores, eager, atol=1e-6, rtol=0)


@pytest.mark.slow  # traces the blocks and runs a failing C++ build (~10 s on two cores)
def test_a_failing_compiler_build_falls_back_without_a_traceback(model, monkeypatch, capfd):
    import torch
    from torch._inductor import config as inductor_config

    eager = _reward(model, compile=False, max_batch_size=2).score(_queries())  # the same batches
    reward = _reward(model, compile=True, max_batch_size=2)
    # graphs an earlier test in this process built for the same block shapes would serve these
    # blocks without building anything (then there is no failure to fall back from)
    torch._dynamo.reset()
    with (
        inductor_config.patch({"cpp.cxx": ("false",), "force_disable_caches": True}),
        pytest.warns(compiling.CompileWarning, match="scoring eagerly"),
    ):
        full = reward.score_full(_queries())
    assert full.stats["compile"] == "fallback"
    assert "Traceback" not in capfd.readouterr().err
    np.testing.assert_allclose(full.scores, eager, atol=1e-6, rtol=0)


@pytest.mark.slow  # compiles the tiny model's blocks once per layout (~10-20 s each)
@pytest.mark.parametrize("layout", ["padded", "packed"])  # shared: test_stop49_compiled_layouts
def test_compiled_scores_equal_eager_in_every_layout(model, layout, monkeypatch, capfd):
    import torch
    from torch._dynamo.utils import counters

    queries = _queries()
    extra = {"layout": layout, "min_shared_prefix": 4, "pack_length": 96, "max_batch_size": 2}
    eager = _reward(model, compile=False, **extra)  # its own copy of the weights
    adapter = eager.engine.adapter
    plain = np.array([float(adapter.plain(row)[0]) for row in eager.encode(queries)])
    # "auto" on a job this small compiles only when told the gain is large and the warm-up free.
    monkeypatch.setitem(compiling.SPEEDUP, ("cpu", "float32", layout), 100.0)
    monkeypatch.setitem(compiling.DEFAULT_WARMUP, "cpu", 0.0)
    monkeypatch.setattr(compiling, "MIN_GAIN_SECONDS", 0.0)  # the tiny model is fast
    torch._dynamo.reset()
    reward = _reward(model, compile="auto", **extra)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        full = reward.score_full(queries)
    assert full.stats["layout"] == layout and full.stats["compile"] == "compiled"
    # One graph serves every block: the layer index reaches the layout's attention operator as
    # a tensor, not an int dynamo would specialise on (its recompile-limit warnings).
    assert not [w for w in seen if "recompile" in str(w.message).lower()]
    assert "recompile" not in capfd.readouterr().err.lower()
    body = reward.engine.adapter.backbone()
    # The run measured its compiled steps against its eager first one and recorded the gain.
    key = compiling.model_key(body, "float32", torch.device("cpu"))
    from rewardkit.models.embedded import read_record

    assert read_record(compiling.GAIN_RECORD)[f"{key}|{layout}"] > 0
    assert all(b._compiled_call_impl is not None for b in compiling.blocks(body))
    np.testing.assert_allclose(full.scores, plain, atol=1e-4, rtol=0)
    if layout != "padded":
        return  # the recompile bound is checked on the layout "auto" compiles most
    # Dynamic shapes: after a first round of batch sizes (size 1 is specialised) and lengths,
    # new shapes reuse the graphs instead of compiling one per batch.
    for n in (1, 3, 12):
        again = reward.engine_variant(max_batch_size=n).score_full(queries[:n])
        np.testing.assert_allclose(again.scores, plain[:n], atol=1e-4, rtol=0)
    graphs = counters["stats"]["unique_graphs"]
    for n, start in ((2, 5), (5, 1), (7, 4), (9, 2)):
        again = reward.engine_variant(max_batch_size=n).score_full(queries[start : start + n])
        np.testing.assert_allclose(again.scores, plain[start : start + n], atol=1e-4, rtol=0)
        assert again.stats["compile"] == "compiled"
    assert counters["stats"]["unique_graphs"] - graphs <= 1


def test_shared_layout_on_dense_masks_asked_to_compile_runs_eagerly_with_one_warning(model):
    extra = {"layout": "shared", "attention": "dense", "min_shared_prefix": 4}
    reward = _reward(model, compile=True, max_batch_size=2, **extra)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        full = reward.score_full(_queries())
        reward.score_full(_queries()[:5])
    lines = [str(w.message) for w in seen if issubclass(w.category, compiling.CompileWarning)]
    assert lines == [
        f"compile does not apply to the {compiling.DENSE_SHARED} layout; scoring it eagerly"
    ]
    assert full.stats["layout"] == "shared" and full.stats["compile"] == "eager"
    body = reward.engine.adapter.backbone()
    assert all(b._compiled_call_impl is None for b in compiling.blocks(body))


@pytest.mark.slow  # compiles the tiny model's blocks once (~10-20 s)
def test_the_compile_check_reruns_two_rows_of_a_padded_step_not_the_whole_step(model, monkeypatch):
    import torch

    from rewardkit.engine.runner import Engine

    queries = _queries()
    plain_reward = _reward(model, compile=False)
    adapter = plain_reward.engine.adapter
    plain = np.array([float(adapter.plain(row)[0]) for row in plain_reward.encode(queries)])
    sizes: list[int] = []
    run_batch = Engine.run_batch

    def counted(self, rows):
        sizes.append(len(rows))
        return run_batch(self, rows)

    monkeypatch.setattr(Engine, "run_batch", counted)
    torch._dynamo.reset()
    full = _reward(model, compile=True, max_batch_size=4).score_full(queries)
    assert full.stats["compile"] == "compiled"
    assert sizes == [4, 2, 4, 4]  # eager first step, the two-row check, the compiled rest
    np.testing.assert_allclose(full.scores, plain, atol=1e-4, rtol=0)


def test_eager_blocks_restores_the_stance_after_interleaved_users():
    import threading

    from torch._dynamo import eval_frame

    before = eval_frame._stance.stance

    def user(inside: threading.Event, leave: threading.Event) -> threading.Thread:
        def body():
            with compiling.eager_blocks():
                inside.set()
                leave.wait()

        thread = threading.Thread(target=body)
        thread.start()
        inside.wait()
        return thread

    # First in, first out: a plain set_stance per user would leave the second one's "prior"
    # stance (force_eager) behind when it exits last.
    (a_in, a_out), (b_in, b_out) = [(threading.Event(), threading.Event()) for _ in range(2)]
    a = user(a_in, a_out)
    b = user(b_in, b_out)
    assert eval_frame._stance.stance == "force_eager"
    a_out.set()
    a.join()
    assert eval_frame._stance.stance == "force_eager"  # b is still inside
    b_out.set()
    b.join()
    assert eval_frame._stance.stance == before
    with compiling.eager_blocks(), compiling.eager_blocks():  # nested in one thread
        assert eval_frame._stance.stance == "force_eager"
    assert eval_frame._stance.stance == before


def test_measured_speedup_compares_seconds_per_unit_of_work(monkeypatch):
    # Eager: 2.0 s for 1,000 units; compiled: 1.5 s for 1,500 units -> 2 ms against 1 ms: 2x.
    assert compiling.measured_speedup((2.0, 1000.0), (1.5, 1500.0)) == pytest.approx(2.0)
    # Compiled steps shorter than MIN_GAIN_SECONDS are noise: nothing to record.
    assert compiling.measured_speedup((2.0, 1000.0), (0.5, 500.0)) is None
    assert compiling.measured_speedup((0.0, 1000.0), (1.5, 1500.0)) is None


def test_a_recorded_speedup_overrides_the_project_table():
    import torch

    cpu, key = torch.device("cpu"), "torch|Llama|32|2|bfloat16|cpu"
    assert compiling.expected_speedup(key, cpu, "bf16", "padded") == 1.6  # SPEEDUP's entry
    assert compiling.expected_speedup(key, cpu, "bf16", "shared") == 1.15  # SPEEDUP's entry
    assert compiling.expected_speedup(key, cpu, "fp32", "shared") == 1.0  # none: never auto
    compiling.record_speedup(key, "padded", 1.07)
    assert compiling.expected_speedup(key, cpu, "bf16", "padded") == 1.07
    assert compiling.expected_speedup(key, cpu, "bf16", "packed") == 1.6  # per layout


def test_a_compiled_run_records_its_gain_over_its_eager_first_step(model, monkeypatch):
    import torch

    # The gate's own timing, without building kernels: the "compiled" steps are made 4x faster.
    monkeypatch.setattr(compiling, "compile_body", lambda body, dtype: 0)
    monkeypatch.setattr(compiling, "missing_compiler", lambda device: None)
    monkeypatch.setattr(compiling, "MIN_GAIN_SECONDS", 0.1)
    body = _reward(model).engine.adapter.backbone()
    lengths = [40, 40]
    gate = compiling.CompileGate(True, body, torch.device("cpu"), "float32", "padded", 5 * 80)

    gate.run(lengths, _sleeping_step(0.2), (1, 40, lambda: [np.array([1.0])]))
    assert gate.outcome == "compiled"
    key = compiling.model_key(body, "float32", torch.device("cpu"))
    built = iter([0, 1, 1, 1, 1, 1, 1, 1])  # dynamo builds a graph during the first step only
    monkeypatch.setattr(compiling, "graphs_built", lambda: next(built))
    slow_first = [_sleeping_step(0.6)] + [_sleeping_step(0.05)] * 3
    for run in slow_first:
        assert compiling.expected_speedup(key, torch.device("cpu"), "float32", "padded") == 1.0
        gate.run(lengths, run)
    # Recorded after the run's last step: 0.2 s against 0.05 s per step of equal work (the
    # 0.6 s step that compiled a graph for a new shape is left out; counted, it would be 1.07).
    gain = compiling.expected_speedup(key, torch.device("cpu"), "float32", "padded")
    assert 3.0 < gain <= 4.2
    # ... and that step's time beyond the compiled speed is warm-up too: the probe's (0 here)
    # plus 0.6 - 0.05 s, so auto weighs the whole cost of compiling (it saw only the probe's)
    assert 0.45 < compiling.expected_warmup(key, torch.device("cpu")) < 0.8  # sleeps overshoot


def test_late_warmup_is_the_building_steps_time_beyond_the_compiled_rate():
    # two building steps of 2 and 1 work units at 0.1 s per unit compiled
    assert compiling.late_warmup(
        [(3.0, 2.0), (0.5, 1.0)], (1.0, 10.0), (8.0, 4.0)
    ) == pytest.approx(3.2)
    # no compiled step timed: the eager rate (2 s per unit) stands in; never below 0
    assert compiling.late_warmup([(3.0, 1.0), (1.0, 1.0)], (0.0, 0.0), (8.0, 4.0)) == 1.0
    assert compiling.late_warmup([], (1.0, 10.0), (8.0, 4.0)) == 0.0


def test_auto_stays_eager_where_this_machine_measured_no_gain(model, monkeypatch):
    import torch

    monkeypatch.setitem(compiling.SPEEDUP, ("cpu", "float32", "padded"), 100.0)
    monkeypatch.setitem(compiling.DEFAULT_WARMUP, "cpu", 0.0)
    reward = _reward(model, compile="auto", max_batch_size=2)
    body = reward.engine.adapter.backbone()
    compiling.record_speedup(
        compiling.model_key(body, "float32", torch.device("cpu")), "padded", 1.0
    )
    full = reward.score_full(_queries())
    assert full.stats["compile"] == "eager"
    assert all(b._compiled_call_impl is None for b in compiling.blocks(body))


def test_auto_layout_weighs_what_compiling_each_plan_may_gain(model, monkeypatch):
    """``layout=auto`` divides each plan's cost by the gain compiling it may bring: none with
    compile off, on dense-mask sharing, or (under ``auto``) before this machine measured one;
    the measured gain, else the project's, with ``compile=True``."""
    import torch

    cpu = torch.device("cpu")
    body = _reward(model).engine.adapter.backbone()
    key = compiling.model_key(body, "bfloat16", cpu)

    def gain(mode, layout="padded", dtype="bf16", on=body):
        return compiling.layout_gain(mode, on, cpu, dtype, layout)

    assert gain(False) == 1.0
    assert gain("auto") == 1.0  # nothing measured here yet
    assert gain(True) == 1.6 and gain(True, "shared") == 1.15  # SPEEDUP's entries
    assert gain(True, compiling.DENSE_SHARED) == 1.0  # never compiled
    assert gain(True, dtype="int8") == 1.0  # int8 never compiles
    compiling.record_speedup(key, "padded", 1.3)
    assert gain("auto") == 1.3
    assert gain(True) == 1.3  # this machine's measurement over the project's table
    assert gain(True, "shared") == 1.15  # per layout
    compiling.record_speedup(key, "padded", 0.8)  # compiled ran slower: eager padded
    assert gain("auto") == 1.0 and gain(True) == 1.0
    assert gain(True, on=None) == 1.0

    # Shared prompts that sharing saves ~half of: auto shares them with compile off, and runs
    # them padded when compiling the padded plan is taken to gain 100x.
    prompt = [user("Read this long question twice before you answer it, please. " * 6)]
    rows = [Query(prompt=prompt, response=a) for a in ("Yes.", "No, not at all.", "Maybe")]
    eager = _reward(model, layout="auto", compile="false", shared_overhead=0.1)
    assert eager.engine.plan_layout(eager.encode(rows)).layout == "shared"
    monkeypatch.setitem(compiling.SPEEDUP, ("cpu", "float32", "padded"), 100.0)
    forced = _reward(model, layout="auto", compile="true", shared_overhead=0.1)
    assert forced.engine.plan_layout(forced.encode(rows)).layout == "padded"


def test_the_gain_is_measured_per_unit_of_the_work_each_step_was_planned_at(model, monkeypatch):
    """A shared batch runs far fewer tokens than its rows hold: the gate takes each step's
    planned cost (``work``) over its rows' padded cost (a first shared step that shared
    little against later ones that shared much recorded a gain of 2.7 for no compiled gain)."""
    import torch

    monkeypatch.setattr(compiling, "compile_body", lambda body, dtype: 0)
    monkeypatch.setattr(compiling, "missing_compiler", lambda device: None)
    monkeypatch.setattr(compiling, "MIN_GAIN_SECONDS", 0.1)
    monkeypatch.setattr(compiling, "graphs_built", lambda: 0)
    body = _reward(model).engine.adapter.backbone()
    gate = compiling.CompileGate(True, body, torch.device("cpu"), "float32", "shared", 4 * 80)

    # equal rows, but the first step was planned at 4 units and the others at 1 each: the
    # compiled steps are no faster per unit (0.2 s / 4 against 0.05 s / 1)
    gate.run([40, 40], _sleeping_step(0.2), (1, 40, lambda: [np.array([1.0])]), work=4.0)
    for _ in range(3):
        gate.run([40, 40], _sleeping_step(0.05), work=1.0)
    key = compiling.model_key(body, "float32", torch.device("cpu"))
    gain = compiling.expected_speedup(key, torch.device("cpu"), "float32", "shared")
    assert 0.5 < gain < 1.6  # by the rows' lengths alone: 4.0 (wide: sleeps overshoot)


def _sleeping_step(seconds: float):
    """A step that takes ``seconds`` and gives two rows' outputs (the gate's timing only)."""

    def run():
        time.sleep(seconds)
        return [np.array([1.0]), np.array([2.0])]

    return run
