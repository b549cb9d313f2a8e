"""The device side runs without torch or onnx: `bench` in `.venv-device` (make device-venv).

That venv holds numpy, click, rich, pyyaml, onnxruntime and ai-edge-litert
plus this package installed --no-deps, like a Raspberry Pi. The models and
the packed evaluation set are made here, in the workstation venv.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from tests.helpers.bench import write_eval_npz

REPO = Path(__file__).resolve().parents[2]
DEVICE_VENV = REPO / ".venv-device"
BENCH_FLAGS = ["--device", "host", "--warmup", "2", "--iterations", "5", "--power-meter", "none"]


@pytest.fixture(scope="module")
def device_bin():
    exe = DEVICE_VENV / "bin" / "mdnet-deploy"
    if not exe.exists():
        pytest.skip(f"{DEVICE_VENV} is missing: run 'make device-venv' (make test does) to check the device side")
    return DEVICE_VENV / "bin"


def device_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{DEVICE_VENV / 'bin'}:{env.get('PATH', '')}"
    return env


def run_device(device_bin, args, cwd):
    return subprocess.run([str(device_bin / "mdnet-deploy"), *map(str, args)], cwd=cwd, env=device_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def eval_set(tmp_path_factory):
    from mdnet_deploy.bench.evalset import pack_eval

    folder = tmp_path_factory.mktemp("device-eval")
    return pack_eval(str(write_eval_npz(folder / "src.npz", n=20)), folder / "eval.npz").path


@pytest.fixture(scope="module")
def onnx_model(tiny_onnx):
    return tiny_onnx


def test_device_venv_has_no_torch_or_onnx(device_bin):
    for module in ("torch", "onnx"):
        proc = subprocess.run([str(device_bin / "python"), "-c", f"import {module}"], env=device_env(),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0, f"{module} is importable in {DEVICE_VENV}: the check would prove nothing"
        assert "No module named" in proc.stderr


def test_onnx_bench_on_the_device_side(device_bin, onnx_model, eval_set, tmp_path):
    out = tmp_path / "r.json"
    proc = run_device(device_bin, ["bench", *BENCH_FLAGS, "--model", onnx_model, "--eval", eval_set, "--json", out],
                      tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (row,) = json.loads(out.read_text())
    assert row["status"] == "ok" and row["runtime"]["name"] == "onnxruntime"
    assert row["accuracy"]["n"] == 20 and row["iterations"] == 5
    assert row["device"]["env"]["numpy"]


@pytest.mark.slow  # converts the model to TFLite (tens of seconds)
def test_onnx_and_tflite_bench_on_the_device_side(device_bin, onnx_model, tflite_model, eval_set, tmp_path):
    out = tmp_path / "r.json"
    proc = run_device(device_bin, ["bench", *BENCH_FLAGS, "--model", onnx_model, "--model", tflite_model,
                                   "--eval", eval_set, "--json", out], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())
    assert [r["runtime"]["name"] for r in rows] == ["onnxruntime", "tflite"]
    assert all(r["status"] == "ok" and r["accuracy"]["n"] == 20 for r in rows)
