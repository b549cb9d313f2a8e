"""`mdnet-deploy compile`: a device format from a checkpoint or artifact.

``--target tflite``: litert-torch conversion (fp32 / fp16 / full-integer int8),
verified on the host with ai-edge-litert. ``--target tensorrt``: an engine
from a (QDQ) ONNX with TensorRT, which normally runs on the device itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from ..errors import InputError
from ._common import console, err_console, fmt, info, parse_floats, warn

TARGETS = ("tflite", "tensorrt")
# Options that only one target reads: giving them to the other is a mistake worth a message.
TFLITE_ONLY = ("calib", "calib_size", "io", "eval_spec", "quant_report", "checkpoint", "mean", "std", "threads", "trust_pickle")
TENSORRT_ONLY = ("workspace", "dla", "trtexec")


@click.command(name="compile")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--target", required=True, help="tflite (LiteRT, ARM / Raspberry Pi) or tensorrt (Jetson / NVIDIA GPUs).")
@click.option("--precision", required=True, help="tflite: fp32, fp16 or int8; tensorrt: fp16 or int8.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Output file: NAME.tflite or NAME.engine.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--batch", default=None, help="tflite: fixed batch N (default 1); tensorrt: 1, N, dynamic or dynamic:MIN,OPT,MAX.")
@click.option("--calib", help="tflite int8: calibration data-set spec (default: the set quantize used, from its report).")
@click.option("--calib-size", type=int, help="tflite int8: calibration images (default: quantize's count, else 512).")
@click.option("--io", default="float", show_default=True, help="tflite int8: float or int8 input/output tensors.")
@click.option("--eval", "eval_spec", help="tflite: data-set spec for top-1/top-5 of the TFLite model vs PyTorch.")
@click.option("--quant-report", type=click.Path(path_type=Path), help="tflite int8: quantize's report (float-fallback modules, calibration set).")
@click.option("--checkpoint", type=click.Path(path_type=Path), help="tflite: the checkpoint an artifact was exported from, when it has moved.")
@click.option("--mean", help="tflite from a checkpoint: normalisation mean R,G,B (default CIFAR-100).")
@click.option("--std", help="tflite from a checkpoint: normalisation std R,G,B (default CIFAR-100).")
@click.option("--threads", type=int, help="tflite: interpreter threads for the host verification (default 1).")
@click.option("--trust-pickle", is_flag=True, help="Allow checkpoints that pickle whole Python objects (runs code from the file).")
@click.option("--workspace", type=int, help="tensorrt: builder workspace in MiB.")
@click.option("--dla", type=int, help="tensorrt: DLA core to build for (Xavier / Orin).")
@click.option("--trtexec", type=click.Path(path_type=Path), help="tensorrt: build with this trtexec instead of the Python bindings.")
def command(source: Path, target: str, precision: str, output: Path, force: bool, batch: str | None, **opts: Any) -> None:
    """Compile SOURCE (checkpoint .pth, or model.onnx / model.int8.onnx) for a device."""
    target = target.lower()
    if target not in TARGETS:
        raise InputError(f"--target {target} is not known; use tflite or tensorrt")
    other = TENSORRT_ONLY if target == "tflite" else TFLITE_ONLY
    given = [name for name in other if opts.get(name) not in (None, False, "float")]
    if given:
        flag = "--" + given[0].replace("_spec", "").replace("_", "-")
        raise InputError(f"{flag} is not an option of --target {target}")
    if target == "tflite":
        _tflite(source, precision, output, force, batch, opts)
    else:
        _tensorrt(source, precision, output, force, batch, opts)


def _tflite(source: Path, precision: str, output: Path, force: bool, batch: str | None, opts: dict[str, Any]) -> None:
    from ..export.tflite.compile import convert_tflite

    n = 1
    if batch is not None:
        try:
            n = int(batch)
        except ValueError:
            raise InputError(f"--batch {batch}: TFLite files have a fixed batch; give a positive integer (default 1)") from None
    with _StageProgress() as progress:
        result = convert_tflite(
            source, output, precision, calib=opts["calib"], calib_size=opts["calib_size"], io=opts["io"],
            eval_spec=opts["eval_spec"], quant_report=opts["quant_report"], checkpoint=opts["checkpoint"], batch=n,
            mean=parse_floats(opts["mean"], "--mean"), std=parse_floats(opts["std"], "--std"), threads=opts["threads"],
            force=force, trust_pickle=opts["trust_pickle"], progress=progress,
        )
    render_tflite(result)


def _tensorrt(source: Path, precision: str, output: Path, force: bool, batch: str | None, opts: dict[str, Any]) -> None:
    from ..export.tensorrt.build import build_engine

    meta = build_engine(
        source, output, precision=precision, workspace_mib=opts["workspace"], batch=batch or 1,
        dla_core=opts["dla"], force=force, trtexec=opts["trtexec"],
    )
    target = meta.target or {}
    console.print(
        f"wrote {output} ({meta.precision}, TensorRT {target.get('tensorrt', '?')}, {target.get('gpu', 'GPU ?')}) and {output.name}.json",
        highlight=False,
    )


_STAGE_LABELS = {"load": "loading checkpoint and data", "convert": "converting with litert-torch",
                 "calibrate": "calibrating", "verify": "verifying with the LiteRT interpreter"}


class _StageProgress:
    """Renders ``progress(stage, done, total)``: one line per stage, a bar while calibrating."""

    def __enter__(self) -> _StageProgress:
        from rich.progress import BarColumn, Progress, TextColumn

        self._bar = Progress(TextColumn("calibrating"), BarColumn(), TextColumn("{task.completed}/{task.total} batches"),
                             console=err_console, transient=True)
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
    table = Table(title=f"TFLite {meta.precision}: {result.path}")
    for col in ("inputs", "n", "max |diff|", "mean |diff|", "top-1 agreement"):
        table.add_column(col)
    for c in result.checks:
        table.add_row(c.name, str(c.n), f"{c.max_abs_diff:.2e}", f"{c.mean_abs_diff:.2e}", f"{100 * c.top1_agreement:.1f} %")
    console.print(table)
    acc = result.accuracy
    if acc:
        console.print(
            f"accuracy on {acc['dataset']} ({acc['n']} images): TFLite top-1 {fmt(acc['top1'])} % / top-5 {fmt(acc['top5'])} %, "
            f"PyTorch top-1 {fmt(acc['torch_top1'])} % / top-5 {fmt(acc['torch_top5'])} %",
            highlight=False,
        )
    d = result.delegation
    missing = ", ".join(f"{op} x{n}" for op, n in d["not_delegated"].items()) or "none"
    console.print(f"XNNPACK took {d['ops_delegated']} of {d['ops_total']} ops in {d['partitions']} partition(s); not delegated: {missing}",
                  highlight=False)
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
    console.print(f"wrote {result.path} and {result.path.name}.json", highlight=False)


def _calib_part(seconds: dict[str, float]) -> str:
    return f" (of which calibration {seconds['calibrate_s']:.1f} s)" if "calibrate_s" in seconds else ""
