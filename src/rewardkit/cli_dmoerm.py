"""``rewardkit dmoerm …``: card A5 (DMoERM), the double-layer mixture-of-experts reward model."""

from __future__ import annotations

import typer

dmoerm_app = typer.Typer(
    help="DMoERM (card A5): route prompts to categories, fit the experts' aggregator.",
    no_args_is_help=True,
)
