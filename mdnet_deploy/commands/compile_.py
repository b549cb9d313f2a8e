"""`mdnet-deploy compile`: a device format from a checkpoint or artifact.

``--target tflite``: litert-torch conversion (fp32 / fp16 / full-integer int8),
verified on the host with ai-edge-litert. ``--target tensorrt``: an engine
from a (QDQ) ONNX with TensorRT, which normally runs on the device itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click
from rich.markup import escape
from rich.table import Table

from ..errors import InputError
from ._common import check_ssh_options, console, err_console, fmt, info, known_hosts_path, parse_floats, warn

# Options that only one target reads: giving them to another is a mistake worth a message.
TFLITE_ONLY = (
    "calib",
    "calib_size",
    "io",
    "eval_spec",
    "quant_report",
    "checkpoint",
    "mean",
    "std",
    "threads",
    "trust_pickle",
    "allow_overlap",
)
TENSORRT_ONLY = (
    "workspace",
    "dla",
    "trtexec",
    "host",
    "inventory",
    "identity",
    "setup",
    "accept_new_host_key",
    "keep_remote",
)
README_TENSORRT = 'README.md, section "TensorRT"'


@click.command(name="compile")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--target", required=True, help="tflite (LiteRT, ARM / Raspberry Pi) or tensorrt (Jetson / NVIDIA GPUs).")
@click.option(
    "--precision",
    required=True,
    help="fp32, fp16 or int8 (tensorrt int8 needs quantize's QDQ model); tensorrt also best (int8 for a QDQ model, else fp16).",
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), required=True, help="Output file: NAME.tflite or NAME.engine."
)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option(
    "--batch", default=None, help="tflite: fixed batch N (default 1); tensorrt: 1, N, dynamic or dynamic:MIN,OPT,MAX."
)
@click.option(
    "--calib", help="tflite int8: calibration data-set spec (default: the set quantize used, from its report)."
)
@click.option("--calib-size", type=int, help="tflite int8: calibration images (default: quantize's count, else 512).")
@click.option("--io", default="float", show_default=True, help="tflite int8: float or int8 input/output tensors.")
@click.option("--eval", "eval_spec", help="tflite: data-set spec for top-1/top-5 of the TFLite model vs PyTorch.")
@click.option(
    "--quant-report",
    type=click.Path(path_type=Path),
    help="tflite int8: quantize's report (float-fallback modules, calibration set).",
)
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    help="tflite: the checkpoint an artifact was exported from, when it has moved.",
)
@click.option("--mean", help="tflite from a checkpoint: normalisation mean R,G,B (default CIFAR-100).")
@click.option("--std", help="tflite from a checkpoint: normalisation std R,G,B (default CIFAR-100).")
@click.option("--threads", type=int, help="tflite: interpreter threads for the host verification (default 1).")
@click.option(
    "--allow-overlap", is_flag=True, help="tflite int8: allow --eval images that are also calibration images."
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="tflite: allow a checkpoint or CIFAR data files that pickle Python objects (runs code from the file).",
)
@click.option("--workspace", type=int, help="tensorrt: builder workspace in MiB.")
@click.option("--dla", type=int, help="tensorrt: DLA core to build for (Xavier / Orin).")
@click.option(
    "--trtexec",
    type=click.Path(path_type=Path),
    help="tensorrt: build with this trtexec instead of the Python bindings.",
)
@click.option("--host", help="tensorrt: build on this Jetson over SSH ([user@]host[:port] or a ~/.ssh/config alias).")
@click.option(
    "--inventory",
    type=click.Path(path_type=Path),
    help="tensorrt: Ansible inventory (YAML or INI); --host NAME picks a host when it lists several.",
)
@click.option("--identity", type=click.Path(path_type=Path), help="tensorrt --host: SSH private key.")
@click.option("--setup", is_flag=True, help="tensorrt --host: create or update the device's venv first.")
@click.option("--accept-new-host-key", is_flag=True, help="tensorrt --host: trust a host key not yet in known_hosts.")
@click.option("--keep-remote", is_flag=True, help="tensorrt --host: keep the device's work folder (for debugging).")
@click.option(
    "--known-hosts",
    type=click.Path(path_type=Path),
    default=Path("~/.ssh/known_hosts"),
    show_default=True,
    help="SSH known_hosts file that host keys are checked against.",
)
def command(
    source: Path, target: str, precision: str, output: Path, force: bool, batch: str | None, **opts: Any
) -> None:
    """Compile SOURCE (checkpoint .pth, or model.onnx / model.int8.onnx) for a device.

    \b
    Examples:
      mdnet-deploy compile out/model.int8.onnx --target tflite --precision int8 -o out/model.int8.tflite
      mdnet-deploy compile out/model.int8.onnx --target tensorrt --precision int8 --host nvidia@orin -o out/model.engine
    """
    target = target.lower()
    spec = TARGETS.get(target)
    if spec is None:
        raise InputError(f"--target {target} is not known; use {' or '.join(TARGETS)}")
    other = {name for t in TARGETS.values() if t is not spec for name in t.options} - set(spec.options)
    given = [name for name in sorted(other) if opts.get(name) not in (None, False, "float")]
    if given:
        flag = "--" + given[0].replace("_spec", "").replace("_", "-")
        raise InputError(f"{flag} is not an option of --target {target}")
    from ..data.pickles import trusted_pickles
    from ..fsutil import check_output

    inputs = [
        source,
        opts.get("quant_report"),
        opts.get("checkpoint"),
        opts.get("trtexec"),
        opts.get("calib"),
        opts.get("eval_spec"),
    ]
    for path in (output, output.with_name(output.name + ".json")):
        check_output(path, force=force, inputs=inputs)
    with trusted_pickles(bool(opts.get("trust_pickle"))):
        spec.build(source, precision, output, force, batch, opts)


def _tflite(source: Path, precision: str, output: Path, force: bool, batch: str | None, opts: dict[str, Any]) -> None:
    from ..export.tflite.compile import convert_tflite

    n = 1
    if batch is not None:
        try:
            n = int(batch)
        except ValueError:
            raise InputError(
                f"--batch {batch}: TFLite files have a fixed batch; give a positive integer (default 1)"
            ) from None
    with _StageProgress() as progress:
        result = convert_tflite(
            source,
            output,
            precision,
            calib=opts["calib"],
            calib_size=opts["calib_size"],
            io=opts["io"],
            eval_spec=opts["eval_spec"],
            quant_report=opts["quant_report"],
            checkpoint=opts["checkpoint"],
            batch=n,
            mean=parse_floats(opts["mean"], "--mean"),
            std=parse_floats(opts["std"], "--std"),
            threads=opts["threads"],
            force=force,
            trust_pickle=opts["trust_pickle"],
            progress=progress,
            allow_overlap=opts["allow_overlap"],
        )
    render_tflite(result)


def _tensorrt(source: Path, precision: str, output: Path, force: bool, batch: str | None, opts: dict[str, Any]) -> None:
    from ..errors import UnavailableError
    from ..export.tensorrt.build import build_engine, tensorrt_bindings
    from ..export.tensorrt.trtexec import find_trtexec

    if opts.get("host") or opts.get("inventory"):
        _tensorrt_remote(source, precision, output, batch, opts)
        return
    try:
        meta = build_engine(
            source,
            output,
            precision=precision,
            workspace_mib=opts["workspace"],
            batch=batch or 1,
            dla_core=opts["dla"],
            force=force,
            trtexec=opts["trtexec"],
        )
    except UnavailableError:
        if opts["trtexec"] or tensorrt_bindings()[0] or find_trtexec() is not None:
            raise  # TensorRT is here: its own message says what went wrong
        # No TensorRT on this machine: the builder's message (the trtexec command
        # and every install route) is long; the README section says it once.
        raise UnavailableError(
            f"TensorRT is not installed here; build on the device with --host user@jetson, or see {README_TENSORRT}"
        ) from None
    _wrote_engine(output, meta)


def _tensorrt_remote(source: Path, precision: str, output: Path, batch: str | None, opts: dict[str, Any]) -> None:
    """``--host`` / ``--inventory``: the engine is built on the Jetson that will run it, and fetched here."""
    from ..artifact import read_meta
    from ..remote import build_remote_engine, load_inventory, parse_target

    if opts.get("inventory"):
        targets = load_inventory(opts["inventory"], default_device="jetson")
        check_ssh_options(opts.get("identity"), opts["inventory"])
        if opts.get("host"):
            targets = [t for t in targets if t.name == opts["host"]]
            if not targets:
                raise InputError(
                    f"--host {opts['host']} is not a host of {opts['inventory']}; give one of its host names"
                )
        if len(targets) != 1:
            names = ", ".join(t.label for t in targets)
            raise InputError(f"{opts['inventory']} lists several hosts ({names}); pick the Jetson with --host NAME")
        target = targets[0].with_(device="jetson")
    else:
        target = parse_target(opts["host"], "jetson")
    extra = ["--precision", precision]
    for flag, value in (
        ("--batch", batch),
        ("--workspace", opts.get("workspace")),
        ("--dla", opts.get("dla")),
        ("--trtexec", opts.get("trtexec")),
    ):
        if value is not None:
            extra += [flag, str(value)]
    build_remote_engine(
        target,
        source,
        output,
        extra,
        setup=opts["setup"],
        identity=opts.get("identity"),
        accept_new_host_key=opts["accept_new_host_key"],
        keep_remote=opts["keep_remote"],
        known_hosts=known_hosts_path(opts.get("known_hosts")),
        progress=info,
    )
    _wrote_engine(output, read_meta(output))


def _wrote_engine(output: Path, meta: Any) -> None:
    target = meta.target or {}
    console.print(
        f"wrote {output} ({meta.precision}, TensorRT {target.get('tensorrt', '?')}, {target.get('gpu', 'GPU ?')}) and {output.name}.json",
        markup=False,
        highlight=False,
    )


@dataclass(frozen=True)
class CompileTarget:
    """One ``--target``: the function that builds it and the options only it reads."""

    build: Callable[[Path, str, Path, bool, str | None, dict[str, Any]], None]
    options: tuple[str, ...]


#: The one table of compile targets: a new target is a library module, a builder function above and a line here.
TARGETS: dict[str, CompileTarget] = {
    "tflite": CompileTarget(_tflite, TFLITE_ONLY),
    "tensorrt": CompileTarget(_tensorrt, TENSORRT_ONLY),
}


_STAGE_LABELS = {
    "load": "loading checkpoint and data",
    "convert": "converting with litert-torch",
    "calibrate": "calibrating",
    "verify": "verifying with the LiteRT interpreter",
}


class _StageProgress:
    """Renders ``progress(stage, done, total)``: one line per stage, a bar while calibrating."""

    def __enter__(self) -> _StageProgress:
        from rich.progress import BarColumn, Progress, TextColumn

        self._bar = Progress(
            TextColumn("calibrating"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} batches"),
            console=err_console,
            transient=True,
        )
        self._task: Any = None
        self._last: str | None = None
        return self

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage == "calibrate" and total and err_console.is_terminal:
            if self._task is None:
                self._bar.start()
                self._task = self._bar.add_task("calibrate", total=total)
            self._bar.update(self._task, completed=done, total=total)
            if done >= total:
                self._stop()
            return
        if stage != self._last:
            info(_STAGE_LABELS.get(stage, stage))
            self._last = stage

    def _stop(self) -> None:
        if self._task is not None:
            self._bar.stop()
            self._task = None

    def __exit__(self, *exc: object) -> None:
        self._stop()


def render_tflite(result: Any) -> None:
    meta = result.meta
    table = Table(title=f"TFLite {meta.precision}: {escape(str(result.path))}")
    for col in ("inputs", "n", "max |diff|", "mean |diff|", "top-1 agreement"):
        table.add_column(col)
    for c in result.checks:
        table.add_row(
            c.name, str(c.n), f"{c.max_abs_diff:.2e}", f"{c.mean_abs_diff:.2e}", f"{100 * c.top1_agreement:.1f} %"
        )
    console.print(table)
    acc = result.accuracy
    if acc:
        console.print(
            f"accuracy on {escape(str(acc['dataset']))} ({acc['n']} images): TFLite top-1 {fmt(acc['top1'])} % / top-5 {fmt(acc['top5'])} %, "
            f"PyTorch top-1 {fmt(acc['torch_top1'])} % / top-5 {fmt(acc['torch_top5'])} %",
            highlight=False,
        )
    d = result.delegation
    missing = ", ".join(f"{op} x{n}" for op, n in d["not_delegated"].items()) or "none"
    console.print(
        f"XNNPACK took {d['ops_delegated']} of {d['ops_total']} ops in {d['partitions']} partition(s); not delegated: {missing}",
        highlight=False,
    )
    spec = meta.input
    q = f" scale {spec.scale:.6g} zero point {spec.zero_point}" if spec.scale else ""
    floats = (meta.quantization or {}).get("float_modules") or []
    console.print(
        f"input {spec.name} {spec.shape} {spec.layout} {spec.dtype}{q}; size {result.size_bytes / 1e6:.2f} MB; "
        f"float modules: {', '.join(floats) if floats else 'none'}; "
        f"time: convert {result.seconds.get('convert_s', 0):.1f} s{_calib_part(result.seconds)}, verify {result.seconds.get('verify_s', 0):.1f} s",
        highlight=False,
    )
    for w in result.warnings:
        warn(w)
    _say_preprocessing(result.meta.preprocessing)
    console.print(f"wrote {result.path} and {result.path.name}.json", markup=False, highlight=False)


def _calib_part(seconds: dict[str, float]) -> str:
    return f" (of which calibration {seconds['calibrate_s']:.1f} s)" if "calibrate_s" in seconds else ""


def _say_preprocessing(prep) -> None:  # noqa: ANN001 - Preprocessing
    """Which statistics the artifact uses and where they came from (never a silent guess, issue 11)."""
    from ..artifact import SOURCE_DEFAULT

    console.print(f"preprocessing: {prep.describe()}", markup=False, highlight=False)
    if prep.source == SOURCE_DEFAULT:
        warn(
            "no --mean/--std given: the CIFAR-100 statistics were assumed; pass the model's own if it was trained otherwise"
        )
