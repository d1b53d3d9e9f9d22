"""``rewardkit <verb>``: the typer app; each verb is a thin shell over one library function,
defined in :mod:`rewardkit.commands` (or its area's ``cli`` module) and registered here.

The verbs (typer and every command module) are imported when the app is first needed
(:func:`build_app`, or ``rewardkit.cli.app``), not when this module is: :func:`main` builds it
inside the block that turns Ctrl-C and SIGTERM into one line, so an interrupt during the
imports is as clean as one during a run."""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import re
import signal
import sys
import warnings
from typing import TYPE_CHECKING, Annotated, Any, TextIO

if TYPE_CHECKING:
    import typer

    from rewardkit.cli_errors import nonempty_path

_APP: Any = None


def build_app() -> typer.Typer:
    """The typer app with every verb registered (built once; imports each verb's module)."""
    global _APP, typer, nonempty_path
    if _APP is not None:
        return _APP
    import typer

    from rewardkit.cli_errors import nonempty_path  # train's --config (its annotation)
    from rewardkit.cli_methods import register as register_methods
    from rewardkit.commands.evaluate import eval_command, report_command
    from rewardkit.commands.rewards import rewards_app
    from rewardkit.commands.score import data_command, score_command
    from rewardkit.commands.serve import serve_command
    from rewardkit.curate.cli import curate_app  # typer only; steps load lazily
    from rewardkit.inference.cli import bon_command
    from rewardkit.modelcheck.cli import check_model_command  # typer only

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
    app.command(
        "train",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(train_command)
    # curate / bon: thin shells over rewardkit.curate and rewardkit.inference
    app.add_typer(curate_app, name="curate")
    app.command("bon")(bon_command)
    # check-model: rewardkit.modelcheck
    app.command("check-model")(check_model_command)
    # research methods (PAL, ...): rewardkit.cli_methods
    register_methods(app)
    _APP = app
    return app


def __getattr__(name: str) -> Any:
    """``rewardkit.cli.app``: the app, built on first use."""
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def train_command(
    ctx: typer.Context,
    config: Annotated[
        str | None, typer.Option("--config", "-c", parser=nonempty_path, help="Train YAML config.")
    ] = None,
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


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
    """Warnings as ``warning: MESSAGE`` on one line (no class name, no source line)."""
    text = " ".join(str(message).split())
    print(f"warning: {text}", file=file or sys.stderr, flush=True)


#: Terminal control sequences (cursor moves, colours) that progress bars write.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _LinePerUpdate(io.TextIOBase):
    """stderr when it is not a terminal: progress-bar redraws (``\r``) become one clean line
    each, so a log file gets a readable line per update instead of one endless line."""

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw
        self._line = ""

    def write(self, text: str) -> int:
        # a nested bar moves the cursor (ESC[A): escape sequences mean nothing in a log file
        parts = re.split(r"[\r\n]", self._line + _ANSI.sub("", text))
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
#: How a run can go on: from the score cache, or (``--no-cache``) from the start.
_RESUME = (
    "model scores computed so far stay in the score cache, so the same command resumes from them"
)
_NO_CACHE_RESUME = (
    "with --no-cache no model score was kept, so the same command starts over (bon and curate "
    "anyprefer still skip the prompts they finished)"
)
_UNFINISHED = (
    "before the run finished: its outputs are absent or incomplete (score, eval, report and "
    "curate write each file only once it is complete, so a file already at an output path is "
    "an earlier run's; bon keeps the prompts it finished in its --out, curate anyprefer in its "
    "--trace); " + _RESUME
)
INTERRUPTED_NOTE = "interrupted " + _UNFINISHED
TERMINATED_NOTE = "terminated (SIGTERM) " + _UNFINISHED
#: What Ctrl-C on ``serve`` says (after its SIGTERM drain it exits 0 without a note).
SERVER_STOPPED = (
    "interrupted: the server stopped (requests in progress were answered or got a 503 "
    "shutting_down)"
)


def unfinished_note(note: str, argv: list[str]) -> str:
    """``note`` as it holds for this command line: a run with ``--no-cache`` kept nothing."""
    return note.replace(_RESUME, _NO_CACHE_RESUME) if "--no-cache" in argv else note


#: Verbs that handle SIGTERM themselves (``serve`` drains its requests, then exits 0).
OWN_SIGTERM = frozenset({"serve"})

#: Signals turned into KeyboardInterrupt by :func:`_on_sigterm`, in order.
_received: list[int] = []


def _on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM takes Ctrl-C's path: the run unwinds (temporary files removed, locks released)
    and :func:`main` says so in one line. A second SIGTERM while unwinding ends the process."""
    _received.append(signum)
    if len(_received) > 1:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    raise KeyboardInterrupt


def _after_a_stop(exc: BaseException) -> bool:
    """Whether ``exc`` is what a Ctrl-C or SIGTERM left behind, not a bug: a SIGTERM was
    received, or a KeyboardInterrupt is in its chain. A library may turn the interrupt into its
    own error: transformers reported one that landed while it imported a model class as
    ``ModuleNotFoundError: Could not import module 'LlamaForCausalLM'``."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return bool(_received)


def _stop(note: str, signum: int | None) -> None:
    """Say that the run stopped, run the exit handlers, then exit as the signal asks: 130 for
    Ctrl-C; for SIGTERM, by the signal itself, as a supervisor expects."""
    print(note, file=sys.stderr, flush=True)
    sys.stdout.flush()
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is not None:
        run_exit_handlers()
    if signum is None:
        # Not sys.exit: when the interrupt landed in code CPython ran through PyRun_* (a
        # library's), the interpreter remembers an "unhandled" KeyboardInterrupt and, after
        # finalizing, exits by SIGINT whatever status was asked (-2, 1 run in ~20 under load)
        sys.stderr.flush()
        os._exit(INTERRUPTED)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    sys.exit(128 + signum)  # pragma: no cover - only where the signal could not end us


def _keep_status_on_late_signals(code: object, sigterm: bool) -> None:
    """The command has ended (its outputs written, or its error said): a Ctrl-C (and, where
    ``sigterm``, a SIGTERM) arriving while the interpreter shuts down (threads joined, exit
    handlers, torch unloading) ends the process at once with the status the command had, not by
    the signal with a traceback from an exit handler."""
    status = code if isinstance(code, int) else (0 if code is None else 1)

    def leave(signum: int, frame: Any) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(status)

    signal.signal(signal.SIGINT, leave)
    if sigterm:
        signal.signal(signal.SIGTERM, leave)
    _ended.append(status)


#: The ended command's status, once :func:`_keep_status_on_late_signals` ran.
_ended: list[int] = []


def _ignore_ctrl_c_in_teardown() -> None:
    """The last exit handler: after it the interpreter resets Python-level signal handlers to
    the default and unloads its modules (torch's included, seconds), where a Ctrl-C would end an
    already finished command by the signal. A finished command ignores it from here on."""
    if _ended:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def main() -> None:
    """Console-script entry point."""
    try:
        _run()
    except KeyboardInterrupt:  # a second Ctrl-C landed while the first one's run unwound (5–25
        # ms apart): it printed a traceback and ended by SIGINT; the run has stopped all the same
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _finish_interrupted()


def _run() -> None:
    own_sigterm = not hasattr(signal, "SIGTERM") or bool(OWN_SIGTERM.intersection(sys.argv[1:2]))
    atexit.register(_ignore_ctrl_c_in_teardown)  # registered first: runs after the others
    try:
        if not own_sigterm:
            signal.signal(signal.SIGTERM, _on_sigterm)
        warnings.showwarning = _one_line_warning
        if not sys.stderr.isatty():
            os.environ.setdefault("TQDM_MININTERVAL", "5")  # a line every 5 s at most
            sys.stderr = _LinePerUpdate(sys.stderr)
        app = build_app()  # imports every verb: inside the try, so Ctrl-C here is clean too
        app()
        _keep_status_on_late_signals(0, not own_sigterm)
        return
    except KeyboardInterrupt:  # outside a command (typer turns one inside into exit 130)
        pass
    except OSError as exc:  # writing stdout or stderr failed (`> /dev/full`) outside a command's
        # own error handling: one line, as every other OS error (click handles a closed pipe)
        with contextlib.suppress(OSError):
            where = f" {exc.filename}" if exc.filename else " the output"
            sys.stderr.write(f"error: could not write{where}: {exc.strerror or exc}\n")
        raise SystemExit(2) from None
    except SystemExit as exc:
        if exc.code != INTERRUPTED:
            _keep_status_on_late_signals(exc.code, not own_sigterm)
            raise
    except Exception as exc:  # a bug, not the user's input: one line, not a traceback
        if os.environ.get("REWARDKIT_DEBUG"):
            raise
        if not _after_a_stop(exc):
            _internal_error(exc)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run has unwound: a second Ctrl-C waits
    _finish_interrupted()


#: Exit status of a command that stopped on an internal error (a bug): 1, as an unhandled
#: exception; bad input exits 2.
INTERNAL_ERROR = 1


def _internal_error(exc: Exception) -> None:
    """One line for an exception no command turned into a user error (a bug in rewardkit):
    its type, message and the verb, and how to see the traceback; exit :data:`INTERNAL_ERROR`."""
    from rewardkit.cli_errors import one_line

    verb = " ".join(a for a in sys.argv[1:2] if not a.startswith("-")) or "(no verb)"
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(
            f"error: rewardkit {verb} stopped on an internal error, a bug in rewardkit, not in "
            f"the input: {type(exc).__name__}: {one_line(str(exc))[:500]} (rerun with "
            "REWARDKIT_DEBUG=1 for the traceback, and please report it with the command)\n"
        )
    _keep_status_on_late_signals(INTERNAL_ERROR, False)
    raise SystemExit(INTERNAL_ERROR) from None


def _finish_interrupted() -> None:
    """Say how the stopped run can go on, and exit as its signal asks (SIGINT ignored by now)."""
    terminated = signal.SIGTERM if hasattr(signal, "SIGTERM") else None
    by_sigterm = terminated is not None and terminated in _received
    if sys.argv[1:2] == ["serve"]:  # a server has no outputs to resume: it drained and stopped
        _stop(SERVER_STOPPED, None)
    if sys.argv[1:2] == ["train"]:  # training resumes from checkpoints, not the score cache
        from rewardkit.train.cli import interrupted_note

        how = "terminated (SIGTERM)" if by_sigterm else "interrupted"
        _stop(interrupted_note(how), terminated if by_sigterm else None)
    if by_sigterm:
        _stop(unfinished_note(TERMINATED_NOTE, sys.argv), terminated)
    _stop(unfinished_note(INTERRUPTED_NOTE, sys.argv), None)


if __name__ == "__main__":
    main()
