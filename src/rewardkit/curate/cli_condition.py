"""``rewardkit curate …`` commands of card E8 (registered on :data:`rewardkit.curate.cli.curate_app`)."""

from __future__ import annotations
