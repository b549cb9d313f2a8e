"""The ONNX Runtime runner as the bench uses it: threads, providers, bad files, layouts."""

from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("torch", reason="the tiny test model is made with torch")


from mdnet_deploy.artifact import read_meta
from mdnet_deploy.errors import ArtifactError, UnavailableError
from mdnet_deploy.runtimes.onnxruntime import OnnxRuntimeRunner


@pytest.fixture(scope="module")
def onnx_model(tiny_onnx):
    return tiny_onnx


def test_prepare_run_finish_and_describe(onnx_model):
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    with OnnxRuntimeRunner(onnx_model, read_meta(onnx_model), threads=1) as r:
        native = r.prepare(x)
        assert native.dtype == np.float32 and native.shape == (3, 3, 32, 32)
        out = r.finish(r.run(native))
        assert out.shape == (3, 10)
        np.testing.assert_array_equal(out, r.infer(x))
        d = r.describe()
    assert d["name"] == "onnxruntime" and d["version"] == ort.__version__ and d["threads"] == 1
    assert d["providers"] == ["CPUExecutionProvider"]


def test_corrupt_file_is_one_line(tmp_path, onnx_model):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ArtifactError, match="ONNX Runtime cannot open") as info:
        OnnxRuntimeRunner(bad, read_meta(onnx_model)).open()
    assert "\n" not in str(info.value)


def test_missing_provider_is_unavailable(onnx_model):
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has CUDA")
    with pytest.raises(UnavailableError, match="lacks CUDAExecutionProvider"):
        OnnxRuntimeRunner(
            onnx_model, read_meta(onnx_model), providers=("CUDAExecutionProvider", "CPUExecutionProvider")
        ).open()


def test_nhwc_int8_io_conversion_in_prepare_and_finish(onnx_model):
    """A quantized NHWC artifact's metadata drives prepare/finish (base Runner helpers)."""
    from mdnet_deploy.artifact import TensorSpec

    meta = read_meta(onnx_model)
    meta.input = TensorSpec(shape=[1, 32, 32, 3], layout="NHWC", dtype="int8", scale=0.05, zero_point=-3)
    meta.output = TensorSpec(name="logits", shape=[1, 10], layout="NC", dtype="int8", scale=0.1, zero_point=2)
    r = OnnxRuntimeRunner(onnx_model, meta)
    x = np.full((1, 3, 32, 32), 0.5, np.float32)
    q = r.prepare(x)
    assert q.dtype == np.int8 and q.shape == (1, 32, 32, 3) and int(q[0, 0, 0, 0]) == 7
    assert r.finish(np.array([[12]], np.int8))[0, 0] == pytest.approx(1.0)
