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

from ..devices import KINDS, detect_kind, doctor_meters, select_meter
from ..devices.environment import capture_environment
from ..runtimes.registry import RUNTIMES, choose_runtime, doctor_runtimes
from ._common import console


def runtime_report(kind: str) -> dict[str, Any]:
    """Every runtime's status on a ``kind`` device and what ``--runtime auto`` picks per format."""
    rows = doctor_runtimes(kind)
    for row in rows:
        if row["name"] == "onnxruntime" and row["ok"]:
            row["detail"] = _ort_providers(kind)
    auto: dict[str, Any] = {}
    for fmt in sorted({f for spec in RUNTIMES.values() for f in spec.formats}):
        try:
            auto[fmt] = {"runtime": choose_runtime(fmt, kind), "reason": None}
        except Exception as exc:  # UnavailableError: the reason is the report
            auto[fmt] = {"runtime": None, "reason": str(exc)}
    return {"kind": kind, "runtimes": rows, "auto": auto}


def _ort_providers(kind: str) -> str | None:
    try:
        import onnxruntime as ort

        have = list(ort.get_available_providers())
    except Exception:  # the version check passed; a provider query failing is not worth a crash
        return None
    text = "providers: " + ", ".join(have)
    if kind == "cuda" and "CUDAExecutionProvider" not in have:
        text += " (no CUDA provider: pip install onnxruntime-gpu for --device cuda)"
    return text


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


def render_install(info: dict[str, Any]) -> None:
    """Python, how mdnet-deploy is installed, whether that install is complete, and each extra."""
    where = "source checkout" if info["source_checkout"] else "installed package"
    console.print(escape(f"python {info['python']} ({info['executable']}); mdnet-deploy {info.get('version') or '?'} "
                         f"from {where} {info['package']}"), highlight=False)
    if info.get("problem"):
        console.print(f"[red]install incomplete:[/red] {escape(info['problem'])}", highlight=False)
    elif info["complete"]:
        console.print("install: [green]complete[/green] (base requirements present, every installed file in place)",
                      highlight=False)
    else:
        missing = info["base_missing"] + [f"missing file {f}" for f in info["files_missing"][:5]]
        console.print(f"[red]install incomplete:[/red] {escape('; '.join(missing))}; reinstall with "
                      "pip install --force-reinstall mdnet_deploy-*.whl", highlight=False)
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
    from ..installation import describe_installation

    kind = kind or detect_kind()
    env = capture_environment(kind)
    install = describe_installation()
    report = {"install": install, "device": env, "runtimes": runtime_report(kind), "power_meters": power_meter_report(kind)}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    render_install(install)
    model = env.get("device_model") or env.get("cpu_model") or env.get("machine")
    extra = " (emulated)" if env.get("emulated") else ""
    console.print(escape(f"device: {kind}, {model}{extra}, python {env['python']}, numpy {env['numpy']}"), highlight=False)
    render_runtimes(report["runtimes"])
    render_power_meters(report["power_meters"])
