"""``rewardkit curate …``: one subcommand per curation step (docs/cli/curate.md). Each reads
examples with :func:`rewardkit.data.load`, calls one library function of :mod:`rewardkit.curate`
and writes the result (rewardkit JSONL by default, or TRL / OpenRLHF); heavy imports inside."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli_errors import finite, nonempty_path, number_in, output_path, user_errors
from rewardkit.curate.cli_helpers import (
    COLUMNS_HELP,
    STATE,
    TO_FORMATS,
    choices,
    dedup_report,
    fine_keys_option,
    held_targets,
    lengths_report,
    load_examples,
    load_rewards,
    name_list,
    naming_data,
    pair_notes,
    pairs_of_unpaired,
    soft_option,
    summary,
    target_notes,
    write_examples,
    written_along,
)

curate_app = typer.Typer(
    help="Curate preference data: strength, noise, consistency, relabel, condition, filter, "
    "dedup, decontaminate, lengths, export, crome (Crome augmentations), retrieve and agree "
    "(synergistic curation), anyprefer (pair synthesis).",
    no_args_is_help=True,
)

DataOpt = Annotated[
    str, typer.Option(parser=nonempty_path, help="Input data: a file, folder, 'sample' or hf:...")
]
FormatOpt = Annotated[str | None, typer.Option("--format", help="Input record format (sniffed).")]
LimitOpt = Annotated[int | None, typer.Option(min=0, help="Read at most this many examples.")]
OutOpt = Annotated[Path, typer.Option(parser=output_path, help="Output file: .jsonl, .jsonl.gz.")]
ToOpt = Annotated[str, typer.Option("--to", help="Output format: jsonl, trl or openrlhf.")]
RewardsOpt = Annotated[
    list[str], typer.Option("--reward", "-r", help="Reward spec (repeatable; an ensemble).")
]
DeviceOpt = Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N (model rewards).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not use the score cache.")]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")]


@curate_app.callback()
def _options(
    on_error: Annotated[
        str,
        typer.Option(
            "--on-error",
            help="raise (default): stop at the first malformed record; skip: drop malformed "
            "records with one warning that counts them (give it before the subcommand).",
        ),
    ] = "raise",
    columns: Annotated[str | None, typer.Option(help=COLUMNS_HELP)] = None,
) -> None:
    """Options shared by every curate subcommand."""
    from rewardkit.cli_errors import parse_columns

    if on_error not in ("raise", "skip"):
        raise typer.BadParameter("must be raise or skip", param_hint="--on-error")
    STATE["on_error"], STATE["columns"] = on_error, parse_columns(columns)


@curate_app.command("strength")
def strength_command(
    data: DataOpt,
    out: OutOpt,
    reward: RewardsOpt,
    votes: Annotated[
        Path | None,
        typer.Option(
            parser=output_path,
            help="Also write {example_id: strength} JSON (the trainer's vote_file).",
        ),
    ] = None,
    fmt: FormatOpt = None,
    limit: LimitOpt = None,
    to: ToOpt = "jsonl",
    device: DeviceOpt = None,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Card E1: ensemble mean/std of r(chosen) − r(rejected) as meta margin/strength/strength_std."""
    from rewardkit.curate.scores import pair_deltas
    from rewardkit.curate.strength import annotate_strength, negative_count, votes_text

    choices(to=(to, TO_FORMATS))
    with user_errors(), naming_data(data), held_targets(data, out=out, votes=votes):
        examples = load_examples(data, fmt, limit)
        deltas = pair_deltas(examples, load_rewards(reward, device, no_cache, no_progress))
        annotated = annotate_strength(examples, deltas)
        text = votes_text(annotated)[0] if votes else None
        with written_along(votes, text, "--votes"):
            n = write_examples(annotated, out, to)
        notes = target_notes(annotated, to, ("margin", "strength", "strength_std"))
    neg = negative_count(deltas)
    summary(examples=len(examples), written=n, negative_strength=neg, **notes, out=out, votes=votes)


