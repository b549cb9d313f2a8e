"""``mdnet-deploy doctor``: what works on this machine, and how to fix the rest.

This module holds the power-meter part (and the device line); the runtime
part plugs in next to it. Only the standard library, click, rich and the
devices package are imported, so it runs on a bare device.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from ..devices import KINDS, detect_kind, doctor_meters, select_meter
from ..devices.environment import capture_environment
from ._common import console


def power_meter_report(kind: str) -> dict[str, Any]:
    """Every meter's status on a ``kind`` device and what ``--power-meter auto`` picks."""
    rows = doctor_meters(kind)
    meter, why = select_meter("auto", kind)
    return {"kind": kind, "meters": rows, "auto": meter.name, "auto_reason": why}


def render_power_meters(report: dict[str, Any]) -> None:
    table = Table(title=f"Power meters ({report['kind']})", show_lines=False)
    table.add_column("meter")
    table.add_column("ok")
    table.add_column("why / how to fix", overflow="fold")
    for row in report["meters"]:
        mark = "[green]yes[/green]" if row["ok"] else "[red]no[/red]"
        name = f"{row['name']} *" if row.get("preferred") else row["name"]
        table.add_row(escape(name), mark, escape(row["reason"]))
    console.print(table)
    console.print("* tried in this order by --power-meter auto", highlight=False)
    if report["auto_reason"]:
        console.print(f"auto -> none: {escape(report['auto_reason'])}", highlight=False)
    else:
        console.print(f"auto -> {report['auto']}", highlight=False)


@click.command()
@click.option("--device", "kind", type=click.Choice(KINDS), default=None, help="Device kind (default: detected).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def command(kind: str | None, as_json: bool) -> None:
    """Show which power meters work here, and how to fix the others."""
    kind = kind or detect_kind()
    env = capture_environment(kind)
    report = {"device": env, "power_meters": power_meter_report(kind)}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    model = env.get("device_model") or env.get("cpu_model") or env.get("machine")
    extra = " (emulated)" if env.get("emulated") else ""
    console.print(escape(f"device: {kind}, {model}{extra}, python {env['python']}, numpy {env['numpy']}"), highlight=False)
    render_power_meters(report["power_meters"])
