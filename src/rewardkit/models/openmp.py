"""How idle OpenMP threads wait (set before torch loads; docs/performance.md, "OpenMP waits").

No torch import here: this must run before torch's OpenMP runtime (libgomp) reads its
environment, which it does once, when torch is first imported.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

#: What rewardkit sets when the user set neither ``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT``.
WAITS = {"OMP_WAIT_POLICY": "PASSIVE"}


def set_openmp_waits(env: MutableMapping[str, str] = os.environ) -> bool:
    """Idle OpenMP threads sleep at once (``OMP_WAIT_POLICY=PASSIVE``); returns whether it set it.

    Spinning threads win on a quiet machine and lose badly on a shared one: on this project's
    2-core machine a bounded spin (``GOMP_SPINCOUNT=30000``) was 15–30% faster quiet but 2–2.5×
    slower with other jobs on the cores, and unbounded spinning (``ACTIVE``) 18× slower; sleeping
    waits never collapse and keep an idle server at no CPU. A user on a dedicated machine sets
    ``GOMP_SPINCOUNT=30000`` (docs/performance.md). Only takes effect before torch is imported;
    a value the user set for either variable wins, and then rewardkit sets nothing."""
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return False
    env.update(WAITS)
    return True
