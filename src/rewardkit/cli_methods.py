"""CLI verbs of the research methods (docs/methods-research.md): ``rewardkit pal …``,
``rewardkit detect …``, ``rewardkit domain …``, ``rewardkit polar …``.

Thin shells over library functions; heavy modules are imported inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli_errors import finite, nonempty_path, number_in, output_path, user_errors
from rewardkit.evaluate.bootstrap import MAX_N_BOOT

pal_app = typer.Typer(
    help="PAL pluralistic reward models: persona data, training, few-shot users.",
    no_args_is_help=True,
)

DataOpt = Annotated[
    str, typer.Option(parser=nonempty_path, help="Input data: a file, directory or 'sample'.")
]
LimitOpt = Annotated[int | None, typer.Option(min=1, help="Read at most this many examples.")]
#: Seeds as ``rewardkit train`` takes them, [0, 2**32): a larger one failed after the data and
#: models loaded with "Overflow when unpacking long long" (torch.manual_seed).
SeedOpt = Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Random seed.")]
#: Upper bounds of the count options (a run past them would exhaust memory or never end).
MAX_STEPS = 1_000_000
MAX_LR = 10.0
StepsOpt = Annotated[int, typer.Option(min=1, max=MAX_STEPS, help="Optimizer steps.")]
LrOpt = Annotated[
    float,
    typer.Option(
        callback=number_in(0, MAX_LR, lo_open=True),
        help=f"Adam learning rate, in (0, {MAX_LR:g}].",
    ),
]


def out_option(help_text: str) -> Any:
    """An output path's option (a file or a model directory): ``''`` (an unset shell variable,
    which typer read as the current directory) is refused naming the option
    (:func:`rewardkit.cli_errors.output_path`)."""
    return typer.Option(parser=output_path, help=help_text)


def _outside(out: Path, data: str | Path | None, data_what: str = "--data") -> None:
    """Refuse an output that is the input file ``data`` or lies inside the input directory
    (the next run would read it back, or the input would be replaced)."""
    from rewardkit.data.sources import check_out_outside_data

    if data is not None:
        check_out_outside_data(out, data, "--out", data_what)


def _distinct(specs: list[str]) -> list[str]:
    """A typer callback refusing a reward spec given twice (its report would be one entry)."""
    twice = [s for i, s in enumerate(specs) if s in specs[:i]]
    if twice:
        raise typer.BadParameter(f"{twice[0]!r} is given more than once; give each reward once")
    return specs


def _file_out(path: Path, what: str = "--out") -> None:
    """Check a file output before any work (a directory, under a file, a folder that refuses
    files: all refused naming the option)."""
    from rewardkit.outputs import probe_writable

    probe_writable(path, what)


def _dir_out(path: Path, what: str = "--out") -> None:
    """Check a directory output before any work (an existing file is refused, not an
    ``[Errno 17] File exists`` after the training)."""
    from rewardkit.outputs import probe_writable

    probe_writable(path, what, directory=True)


def _load(data: str, limit: int | None = None) -> list[Any]:
    from rewardkit.data import load

    return load(data, limit=limit)


def _replay_buffer(replay: str | None, limit: int) -> list[Any] | None:
    """The ``--replay`` examples (None without it); a file given explicitly that holds none is
    refused: tuning would silently run without the replay term (card F8)."""
    if not replay:
        return None
    from rewardkit.errors import DataError

    buffer = _load(replay, limit)
    if not buffer:
        raise DataError(
            f"--replay {replay}: holds no examples; give a preference file with responses, or "
            "leave --replay out to tune without replay"
        )
    return buffer


def _echo(summary: dict[str, Any]) -> None:
    typer.echo(json.dumps(summary, indent=1, default=str))


@pal_app.command("personas")
def pal_personas(
    data: DataOpt,
    out: Annotated[Path, out_option("Output JSONL of user-labelled pairs.")],
    users_per_persona: Annotated[
        int, typer.Option(min=1, max=10_000, help="Simulated users per persona.")
    ] = 5,
    pairs_per_user: Annotated[
        int, typer.Option(min=1, max=100_000, help="Comparisons per user.")
    ] = 40,
    beta: Annotated[
        float, typer.Option(min=0, callback=finite, help="Label sharpness β of P = σ(β·Δu).")
    ] = 3.0,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Label real response pairs by simulated users with different personas (A10); at most
    200,000 pairs in all."""
    from rewardkit.curate.personas import PERSONAS, check_pair_count, persona_pairs
    from rewardkit.data.writer import write_jsonl

    with user_errors():
        _file_out(out)
        _outside(out, data)
        check_pair_count(len(PERSONAS), users_per_persona, pairs_per_user)
        pairs = persona_pairs(
            _load(data, limit), None, users_per_persona, pairs_per_user, beta, seed=seed
        )
        n = write_jsonl(pairs, out)
    _echo({"written": n, "users": len({p.meta["user"] for p in pairs}), "out": str(out)})


