"""`mdnet-deploy demo`: the whole chain on the built-in digits data."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from ._common import console, fmt, info


@click.command(name="demo")
@click.option(
    "-o",
    "--output",
    "workdir",
    type=click.Path(path_type=Path),
    default=Path("out/demo"),
    show_default=True,
    help="Folder for the demo's artifacts.",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the trained demo checkpoint is cached (default $MDNET_DEPLOY_CACHE or ~/.cache/mdnet-deploy).",
)
@click.option(
    "--width",
    type=float,
    default=None,
    help="MDNET width multiplier for the demo model (default 1.0, the full network).",
)
@click.option("--epochs", type=int, default=None, help="Training epochs on first run (default 10).")
def command(workdir: Path, cache_dir: Path | None, width: float | None, epochs: int | None) -> None:
    """Train (once, cached), export, quantize, compile and bench MDNET on scikit-learn's digits.

    \b
    Example:
      mdnet-deploy demo
    """
    from ..demo import DEMO_BATCH, DEMO_EPOCHS, DEMO_WIDTH, run_demo
    from ._common import err_console
    from ._progress import epoch_bar

    with epoch_bar(err_console, epochs or DEMO_EPOCHS, DEMO_BATCH) as on_step:
        result = run_demo(
            workdir, cache_dir, width or DEMO_WIDTH, epochs or DEMO_EPOCHS, progress=info, on_step=on_step
        )
    table = Table(title="mdnet-deploy demo: MDNET on held-out digits (359 images)")
    for col in (
        "step",
        "artifact",
        "size MB",
        "precision",
        "top-1 %",
        "agrees w/ PyTorch %",
        "p50 ms (b=1, 1 thread)",
        "note",
    ):
        table.add_column(col)
    for r in result.rows:
        table.add_row(
            r.step,
            _short(r.artifact),
            fmt(r.size_mb),
            r.precision or "-",
            fmt(r.top1),
            fmt(r.agreement, 1),
            fmt(r.latency_ms, 3),
            r.note,
        )
    console.print(table)
    if result.bench:
        from ..bench import result_notes, results_table

        console.print(
            results_table(result.bench, title="Benchmark on this host (mdnet-deploy bench --device host, 1 thread)")
        )
        # The same meter reason repeats for every model: say it once.
        seen: dict[str, list[str]] = {}
        for note in result_notes(result.bench):
            who, _, why = note.partition(": ")
            seen.setdefault(why or note, []).append(who)
        for why, whom in seen.items():
            console.print(
                f"{'all models' if len(whom) == len(result.bench) else ', '.join(whom)}: {why}",
                highlight=False,
                markup=False,
            )
    console.print(
        f"artifacts in {result.workdir}; checkpoint {result.checkpoint}; total {result.seconds.get('total_s', 0):.0f} s",
        markup=False,
        highlight=False,
    )
    if result.report is not None:
        console.print(
            f"report: {result.report} (open it in a browser); results: {result.results_json} "
            "(mdnet-deploy compare BASE.json NEW.json gates a change on it)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _short(path: str) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)
