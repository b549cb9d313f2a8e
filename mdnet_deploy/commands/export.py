"""Placeholder: this sub-command is not implemented yet."""

import click

from ..errors import UnavailableError


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(args: tuple[str, ...]) -> None:
    raise UnavailableError("this command is not implemented yet")