@pal_app.command("train")
def pal_train(
    data: DataOpt,
    out: Annotated[Path, out_option("Model directory to write (pal:DIR).")],
    form: Annotated[
        str, typer.Option(help="ideal (distance to ideal point) or mixture.")
    ] = "ideal",
    k: Annotated[int, typer.Option(min=1, max=256, help="Number of shared prototypes K.")] = 2,
    d_pref: Annotated[int, typer.Option(min=1, max=4096, help="Preference-space dimension.")] = 64,
    steps: StepsOpt = 400,
    lr: LrOpt = 3e-3,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")] = False,
) -> None:
    """Train PAL on frozen MiniLM features from records with a ``user`` field."""
    from rewardkit.train.pal import PALConfig, train_pal

    with user_errors():
        _dir_out(out)
        _outside(out, data)
        cfg = PALConfig(form, k, d_pref, steps, lr, seed=seed, progress=not no_progress)
        meta = train_pal(_load(data, limit), out, cfg, where=data)
    _echo({k_: meta[k_] for k_ in ("n_pairs", "train_accuracy", "final_loss", "population")})
    typer.echo(f"saved to {out}; score with -r 'pal:{out}?user=ID'")


@pal_app.command("adapt")
def pal_adapt(
    model: Annotated[Path, typer.Argument(parser=output_path, help="A PAL model directory.")],
    user: Annotated[str, typer.Option(help="The user to fit.")],
    data: DataOpt,
    steps: Annotated[
        int, typer.Option(min=1, max=MAX_STEPS, help="Optimizer steps on the user's logits.")
    ] = 200,
) -> None:
    """Fit one new user's mixture weights from a few comparisons (prototypes frozen)."""
    from rewardkit.train.pal import adapt_user

    with user_errors():
        weights = adapt_user(model, user, _load(data), steps, where=data)
    _echo({"user": user, "mixture": weights})


detect_app = typer.Typer(
    help="ReMoDetect: reward models as detectors of LLM-written text.", no_args_is_help=True
)


@detect_app.command("gsm8k")
def detect_gsm8k(
    out: Annotated[Path, out_option("Output JSONL of detection examples.")],
    data: Annotated[
        str, typer.Option(parser=nonempty_path, help="The GSM8K directory.")
    ] = "../shared/data/gsm8k",
    limit: LimitOpt = None,
) -> None:
    """Detection examples from GSM8K: four model solutions (LLM) and the reference (human)."""
    from rewardkit.curate.detection import gsm8k_detection
    from rewardkit.data.writer import write_jsonl

    with user_errors():
        _file_out(out)
        # only this file of the directory is read: an output beside it is never read back
        _outside(out, Path(data) / "example_model_solutions.jsonl", "GSM8K input")
        n = write_jsonl(gsm8k_detection(data, limit), out)
    _echo({"written": n, "out": str(out)})


