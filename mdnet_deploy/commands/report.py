"""``mdnet-deploy report``: one self-contained HTML page (or Markdown + PNGs) from bench and quantize outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..fsutil import check_output
from ._common import console


@click.command(name="report")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--quant",
    "quant",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A quantize report (model.int8.report.json) for the sensitivity and guard charts; repeatable.",
)
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(path_type=Path),
    help="The report to write: report.html, or report.md (its PNG figures go in report_files/ beside it).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("html", "md")),
    default=None,
    help="html (one self-contained file) or md (Markdown + PNGs); default: from the -o suffix.",
)
@click.option("--title", default="mdnet-deploy report", show_default=True, help="Title of the report.")
@click.option("--force", is_flag=True, help="Overwrite an existing report (and, for md, its figures).")
def command(
    results: tuple[Path, ...], quant: tuple[Path, ...], output: Path, fmt: str | None, title: str, force: bool
) -> None:
    """Render RESULTS.json files (from bench --json) and quantize reports as one report.

    The HTML page needs nothing else to open (no server, no network): results table, Pareto plots,
    latency distributions, power traces, per-layer profiles, quantization sensitivity and each
    device's environment. --format md writes a Markdown summary with PNG plots for pull requests.
    """
    from ..reporting.load import load_inputs

    fmt = fmt or ("md" if output.suffix.lower() in (".md", ".markdown") else "html")
    inputs_given: list[Any] = [*results, *quant]
    check_output(output, force=force, inputs=inputs_given, option="-o")
    inputs = load_inputs(results, quant)
    if fmt == "md":
        from ..reporting.markdown import figures_dir, write_markdown

        check_output(figures_dir(output) / "x.png", force=True, option="-o")  # the folder must be writable too
        written = write_markdown(inputs, output, title, force=force)
        console.print(
            f"wrote {output} and {len(written) - 1} figure(s) in {figures_dir(output)}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    else:
        from ..reporting.html import write_html

        write_html(inputs, output, title)
        size_kb = output.stat().st_size / 1024
        console.print(
            f"wrote {output} ({size_kb:.0f} kB; open it in a browser, it needs no server or network)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
