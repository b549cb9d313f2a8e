"""``mdnet-deploy deploy``: checkpoint -> the best artifact per device within an accuracy budget, decided on the device.

Parses options, calls :func:`mdnet_deploy.deploy.deploy`, prints one table
per device with the winner marked, and exits non-zero when a device has no
candidate within budget (4, the best over-budget one kept under
``best-over-budget.<ext>``) or nothing could be measured (7).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import AccuracyBudgetError, BenchFailedError
from ._common import console, err_console, fmt, parse_floats

DEVICES = ("rpi", "jetson", "host", "cuda")
OBJECTIVES = ("latency", "energy", "size")
MARK = {
    "chosen": "★ chosen",
    "lost": "lost",
    "over-budget": "over budget",
    "failed": "failed",
    "unmeasured": "unmeasured",
    "reference-only": "reference",
}


def say(line: str) -> None:
    err_console.print(line, markup=False, highlight=False)


def deploy_options(f: Any) -> Any:
    """The options `deploy` and `run` share (run takes them as overrides of the pipeline)."""
    for opt in reversed(
        [
            click.option(
                "--threads", type=int, default=None, help="CPU threads for the runtimes (default: the runtime's own)."
            ),
            click.option(
                "--power-meter",
                default="auto",
                show_default=True,
                help="auto | ina3221 | tegrastats | pmic | rapl | nvml | csv:FILE | none.",
            ),
            click.option("--identity", type=click.Path(path_type=Path), help="SSH private key for --host."),
            click.option("--setup", is_flag=True, help="Create or update the device's venv first."),
            click.option(
                "--accept-new-host-key", is_flag=True, help="Trust a host key not yet in known_hosts (first contact)."
            ),
            click.option(
                "--known-hosts",
                type=click.Path(path_type=Path),
                default=Path("~/.ssh/known_hosts"),
                show_default=True,
                help="SSH known_hosts file that host keys are checked against.",
            ),
            click.option("--force", is_flag=True, help="Replace an earlier deploy in OUTDIR."),
        ]
    ):
        f = opt(f)
    return f


@click.command(name="deploy")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--device", type=click.Choice(DEVICES), required=True, help="Device kind to deploy to.")
@click.option("--host", help="Deploy to this device over SSH: [user@]host[:port] (rpi, jetson).")
@click.option(
    "--inventory", type=click.Path(path_type=Path), help="Deploy to every device of an Ansible YAML inventory."
)
@click.option("--calib", required=True, help="Calibration data-set spec (e.g. digits:train).")
@click.option("--calib-size", type=int, default=512, show_default=True, help="Calibration images.")
@click.option(
    "--eval",
    "eval_spec",
    required=True,
    help="Evaluation data-set spec (e.g. digits:test); accuracy is measured on the device.",
)
@click.option(
    "--eval-size", type=int, default=None, help="Evaluate on this many images (seeded, class-balanced) [default: all]."
)
@click.option(
    "--max-drop",
    type=float,
    default=0.5,
    show_default=True,
    help="Largest acceptable top-1 drop vs the float model on the same device, points.",
)
@click.option(
    "--objective",
    type=click.Choice(OBJECTIVES),
    default="latency",
    show_default=True,
    help="What the winner is best at.",
)
@click.option(
    "--candidates",
    "only",
    default=None,
    metavar="NAME,...",
    help="Only these candidates may win (e.g. tflite-int8); the float reference is still measured.",
)
@click.option(
    "--judge",
    type=click.Choice(("onnxruntime", "tflite")),
    default=None,
    help="Runtime that scores quantize's fallback search for the TFLite INT8 candidate [default: onnxruntime].",
)
@click.option("--mean", help="Per-channel mean R,G,B of the training normalisation.")
@click.option("--std", help="Per-channel std R,G,B of the training normalisation.")
@click.option(
    "--warmup", default="20", show_default=True, help="Untimed warm-up per candidate: a count or seconds (5s)."
)
@click.option("--iterations", type=int, default=200, show_default=True, help="Timed calls per candidate.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Output folder.")
@deploy_options
def command(checkpoint: Path, only: str | None, mean: str | None, std: str | None, **values: Any) -> None:
    """Build the candidates for DEVICE from CHECKPOINT, bench them there, keep the best within --max-drop."""
    from ..deploy import DeployConfig

    config = DeployConfig(
        checkpoint=checkpoint,
        mean=parse_floats(mean, "--mean"),
        std=parse_floats(std, "--std"),
        candidates=tuple(n.strip() for n in (only or "").split(",") if n.strip()),
        **values,
    )
    run_and_render(config)


def run_and_render(config: Any) -> None:
    from ..deploy import deploy

    result = deploy(config, progress=say)
    for d in result.devices:
        render_device(d)
    console.print(
        f"wrote {result.deploy_json} and {result.pipeline_yaml} in {result.seconds:.0f} s"
        + (f"; report: {result.report}" if result.report else ""),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    no_winner = [d for d in result.devices if d.choice.chosen is None]
    if not no_winner:
        return
    kept = [d for d in no_winner if d.best_over_budget is not None]
    names = ", ".join(d.device.label for d in no_winner)
    if kept:
        raise AccuracyBudgetError(
            f"no candidate within --max-drop {config.max_drop:g} on {names}; the closest is kept as "
            f"{', '.join(str(d.best_over_budget) for d in kept)} (not best.*); see deploy.json"
        )
    raise BenchFailedError(f"no candidate could be chosen on {names}; the table says why for each")


def render_device(d: Any) -> None:
    from rich.table import Table

    ch = d.choice
    ref = (
        f"float reference {ch.reference} {fmt(ch.reference_top1, unit=' %')}" if ch.reference else "no float reference"
    )
    table = Table(
        title=f"{d.device.label} ({d.device.kind}): objective {ch.objective}, --max-drop {ch.max_drop:g}, {ref}"
    )
    for col, just in (
        ("candidate", "left"),
        ("runtime", "left"),
        ("size MB", "right"),
        ("top-1", "right"),
        ("drop", "right"),
        ("p50 ms", "right"),
        ("mJ/img", "right"),
        ("status", "left"),
        ("why", "left"),
    ):
        table.add_column(col, justify=just, overflow="fold")  # type: ignore[arg-type]
    for c in d.candidates:
        v = ch.verdict(c.spec.name)
        row = c.row or {}
        acc = row.get("accuracy") or {}
        lat = row.get("latency_ms") or {}
        energy = row.get("energy") or {}
        size = c.built.path.stat().st_size / 1e6 if c.built.path is not None and c.built.path.exists() else None
        joules = energy.get("joules_per_inference")
        style = "bold green" if v.outcome == "chosen" else None
        table.add_row(
            c.spec.name,
            (row.get("runtime") or {}).get("name") or c.spec.runtime,
            fmt(size),
            fmt(acc.get("top1"), unit=" %"),
            "-" if v.drop is None else f"{v.drop:+.2f}",
            fmt(lat.get("p50"), 3),
            fmt(None if joules is None else joules * 1e3, 3),
            MARK.get(v.outcome, v.outcome) + (" (timing unstable)" if row.get("status") == "unstable" else ""),
            v.reason,
            style=style,
        )
    console.print(table)
    if d.best is not None:
        console.print(
            f"{d.device.label}: {ch.message}; wrote {d.best} (+ .json)", markup=False, highlight=False, soft_wrap=True
        )
    elif d.best_over_budget is not None:
        console.print(
            f"{d.device.label}: {ch.message}; kept as {d.best_over_budget}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print(f"{d.device.label}: {ch.message}", markup=False, highlight=False, soft_wrap=True)
