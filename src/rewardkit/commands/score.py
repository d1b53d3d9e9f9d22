"""``rewardkit score`` (a reward per row of a file) and ``rewardkit data`` (load and check)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli_errors import user_errors
from rewardkit.commands.options import (
    DEFAULT_CACHE,
    CacheDirOpt,
    CacheResetOpt,
    ColumnsOpt,
    DeviceOpt,
    DtypeOpt,
    MaxLengthOpt,
    NoCacheOpt,
    NoProgressOpt,
    OnErrorOpt,
    RayActorsOpt,
    RayAddressOpt,
    RayOpt,
    ThreadsOpt,
    TokenBudgetOpt,
    TruncationOpt,
    engine_defaults,
    expand_home,
    from_cache,
    nonempty_path,
    output_path,
    parse_columns,
    reset_cache,
)


def score_command(
    reward: Annotated[str, typer.Option("--reward", "-r", help="Reward spec.")],
    data: Annotated[
        Path,
        typer.Option(
            parser=output_path,
            help="JSONL input: one {prompt, response (or completion)[, reference (or ground_truth, solution, answer)]} per line.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(parser=output_path, help="JSONL output: the input rows with 'reward' added."),
    ],
    chunk_size: Annotated[int, typer.Option(min=1, help="Rows scored per chunk.")] = 2048,
    token_budget: TokenBudgetOpt = None,
    max_length: MaxLengthOpt = None,
    truncation: TruncationOpt = None,
    dtype: DtypeOpt = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    cache_dir: CacheDirOpt = DEFAULT_CACHE,
    no_cache: NoCacheOpt = False,
    cache_reset: CacheResetOpt = False,
    no_progress: NoProgressOpt = False,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    ray_actors: RayActorsOpt = 2,
) -> None:
    """Score a JSONL file: each row gets a 'reward' field.

    'prompt' is a string or a list of {role, content} messages; other fields are kept as they
    are. A multi-objective reward writes {objective: value}; NaN and infinities are written as
    null. The output appears only when every row is written (a temporary file is moved in
    place); a second run writing the same --out at the same time is refused. With --ray the
    rows are scored by a Ray actor pool, streamed, in input order (docs/remote.md).
    """
    from rewardkit.data.sources import check_out_outside_data
    from rewardkit.outputs import check_dir_target, check_file_target
    from rewardkit.registry import load_reward
    from rewardkit.scoring import read_query_rows, score_rows

    data, out = Path(expand_home(str(data))), Path(expand_home(str(out)))
    engine = engine_defaults(
        token_budget,
        max_length,
        truncation,
        dtype,
        threads,
        device,
        cache_dir,
        no_cache,
        no_progress,
    )
    if ray:
        _score_ray(reward, data, out, engine, ray_address, ray_actors, not no_progress, cache_reset)
        return
    with user_errors():
        # inputs first: a bad --data or --out fails before any model loads
        check_file_target(out, "--out")
        check_out_outside_data(out, data)
        if not no_cache:
            check_dir_target(cache_dir, "--cache-dir")
        rows = list(read_query_rows(data))
        check_images(rows)  # an image file cut short fails here, before any model loads
        if cache_reset and not no_cache:
            reset_cache(cache_dir)
        built = load_reward(reward, engine_defaults=engine)
        stats = score_rows(built, rows, out, chunk_size=chunk_size)
    hits = stats.get("cache_hits")  # a resumed run says how much it did not recompute
    cached = f", {from_cache(hits)}" if hits is not None else ""
    head = f"scored {stats['rows']:,} rows ({stats['truncated_rows']:,} truncated{cached})"
    _summary(stats, head, out, no_reference=_rows_without_reference(built, rows))


def _rows_without_reference(reward: Any, rows: list) -> int:
    """How many rows a pairwise reward (:attr:`Capability.PAIRWISE`) cannot score: its
    pointwise score is P(response ≻ reference), NaN without a ``reference``. 0 for any other
    reward (what a reference means to it, the generic null note says)."""
    from rewardkit.results import Capability
    from rewardkit.rewards.judges.template import references

    if not reward.can(Capability.PAIRWISE):
        return 0
    return sum(not references(q, images=True) for _, q in rows)


def check_images(rows: list) -> None:
    """Refuse the input when one of its local images is cut short (:func:`incomplete_image`,
    its end read cheaply): an :class:`~rewardkit.content.ImageError` naming the file, the row
    and the field, as reading the rows names a missing image file. Each image is checked once."""
    from rewardkit.content import ImageError, images_in
    from rewardkit.multimodal.files import incomplete_image

    seen: set = set()
    for _, q in rows:
        for value in (q.prompt, q.response, q.reference):
            for image in images_in(value):  # its origin names the file, line and field
                key = image.path if image.path is not None else image.data
                if key is None or key in seen:  # a PIL image has no file to be cut
                    continue
                seen.add(key)
                cut = incomplete_image(image)
                if cut is not None:
                    raise ImageError(cut, image=image.describe(), origin=image.origin)


def _summary(stats: dict, head: str, out: Path, no_reference: int = 0) -> None:
    """The run's line (``head``, the rows that failed alone, the output); exit 1 when every
    row failed (the file then holds no real score). ``no_reference``: rows a pairwise reward
    had no reference to compare with (:func:`_rows_without_reference`)."""
    from rewardkit.types import failure_note, failure_outcome

    outcome = failure_outcome(stats["failed_values"], "have reward null", "have reward {:g}")
    notes = [
        failure_note(stats["failed_rows"], stats["rows"], "rows", stats.get("first_error"), outcome)
    ]
    # rows whose reward is null although nothing failed: the reward does not apply to them (no
    # reference, a model that gives NaN); counted so that a success line never hides them
    null_rows = int(stats.get("null_rows") or 0)
    unparsed = stats.get("unparsed", (stats.get("reward_stats") or {}).get("unparsed"))
    if null_rows:
        what = "have a null objective" if stats.get("objectives") else "have reward null"
        why = (
            "the reward does not apply to them; a rule that needs a reference gets none, or "
            "the model gave NaN"
        )
        if no_reference:  # a pairwise judge's score compares the response with `reference`
            why = (
                "a pairwise reward scores P(response ≻ reference), the response against the "
                f"row's `reference` (or ground_truth, solution, answer): {no_reference:,} row(s) "
                "have none, so it has nothing to compare them with; give each row a reference, "
                "or compare responses with `rewardkit eval`"
                + (f"; any other null row: {why}" if no_reference < null_rows else "")
            )
        unrouted = stats.get("unrouted") or {}
        if unrouted:  # a misspelt data source nulls a whole dataset: name it
            shown = sorted(unrouted, key=lambda k: (-unrouted[k], k))
            why = (
                f"{sum(unrouted.values()):,} row(s) have no route: the reward routes each row by a "
                f"field (a route spec's data source, a DMoERM category) and these values have "
                f"none, nor a default: {[k[:80] for k in shown[:10]]}"
                f"{' …' if len(shown) > 10 else ''}; add a default or fix those values"
                + (f"; any other null row: {why}" if sum(unrouted.values()) < null_rows else "")
            )
        if isinstance(unparsed, int) and unparsed:  # a judge answered, but with no verdict
            why = (
                f"the judge gave {unparsed:,} unparsed answer(s): no verdict could be read from "
                f"them, see docs/judges.md; any other null row: {why}"
            )
        notes.append(f"{null_rows:,} of {stats['rows']:,} rows {what} ({why})")
    notes = [n for n in notes if n]
    # with --out /dev/stdout (or a pipe that is stdout) the line goes to stderr: on stdout it
    # would be a last "row" that is not JSON, in the very stream a consumer parses
    typer.echo(f"{head}{''.join('; ' + n for n in notes)} -> {out}", err=_is_stdout(out))
    if not stats["rows"]:  # an empty input is no score of anything: say so, not a bare success
        _warn(f"the input holds no rows, so {out} holds none; check --data")
    if stats["rows"] and null_rows >= stats["rows"]:
        typer.secho(
            f"warning: no row of {out} has a reward (every one is null); check the reward "
            "spec and the input's fields",
            fg=typer.colors.YELLOW,
            err=True,
        )
    if stats["rows"] and stats["failed_rows"] >= stats["rows"]:
        typer.secho(
            "error: every row failed, so no row has a real score (the reason is above)",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(code=1)


def _is_stdout(out: Path) -> bool:
    """Whether ``out`` is this process's standard output (``/dev/stdout``, ``/dev/fd/1``, the
    pipe or file stdout is), compared by device and inode."""
    import os
    import sys

    try:
        a, b = os.stat(out), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no such path; stdout without a descriptor
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _warn(text: str) -> None:
    """One yellow ``warning: …`` line on stderr."""
    typer.secho(f"warning: {text}", fg=typer.colors.YELLOW, err=True)


def _score_ray(
    reward: str,
    data: Path,
    out: Path,
    engine: dict,
    address: str | None,
    actors: int,
    progress: bool,
    cache_reset: bool = False,
) -> None:
    """``score --ray``: the checks ``score`` makes, on the driver, then
    :func:`~rewardkit.scoring_ray.score_file_ray`."""
    from rewardkit.data.sources import check_out_outside_data
    from rewardkit.outputs import OutputError, check_dir_target, check_file_target
    from rewardkit.scoring import read_query_rows
    from rewardkit.scoring_ray import check_ray_input, driver_spec, score_file_ray

    with user_errors():
        check_file_target(out, "--out")
        check_out_outside_data(out, data)
        if out.name.endswith(".gz"):
            raise OutputError(
                f"--out {out}: --ray writes plain JSON Lines; give a name without .gz "
                "(gzip it afterwards) or score without --ray, which writes gzip for a .gz name"
            )
        if engine.get("cache_dir"):  # absolute: an actor's working directory is not ours
            engine = {**engine, "cache_dir": str(check_dir_target(engine["cache_dir"]).resolve())}
        # on the driver, before Ray starts: the spec (parsed, its kind known, a file's path
        # made absolute) and the input, read by the reader `score` uses (one pass, streamed)
        reward = driver_spec(reward)
        check_images(read_query_rows(check_ray_input(data)))
        if cache_reset and engine.get("cache_dir"):
            reset_cache(engine["cache_dir"])
        stats = score_file_ray(
            reward,
            data,
            out,
            engine_defaults=engine,
            address=address,
            actors=actors,
            progress=progress,
        )
    counted = [  # worded as the single-process line words them
        say(stats[key])
        for key, say in (("truncated_rows", "{:,} truncated".format), ("cache_hits", from_cache))
        if stats[key] is not None  # None: the reward does not report it
    ]
    used = f"{stats['actors']} Ray actor{'s' if stats['actors'] != 1 else ''}"
    if stats["actors"] < actors:  # fewer ranges than actors asked for
        used = f"{stats['actors']} of the {actors} Ray actors asked for (one per input range)"
    head = (
        f"scored {stats['rows']} rows{' (' + ', '.join(counted) + ')' if counted else ''} "
        f"on {used} in {stats['seconds']:.1f}s, driver peak "
        f"{stats['driver_peak_rss_mb']:.0f} MB"
    )
    if stats.get("cluster_gpus") and not stats["gpus_per_actor"]:
        _warn(
            f"the cluster has {stats['cluster_gpus']:g} GPU(s) but fewer than one per actor, so "
            f"the actors ran on CPU; give --ray-actors {int(stats['cluster_gpus'])} or fewer to "
            "use them"
        )
    _summary(stats, head, out)


def _unpaired_line(examples: list) -> None:
    """For unpaired (KTO) rows: the labels and the pairs a pairwise objective would train on."""
    from rewardkit.data.unpaired import is_unpaired, pair_by_prompt

    rows = [e for e in examples if is_unpaired(e)]
    if not rows:
        return
    good = sum(e.ratings[0]["label"] == 1.0 for e in rows)
    made = pair_by_prompt(rows, build=False)  # counted, not built: (good × bad) per prompt
    typer.echo(
        f"unpaired rows: {good} desirable, {len(rows) - good} undesirable; {made.prompts_paired} "
        f"of {made.prompts} prompts have both labels ({made.count} preference pairs by "
        "prompt)"
    )


def data_command(
    path: Annotated[
        str,
        typer.Argument(parser=nonempty_path, help="Data file, directory, hf:name, or 'sample'."),
    ],
    data_format: Annotated[str | None, typer.Option("--format", help="Force a format.")] = None,
    columns: ColumnsOpt = None,
    on_error: OnErrorOpt = "raise",
) -> None:
    """Load and validate a preference data file; print what it holds."""
    from collections import Counter

    from rewardkit.data import load
    from rewardkit.evaluate.plan import subset_names

    path = expand_home(path)
    with user_errors():
        examples = load(path, format=data_format, columns=parse_columns(columns), on_error=on_error)
    formats = Counter(str(e.meta.get("format", "?")) for e in examples)
    subsets = Counter(subset_names(examples))  # the names eval's reports give them
    named = any(e.subset and e.subset.strip() for e in examples)
    sizes = Counter(len(e.responses) for e in examples)
    typer.echo(
        f"{len(examples)} examples; formats {dict(formats)}; responses per example {dict(sizes)}"
    )
    ties = sum(len(e.responses) > 1 and len(e.chosen) == len(e.responses) for e in examples)
    if ties:  # the file's own ties (tie votes, equal scores): eval reports them apart
        typer.echo(f"labelled ties: {ties} (every response chosen; not scored as preferences)")
    _unpaired_line(examples)
    if not examples:
        _warn(f"{path} holds no examples")
    if examples and not named:
        typer.echo("subsets: none (no example names one)")
        return
    if examples:
        typer.echo("subsets:")
    for name, n in sorted(subsets.items()):
        typer.echo(f"  {name}: {n}")
