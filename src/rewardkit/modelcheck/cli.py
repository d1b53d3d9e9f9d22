"""The ``check-model`` verb: a thin shell over :func:`rewardkit.modelcheck.check.check_model`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from rewardkit.cli_errors import user_errors


def check_model_command(
    spec: Annotated[
        str,
        typer.Argument(
            help="A model path or embedded alias, a LoRA/PEFT adapter folder (ADAPTER?base=BASE), "
            "or 'classifier:PATH?family=NAME&...'."
        ),
    ],
    dtype: Annotated[
        list[str] | None,
        typer.Option(help="dtypes to run the engine in (repeatable; default float32, bfloat16)."),
    ] = None,
    max_length: Annotated[
        int | None,
        typer.Option(min=1, help="Cut rows to this many tokens (default: the model's)."),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu (default), cuda, cuda:N.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Check that rewardkit scores a model as its authors do (docs/families.md): engine layouts
    and dtypes vs the model's own forward one row at a time, pooling, chat template,
    truncation; exits 1 on FAIL, 2 on a spec or model folder it cannot load (as every verb
    exits on bad input)."""
    from rewardkit.modelcheck.check import check_model

    with user_errors():  # a spec or model folder that cannot be checked: one line, exit 2
        found = check_model(spec, tuple(dtype or ("float32", "bfloat16")), max_length, device)
    if as_json:
        typer.echo(json.dumps(found.as_dict(), indent=1))
    else:
        typer.echo("\n".join(found.lines()))
    if found.verdict == "FAIL":
        raise typer.Exit(1)
