"""The OpenVINO runner: the same ONNX file as ONNX Runtime, the same logits, per-layer profiles, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

ov = pytest.importorskip("openvino", reason="openvino is not installed (pip install 'mdnet-deploy[openvino]')")
pytest.importorskip("torch", reason="the tiny test model is made with torch")

from mdnet_deploy.artifact import read_meta  # noqa: E402
from mdnet_deploy.errors import ArtifactError  # noqa: E402
from mdnet_deploy.runtimes.onnxruntime import OnnxRuntimeRunner  # noqa: E402
from mdnet_deploy.runtimes.openvino import OpenVinoRunner  # noqa: E402
from mdnet_deploy.runtimes.registry import choose_runtime  # noqa: E402


def test_same_logits_as_onnxruntime_on_the_same_file(tiny_onnx):
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    meta = read_meta(tiny_onnx)
    with OpenVinoRunner(tiny_onnx, meta, threads=1) as r:
        got = r.infer(x)
        one = r.infer(x[:1])  # the batch follows the input (the export has a dynamic batch)
        d = r.describe()
    with OnnxRuntimeRunner(tiny_onnx, meta, threads=1) as ref:
        want = ref.infer(x)
    assert got.shape == (3, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
    np.testing.assert_allclose(one, want[:1], rtol=0, atol=1e-4)
    assert d["name"] == "openvino" and d["threads"] == 1 and d["version"] in ov.__version__


def test_profile_names_the_mdnet_modules(tiny_onnx):
    x = np.zeros((1, 3, 32, 32), np.float32)
    with OpenVinoRunner(tiny_onnx, read_meta(tiny_onnx), threads=1) as r:
        profile = r.profile(r.prepare(x), runs=3)
    assert profile["available"] and profile["runtime"] == "openvino"
    modules = {layer["module"] for layer in profile["layers"]}
    assert "transform.attn.qkv_dwconv7x7" in modules  # OpenVINO's "/WithoutBiases" suffix is not a module
    assert not [m for m in modules if m.endswith(".Conv")]


def test_corrupt_file_is_one_line(tmp_path, tiny_onnx):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ArtifactError, match="OpenVINO cannot open") as info:
        OpenVinoRunner(bad, read_meta(tiny_onnx)).open()
    assert "\n" not in str(info.value)


def test_only_chosen_when_asked(tiny_onnx):
    assert choose_runtime("onnx", "host") == "onnxruntime"  # auto keeps ONNX Runtime: results stay comparable
    assert choose_runtime("onnx", "host", "openvino") == "openvino"


def _has_bf16() -> bool:
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def test_bf16_rows_say_bf16_and_stay_close(tiny_onnx):
    """openvino-bf16 computes the float file in bfloat16: its bench row is a bf16 row, its logits near float."""
    if not _has_bf16():
        pytest.skip("this CPU has no native bf16 (OpenVINO's OPTIMIZATION_CAPABILITIES)")
    from mdnet_deploy.bench import bench_models

    rows = bench_models([str(tiny_onnx)], device="host", runtime=["openvino-bf16"], threads=1, warmup="2", iterations=5)
    assert rows[0]["status"] in ("ok", "unstable"), rows[0]
    assert rows[0]["model"]["precision"] == "bf16" and rows[0]["model"]["stored_precision"] == "fp32"
    assert rows[0]["runtime"]["name"] == "openvino-bf16"
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    from mdnet_deploy.runtimes.openvino import OpenVinoBf16Runner

    with OpenVinoBf16Runner(tiny_onnx, read_meta(tiny_onnx), threads=1) as r, OpenVinoRunner(
        tiny_onnx, read_meta(tiny_onnx), threads=1
    ) as f32:
        diff = np.abs(r.infer(x) - f32.infer(x)).max()
    assert 0 < diff < 0.1  # bf16 rounding shows (the f32 runner really is f32), and stays small


def test_bf16_refused_without_native_bf16(tiny_onnx, monkeypatch):
    from mdnet_deploy.errors import UnavailableError
    from mdnet_deploy.runtimes.openvino import OpenVinoBf16Runner

    monkeypatch.setattr(ov.Core, "get_property", lambda self, device, name: ["FP32", "INT8"])
    with pytest.raises(UnavailableError, match="no native bf16"):
        OpenVinoBf16Runner(tiny_onnx, read_meta(tiny_onnx)).open()
