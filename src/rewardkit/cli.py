"""``rewardkit <verb>``: the typer app; each verb is a thin shell over one library function,
defined in :mod:`rewardkit.commands` (or its area's ``cli`` module) and registered here."""

from __future__ import annotations

import io
import os
import re
import sys
import warnings
from typing import Annotated, TextIO

import typer

from rewardkit.commands.evaluate import eval_command, report_command
from rewardkit.commands.rewards import rewards_app
from rewardkit.commands.score import data_command, score_command
from rewardkit.commands.serve import serve_command

app = typer.Typer(
    help="rewardkit: score, evaluate and serve rewards for LLM post-training.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(rewards_app, name="rewards")
app.command("eval")(eval_command)
app.command("report")(report_command)
app.command("score")(score_command)
app.command("data")(data_command)
app.command("serve")(serve_command)


@app.command(
    "train",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def train_command(
    ctx: typer.Context,
    config: Annotated[str | None, typer.Option("--config", "-c", help="Train YAML config.")] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config field: KEY=VALUE.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the last checkpoint in output_dir.")
    ] = False,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved config and exit.")
    ] = False,
) -> None:
    """Train a reward model (docs/cli/train.md); any field as --FIELD VALUE, e.g. --lr 1e-4."""
    from rewardkit.train.cli import train_command as run

    run(ctx, config, sets, resume, print_config)


# -- curate / bon: thin shells over rewardkit.curate and rewardkit.inference ----------------
from rewardkit.curate.cli import curate_app  # noqa: E402  (typer only; steps load lazily)
from rewardkit.inference.cli import bon_command  # noqa: E402

app.add_typer(curate_app, name="curate")
app.command("bon")(bon_command)

# -- check-model: rewardkit.modelcheck ------------------------------------------------------
from rewardkit.modelcheck.cli import check_model_command  # noqa: E402  (typer only)

app.command("check-model")(check_model_command)

# -- research methods (PAL, ...): rewardkit.cli_methods ------------------------------------
from rewardkit.cli_methods import register as _register_methods  # noqa: E402

_register_methods(app)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
    """Warnings as ``warning: MESSAGE`` on one line (no class name, no source line)."""
    text = " ".join(str(message).split())
    print(f"warning: {text}", file=file or sys.stderr, flush=True)


class _LinePerUpdate(io.TextIOBase):
    """stderr when it is not a terminal: progress-bar redraws (``\r``) become one clean line
    each, so a log file gets a readable line per update instead of one endless line."""

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw
        self._line = ""

    def write(self, text: str) -> int:
        parts = re.split(r"[\r\n]", self._line + text)
        self._line = parts.pop()
        lines = [p for p in parts if p.strip()]  # drop the blank redraws that clear a bar
        if lines:
            self.raw.write("\n".join(lines) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._line.strip():  # a bar drawn without a newline: it is this update's line
            self.raw.write(self._line + "\n")
        self._line = ""
        self.raw.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.raw.fileno()


#: Exit status of a run stopped by Ctrl-C (128 + SIGINT), and what it says.
INTERRUPTED = 130
INTERRUPTED_NOTE = (
    "interrupted before the run finished: its outputs are absent or incomplete (score, eval, "
    "report and curate write each file only once it is complete); model scores computed so far "
    "stay in the score cache, so the same command resumes from them"
)


def main() -> None:
    """Console-script entry point."""
    warnings.showwarning = _one_line_warning
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_MININTERVAL", "5")  # a line every 5 s at most
        sys.stderr = _LinePerUpdate(sys.stderr)
    try:
        app()
        return
    except KeyboardInterrupt:  # outside a command (typer turns one inside into exit 130)
        pass
    except SystemExit as exc:
        if exc.code != INTERRUPTED:
            raise
    typer.echo(INTERRUPTED_NOTE, err=True)
    sys.exit(INTERRUPTED)


if __name__ == "__main__":
    main()
