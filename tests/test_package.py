"""Package-level promises: light imports, public names."""

from __future__ import annotations

import subprocess
import sys


def test_import_rewardkit_and_light_paths_do_not_import_torch():
    code = (
        "import sys, rewardkit, rewardkit.data, rewardkit.evaluate, rewardkit.cli, "
        "rewardkit.rewards.rules.length, rewardkit.scoring, rewardkit.client, rewardkit.serve.batcher, "
        "rewardkit.combine, rewardkit.combine.route, rewardkit.combine.hybrid, rewardkit.monitor, "
        "rewardkit.integrations.trl, rewardkit.integrations.verl, rewardkit.integrations.openrlhf, "
        "rewardkit.evaluate.analyses, rewardkit.evaluate.htmlreport, rewardkit.evaluate.plots, "
        "rewardkit.evaluate.leaderboard, rewardkit.evaluate.probing, rewardkit.evaluate.robustness, "
        "rewardkit.curate, rewardkit.curate.cli, rewardkit.inference, rewardkit.inference.run, "
        "rewardkit.train, rewardkit.train.config, rewardkit.train.cli\n"
        "rewardkit.load_reward('rule:length')\n"
        "heavy = [m for m in ('torch', 'transformers', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names():
    import rewardkit

    for name in ("Example", "Message", "Query", "Reward", "load_reward", "DataError"):
        assert hasattr(rewardkit, name)
