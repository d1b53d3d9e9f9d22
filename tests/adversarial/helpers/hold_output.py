"""Hold :func:`rewardkit.outputs.atomic_file` on PATH for SECONDS, writing one line.

Usage: python -m tests.adversarial.helpers.hold_output PATH SECONDS
"""

from __future__ import annotations

import sys
import time

from rewardkit.outputs import atomic_file


def main() -> None:
    path, seconds = sys.argv[1], float(sys.argv[2])
    with atomic_file(path) as fh:
        fh.write("first\n")
        print("holding", flush=True)
        time.sleep(seconds)


if __name__ == "__main__":
    main()