@curate_app.command("noise")
def noise_command(
    data: DataOpt,
    out: OutOpt,
    reward: RewardsOpt,
    action: Annotated[str, typer.Option(help="flag, flip, drop or downweight.")] = "flag",
    min_margin: Annotated[
        float, typer.Option(callback=number_in(0.0), help="Flag when mean Δ < −min_margin (≥ 0).")
    ] = 0.0,
    min_agreement: Annotated[
        float,
        typer.Option(
            callback=number_in(0.0, 1.0, lo_open=True),
            help="…and this fraction (0 < f ≤ 1) of rewards votes against the label "
            "(1 = unanimous).",
        ),
    ] = 1.0,
    lowest_frac: Annotated[
        float | None,
        typer.Option(
            callback=number_in(0.0, 1.0),
            help="Instead flag the lowest-strength fraction (card E1: 0.2).",
        ),
    ] = None,
    weight: Annotated[
        float,
        typer.Option(
            callback=number_in(0.0, 1.0), help="meta weight of a down-weighted pair (0-1)."
        ),
    ] = 0.1,
    review: Annotated[
        Path | None, typer.Option(parser=output_path, help="Flagged pairs: a .md table or .jsonl.")
    ] = None,
    fmt: FormatOpt = None,
    limit: LimitOpt = None,
    to: ToOpt = "jsonl",
    device: DeviceOpt = None,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Card E1: flag pairs the reward ensemble confidently disagrees with; flip/drop/down-weight."""
    from rewardkit.curate.noise import ACTIONS, NoiseConfig, detect_noise, review_text
    from rewardkit.curate.scores import pair_deltas

    choices(to=(to, TO_FORMATS), action=(action, ACTIONS))
    with user_errors():  # the options first, then the outputs
        cfg = NoiseConfig(min_margin, min_agreement, lowest_frac, action, weight)
    with user_errors(), naming_data(data), held_targets(data, out=out, review=review):
        examples = load_examples(data, fmt, limit)
        rewards = load_rewards(reward, device, no_cache, no_progress)
        res = detect_noise(examples, pair_deltas(examples, rewards), cfg)
        text = review_text(res, examples, review) if review else None
        with written_along(review, text, "--review"):
            n = write_examples(res.examples, out, to)
        notes = target_notes(res.examples, to, ("noise_flag", "weight"))
    summary(**res.counts, written=n, action=action, **notes, out=out, review=review)


@curate_app.command("consistency")
def consistency_command(
    data: DataOpt,
    out: OutOpt,
    reward: RewardsOpt,
    method: Annotated[str, typer.Option(help="kendall, spearman or toporder.")] = "kendall",
    action: Annotated[
        str, typer.Option(help="soften or drop the disagreeing examples.")
    ] = "soften",
    soft: Annotated[
        str,
        typer.Option(
            help="Confidence of a softened label: avg (dataset mean C), dyn (its own C) or a "
            "number in [0.5, 1]."
        ),
    ] = "avg",
    agree_at: Annotated[
        float,
        typer.Option(
            callback=number_in(0.0, 1.0), help="C (0-1) at or above which a label stays hard."
        ),
    ] = 1.0,
    pairs: Annotated[
        str,
        typer.Option(
            help="label (keep each example's pair) or best_worst (CREAM: argmax/argmin of reward 1)."
        ),
    ] = "label",
    fmt: FormatOpt = None,
    limit: LimitOpt = None,
    to: ToOpt = "jsonl",
    device: DeviceOpt = None,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Card E4 (CREAM): ranking consistency of two rewards; keep agreeing pairs, soften the rest."""
    from rewardkit.curate.consistency import METHODS, consistency_filter
    from rewardkit.curate.scores import response_scores

    choices(
        to=(to, TO_FORMATS),
        method=(method, METHODS),
        action=(action, ("soften", "drop")),
        pairs=(pairs, ("label", "best_worst")),
    )
    if len(reward) != 2:
        raise typer.BadParameter("give exactly two --reward specs", param_hint="--reward")
    soft_value = soft_option(soft)
    with user_errors(), naming_data(data), held_targets(data, out=out):
        examples = load_examples(data, fmt, limit)
        rewards = load_rewards(reward, device, no_cache, no_progress)
        a, b = (response_scores(examples, r) for r in rewards)
        res = consistency_filter(
            examples,
            a,
            b,
            method=method,
            agree_at=agree_at,
            action=action,
            soft=soft_value,
            pairs=pairs,
        )
        n = write_examples(res.examples, out, to)
        notes = target_notes(res.examples, to, ("consistency", "label_confidence"))
    summary(**res.counts, mean_consistency=res.mean_consistency, written=n, **notes, out=out)


@curate_app.command("relabel")
def relabel_command(
    data: DataOpt,
    out: OutOpt,
    reward: Annotated[
        str | None,
        typer.Option("--reward", "-r", help="Score responses with this reward instead of ratings."),
    ] = None,
    score_key: Annotated[str, typer.Option(help="Rating holding the 1-10 score.")] = "overall",
    nosys: Annotated[
        bool,
        typer.Option(
            "--nosys", help="Prepend the goal to the user turn instead of a system message."
        ),
    ] = False,
    fine_keys: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated ratings; keep pairs whose chosen mean is ≥ the rejected's."
        ),
    ] = None,
    rescale: Annotated[
        bool, typer.Option("--rescale", help="Min-max map reward scores onto 1-10 (one decimal).")
    ] = False,
    fmt: FormatOpt = None,
    limit: LimitOpt = None,
    to: ToOpt = "jsonl",
    device: DeviceOpt = None,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Card A12: two goal-conditioned DPO pairs per pair ("Overall score: s" system prompt)."""
    from rewardkit.curate.relabel import rescale_all, reward_augment
    from rewardkit.curate.scores import response_scores

    choices(to=(to, TO_FORMATS))
    with user_errors(), naming_data(data), held_targets(data, out=out):
        examples = load_examples(data, fmt, limit)
        scores = None
        if reward:
            rm = load_rewards([reward], device, no_cache, no_progress)[0]
            scores = response_scores(examples, rm)
            scores = rescale_all(scores) if rescale else scores
        counts: dict[str, int] = {}
        keys = fine_keys_option(examples, fine_keys)
        res = reward_augment(
            examples,
            score_key,
            as_system=not nosys,
            scores=scores,
            fine_keys=keys,
            counts=counts,
            reward=reward,
        )
        n = write_examples(res, out, to)
    summary(**counts, written=n, **target_notes(res, to), out=out)


@curate_app.command("filter")
def filter_command(
    data: DataOpt,
    out: OutOpt,
    reward: RewardsOpt,
    keep: Annotated[str, typer.Option(help="top_frac or threshold.")] = "top_frac",
    value: Annotated[
        float,
        typer.Option(
            callback=finite, help="The fraction kept (0-1), or the threshold (a finite number)."
        ),
    ] = 0.5,
    by: Annotated[str, typer.Option(help="Example score: chosen, margin or mean.")] = "chosen",
    per_source: Annotated[bool, typer.Option(help="Top fraction within each source.")] = True,
    histogram: Annotated[
        Path | None, typer.Option(parser=output_path, help="Write a histogram PNG here.")
    ] = None,
    fmt: FormatOpt = None,
    limit: LimitOpt = None,
    to: ToOpt = "jsonl",
    device: DeviceOpt = None,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Card E6: keep the top fraction per source (or above a threshold) by reward."""
    from rewardkit.curate.filtering import (
        BY,
        check_value,
        example_scores,
        filter_by_reward,
        histogram_image,
        image_format,
        panels_note,
    )
    from rewardkit.curate.scores import response_scores

    choices(to=(to, TO_FORMATS), by=(by, BY), keep=(keep, ("top_frac", "threshold")))
    if len(reward) != 1:
        raise typer.BadParameter(
            "give one --reward (use an ensemble spec for several)", param_hint="--reward"
        )
    try:
        check_value(keep, value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--value") from None
    with user_errors(), naming_data(data), held_targets(data, out=out, histogram=histogram):
        image = image_format(histogram) if histogram else None
        examples = load_examples(data, fmt, limit)
        rs = response_scores(examples, load_rewards(reward, device, no_cache, no_progress)[0])
        res = filter_by_reward(
            examples, example_scores(examples, rs, by), keep, value, per_source=per_source, by=by
        )
        picture = histogram_image(res, image) if histogram and image else None
        with written_along(histogram, picture, "--histogram"):
            n = write_examples(res.examples, out, to)
    cap = panels_note(res) if histogram else None  # hundreds of sources: 24 panels + "other"
    notes = target_notes(res.examples, to) | ({"histogram_panels": cap} if cap else {})
    summary(
        sources=res.counts, cutoffs=res.cutoffs, written=n, **notes, out=out, histogram=histogram
    )


@curate_app.command("dedup")
def dedup_command(
    data: DataOpt,
    out: OutOpt,
    level: Annotated[str, typer.Option(help="exact or normalized.")] = "normalized",
    on_conflict: Annotated[str, typer.Option(help="majority, drop or keep_first.")] = "majority",
    keep_degenerate: Annotated[
        bool,
        typer.Option(
            "--keep-degenerate", help="Keep pairs whose chosen and rejected texts are equal."
        ),
    ] = False,
    report: Annotated[
        Path | None, typer.Option(parser=output_path, help="JSON report of what was removed.")
    ] = None,
    fmt: FormatOpt = None,
    limit: LimitOpt = None,
    to: ToOpt = "jsonl",
) -> None:
    """Remove exact / normalized-text duplicates, label conflicts and degenerate pairs."""
    from rewardkit.curate.dedup import LEVELS, ON_CONFLICT, dedup

    choices(to=(to, TO_FORMATS), level=(level, LEVELS), on_conflict=(on_conflict, ON_CONFLICT))
    with user_errors(), held_targets(data, out=out, report=report):
        res = dedup(load_examples(data, fmt, limit), level, on_conflict, not keep_degenerate)
        dropped = {f"removed_{k}": v for k, v in res.removed_counts().items()}
        text = dedup_report(res, dropped) if report else None
        with written_along(report, text, "--report"):
            n = write_examples(res.examples, out, to)
    summary(**res.counts, **dropped, written=n, **target_notes(res.examples, to), out=out)


@curate_app.command("lengths")
def lengths_command(
    data: DataOpt,
    by: Annotated[str, typer.Option(help="Group by subset or source.")] = "subset",
    threshold: Annotated[
        float,
        typer.Option(
            callback=number_in(0.5, 1.0),
            help="Flag when length accuracy ≥ this (or ≤ 1 − this), 0.5-1.",
        ),
    ] = 0.9,
    out: Annotated[
        Path | None, typer.Option(parser=output_path, help="Write a length-rebalanced copy here.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the rebalancing subsample.")] = 0,
    fmt: FormatOpt = None,
    limit: LimitOpt = None,
    to: ToOpt = "jsonl",
) -> None:
    """Length-balance check: flag subsets that 'the longer response wins' solves."""
    choices(to=(to, TO_FORMATS), by=(by, ("subset", "source")))
    with user_errors(), held_targets(data, out=out):
        fields = lengths_report(load_examples(data, fmt, limit), by, threshold, out, to, seed)
    summary(**fields)


PAIRS_HELP = "all (every chosen × rejected) or first (the labelled pair)."
EXTRA_HELP = "Comma-separated extra fields: id, source or meta keys (margin, weight, …)."


@curate_app.command("export")
def export_command(
    data: DataOpt,
    out: OutOpt,
    to: ToOpt = "trl",
    pairs: Annotated[str, typer.Option(help=PAIRS_HELP)] = "all",
    extra: Annotated[str, typer.Option(help=EXTRA_HELP)] = "",
    fmt: FormatOpt = None,
    limit: LimitOpt = None,
) -> None:
    """Write examples as TRL DPO (conversational), OpenRLHF or rewardkit JSONL; unpaired (KTO)
    rows as pairs by prompt (each desirable completion against each undesirable one)."""
    from rewardkit.curate.writers import write

    choices(to=(to, TO_FORMATS), pairs=(pairs, ("all", "first")))
    with user_errors(), held_targets(data, out=out):
        keys = name_list(extra)
        examples = load_examples(data, fmt, limit)
        rows, (examples, said) = len(examples), pairs_of_unpaired(examples, to)
        n = write(examples, out, to, pairs, keys)
    notes = pair_notes(examples, to, pairs, keys)
    summary(examples=rows, **said, written=n, **notes, format=to, out=out)


@curate_app.command("crome")
def crome_command(
    data: DataOpt,
    out: OutOpt,
    generator: Annotated[
        str,
        typer.Option(
            parser=nonempty_path,
            help="rule (deterministic rewrites) or a causal LM for Policy ('smollm2' = the "
            "embedded SmolLM2-135M-Instruct, or PATH_OR_ID).",
        ),
    ] = "rule",
    causal: Annotated[
        str, typer.Option(help="Causal attributes, comma-separated (strict pairs).")
    ] = "factual_error,missing_step,ignored_instruction",
    neutral: Annotated[
        str, typer.Option(help="Spurious attributes, comma-separated (tie pairs).")
    ] = "length,formatting,tone",
    irrelevant: Annotated[
        bool, typer.Option(help="Add causal pairs on an unrelated prompt as ties.")
    ] = True,
    originals: Annotated[
        bool, typer.Option(help="Also write the input examples (ready to train on).")
    ] = True,
    fmt: FormatOpt = None,
    limit: LimitOpt = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Card A8 (Crome): causal augmentations as strict pairs, neutral ones as ties."""
    from collections import Counter

    from rewardkit.curate import crome as cr

    with user_errors():  # the attributes first, then the outputs
        attrs = cr.check_attributes(name_list(causal), name_list(neutral))
    with user_errors(), held_targets(data, out=out):
        examples = load_examples(data, fmt, limit)
        if generator == "rule":
            rewriter: Any = cr.RuleRewriter.from_examples(examples, seed)
        else:
            from rewardkit.inference.generate import GenerationConfig, Policy

            rewriter = cr.GeneratorRewriter(Policy(generator, GenerationConfig(seed=seed)))
        aug = cr.crome_augment(examples, rewriter, *attrs, irrelevant, seed)
        n = write_examples((list(examples) if originals else []) + aug, out, "jsonl")
    counts = Counter(f"{ex.meta['augmentation']}/{ex.meta['attribute']}" for ex in aug)
    summary(examples=len(examples), written=n, augmented=dict(counts), out=out)


# Commands of later cards live in their own modules and register on ``curate_app`` on import.
from rewardkit.curate import (  # noqa: E402, F401
    cli_anyprefer,
    cli_condition,
    cli_decontam,
    cli_synergy,
)
