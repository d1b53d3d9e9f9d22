"""``rewardkit curate …`` commands of card E2, registered on
:data:`rewardkit.curate.cli.curate_app`: ``retrieve`` (the pool pairs nearest to a reward model's
gold errors) and ``agree`` (keep, flip or drop pairs by the votes of several judges);
docs/methods/E2-synergistic-curation.md."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from rewardkit.cli_errors import nonempty_path, number_in, user_errors
from rewardkit.curate.cli import (
    DataOpt,
    DeviceOpt,
    FormatOpt,
    LimitOpt,
    NoCacheOpt,
    NoProgressOpt,
    OutOpt,
    RewardsOpt,
    ToOpt,
    curate_app,
)
from rewardkit.curate.cli_helpers import (
    STATE,
    TO_FORMATS,
    choices,
    held_targets,
    load_examples,
    load_rewards,
    naming_data,
    summary,
    target_notes,
    write_examples,
)


def _encoder_spec(encoder: str) -> str:
    """The ``similarity`` spec of ``--encoder``: an embedded encoder (``minilm``) or a local
    model directory; a Hub id is refused (retrieval reads local models only)."""
    from rewardkit.models.embedded import embedded_key

    if embedded_key(encoder) is None and not Path(encoder).expanduser().is_dir():
        raise typer.BadParameter(
            f"{encoder!r} is neither an embedded encoder (minilm) nor a local model directory",
            param_hint="--encoder",
        )
    return f"similarity:{encoder}"


def _duplicate_ids(examples: list, what: str) -> int:
    """How many ids of ``examples`` occur more than once (warned: ``seed_id`` names them)."""
    import warnings

    dupes = sum(1 for c in Counter(ex.id for ex in examples).values() if c > 1)
    if dupes:
        warnings.warn(
            f"{what}: {dupes} example id(s) occur more than once; meta.seed_id cannot tell "
            "those seeds apart (give every gold pair its own id)",
            stacklevel=2,
        )
    return dupes


def _load(data: str, fmt: str | None, limit: int | None, what: str) -> list:
    """:func:`load_examples` of one of two inputs; its "no examples" warning names ``what``."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = load_examples(data, fmt, limit)
    for w in caught:
        text = str(w.message).replace("check --data", f"check {what}")
        warnings.warn_explicit(text, w.category, w.filename, w.lineno)
    return out


