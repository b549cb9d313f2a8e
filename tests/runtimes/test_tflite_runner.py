"""TfliteRunner: layout and int8 I/O from the file, batches, XNNPACK on/off, device-side imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (pip install ai-edge-litert)")
pytest.importorskip(
    "litert_torch", reason="the test artifacts are made with litert-torch (pip install 'mdnet-deploy[tflite]')"
)

from mdnet_deploy.artifact import read_meta
from mdnet_deploy.errors import ArtifactError, UnavailableError
from mdnet_deploy.runtimes import tflite as tflite_mod
from mdnet_deploy.runtimes.tflite import TfliteRunner
from tests.helpers import tflite as fx

ROOT = Path(__file__).resolve().parents[2]


def infer_each(runner: TfliteRunner, x: np.ndarray) -> np.ndarray:
    return np.concatenate([runner.infer(x[i : i + 1]) for i in range(len(x))])


def test_available_names_the_interpreter() -> None:
    ok, version = TfliteRunner.available()
    assert ok and version.startswith("ai-edge-litert ")


def test_unavailable_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tflite_fp32) -> None:
    def missing():
        raise ImportError("No module named 'ai_edge_litert'")

    monkeypatch.setattr(tflite_mod, "_import_interpreter", missing)
    ok, why = TfliteRunner.available()
    assert not ok and "pip install ai-edge-litert" in why
    with pytest.raises(UnavailableError, match="pip install ai-edge-litert"):
        TfliteRunner(tflite_fp32.path, read_meta(tflite_fp32.path)).open()


def test_batches_larger_than_the_compiled_one(tflite_fp32) -> None:
    path = tflite_fp32.path
    x, _ = fx.digits_test_input()
    with TfliteRunner(path, read_meta(path), threads=1) as runner:
        single = infer_each(runner, x[:5])
        batched = runner.infer(x[:5])  # the file is batch 1 with batch-fixed reshapes: run in chunks
        assert runner.describe()["batching"] == "loop of batch 1"
    np.testing.assert_allclose(batched, single, atol=1e-6)


def test_xnnpack_can_be_turned_off(tflite_fp32) -> None:
    path = tflite_fp32.path
    x, _ = fx.digits_test_input()
    with TfliteRunner(path, read_meta(path), threads=1) as on:
        with_xnn = infer_each(on, x[:4])
        assert on.describe()["delegation"]["partitions"] >= 1
    with TfliteRunner(path, read_meta(path), threads=1, xnnpack=False) as off:
        without = infer_each(off, x[:4])
        d = off.describe()
    assert d["xnnpack"] is False and d["delegation"]["delegate"] is None and d["delegation"]["ops_delegated"] == 0
    np.testing.assert_allclose(without, with_xnn, atol=1e-4)


def test_quantization_comes_from_the_file_not_the_sidecar(tflite_int8_io) -> None:
    path = tflite_int8_io.path
    good = read_meta(path)
    stale = read_meta(path)
    stale.input.scale, stale.input.zero_point = 1.0, 0  # e.g. a sidecar from another build
    x, _ = fx.digits_test_input()
    with TfliteRunner(path, good, threads=1) as a, TfliteRunner(path, stale, threads=1) as b:
        assert b.input_spec.dtype == "int8" and b.input_spec.scale == pytest.approx(good.input.scale)
        np.testing.assert_array_equal(infer_each(a, x[:3]), infer_each(b, x[:3]))


def test_layout_that_contradicts_the_file_is_refused(tflite_fp32) -> None:
    meta = read_meta(tflite_fp32.path)
    meta.input.layout = "NCHW"
    with pytest.raises(ArtifactError, match="metadata says NCHW"):
        TfliteRunner(tflite_fp32.path, meta).open()


def test_missing_and_corrupt_files(tmp_path: Path, tflite_fp32) -> None:
    meta = read_meta(tflite_fp32.path)
    with pytest.raises(ArtifactError, match="no such file"):
        TfliteRunner(tmp_path / "none.tflite", meta).open()
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ArtifactError, match="cannot open") as err:
        TfliteRunner(junk, meta).open()
    assert "\n" not in str(err.value)


def test_device_side_needs_neither_torch_nor_onnx(tflite_fp32, tflite_int8_io) -> None:
    """What a Raspberry Pi runs: numpy + ai-edge-litert + this package."""
    script = f"""
import json, sys
for name in ("torch", "onnx", "onnxruntime", "litert_torch", "ai_edge_quantizer"):
    sys.modules[name] = None  # any import of these now fails
import numpy as np
from mdnet_deploy.artifact import read_meta
from mdnet_deploy.runtimes.tflite import TfliteRunner
out = {{}}
for path in {json.dumps([str(tflite_fp32.path), str(tflite_int8_io.path)])}:
    with TfliteRunner(path, read_meta(path), threads=1) as r:
        y = r.infer(np.zeros((2, 3, 32, 32), np.float32))
        out[path] = [list(y.shape), r.input_spec.dtype, r.describe()["delegation"]["delegate"]]
print(json.dumps(out))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [v[:2] for v in out.values()] == [[[2, 10], "float32"], [[2, 10], "int8"]]
    assert "XNNPACK delegate" not in proc.stdout  # the C++ banner is captured, not printed