@detect_app.command("eval")
def detect_eval(
    reward: Annotated[
        list[str],
        typer.Option("--reward", "-r", callback=_distinct, help="Reward spec (repeatable)."),
    ],
    data: DataOpt,
    fpr: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            callback=finite,
            help="False-positive rate for the TPR, a fraction in [0, 1] (0.01 = 1%).",
        ),
    ] = 0.01,
    n_boot: Annotated[
        int, typer.Option(min=1, max=MAX_N_BOOT, help=f"Bootstrap resamples (1-{MAX_N_BOOT:,}).")
    ] = 1000,
    limit: LimitOpt = None,
    out: Annotated[Path | None, out_option("Also write the reports as JSON.")] = None,
) -> None:
    """AUROC and TPR at a fixed FPR of each reward as an LLM-text detector (F8). Exit 1, and
    no --out, when a reward scores no text of a class (every score NaN)."""
    from rewardkit.evaluate.detect import check_classes, detect, unscored_classes
    from rewardkit.outputs import atomic_text, finite_json
    from rewardkit.registry import load_reward

    with user_errors():
        if out is not None:
            _file_out(out)
            _outside(out, data)
        examples = _load(data, limit)
        check_classes(examples, str(data))  # before any reward loads; the error names the file
        reports = {
            spec: detect(load_reward(spec), examples, fpr=fpr, n_boot=n_boot, where=str(data))
            for spec in reward
        }
        failed = {spec: unscored_classes(rep) for spec, rep in reports.items()}
        failed = {spec: classes for spec, classes in failed.items() if classes}
        if out is not None and not failed:
            text = json.dumps(finite_json(reports), indent=1, allow_nan=False) + "\n"
            with atomic_text(out, what="--out") as fh:
                fh.write(text)
    for spec, rep in reports.items():
        if spec not in failed:
            typer.echo(_detect_line(spec, rep, fpr))
    for spec, classes in failed.items():
        typer.secho(
            f"error: {spec}: no {' and no '.join(classes)} text has a score (every one is NaN: "
            "the reward does not apply to them, e.g. a rule that needs a reference gets none)"
            + ("; nothing written to --out" if out is not None else ""),
            fg=typer.colors.RED,
            err=True,
        )
    if failed:
        raise typer.Exit(code=1)


def _detect_line(spec: str, rep: dict[str, Any], fpr: float) -> str:
    """One reward's detection report on one line (with the unscored texts, if any)."""
    lo, hi = rep["auroc_ci"]
    tlo, thi = rep["tpr_ci"]
    unscored = rep.get("n_pos_unscored", 0) + rep.get("n_neg_unscored", 0)
    note = f"; {unscored} texts have no score (NaN), left out" if unscored else ""
    return (
        f"{spec}: AUROC {rep['auroc']:.3f} [{lo:.3f}, {hi:.3f}]  TPR@{100 * fpr:g}%FPR "
        f"{rep['tpr_at_fpr']:.3f} [{tlo:.3f}, {thi:.3f}]  gap {rep['gap']:+.3f}  "
        f"(llm {rep['n_pos']}, human {rep['n_neg']}{note})"
    )


