"""``python -m rewardkit.monitor LOG.jsonl OUT.png``: plot a monitor log and list its warnings;
where the run logged KL and a gold reward, print Gao's RL fit of the gold gain against
d = sqrt(KL) (docs/methods/D9-overoptimization.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from typer import BadParameter

from rewardkit.cli_errors import nonempty_path
from rewardkit.monitor.kl import fit_summary, kl_logged, rl_fit
from rewardkit.monitor.log import cut_note, read_log_report, superseded_note
from rewardkit.monitor.plot import plot_history


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rewardkit.monitor", description=__doc__)
    ap.add_argument("log", help="the RewardMonitor JSONL log")
    ap.add_argument("out", help="the plot to write (.png, .pdf or .svg)")
    args = ap.parse_args(argv)
    for name in ("log", "out"):  # '' (an unset shell variable) read the current directory
        try:
            nonempty_path(getattr(args, name))
        except BadParameter as exc:
            ap.error(f"{name}: {exc.message}")
    try:
        history, cut, superseded = read_log_report(args.log)
        written = plot_history(history, args.out)
    except (OSError, ValueError) as exc:  # DataError is a ValueError; no traceback for a user
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    if cut:  # a run that stopped mid-write: its whole records are plotted
        print(f"note: {cut_note(args.log, cut)}", file=sys.stderr)
    if superseded:  # a run resumed from a checkpoint logged its later steps again
        print(f"note: {superseded_note(args.log, superseded)}", file=sys.stderr)
    flagged = [(h["step"], h["warnings"]) for h in history if h.get("warnings")]
    print(f"{len(history)} steps, {len(flagged)} with hacking flags; plot: {written}")
    for step, flags in flagged:
        print(f"  step {step}: {', '.join(flags)}")
    fit = fit_summary(rl_fit(history))
    if fit:  # KL and gold logged: Gao's RL fit of the gold gain against d (card D9)
        print(fit)
    elif kl_logged(history):
        print("note: kl was logged without a gold reward: no Gao fit", file=sys.stderr)
    return 0


def _one_line(exc: BaseException) -> str:
    """The error as one line (an OSError names its file)."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
