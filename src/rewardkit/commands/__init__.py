"""The CLI verbs, one module per job; ``rewardkit.cli`` registers them on the typer app."""
