"""``mdnet-deploy doctor``: what works on this machine, and how to fix the rest.

Two sections: runtimes (which backends import here, their versions, and
for each one that does not work why and how to fix it) and power meters.
Only the standard library, click, rich, the devices package and the
runtime registry are imported up front; each backend is imported only to
check it, so the doctor runs on a bare device.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from ..devices import KINDS, detect_kind
from ..doctor import doctor_report
from ._common import console


def render_runtimes(report: dict[str, Any]) -> None:
    table = Table(title=f"Runtimes ({report['kind']})", show_lines=False)
    table.add_column("runtime")
    table.add_column("ok")
    table.add_column("opens")
    table.add_column("version / why and how to fix", overflow="fold")
    for row in report["runtimes"]:
        mark = "[green]yes[/green]" if row["ok"] else "[red]no[/red]"
        name = f"{row['name']} *" if row.get("preferred") else row["name"]
        text = row["version"] if row["ok"] else row["reason"]
        if row.get("detail"):
            text = f"{text}; {row['detail']}"
        table.add_row(escape(name), mark, escape(", ".join(f".{f}" for f in row["formats"])), escape(str(text)))
    console.print(table)
    console.print("* preferred on this device kind, in this order, by --runtime auto", highlight=False)
    for fmt, pick in report["auto"].items():
        target = pick["runtime"] or f"none ({pick['reason']})"
        console.print(escape(f"auto for .{fmt} -> {target}"), highlight=False)


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


def render_install(info: dict[str, Any]) -> None:
    """Python, how mdnet-deploy is installed, whether that install is complete, and each extra."""
    where = "source checkout" if info["source_checkout"] else "installed package"
    console.print(
        escape(
            f"python {info['python']} ({info['executable']}); mdnet-deploy {info.get('version') or '?'} "
            f"from {where} {info['package']}"
        ),
        highlight=False,
    )
    if info.get("problem"):
        console.print(f"[red]install incomplete:[/red] {escape(info['problem'])}", highlight=False)
    elif info["complete"]:
        console.print(
            "install: [green]complete[/green] (base requirements present, every installed file in place)",
            highlight=False,
        )
    else:
        missing = info["base_missing"] + [f"missing file {f}" for f in info["files_missing"][:5]]
        console.print(
            f"[red]install incomplete:[/red] {escape('; '.join(missing))}; reinstall with "
            "pip install --force-reinstall mdnet_deploy-*.whl",
            highlight=False,
        )
    parts = []
    for name, extra in sorted(info.get("extras", {}).items()):
        if extra["ok"]:
            parts.append(f"[green]{name}[/green]")
        else:
            need = f", needs Python {extra['needs_python']}+" if extra.get("needs_python") else ""
            parts.append(f"{name} [dim](no: {escape(', '.join(extra['missing']))}{need})[/dim]")
    if parts:
        console.print("extras: " + "; ".join(parts), highlight=False)


@click.command()
@click.option("--device", "kind", type=click.Choice(KINDS), default=None, help="Device kind (default: detected).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def command(kind: str | None, as_json: bool) -> None:
    """Show which runtimes and power meters work here, and how to fix the others.

    \b
    Example:
      mdnet-deploy doctor --device rpi
    """
    kind = kind or detect_kind()
    report = doctor_report(kind)
    install, env = report["install"], report["device"]
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    render_install(install)
    model = env.get("device_model") or env.get("cpu_model") or env.get("machine")
    extra = " (emulated)" if env.get("emulated") else ""
    console.print(
        escape(f"device: {kind}, {model}{extra}, python {env['python']}, numpy {env['numpy']}"), highlight=False
    )
    render_runtimes(report["runtimes"])
    render_power_meters(report["power_meters"])
    if "tensorrt" in report:
        render_tensorrt(report["tensorrt"])


def render_tensorrt(r: dict[str, Any]) -> None:
    """The Jetson TensorRT block: version, typing, DLA, and what compile will do."""
    release = ", ".join(f"{k} {r[k]}" for k in ("jetpack", "l4t") if r.get(k)) or "JetPack unknown"
    if r.get("tensorrt") is None:
        console.print(escape(f"TensorRT: none found ({r.get('source')}); {release}"), highlight=False)
        return
    dla = "DLA: yes" if r["dla"]["supported"] else f"DLA: no ({r['dla']['reason']})"
    console.print(
        escape(f"TensorRT {r['tensorrt']} ({r['source']}), {r['typing']}ly typed builds; {dla}; {release}"),
        highlight=False,
    )
    for precision, what in r["compile"].items():
        console.print(escape(f"compile --precision {precision}: {what}"), highlight=False)
