"""`mdnet-deploy quantize`: float ONNX -> INT8 QDQ ONNX, with sensitivity analysis and an accuracy guard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..calibration.calib_data import METHODS
from ..calibration.judge import JUDGES
from ..calibration.qdq import TARGETS
from ._common import console, err_console, fmt, info, parse_floats, warn

STAGE_LABELS = {
    "calibrate": "calibrating (batches)",
    "sensitivity": "per-layer sensitivity (layers)",
    "guard": "accuracy guard (layers float / cap)",
}


@click.command(name="quantize")
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--calib",
    "calib",
    required=True,
    help="Calibration data-set spec: digits:train, an image folder, a CIFAR folder or an .npz.",
)
@click.option(
    "--calib-size", type=int, default=512, show_default=True, help="Calibration images (seeded, class-balanced subset)."
)
@click.option("--method", type=click.Choice(METHODS), default="minmax", show_default=True, help="Calibration method.")
@click.option(
    "--eval",
    "eval_spec",
    help="Evaluation data-set spec (e.g. digits:test): enables the accuracy guard. Without it the "
    "most sensitive layers stay float until the estimated logits SQNR reaches 20 dB, and accuracy is not checked.",
)
@click.option(
    "--eval-size", type=int, default=None, help="Evaluate on this many images (seeded, class-balanced) [default: all]."
)
@click.option(
    "--max-drop", type=float, default=0.5, show_default=True, help="Largest acceptable top-1 drop, percentage points."
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="PATTERN",
    help="Keep float: torch module path or block (transform.attn), ONNX node name, globs allowed; repeatable.",
)
@click.option(
    "--target",
    type=click.Choice(TARGETS),
    default="tensorrt",
    show_default=True,
    help="tensorrt/tflite: symmetric INT8 QDQ for TensorRT; ort: uint8 QDQ for ONNX Runtime CPU.",
)
@click.option("--mean", help="Per-channel mean R,G,B, only for an ONNX file without mdnet-deploy metadata.")
@click.option("--std", help="Per-channel std R,G,B, only for an ONNX file without mdnet-deploy metadata.")
@click.option(
    "--max-float-layers", type=int, default=None, help="Most layers the guard may return to float [default: half]."
)
@click.option(
    "--sensitivity-images",
    type=int,
    default=32,
    show_default=True,
    help="Calibration images used for the per-layer sensitivity.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Output .onnx [default: <model>.int8.onnx beside MODEL].",
)
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
@click.option(
    "--allow-overlap",
    is_flag=True,
    help="Allow evaluation images that are also calibration images (optimistic accuracy).",
)
@click.option(
    "--trust-pickle", is_flag=True, help="Allow CIFAR data files that pickle Python objects (runs code from the file)."
)
@click.option(
    "--rank-layers",
    is_flag=True,
    help="Rank every layer's sensitivity even when all-INT8 meets the budget (for the report's chart).",
)
@click.option(
    "--speed-fallback",
    is_flag=True,
    help="With --target ort: time every conv in INT8 and in float on this machine (ONNX Runtime profile) and keep "
    "float those that run clearly faster in float, if the whole model is then faster; the report lists the timings.",
)
@click.option(
    "--judge",
    type=click.Choice(JUDGES),
    default=None,
    help="With --eval: the runtime whose kernels score each guard step (default onnxruntime, the ONNX file itself; "
    "tflite: the TFLite int8 file compile would make, on LiteRT).",
)
def command(
    model: Path,
    calib: str,
    calib_size: int,
    method: str,
    eval_spec: str | None,
    eval_size: int | None,
    max_drop: float,
    exclude: tuple[str, ...],
    target: str,
    mean: str | None,
    std: str | None,
    max_float_layers: int | None,
    sensitivity_images: int,
    output: Path | None,
    force: bool,
    trust_pickle: bool,
    allow_overlap: bool = False,
    judge: str | None = None,
    rank_layers: bool = False,
    speed_fallback: bool = False,
) -> None:
    """Quantize MODEL (float ONNX) to INT8, keeping float the layers that break accuracy.

    \b
    Example:
      mdnet-deploy quantize out/model.onnx --calib digits:train --eval digits -o out/model.int8.onnx
      mdnet-deploy quantize out/model.onnx --calib digits:train --target ort --speed-fallback
    """
    from ..calibration import quantize_model
    from ..data.pickles import trusted_pickles
    from ..errors import AccuracyBudgetError
    from ..fsutil import check_output

    patterns = [p for item in exclude for p in item.split(",") if p.strip()]
    if judge is not None and eval_spec is None:
        raise click.UsageError("--judge scores the guard's steps on --eval images: give --eval too")
    out = output if output is not None else model.with_name(model.stem + ".int8.onnx")
    for path in (out, out.with_name(out.name + ".json")):
        check_output(path, force=force, inputs=[model, calib, eval_spec])
    with trusted_pickles(trust_pickle), _ProgressRenderer() as renderer:
        evaluate = None
        if judge is not None and eval_spec is not None:
            from ..calibration.judge import make_judge

            evaluate = make_judge(
                judge, model, calib, eval_spec, calib_size=calib_size, eval_size=eval_size, trust_pickle=trust_pickle
            )
        try:
            result = quantize_model(
                model,
                out,
                calib,
                calib_size=calib_size,
                method=method,
                eval_spec=eval_spec,
                max_drop=max_drop,
                eval_size=eval_size,
                exclude=patterns,
                target=target,
                mean=parse_floats(mean, "--mean"),
                std=parse_floats(std, "--std"),
                force=force,
                progress=renderer,
                on_warning=renderer.warn,
                sensitivity_images=sensitivity_images,
                max_float_layers=max_float_layers,
                allow_overlap=allow_overlap,
                evaluate=evaluate,
                always_rank=rank_layers,
                speed_fallback=speed_fallback,
            )
        except AccuracyBudgetError as exc:
            failed = getattr(exc, "result", None)
            if failed is not None:
                renderer.close()
                render_quantize(failed.report)
            raise
    render_quantize(result.report)


class _ProgressRenderer:
    """progress(stage, done, total) -> a rich bar on stderr for counted stages, a line for the rest."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _ProgressRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
            self.tasks.clear()

    def warn(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(f"[yellow]warning:[/yellow] {escape(text)}", highlight=False)
        else:
            warn(text)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if total <= 0:
            if stage == "guard":
                return
            line = stage if ":" not in stage else stage.split(":", 1)[1].strip()
            if self.progress is not None:
                self.progress.console.print(line, markup=False, highlight=False)
            else:
                info(line)
            return
        if self.progress is None:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            )
            self.progress.start()
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(STAGE_LABELS.get(stage, stage), total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


def render_quantize(report: dict[str, Any], top: int = 12) -> None:
    acc = report.get("accuracy")
    size = report["size"]
    cal = report["calibration"]
    form = report["form"]
    table = Table(title=f"INT8 quantization: {escape(str(report['output']['path']))}")
    table.add_column("")
    table.add_column("float", justify="right")
    table.add_column("INT8", justify="right")
    if acc:
        table.add_row("top-1", fmt(acc["float"]["top1"], unit=" %"), fmt(acc["int8"]["top1"], unit=" %"))
        table.add_row("top-5", fmt(acc["float"]["top5"], unit=" %"), fmt(acc["int8"]["top5"], unit=" %"))
        agree = acc["top1_agreement"]
        table.add_row("top-1 agreement", "", fmt(None if agree is None else 100 * agree, unit=" %"))
        table.add_row("top-1 drop (budget)", "", f"{acc['drop_top1']:.2f} ({acc['max_drop']:g}) points")
    else:
        table.add_row("top-1 / top-5", "not checked", "not checked (no --eval)")
    ver = report["verification"]
    table.add_row(
        "logits max |diff| / agreement",
        "",
        f"{ver['max_abs_diff']:.3g} / {100 * ver['top1_agreement']:.1f} % ({ver['n']} calib. images)",
    )
    table.add_row("model size", f"{size['float_bytes'] / 1e6:.2f} MB", f"{size['int8_bytes'] / 1e6:.2f} MB")
    table.add_row("layers in float", "", f"{report['layers']['float']} of {report['layers']['candidates']}")
    table.add_row("form", "", f"{form['name']} ({form['target']})")
    kernels = form.get("integer_kernels")
    if kernels:
        table.add_row(
            "convs as integer kernels on ORT", "", f"{kernels['integer_convs']} (float: {kernels['float_convs']})"
        )
    speed = report.get("speed")
    if speed:
        p50 = speed.get("p50_ms") or {}
        table.add_row(
            "speed fallback (this host, ORT, 1 thread)",
            "",
            f"{len(speed['kept_float'])} convs float; batch-1 p50 "
            + (
                f"{p50['with_float_layers']:.3f} ms vs all-INT8 {p50['all_int8']:.3f} ms"
                if p50
                else "not timed (no conv runs clearly faster in float)"
            ),
        )
    table.add_row("calibration", "", f"{cal['method']}, {cal['count']} images")
    timing, mem = report["timing"], report["memory"]
    table.add_row("time / peak memory", "", f"{timing['total_s']:.1f} s / {mem['peak_rss_mib']:.0f} MiB")
    console.print(table)

    guard = report.get("guard")
    if guard:
        steps = Table(title="Accuracy guard")
        for col in ("step", "phase", "layers float", "change", "top-1", "drop", "agreement", "budget"):
            steps.add_column(col)
        for s in guard["steps"]:
            change = (f"+{len(s['added'])}" if s["added"] else "") + (
                f"-{len(s['requantized'])}" if s["requantized"] else ""
            )
            steps.add_row(
                str(s["step"]),
                s["phase"],
                str(s["float_layers"]),
                change or "-",
                fmt(s["top1"], unit=" %"),
                f"{s['drop']:+.2f}",
                fmt(None if s["top1_agreement"] is None else 100 * s["top1_agreement"], 1, " %"),
                "met" if s["met"] else "-",
            )
        console.print(steps)

    sens = report["sensitivity"]
    if sens.get("skipped"):
        console.print(f"Per-layer sensitivity: not measured ({sens['skipped']})", markup=False, highlight=False)
    else:
        _render_sensitivity(sens, top)
    _render_fallback(report)


def _render_sensitivity(sens: dict[str, Any], top: int) -> None:
    layers = Table(
        title=f"Per-layer sensitivity (logits SQNR with only that layer INT8; {sens['images']} images; "
        f"all layers INT8: {sens['full_output_sqnr_db']:.1f} dB)"
    )
    for col in ("#", "module", "op", "logits dB", "input dB", "weight dB", "float"):
        layers.add_column(col, overflow="fold")
    for row in sens["layers"][:top]:
        layers.add_row(
            str(row["rank"]),
            row["module"] or row["node"],
            row["op"],
            fmt(row["output_sqnr_db"], 1),
            fmt(row["input_sqnr_db"], 1),
            fmt(row["weight_sqnr_db"], 1),
            "yes" if row["float"] else "",
        )
    console.print(layers)
    blocks = ", ".join(f"{b['block']} {b['output_sqnr_db']:.1f} dB" for b in sens["blocks"][:6])
    console.print(f"most sensitive blocks (summed layer noise): {blocks}", highlight=False)


def _render_fallback(report: dict[str, Any]) -> None:
    fallback = report["float_fallback"]["layers"]
    if fallback:
        kept = Table(title="Kept in float, and why")
        for col in ("module", "ONNX node", "by", "why"):
            kept.add_column(col, overflow="fold")
        for row in fallback:
            kept.add_row(row["module"] or "-", row["node"], row["by"], row["reason"])
        console.print(kept)
    console.print(report["message"], markup=False, highlight=False)
    out = Path(report["output"]["path"])
    console.print(f"wrote {out} (+ {out.name}.json) and {Path(report['report']).name}", markup=False, highlight=False)
