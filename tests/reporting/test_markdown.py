"""`report --format md`: the Markdown summary and its PNG figures (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import run_report

PNG = b"\x89PNG\r\n\x1a\n"


def test_markdown_with_png_figures(results_json: Path, quant_reports: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the [report] extra (matplotlib) draws the Markdown figures")
    out = tmp_path / "pr" / "report.md"
    res = run_report(results_json, quant_reports, out)
    assert res.exit_code == 0, res.output
    text = out.read_text()
    figures = sorted((tmp_path / "pr" / "report_files").glob("*.png"))
    names = {f.name for f in figures}
    assert {"pareto-top1-latency.png", "pareto-top1-energy.png", "pareto-size-latency.png", "latency.png"} <= names
    assert any(n.startswith("sensitivity-") for n in names) and any(n.startswith("guard-") for n in names)
    assert any(n.startswith("profile-") for n in names) and any(n.startswith("power-") for n in names)
    for f in figures:
        assert f.read_bytes()[:8] == PNG and f.stat().st_size > 2000
        assert f"](report_files/{f.name})" in text  # every figure is linked, relative to the page
    assert "| model | precision | runtime |" in text and "model.int8.onnx" in text


def test_markdown_figures_are_not_replaced_without_force(
    results_json: Path, quant_reports: dict[str, Path], tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib", reason="the [report] extra (matplotlib) draws the Markdown figures")
    out = tmp_path / "report.md"
    figs = tmp_path / "report_files"
    figs.mkdir()
    (figs / "latency.png").write_bytes(b"mine")
    res = run_report(results_json, quant_reports, out)
    assert res.exit_code != 0 and "already exists; pass --force" in res.stderr and "Traceback" not in res.output
    assert (figs / "latency.png").read_bytes() == b"mine" and not out.exists()
    assert run_report(results_json, quant_reports, out, "--force").exit_code == 0
    assert (figs / "latency.png").read_bytes()[:8] == PNG
