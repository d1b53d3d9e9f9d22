"""A Ctrl-C or SIGTERM that a library turns into its own error is reported as the stop it was,
not as a bug (rewardkit.cli._after_a_stop). Found by CI: a SIGTERM landing while transformers
imported ``LlamaForCausalLM`` came out as "internal error ... ModuleNotFoundError"."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

# The command's app, replaced: the signal "arrives" (as the handler records it or as the
# KeyboardInterrupt it raises) and the library reports its own error instead.
SCRIPT = textwrap.dedent(
    """
    import signal, sys
    import rewardkit.cli as cli

    def app():
        if sys.argv[2] == "sigterm":
            cli._received.append(signal.SIGTERM)
            raise ModuleNotFoundError("Could not import module 'LlamaForCausalLM'")
        if sys.argv[2] == "ctrl-c":
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as exc:
                raise ModuleNotFoundError("Could not import module 'LlamaForCausalLM'") from exc
        raise ModuleNotFoundError("Could not import module 'LlamaForCausalLM'")

    cli.build_app = lambda: app
    sys.argv = ["rewardkit", "score", sys.argv[1]]
    cli.main()
    """
)


def _run(how: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", SCRIPT, how, how]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="no SIGTERM on this platform")
def test_a_library_error_after_a_sigterm_is_the_termination():
    done = _run("sigterm")
    assert "terminated (SIGTERM) before the run finished" in done.stderr, done.stderr
    assert "internal error" not in done.stderr
    assert done.returncode == -signal.SIGTERM  # ends by the signal, as a supervisor expects


def test_a_library_error_wrapping_a_ctrl_c_is_the_interruption():
    done = _run("ctrl-c")
    assert "interrupted before the run finished" in done.stderr, done.stderr
    assert "internal error" not in done.stderr
    assert done.returncode == 130


def test_the_same_error_without_a_signal_is_still_a_bug_in_one_line():
    done = _run("none")
    assert done.returncode == 1
    assert "stopped on an internal error, a bug in rewardkit" in done.stderr
    assert "ModuleNotFoundError" in done.stderr and "Traceback" not in done.stderr
