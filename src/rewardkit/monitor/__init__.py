"""Live reward monitoring for RL loops: reward–length correlation, ensemble disagreement,
proxy-versus-gold drift, per-component means and reward-hacking warnings (JSONL log, plots)."""

from __future__ import annotations

from rewardkit.monitor.monitor import (
    MonitorConfig,
    RewardHackingWarning,
    RewardMonitor,
    pearson,
    read_log,
    slope,
)

__all__ = ["MonitorConfig", "RewardHackingWarning", "RewardMonitor", "pearson", "read_log", "slope"]
