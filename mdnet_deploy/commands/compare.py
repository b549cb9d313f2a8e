"""``mdnet-deploy compare BASE.json NEW.json``: per-model deltas, and a non-zero exit on a regression (CI gate)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from ..errors import InputError, RegressionError
from ._common import console, warn

_STYLE = {"REGRESSION": "bold red", "within noise": "yellow", "better": "green", "within threshold": "", "n/a": "dim"}


def _fmt(v: float | None, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


@click.command(name="compare")
@click.argument("base", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option(
    "--max-regression",
    "max_regression",
    default=None,
    help="Limits per metric: p50=10%,top1=0.5,mj=10% (% = relative to the base; a plain number is in "
    "the metric's unit: top-1 points, ms, mJ). Metrics: top1 top5 p50 p90 p99 mean ips mj. "
    "[default: p50=10%,top1=0.5,mj=10%]",
)
def command(base: Path, new: Path, max_regression: str | None) -> None:
    """Compare NEW bench results with BASE; exit 8 when a metric got worse beyond its limit.

    Rows match by device, runtime and model (sha256, else file name and precision). When both rows
    carry 95 % confidence intervals, a change the intervals can explain is "within noise", not a
    regression. A row that fails in NEW but ran in BASE is a regression.
    """
    from ..reporting.compare import DEFAULT_THRESHOLDS, REGRESSION, compare, parse_thresholds
    from ..reporting.fields import row_label
    from ..reporting.load import load_results

    thresholds = parse_thresholds(max_regression if max_regression is not None else DEFAULT_THRESHOLDS)
    base_rows, new_rows = load_results(base), load_results(new)
    result = compare(base_rows, new_rows, thresholds)
    if not result.pairs:
        raise InputError(
            f"no row of {new} matches a row of {base} (same device, runtime and model sha256 or file name); "
            "compare results of the same models on the same device"
        )
    table = Table(title=f"{new.name} vs {base.name} (limits: {', '.join(t.describe() for t in thresholds)})")
    for name, justify in (
        ("model · runtime · device", "left"),
        ("metric", "left"),
        ("base", "right"),
        ("new", "right"),
        ("change", "right"),
        ("verdict", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for p in result.pairs:
        first = True
        for d in p.deltas:
            digits = 2 if d.metric.key in ("top1", "top5") else 3
            change = (
                "-"
                if d.change is None
                else (
                    f"{d.change:+.{digits}f}"
                    + (f" ({100 * d.relative:+.1f} %)" if d.relative is not None and d.metric.relative else "")
                )
            )
            style = _STYLE.get(d.verdict, "")
            verdict = f"[{style}]{escape(d.verdict)}[/{style}]" if style else escape(d.verdict)
            table.add_row(
                escape(p.label) if first else "",
                d.metric.label,
                _fmt(d.base, digits),
                _fmt(d.new, digits),
                change,
                verdict,
            )
            first = False
        if p.failed_now:
            table.add_row(escape(p.label), "status", "ok", "failed", "", f"[bold red]{REGRESSION}[/bold red]")
    console.print(table)
    for p in result.pairs:
        for note in p.notes:
            warn(f"{p.label}: {note}")
    for r in result.only_base:
        warn(f"{row_label(r)}: in {base.name} only (no matching row in {new.name})")
    for r in result.only_new:
        warn(f"{row_label(r)}: in {new.name} only (no matching row in {base.name})")
    bad = result.regressions
    if bad:
        raise RegressionError(
            f"{len(bad)} of {len(result.pairs)} matched row(s) regressed: {', '.join(p.label for p in bad[:3])}"
            f"{' ...' if len(bad) > 3 else ''}; see the table"
        )
    console.print(f"no regression in {len(result.pairs)} matched row(s)", markup=False, highlight=False)
