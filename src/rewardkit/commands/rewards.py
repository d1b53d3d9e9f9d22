"""``rewardkit rewards list``: every registered kind of reward."""

from __future__ import annotations

import typer

rewards_app = typer.Typer(help="Inspect the registered kinds of reward.", no_args_is_help=True)

#: Kinds whose choices ``rewards list`` prints under them: kind → (table, how a choice is written).
_SUB_LISTS = {
    "rule": ("rewardkit.rewards.rules:DESCRIPTIONS", "rule:{}"),
    "ensemble": ("rewardkit.combine.aggregate:AGGREGATES", "aggregate={}"),
}


@rewards_app.command("list")
def rewards_list() -> None:
    """Every registered kind of reward, with a one-line description and its method card."""
    import importlib
    import textwrap

    from rewardkit.registry import kinds

    def block(text: str, indent: str = "    ") -> str:
        return textwrap.fill(
            text,
            width=100,
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,
        )

    for k in kinds():
        if k.composite:
            head = f"{k.kind}  {k.arg_help}  (dict or YAML/JSON file)" if k.arg_help else k.kind
        else:
            head = f"{k.kind}:{k.arg_help}" if k.arg_help else k.kind
        typer.echo(head)
        typer.echo(block(k.description))
        if k.card:
            typer.echo(block(f"method card: {k.card} (docs/methods/)"))
        if k.kind in _SUB_LISTS:
            target, form = _SUB_LISTS[k.kind]
            module_name, _, attr = target.partition(":")
            table: dict[str, str] = getattr(importlib.import_module(module_name), attr)
            labels = {name: form.format(name) for name in table}
            width = max(len(label) for label in labels.values()) + 2
            for name, text in sorted(table.items()):
                typer.echo(f"    {labels[name]:<{width}}{text}")
