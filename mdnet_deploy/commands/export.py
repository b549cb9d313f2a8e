"""`mdnet-deploy export`: checkpoint -> model.onnx (+ sidecar), with a parity report."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from ._alias import hidden_alias, keep_alias
from ._common import console, info, parse_floats, warn


def parse_batch(value: str) -> int | None:
    from ..errors import InputError

    if value.lower() == "dynamic":
        return None
    try:
        n = int(value)
    except ValueError:
        raise InputError(f"--batch '{value}' is not valid; give 'dynamic' or a positive integer") from None
    if n < 1:
        raise InputError(f"--batch {n} is not valid; give 'dynamic' or a positive integer")
    return n


@click.command(name="export")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Output folder.",
)
@click.option("--opset", type=int, default=17, show_default=True)
@click.option("--batch", default="dynamic", show_default=True, help="'dynamic' or a fixed batch size.")
@click.option("--no-simplify", is_flag=True, help="Skip onnxsim/onnxslim.")
@click.option("--mean", help="Per-channel mean R,G,B (default: CIFAR-100 statistics).")
@click.option("--std", help="Per-channel std R,G,B (default: CIFAR-100 statistics).")
@click.option("--labels", "labels_file", type=click.Path(path_type=Path), help="Text file, one class name per line.")
@click.option("--num-classes", type=int, help="Expected class count (checked against the checkpoint).")
@click.option(
    "--eval",
    "data",
    callback=keep_alias,
    help="Data-set spec for a parity check on real images (e.g. digits, a CIFAR folder).",
)
@hidden_alias("--data", "data")  # the old spelling; --eval as in quantize, compile and bench
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Allow a checkpoint or --data CIFAR files that pickle Python objects (runs code from the file).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing OUTPUT/model.onnx.")
@click.option(
    "--graph",
    type=click.Choice(["cpu", "original"]),
    default="cpu",
    show_default=True,
    help="cpu: the same function in CPU-friendly ops (attention's dead q/k branch dropped, grouped convs as "
    "depthwise + slice sums; fast on ONNX Runtime/TFLite); original: the authors' form (TensorRT).",
)
def command(
    checkpoint: Path,
    out_dir: Path,
    opset: int,
    batch: str,
    no_simplify: bool,
    mean: str | None,
    std: str | None,
    labels_file: Path | None,
    num_classes: int | None,
    data: str | None,
    trust_pickle: bool,
    graph: str,
    force: bool,
) -> None:
    """Export CHECKPOINT (.pth) to OUTPUT/model.onnx and verify it against PyTorch.

    \b
    Example:
      mdnet-deploy export mdnet-200-best.pth -o out --eval ~/data/cifar-100-python
    """
    from ..data.dataset import read_labels_file
    from ..data.pickles import trusted_pickles
    from ..export.onnx_export import export_onnx
    from ..fsutil import check_output

    mean_v = parse_floats(mean, "--mean")
    std_v = parse_floats(std, "--std")
    labels = read_labels_file(labels_file) if labels_file else None
    inputs = [checkpoint, labels_file, data]
    for name in ("model.onnx", "model.onnx.json"):
        check_output(out_dir / name, force=force, inputs=inputs)
    with trusted_pickles(trust_pickle):
        result = export_onnx(
            checkpoint,
            out_dir,
            opset=opset,
            batch=parse_batch(batch),
            simplify=not no_simplify,
            mean=mean_v,
            std=std_v,
            labels=labels,
            num_classes=num_classes,
            data=data,
            trust_pickle=trust_pickle,
            graph=graph,
            progress=info,
        )
    render_export(result)


def render_export(result) -> None:  # noqa: ANN001 - ExportResult, imported lazily
    meta = result.meta
    table = Table(title=f"ONNX export: {escape(str(result.path))}", show_lines=False)
    for col in ("inputs", "n", "max |diff|", "mean |diff|", "top-1 agreement", "top-1 torch / onnx"):
        table.add_column(col)
    for c in result.checks:
        acc = f"{c.accuracy['torch_top1']:.2f} / {c.accuracy['onnx_top1']:.2f} %" if c.accuracy else "-"
        table.add_row(
            c.name, str(c.n), f"{c.max_abs_diff:.2e}", f"{c.mean_abs_diff:.2e}", f"{100 * c.top1_agreement:.1f} %", acc
        )
    console.print(table)
    simp = (
        f"{result.simplifier}: {result.nodes_before} -> {result.nodes_after} nodes"
        if result.simplifier
        else f"not simplified ({result.nodes_after} nodes)"
    )
    console.print(
        f"{meta.variant}, {meta.num_classes} classes, input {meta.input.name} {meta.input.shape} {meta.input.layout}; {simp}; "
        f"parity tolerance {meta.verification['parity_tolerance']:g}: [green]passed[/green]",
        highlight=False,
    )
    _say_preprocessing(result.meta.preprocessing)
    console.print(f"wrote {result.path} and {result.path.name}.json", markup=False, highlight=False)


def _say_preprocessing(prep) -> None:  # noqa: ANN001 - Preprocessing
    """Which statistics the artifact uses and where they came from (never a silent guess, issue 11)."""
    from ..artifact import SOURCE_DEFAULT

    console.print(f"preprocessing: {prep.describe()}", markup=False, highlight=False)
    if prep.source == SOURCE_DEFAULT:
        warn(
            "no --mean/--std given: the CIFAR-100 statistics were assumed; pass the model's own if it was trained otherwise"
        )
