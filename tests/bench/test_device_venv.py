"""The device side runs without torch or onnx, from the installed wheel (make device-venv).

`.venv-device` holds the wheel's base install plus onnxruntime and
ai-edge-litert, like a Raspberry Pi; `.venv-oldest` the same on the oldest
Python found here (3.8 when available, JetPack 5's) with onnxruntime only.
Both install the wheel from `make wheel`, not the source tree. The models
and the packed evaluation set are made here, in the workstation venv.
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
OLDEST_VENV = REPO / ".venv-oldest"
BENCH_FLAGS = ["--device", "host", "--warmup", "2", "--iterations", "5", "--power-meter", "none"]


@pytest.fixture(scope="module")
def device_bin():
    exe = DEVICE_VENV / "bin" / "mdnet-deploy"
    if not exe.exists():
        pytest.skip(f"{DEVICE_VENV} is missing: run 'make device-venv' (make test does) to check the device side")
    return DEVICE_VENV / "bin"


@pytest.fixture(scope="module", params=["device", "oldest"])
def any_device_bin(request):
    """Each device-side venv: the usual one and the oldest-Python one."""
    venv = DEVICE_VENV if request.param == "device" else OLDEST_VENV
    if not (venv / "bin" / "mdnet-deploy").exists():
        pytest.skip(f"{venv} is missing: run 'make device-venv' (make test does; the oldest one needs Python 3.8/3.9)")
    return venv / "bin"


def device_env(device_bin=None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{device_bin or DEVICE_VENV / 'bin'}:{env.get('PATH', '')}"
    return env


def run_device(device_bin, args, cwd):
    return subprocess.run(
        [str(device_bin / "mdnet-deploy"), *map(str, args)],
        cwd=cwd,
        env=device_env(device_bin),
        capture_output=True,
        text=True,
        timeout=300,
    )


def device_python(device_bin, code, cwd):
    return subprocess.run(
        [str(device_bin / "python"), "-c", code],
        cwd=cwd,
        env=device_env(device_bin),
        capture_output=True,
        text=True,
        timeout=300,
    )


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
        proc = subprocess.run(
            [str(device_bin / "python"), "-c", f"import {module}"],
            env=device_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode != 0, f"{module} is importable in {DEVICE_VENV}: the check would prove nothing"
        assert "No module named" in proc.stderr


def test_the_package_is_the_installed_wheel(any_device_bin, tmp_path):
    proc = device_python(
        any_device_bin, "import mdnet_deploy, sys; print(mdnet_deploy.__file__); print(sys.version_info[:2])", tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    where = proc.stdout.splitlines()[0]
    assert "site-packages" in where and not where.startswith(str(REPO / "mdnet_deploy")), where


def test_installed_copy_packages_itself_for_the_device(any_device_bin, tmp_path):
    """bench --host from a wheel install: the installed files become the device's wheel."""
    code = (
        "import sys; from mdnet_deploy.remote.wheel import build_wheel, source_tree; "
        f"assert source_tree() is None; print(build_wheel({str(tmp_path / 'w')!r}, use_cache=False))"
    )
    proc = device_python(any_device_bin, code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    wheel = Path(proc.stdout.strip().splitlines()[-1])
    assert wheel.name.startswith("mdnet_deploy-") and wheel.suffix == ".whl"
    # The device puts the wheel on PYTHONPATH and runs the package from it.
    env = {**device_env(any_device_bin), "PYTHONPATH": str(wheel)}
    run = subprocess.run(
        [str(any_device_bin / "python"), "-c", "import mdnet_deploy; print(mdnet_deploy.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and str(wheel) in run.stdout, run.stderr
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "mdnet_deploy/cli.py" in names and any(n.endswith(".dist-info/RECORD") for n in names)
    assert not any("__pycache__" in n for n in names)


def test_onnx_bench_on_the_device_side(any_device_bin, onnx_model, eval_set, tmp_path):
    out = tmp_path / "r.json"
    proc = run_device(
        any_device_bin, ["bench", *BENCH_FLAGS, "--model", onnx_model, "--eval", eval_set, "--json", out], tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (row,) = json.loads(out.read_text())
    assert row["status"] in ("ok", "unstable") and row["runtime"]["name"] == "onnxruntime"
    assert row["accuracy"]["n"] == 20 and row["iterations"] == 5
    assert row["device"]["env"]["numpy"]


@pytest.mark.slow  # converts the model to TFLite (tens of seconds)
def test_onnx_and_tflite_bench_on_the_device_side(device_bin, onnx_model, tflite_model, eval_set, tmp_path):
    out = tmp_path / "r.json"
    proc = run_device(
        device_bin,
        ["bench", *BENCH_FLAGS, "--model", onnx_model, "--model", tflite_model, "--eval", eval_set, "--json", out],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())
    assert [r["runtime"]["name"] for r in rows] == ["onnxruntime", "tflite"]
    assert all(r["status"] in ("ok", "unstable") and r["accuracy"]["n"] == 20 for r in rows)
