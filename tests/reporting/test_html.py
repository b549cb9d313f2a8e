"""The HTML report from real bench and quantize outputs: content, size, self-containment, escaping."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from mdnet_deploy.reporting.html import render_html
from mdnet_deploy.reporting.load import load_inputs
from tests.helpers.cli import run_report

MAX_BYTES_20_ROWS = 5 * 1024 * 1024


def test_report_has_every_section(results_json: Path, quant_reports: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    res = run_report(results_json, quant_reports, out)
    assert res.exit_code == 0, res.output
    page = out.read_text()
    for chart in (
        "pareto-top1-latency",
        "pareto-top1-energy",
        "pareto-size-latency",
        "latency-distribution",
        "sensitivity-",
        "guard-",
        "profile-",
    ):
        assert f'data-chart="{chart}' in page, chart
    assert page.count('data-chart="power-') == 2  # the csv meter kept a trace for both rows
    assert "transform.attn.qkv_dwconv7x7" in page  # the profile speaks MDNET module names
    assert "Environment" in page and "runtime onnxruntime" in page
    assert 'data-row="r0"' in page and 'data-row="r1"' in page  # marks linked to table rows


def test_report_is_self_contained(results_json: Path, quant_reports: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert run_report(results_json, quant_reports, out).exit_code == 0
    page = out.read_text()
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    urls = set(re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", page))
    assert all(u.startswith("#") for u in urls), urls  # in-page anchors only
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "").replace(
        'http-equiv="Content-Security-Policy"', ""
    )
    assert "@import" not in page and "url(" not in page


def test_twenty_rows_stay_small(bench_rows: list[dict], quant_reports: dict[str, Path]) -> None:
    rows = []
    for i in range(10):
        for r in bench_rows:
            r = copy.deepcopy(r)
            r["model"]["path"] = f"variant{i}/{Path(r['model']['path']).name}"
            rows.append(r)
    inputs = load_inputs([], [quant_reports["ranked"], quant_reports["guarded"]])
    inputs.rows = rows
    page = render_html(inputs)
    assert len(rows) == 20
    assert len(page.encode()) < MAX_BYTES_20_ROWS
    assert page.count('class="mark pt"') >= 20  # every row is a mark on the latency Pareto plot


def test_names_from_files_are_escaped(bench_rows: list[dict], tmp_path: Path) -> None:
    rows = copy.deepcopy(bench_rows)
    rows[0]["model"]["path"] = "<img src=x onerror=alert(1)>.onnx"
    rows[0]["warnings"] = ['"><script>alert(1)</script>']
    src = tmp_path / "r.json"
    src.write_text(json.dumps(rows))
    page = render_html(load_inputs([src]))
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.onnx" in page


def test_failed_and_unmeasured_rows_say_why(bench_rows: list[dict], tmp_path: Path) -> None:
    rows = copy.deepcopy(bench_rows)
    rows[1].update(
        status="failed",
        reason="ONNX Runtime cannot open model.int8.onnx: bad file",
        latency_ms=None,
        accuracy=None,
        energy=None,
        throughput_ips=None,
    )
    rows[0].update(energy=None, energy_unavailable="no power meter works here")
    rows[0].pop("profile", None)
    src = tmp_path / "r.json"
    src.write_text(json.dumps(rows))
    page = render_html(load_inputs([src]))
    assert "ONNX Runtime cannot open model.int8.onnx: bad file" in page
    assert 'class="s-failed"' in page
    assert "top-1 vs energy per image: not drawn" in page and "no power meter works here" in page
    assert "No quantize report given" in page
