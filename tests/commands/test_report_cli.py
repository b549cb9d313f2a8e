"""`mdnet-deploy report` bad inputs: one `error:` line, non-zero exit, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mdnet_deploy.cli import main

ROW = {"schema": 1, "status": "ok", "model": {"path": "m.onnx"}, "latency_ms": {"p50": 1.0}}


def _run(*args: object):
    return CliRunner().invoke(main, ["report", *[str(a) for a in args]])


def _one_error(res, fragment: str) -> None:
    assert res.exit_code != 0, res.output
    assert "Traceback" not in res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fragment in errors[0], res.output


@pytest.fixture
def results(tmp_path: Path) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps([ROW]))
    return path


def test_missing_and_malformed_inputs(tmp_path: Path, results: Path) -> None:
    out = tmp_path / "r.html"
    _one_error(_run(tmp_path / "nope.json", "-o", out), "does not exist")
    (tmp_path / "bad.json").write_text("[{")
    _one_error(_run(tmp_path / "bad.json", "-o", out), "not valid JSON")
    (tmp_path / "list.json").write_text("[1, 2]")
    _one_error(_run(tmp_path / "list.json", "-o", out), "not a bench results file")
    _one_error(_run(results, "--quant", results, "-o", out), "not a quantize report")
    assert not out.exists()


def test_output_rules(tmp_path: Path, results: Path) -> None:
    out = tmp_path / "r.html"
    out.write_text("keep me")
    _one_error(_run(results, "-o", out), "already exists; pass --force")
    assert out.read_text() == "keep me"
    _one_error(_run(results, "-o", results, "--force"), "is also an input")
    assert json.loads(results.read_text()) == [ROW]
    res = _run(results, "-o", out, "--force")
    assert res.exit_code == 0, res.output and out.read_text().startswith("<!DOCTYPE html>")


def test_quantize_report_among_results_is_recognised(tmp_path: Path, results: Path) -> None:
    quant = tmp_path / "model.int8.report.json"
    quant.write_text(json.dumps({"schema": 1, "status": "ok", "sensitivity": {"layers": []}, "guard": None}))
    out = tmp_path / "r.html"
    res = _run(results, quant, "-o", out)
    assert res.exit_code == 0, res.output
    assert "1 quantize report(s)" in out.read_text()
