"""``mdnet-deploy bench``: latency, energy and accuracy of artifacts, here or on devices over SSH.

Parses options, calls :func:`mdnet_deploy.bench.bench_models` (or the
remote runners), renders one comparison table, writes JSON/CSV atomically
and exits 7 when any row failed (after everything was shown and written).
Imports nothing heavy: this is what a Raspberry Pi runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..devices.profiles import KINDS
from ..errors import BenchFailedError, InputError
from ..fsutil import check_output
from ..runtimes.registry import NAMES as RUNTIME_NAMES
from ._common import check_ssh_options, console, err_console, known_hosts_path, parse_floats, warn

#: Calls a per-layer profile averages (after one discarded warm-up call).
PROFILE_RUNS = 20

#: Options forwarded to a device bench when the user gave them (click parameter name -> flag).
PASS_THROUGH = {
    "runtimes": "--runtime",
    "batch": "--batch",
    "threads": "--threads",
    "warmup": "--warmup",
    "iterations": "--iterations",
    "duration": "--duration",
    "power_meter": "--power-meter",
    "idle": "--idle",
    "profile": "--profile",
    "repeat": "--repeat",
    "mean": "--mean",
    "std": "--std",
}


def say(line: str) -> None:
    # Progress carries file names and remote output: never interpret it as markup.
    err_console.print(line, markup=False, highlight=False)


def pass_through(ctx: click.Context, values: dict[str, Any]) -> list[str]:
    """The timing/meter options the user typed, as device-side arguments."""
    out: list[str] = []
    for name, flag in PASS_THROUGH.items():
        if ctx.get_parameter_source(name) not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        value = values[name]
        if isinstance(value, bool):  # a flag travels alone, and only when set
            out += [flag] if value else []
            continue
        for v in value if isinstance(value, (tuple, list)) else [value]:
            out += [flag, str(v)]
    return out


def run_remote(
    ctx: click.Context, values: dict[str, Any], device: str | None, models: Sequence[str], eval_spec: str | None
) -> list[dict[str, Any]]:
    from ..remote.dispatch import bench_remote

    return bench_remote(
        models,
        eval_spec,
        pass_through(ctx, values),
        host=values["host"],
        inventory=values["inventory"],
        device=device,
        max_parallel=values["max_parallel"],
        progress=say,
        identity=values["identity"],
        setup=values["setup"],
        accept_new_host_key=values["accept_new_host_key"],
        keep_remote=values["keep_remote"],
        timeout=values["remote_timeout"],
        known_hosts=values["known_hosts"],
        remote_root=values["remote_dir"],
    )


def render(rows: Sequence[dict[str, Any]], wide: bool = False) -> None:
    from ..bench.report import result_notes, results_table

    out = console
    width: int | None = console.width
    if wide or not console.is_terminal:
        # --wide, or piped into a log or a file: every column, lines as long
        # as they need (the terminal or the file wraps, never rich).
        from rich.console import Console

        out = Console(file=console.file, width=1000, no_color=console.no_color or not console.is_terminal)
        width = None
    out.print(results_table(rows, width=width, wide=wide or not console.is_terminal))
    for note in result_notes(rows, wide=wide or not console.is_terminal):
        if ": warning: " in note:
            warn(note.replace(": warning: ", ": ", 1))
        else:
            console.print(note, markup=False, highlight=False, soft_wrap=True)
    render_profiles(rows, out)


def render_profiles(rows: Sequence[dict[str, Any]], out: Any) -> None:
    """bench --profile: the slowest layers of each row (the JSON keeps all of them), or why a runtime has none."""
    from ..reporting.terminal import profile_notes, profile_table

    for row in rows:
        table = profile_table(row)
        if table is not None:
            out.print(table)
    for note in profile_notes(rows):
        console.print(note, markup=False, highlight=False, soft_wrap=True)


def check_numbers(values: dict[str, Any]) -> None:
    """Seconds must be finite: 'inf' or 'nan' would fail an hour later (or never end)."""
    for name, flag in (("duration", "--duration"), ("idle", "--idle"), ("remote_timeout", "--remote-timeout")):
        value = values.get(name)
        if value is None:
            continue
        if not math.isfinite(value) or value < 0 or (value == 0 and name != "idle"):
            raise InputError(f"{flag} {value:g} is not valid; give a positive, finite number of seconds")


def bench_inputs(values: dict[str, Any]) -> list[Path]:
    """Every file this run reads: no output may replace one of them."""
    from ..artifact import sidecar_path

    paths = [Path(m) for m in values["models"]]
    paths += [sidecar_path(p) for p in paths]
    for key in ("eval_spec", "inventory", "identity", "known_hosts"):
        if values.get(key):
            paths.append(Path(str(values[key])).expanduser())
    meter = str(values.get("power_meter") or "")
    if meter.startswith("csv:"):
        paths.append(Path(meter[4:]))
    return paths


@click.command(name="bench")
@click.option(
    "--device",
    type=click.Choice(KINDS),
    default=None,
    help="Device kind: meters and runtimes to prefer (default: detected; rpi with --host).",
)
@click.option(
    "-m",
    "--model",
    "models",
    multiple=True,
    required=True,
    help="Artifact to bench (.onnx, .tflite, .engine, .pth); repeat for a comparison table.",
)
@click.option(
    "--runtime",
    "runtimes",
    multiple=True,
    type=click.Choice(("auto", *RUNTIME_NAMES)),
    default=("auto",),
    show_default=True,
    help="Runtime; repeat to compare runtimes on each model that they open.",
)
@click.option(
    "--eval", "eval_spec", help="Evaluation set for top-1/top-5 (an .npz from pack-eval, a CIFAR folder, digits, ...)."
)
@click.option("--batch", type=int, default=1, show_default=True, help="Images per inference call.")
@click.option("--threads", type=int, default=None, help="CPU threads for the runtime (default: the runtime's own).")
@click.option("--warmup", default="50", show_default=True, help="Untimed warm-up: a count (50) or seconds (5s).")
@click.option("--iterations", type=int, default=None, help="Timed calls (instead of --duration).")
@click.option("--duration", type=float, default=None, help="Seconds of timed calls [default: 60 unless --iterations].")
@click.option(
    "--power-meter",
    "power_meter",
    default="auto",
    show_default=True,
    help="auto | ina3221 | tegrastats | pmic | rapl | nvml | csv:FILE | none.",
)
@click.option(
    "--idle", type=float, default=0.0, show_default=True, help="Seconds of idle power to measure first (0: none)."
)
@click.option(
    "--repeat",
    type=int,
    default=1,
    show_default=True,
    help="Repeat warm-up + timed loop N times: median p50 with a 95 % CI across repeats (5 is a good choice).",
)
@click.option(
    "--mean",
    help="Per-channel mean R,G,B of .pth checkpoints (they carry none; default CIFAR-100, checked with --eval).",
)
@click.option("--std", help="Per-channel std R,G,B of .pth checkpoints (default CIFAR-100, checked with --eval).")
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the results as a JSON list.")
@click.option("--csv", "csv_out", type=click.Path(path_type=Path), help="Append one CSV row per result.")
@click.option("--wide", is_flag=True, help="Every column in the table (format, size, top-5, avg W, failure reasons).")
@click.option(
    "--profile",
    is_flag=True,
    help="Add a per-layer latency profile (top 10 shown, all layers in --json); after the timed loop.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing --json file (--csv files are appended to).")
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Allow a .pth model or --eval CIFAR files that pickle Python objects (runs code from the file).",
)
@click.option("--host", help="Bench on this device over SSH: [user@]host[:port].")
@click.option(
    "--inventory", type=click.Path(path_type=Path), help="Bench on every device of an Ansible YAML inventory."
)
@click.option("--identity", type=click.Path(path_type=Path), help="SSH private key for --host.")
@click.option("--setup", is_flag=True, help="Create or update the device's venv first.")
@click.option("--accept-new-host-key", is_flag=True, help="Trust a host key not yet in known_hosts (first contact).")
@click.option("--keep-remote", is_flag=True, help="Keep the device's work folder (for debugging).")
@click.option(
    "--remote-dir", default="~/.cache/mdnet-deploy", show_default=True, help="Work folder root on the device."
)
@click.option(
    "--known-hosts",
    type=click.Path(path_type=Path),
    default=Path("~/.ssh/known_hosts"),
    show_default=True,
    help="SSH known_hosts file that host keys are checked against.",
)
@click.option("--max-parallel", type=int, default=4, show_default=True, help="Devices benched at once (--inventory).")
@click.option(
    "--remote-timeout", type=float, default=3600.0, show_default=True, help="Seconds the device bench may take."
)
@click.pass_context
def command(ctx: click.Context, **values: Any) -> None:
    """Measure latency, energy and accuracy of one or more artifacts on a device.

    \b
    Examples:
      mdnet-deploy bench -m out/model.onnx -m out/model.int8.onnx --eval digits --duration 10
      mdnet-deploy bench --host pi@raspberrypi.local --setup -m out/model.int8.tflite --eval eval.npz
    """
    from ..bench import append_csv, bench_models, is_failed, write_json
    from ..data.pickles import trusted_pickles

    device: str | None = values["device"]
    models = list(values["models"])
    json_out: Path | None = values["json_out"]
    csv_out: Path | None = values["csv_out"]
    check_numbers(values)
    # Outputs are checked before an hour of benchmarking, not after.
    inputs = bench_inputs(values)
    if json_out is not None:
        check_output(json_out, force=values["force"], inputs=inputs, option="--json")
    if csv_out is not None:
        from ..bench.report import check_csv

        check_output(csv_out, inputs=inputs, option="--csv", append=True)
        check_csv(csv_out)
    if values["host"] or values["inventory"]:
        from ..remote.workspace import check_remote_root

        check_remote_root(values["remote_dir"])
    if values["host"] and values["inventory"]:
        raise InputError("give either --host or --inventory, not both")
    check_ssh_options(values["identity"], values["inventory"])

    if values["host"] or values["inventory"]:
        values["known_hosts"] = known_hosts_path(values["known_hosts"])
        with trusted_pickles(values["trust_pickle"]):
            rows = run_remote(ctx, values, device, models, values["eval_spec"])
    else:
        from ..devices import detect_kind

        with trusted_pickles(values["trust_pickle"]):
            rows = bench_models(
                models,
                device=device or detect_kind(),
                runtime=values["runtimes"],
                eval_spec=values["eval_spec"],
                batch=values["batch"],
                threads=values["threads"],
                warmup=values["warmup"],
                iterations=values["iterations"],
                duration=values["duration"],
                power_meter=values["power_meter"],
                idle=values["idle"],
                progress=say,
                profile_runs=PROFILE_RUNS if values["profile"] else 0,
                mean=parse_floats(values["mean"], "--mean"),
                std=parse_floats(values["std"], "--std"),
                repeat=values["repeat"],
            )

    render(rows, values["wide"])
    if json_out is not None:
        write_json(rows, json_out)
        console.print(f"wrote {json_out}", markup=False, highlight=False, soft_wrap=True)
    if csv_out is not None:
        append_csv(rows, csv_out)
        console.print(f"appended {len(rows)} row(s) to {csv_out}", markup=False, highlight=False, soft_wrap=True)
    failed = [r for r in rows if is_failed(r)]
    if failed:
        raise BenchFailedError(f"{len(failed)} of {len(rows)} result(s) failed; the status column says why")
