"""Real TensorRT: build a tiny QDQ ONNX with the Python API and run it through the runner.

Skipped where TensorRT's Python bindings are not installed (no GPU here);
runs on a Jetson or a CUDA machine with ``pip install 'mdnet-deploy[tensorrt]'``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

trt = pytest.importorskip("tensorrt", reason="TensorRT Python bindings not installed (no GPU on this machine)")
pytest.importorskip("onnx")

from mdnet_deploy.artifact import read_meta, write_meta  # noqa: E402
from mdnet_deploy.errors import ArtifactError, InputError  # noqa: E402
from mdnet_deploy.export.tensorrt.build import build_engine  # noqa: E402
from mdnet_deploy.export.tensorrt.smoke import write_tiny_classifier  # noqa: E402
from mdnet_deploy.runtimes.tensorrt import TensorRTRunner  # noqa: E402

pytestmark = pytest.mark.tensorrt


@pytest.fixture(autouse=True)
def _needs_runner() -> None:
    ok, why = TensorRTRunner.available()
    if not ok:
        pytest.skip(why)


def _reference(onnx_path: Path, x: np.ndarray) -> np.ndarray | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _inputs(n: int) -> np.ndarray:
    return np.random.default_rng(n).normal(0, 1, (n, 3, 32, 32)).astype(np.float32)


def test_int8_qdq_dynamic_batch_build_and_run(tmp_path: Path) -> None:
    onnx_path = write_tiny_classifier(tmp_path / "tiny.int8.onnx", qdq=True)
    engine = tmp_path / "tiny.engine"
    meta = build_engine(onnx_path, engine, "int8", batch="dynamic:1,4,8", workspace_mib=64)
    assert engine.stat().st_size > 0
    assert meta.target is not None and meta.target["build"]["builder"] == "tensorrt-python"
    assert meta.target["tensorrt"] == trt.__version__

    loaded = read_meta(engine)
    assert loaded is not None
    with TensorRTRunner(engine, loaded) as runner:
        for n in (1, 4, 8, 3):  # shapes change inside one session; buffers grow and are reused
            x = _inputs(n)
            y = runner.infer(x)
            assert y.shape == (n, 10) and y.dtype == np.float32 and np.isfinite(y).all()
            ref = _reference(onnx_path, x)
            if ref is not None:
                # Same Q/DQ scales on both sides; FP16 float layers and fused kernels differ slightly.
                np.testing.assert_allclose(y, ref, atol=0.05 * max(1.0, float(np.abs(ref).max())))
                assert (y.argmax(1) == ref.argmax(1)).mean() >= 0.75
        with pytest.raises(InputError, match="outside what"):
            runner.infer(_inputs(9))


def test_fp16_static_batch(tmp_path: Path) -> None:
    onnx_path = write_tiny_classifier(tmp_path / "tiny.onnx", qdq=False, batch=2)
    engine = tmp_path / "tiny.fp16.engine"
    build_engine(onnx_path, engine, "fp16", batch=2)
    loaded = read_meta(engine)
    assert loaded is not None
    with TensorRTRunner(engine, loaded) as runner:
        x = _inputs(2)
        y = runner.infer(x)
        ref = _reference(onnx_path, x)
        if ref is not None:
            np.testing.assert_allclose(y, ref, rtol=2e-2, atol=2e-2)


def test_foreign_sidecar_is_refused_before_loading(tmp_path: Path) -> None:
    onnx_path = write_tiny_classifier(tmp_path / "tiny.int8.onnx", qdq=True)
    engine = tmp_path / "tiny.engine"
    build_engine(onnx_path, engine, "int8")
    old = read_meta(engine)
    assert old is not None and old.target is not None
    old.target["tensorrt"] = "7.1.3"  # pretend it came from an old Jetson (re-stamped: a hand edit is refused)
    write_meta(engine, old)
    loaded = read_meta(engine)
    assert loaded is not None
    with pytest.raises(ArtifactError, match="TensorRT 7.1.3") as info:
        TensorRTRunner(engine, loaded).open()
    assert f"-o {engine} --force" in str(info.value)


def test_garbage_engine_is_one_clear_line(tmp_path: Path) -> None:
    onnx_path = write_tiny_classifier(tmp_path / "tiny.int8.onnx", qdq=True)
    engine = tmp_path / "tiny.engine"
    build_engine(onnx_path, engine, "int8")
    engine.write_bytes(b"\x00" * 128)  # same sidecar, broken bytes
    loaded = read_meta(engine)
    assert loaded is not None
    with pytest.raises(ArtifactError, match="cannot load it") as info:
        TensorRTRunner(engine, loaded).open()
    assert "\n" not in str(info.value)
