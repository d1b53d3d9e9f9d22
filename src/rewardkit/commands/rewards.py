"""``rewardkit rewards list``: every registered kind of reward."""

from __future__ import annotations

import typer

rewards_app = typer.Typer(help="Inspect the registered kinds of reward.", no_args_is_help=True)

#: Kinds whose choices ``rewards list`` prints under them: kind → (table, how a choice is written).
_SUB_LISTS = {
    "rule": ("rewardkit.rewards.rules:DESCRIPTIONS", "rule:{}"),
    "ensemble": ("rewardkit.combine.aggregate:AGGREGATES", "aggregate={}"),
}


def rule_options(name: str) -> list[str]:
    """The options ``rule:NAME`` takes: its class's keyword parameters (read from the code, so
    the listing cannot fall behind it)."""
    import importlib
    import inspect

    from rewardkit.rewards.rules import RULES

    module_name, _, cls_name = RULES[name].partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


#: Kinds whose sub-list entries take options of their own: kind → the options of an entry.
_OPTION_LISTS = {"rule": rule_options}


def option_forms(options: str, endpoint: str | None) -> list[str]:
    """A kind's ``options …`` paragraph(s): one, or for a kind that also runs on an endpoint
    (``RewardKind.endpoint_help``) the local model's and the endpoint's, each listing only the
    options that form reads."""
    if endpoint is None:
        return ["options" + options]
    return ["options (local model)" + options, f"options (endpoint, openai://…) {endpoint}"]


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
        # "ARG; options …": the argument on the kind's line, its options wrapped under it
        arg, sep, options = (k.arg_help or "").partition("; options")
        if k.composite:
            head = f"{k.kind}  {arg}  (dict or YAML/JSON file)" if arg else k.kind
        else:
            head = f"{k.kind}:{arg}" if arg else k.kind
        typer.echo(head)
        typer.echo(block(k.description))
        if sep:
            for form in option_forms(options, k.endpoint_help):
                typer.echo(block(form))
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
                if k.kind in _OPTION_LISTS:
                    names = _OPTION_LISTS[k.kind](name)
                    if names:
                        pad = " " * (4 + width)
                        typer.echo(block("options: " + ", ".join(names), pad))
