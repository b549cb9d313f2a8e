"""`mdnet-deploy doctor`: runtimes beside power meters, each with why and how to fix."""

from __future__ import annotations

import json

from click.testing import CliRunner

from mdnet_deploy.cli import main
from mdnet_deploy.runtimes.registry import NAMES


def test_doctor_json_lists_runtimes_and_meters(tmp_path, monkeypatch):
    monkeypatch.setenv("MDNET_DEPLOY_SYSFS_ROOT", str(tmp_path))
    res = CliRunner().invoke(main, ["doctor", "--device", "host", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    runtimes = {r["name"]: r for r in report["runtimes"]["runtimes"]}
    assert set(runtimes) == set(NAMES)
    for r in runtimes.values():
        assert r["ok"] or r["reason"]  # every one that does not work says why
    assert report["runtimes"]["auto"]["onnx"]["runtime"] in ("onnxruntime", None)
    assert {m["name"] for m in report["power_meters"]["meters"]} >= {"rapl", "csv", "none"}
    assert report["power_meters"]["auto"] == "none"


def test_doctor_table(tmp_path, monkeypatch):
    monkeypatch.setenv("MDNET_DEPLOY_SYSFS_ROOT", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    res = CliRunner().invoke(main, ["doctor", "--device", "rpi"])
    assert res.exit_code == 0, res.output
    for text in (
        "Runtimes (rpi)",
        "tflite *",
        "onnxruntime *",
        "tensorrt",
        "torch",
        "Power meters (rpi)",
        "pmic",
        "auto for .onnx ->",
    ):
        assert text in res.output, text