@curate_app.command("retrieve")
def retrieve_command(
    gold: Annotated[
        str, typer.Option(parser=nonempty_path, help="Human-verified gold pairs (file, folder, …).")
    ],
    pool: Annotated[
        str, typer.Option(parser=nonempty_path, help="The pool to retrieve from (file, folder, …).")
    ],
    out: OutOpt,
    reward: Annotated[
        str,
        typer.Option("--reward", "-r", help="Reward model whose errors on --gold seed the search."),
    ],
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Neighbours per seed error.")] = 10,
    field: Annotated[
        str, typer.Option(help="Embed the prompt, or the pair (prompt and responses).")
    ] = "prompt",
    min_similarity: Annotated[
        float | None,
        typer.Option(callback=number_in(-1.0, 1.0), help="Leave out neighbours below this cosine."),
    ] = None,
    encoder: Annotated[
        str,
        typer.Option(
            parser=nonempty_path,
            help="Sentence encoder: minilm (embedded) or a local model directory.",
        ),
    ] = "minilm",
    fmt: FormatOpt = None,
    limit: Annotated[
        int | None, typer.Option(min=0, help="Read at most this many gold pairs.")
    ] = None,
    pool_limit: Annotated[
        int | None, typer.Option(min=0, help="Read at most this many pool pairs.")
    ] = None,
    to: ToOpt = "jsonl",
    device: DeviceOpt = None,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Card E2: the pool pairs most similar to the gold pairs a reward model gets wrong."""
    from rewardkit.curate.scores import response_scores
    from rewardkit.curate.synergy import (
        FIELDS,
        SEED_KEYS,
        annotate_retrieved,
        knn_retrieve,
        seed_errors,
    )
    from rewardkit.data.sources import check_out_outside_data

    choices(to=(to, TO_FORMATS), field=(field, FIELDS))
    spec = _encoder_spec(encoder)
    with user_errors():
        for data, what in ((gold, "--gold"), (pool, "--pool")):
            check_out_outside_data(out, data, "--out", what)
    with user_errors(), held_targets(gold, out=out):
        gold_exs = _load(gold, fmt, limit, "--gold")
        bad = STATE["malformed"]
        pool_exs = _load(pool, fmt, pool_limit, "--pool")
        STATE["malformed"] += bad
        _duplicate_ids(gold_exs, "--gold")
        with naming_data(gold):
            rm = load_rewards([reward], device, no_cache, no_progress)[0]
            seeds = seed_errors(gold_exs, response_scores(gold_exs, rm) if gold_exs else [])
        seed_exs = [gold_exs[i] for i in seeds.indices]
        neighbours = []
        if seed_exs and pool_exs:  # the encoder is loaded only when there is work for it
            embed = load_rewards([spec], device, no_cache, no_progress)[0].embed
            neighbours = knn_retrieve(seed_exs, pool_exs, embed, k, field, min_similarity)
        retrieved = annotate_retrieved(pool_exs, seed_exs, neighbours)
        n = write_examples(retrieved, out, to)
        notes = target_notes(retrieved, to, SEED_KEYS)
    summary(
        gold=len(gold_exs),
        gold_scored=seeds.counts["scored"],
        gold_unscored=seeds.counts["unscored"],
        gold_identical=seeds.counts["identical"],
        seed_errors=seeds.counts["errors"],
        pool=len(pool_exs),
        k=k,
        retrieved=len(retrieved),
        written=n,
        **notes,
        out=out,
    )


@curate_app.command("agree")
def agree_command(
    data: DataOpt,
    out: OutOpt,
    reward: RewardsOpt,
    min_agree: Annotated[
        int | None,
        typer.Option(min=1, help="Judges that must agree (default: a majority of the -r)."),
    ] = None,
    flip_margin: Annotated[
        float | None,
        typer.Option(
            callback=number_in(0.0),
            help="Flip a pair when --min-agree judges have Δ < −this (≥ 0, each on its own "
            "scale); not given: inverted pairs are dropped, never flipped.",
        ),
    ] = None,
    fmt: FormatOpt = None,
    limit: LimitOpt = None,
    to: ToOpt = "jsonl",
    device: DeviceOpt = None,
    no_cache: NoCacheOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Card E2: keep pairs --min-agree judges agree with, flip clear inversions, drop the rest."""
    from rewardkit.curate.synergy import (
        AGREE_KEYS,
        agreement_decisions,
        apply_decisions,
        judge_margins,
    )

    choices(to=(to, TO_FORMATS))
    if not reward:
        raise typer.BadParameter("give at least one --reward (a judge)", param_hint="--reward")
    agree = min_agree if min_agree is not None else len(reward) // 2 + 1
    if agree > len(reward):
        raise typer.BadParameter(
            f"{agree} is more than the {len(reward)} judge(s) given with -r: no pair could be kept",
            param_hint="--min-agree",
        )
    twice = sorted(j for j, c in Counter(r.strip() for r in reward).items() if c > 1)
    if twice:
        raise typer.BadParameter(
            f"judge(s) {', '.join(twice)} given twice: each -r is one vote, so a judge given "
            "twice would outvote the others; give each judge once",
            param_hint="--reward",
        )
    with user_errors(), naming_data(data), held_targets(data, out=out):
        examples = load_examples(data, fmt, limit)
        margins = judge_margins(examples, load_rewards(reward, device, no_cache, no_progress))
        dec = agreement_decisions(margins, agree, flip_margin)
        kept = apply_decisions(examples, margins, dec)
        n = write_examples(kept, out, to)
        notes = target_notes(kept, to, AGREE_KEYS)
    counts = {k: v for k, v in dec.counts.items() if k != "pairs"}
    summary(
        examples=len(examples),
        judges=len(reward),
        min_agree=agree,
        **counts,
        written=n,
        **notes,
        out=out,
    )
