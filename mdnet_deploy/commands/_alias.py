"""Old option spellings kept as hidden aliases, so scripts written for them still work."""

from __future__ import annotations

from typing import Any, Callable

import click


def hidden_alias(old: str, dest: str) -> Callable[[Any], Any]:
    """``old`` (e.g. ``--data``) sets the parameter ``dest`` of the option that replaced it.

    The new option must pass ``callback=keep_alias``: click fills options that
    were not given last, and that callback keeps what the alias stored.
    """

    def store(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:
            ctx.params[dest] = value

    return click.option(old, hidden=True, expose_value=False, callback=store)


def keep_alias(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    return value if value is not None else ctx.params.get(str(param.name))