@detect_app.command("tune")
def detect_tune(
    data: DataOpt,
    out: Annotated[Path, out_option("Head directory to write (default:DIR).")],
    base: Annotated[
        str | None,
        typer.Option(
            parser=nonempty_path, help="Head directory to start from (default: shipped head)."
        ),
    ] = None,
    replay: Annotated[
        str | None,
        typer.Option(
            parser=nonempty_path, help="Preference data whose responses form the replay buffer."
        ),
    ] = None,
    replay_limit: Annotated[int, typer.Option(min=1, help="Replay examples read.")] = 200,
    mixer: Annotated[
        str,
        typer.Option(
            parser=nonempty_path,
            help="rule (splice human and LLM halves), none, or a causal LM (smollm2).",
        ),
    ] = "rule",
    steps: StepsOpt = 300,
    lr: LrOpt = 1e-3,
    replay_weight: Annotated[
        float, typer.Option(min=0, callback=finite, help="Weight λ of the replay term.")
    ] = 1.0,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Continual preference tuning LLM ≻ mixed ≻ human with replay (F8)."""
    from rewardkit.curate.detection import GeneratorMixer, add_mixed, mixed_text
    from rewardkit.evaluate.detect import check_origin
    from rewardkit.train.remodetect import DetectTuneConfig, tune_detector

    with user_errors():
        _dir_out(out)
        _outside(out, data)
        _outside(out, replay, "--replay")
        _outside(out, base, "--base")
        examples = _load(data, limit)
        for ex in examples:
            check_origin(ex, data)
        if mixer == "rule":
            examples = add_mixed(examples, mixed_text)
        elif mixer != "none":
            from rewardkit.inference.generate import GenerationConfig, Policy

            examples = add_mixed(
                examples, GeneratorMixer(Policy(mixer, GenerationConfig(seed=seed)))
            )
        buffer = _replay_buffer(replay, replay_limit)
        cfg = DetectTuneConfig(steps, lr, replay_weight=replay_weight, seed=seed)
        summary = tune_detector(examples, out, base, buffer, cfg, where=data)
    _echo(summary)
    typer.echo(f"saved to {out}; evaluate with rewardkit detect eval -r default:{out}")


domain_app = typer.Typer(
    help="Domain-knowledge rewards: a few interpretable features, weights fitted by BT.",
    no_args_is_help=True,
)


@domain_app.command("fit")
def domain_fit(
    data: DataOpt,
    out: Annotated[Path, out_option("Directory to write (domain:DIR).")],
    features: Annotated[
        str, typer.Option(help="Built-in features, comma-separated (see docs).")
    ] = "coverage,sentiment,redundancy,length_fit,arithmetic,reference_steps",
    l2: Annotated[
        float, typer.Option(min=0, callback=finite, help="L2 penalty on the weights (>= 0).")
    ] = 1e-2,
    limit: LimitOpt = None,
) -> None:
    """Fit the weights of a domain-knowledge reward on preference pairs; plot them (A15)."""
    from rewardkit.errors import SpecError
    from rewardkit.rewards.domain import FEATURES
    from rewardkit.train.domain import fit_domain, plot_weights

    with user_errors():
        names = [f.strip() for f in features.split(",") if f.strip()]
        unknown = [n for n in names if n not in FEATURES]
        if unknown or not names:
            raise SpecError(f"unknown features {unknown}; known: {sorted(FEATURES)}")
        _dir_out(out)
        _outside(out, data)
        _file_out(out / "weights.png", "--out")
        reward, summary = fit_domain(_load(data, limit), {n: FEATURES[n] for n in names}, l2)
        reward.save(
            out, {"train_accuracy": summary["train_accuracy"], "n_pairs": summary["n_pairs"]}
        )
        plot_weights(summary["weights"], out / "weights.png")
    _echo({k: summary[k] for k in ("weights", "train_accuracy", "n_pairs")})
    typer.echo(f"saved to {out} (weights.png); score with -r domain:{out}")


polar_app = typer.Typer(
    help="POLAR: rewards as policy discrimination (reference + candidate).", no_args_is_help=True
)


@polar_app.command("pretrain")
def polar_pretrain(
    out: Annotated[Path, out_option("Model directory to write (polar:DIR).")],
    data: Annotated[
        str,
        typer.Option(
            parser=nonempty_path,
            help="An MT-Bench directory, or JSONL of {prompt_id, prompt, policy, response}.",
        ),
    ] = "../shared/data/mt_bench",
    steps: StepsOpt = 400,
    lr: LrOpt = 1e-3,
    per_sample: Annotated[
        int, typer.Option(min=1, max=1000, help="Triples drawn per sample (1-1,000).")
    ] = 1,
    seed: SeedOpt = 0,
) -> None:
    """Pre-train on same-policy vs other-policy triples (A9); at most 50,000 triples."""
    from rewardkit.train.polar import (
        PolarConfig,
        mtbench_samples,
        policy_triples,
        read_samples,
        train_polar,
    )

    with user_errors():
        _dir_out(out)
        _outside(out, data)
        path = Path(data)
        samples = mtbench_samples(path) if path.is_dir() else read_samples(path)
        triples = policy_triples(samples, per_sample, seed)
        meta = train_polar(triples, out, PolarConfig(steps=steps, lr=lr, seed=seed))
    _echo({k: meta[k] for k in ("stages", "train_accuracy", "final_loss")})


@polar_app.command("finetune")
def polar_finetune(
    model: Annotated[
        Path, typer.Argument(parser=output_path, help="A pre-trained POLAR directory.")
    ],
    data: DataOpt,
    out: Annotated[Path, out_option("Directory for the fine-tuned model.")],
    steps: StepsOpt = 200,
    lr: LrOpt = 3e-4,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Fine-tune on preference pairs whose records carry a reference answer (A9)."""
    from rewardkit.train.polar import PolarConfig, preference_triples, train_polar

    with user_errors():
        _dir_out(out)
        _outside(out, model, "model")
        _outside(out, data)
        triples = preference_triples(_load(data, limit))
        cfg = PolarConfig(steps=steps, lr=lr, seed=seed)
        meta = train_polar(triples, out, cfg, base=model, stage="finetune")
    _echo({k: meta[k] for k in ("stages", "train_accuracy", "final_loss")})
    typer.echo(f"saved to {out}; score with -r polar:{out} (reference from each record)")


def register(app: typer.Typer) -> None:
    """Add the research-method verbs to the main CLI."""
    app.add_typer(pal_app, name="pal")
    app.add_typer(detect_app, name="detect")
    app.add_typer(domain_app, name="domain")
    app.add_typer(polar_app, name="polar")
    from rewardkit.cli_dmoerm import dmoerm_app

    app.add_typer(dmoerm_app, name="dmoerm")
