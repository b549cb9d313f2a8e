"""Option parsing and rendering helpers shared by the sub-commands."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Sequence

import click
from rich.console import Console
from rich.markup import escape

from ..errors import InputError

# Results go to stdout; progress and warnings to stderr. Piped output (CI
# logs, `| tee`) gets a wide console so comparison tables do not wrap per cell.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


def parse_floats(value: str | None, option: str, count: int = 3) -> tuple[float, ...] | None:
    """Parse 'R,G,B' into floats; one clear line when it is malformed."""
    if value is None:
        return None
    parts = [p for p in value.replace(" ", "").split(",") if p != ""]
    try:
        numbers = tuple(float(p) for p in parts)
    except ValueError:
        raise InputError(
            f"{option} '{value}' is not a list of numbers; give {count} comma-separated values like 0.5,0.5,0.5"
        ) from None
    if len(numbers) != count:
        raise InputError(
            f"{option} '{value}' has {len(numbers)} numbers; give {count} comma-separated values (one per RGB channel)"
        )
    if not all(math.isfinite(v) for v in numbers):  # float() takes 'nan' and 'inf'; no statistic is either
        raise InputError(
            f"{option} '{value}' is not finite; give {count} finite comma-separated numbers like 0.5,0.5,0.5"
        )
    return numbers


def check_ssh_options(identity: object, inventory: object) -> None:
    """--identity names the key of one --host; an inventory names each host's key itself."""
    if identity and inventory:
        raise InputError(
            "--identity applies to --host alone; an inventory names keys with ansible_ssh_private_key_file"
        )


def known_hosts_path(value: object) -> str | None:
    """--known-hosts as the library takes it: a plain path, ``~`` expanded (None: the library's default)."""
    return str(Path(str(value)).expanduser()) if value else None


def warn(message: str) -> None:
    # Messages carry file names and device output: never read them as markup ("[/" in a path would crash rich).
    # soft_wrap: one message stays one line (the terminal wraps it; a log or a remote stream keeps it whole).
    err_console.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def info(message: str) -> None:
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def fmt(value: float | None, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{unit}"


def echo_lines(lines: Sequence[str]) -> None:
    for line in lines:
        click.echo(line)
