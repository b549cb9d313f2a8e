"""The runtime registry: choice by format and device profile, overrides, reasons, doctor rows."""

from __future__ import annotations

import pytest

from mdnet_deploy.artifact import ArtifactMeta
from mdnet_deploy.errors import InputError, UnavailableError
from mdnet_deploy.runtimes import registry


@pytest.fixture
def available(monkeypatch):
    """Pretend a chosen set of runtimes works here."""

    def set_(*names):
        monkeypatch.setattr(
            registry,
            "runtime_available",
            lambda n: (True, "1.0") if n in names else (False, f"{n} missing here; install it"),
        )

    return set_


def test_profile_order_decides(available):
    available("onnxruntime", "tflite", "torch", "tensorrt")
    assert registry.choose_runtime("onnx", "host") == "onnxruntime"
    assert registry.choose_runtime("tflite", "rpi") == "tflite"
    assert registry.choose_runtime("engine", "jetson") == "tensorrt"
    assert registry.choose_runtime("pt", "host") == "torch"
    assert registry.choose_runtime("pt", "rpi") == "torch"  # not in the rpi profile, but the only one that opens it


def test_auto_falls_back_and_explains(available):
    available("torch")
    with pytest.raises(UnavailableError) as info:
        registry.choose_runtime("onnx", "host")
    assert "onnxruntime missing here" in str(info.value)
    with pytest.raises(UnavailableError, match="tensorrt missing here"):
        registry.choose_runtime("engine", "host")


def test_explicit_runtime(available):
    available("onnxruntime", "torch")
    assert registry.choose_runtime("onnx", "rpi", "onnxruntime") == "onnxruntime"
    with pytest.raises(UnavailableError, match="cannot open a .tflite artifact; use --runtime tflite"):
        registry.choose_runtime("tflite", "host", "onnxruntime")
    with pytest.raises(UnavailableError, match="records no checkpoint"):
        registry.choose_runtime("onnx", "host", "torch", ArtifactMeta(format="onnx"))
    meta = ArtifactMeta(format="onnx", checkpoint={"path": "/x/tiny.pth"})
    assert registry.choose_runtime("onnx", "host", "torch", meta) == "torch"
    with pytest.raises(UnavailableError, match="tflite missing here"):
        registry.choose_runtime("tflite", "rpi", "tflite")
    with pytest.raises(InputError, match="unknown runtime"):
        registry.choose_runtime("onnx", "host", "tvm")
    with pytest.raises(InputError, match="device kind"):
        registry.choose_runtime("onnx", "toaster")


def test_missing_runner_module_is_a_reason_not_a_crash(monkeypatch):
    spec = registry.RUNTIMES["tflite"]
    monkeypatch.setitem(
        registry.RUNTIMES,
        "tflite",
        registry.RuntimeSpec("tflite", "mdnet_deploy.runtimes.no_such_module", "X", spec.formats, spec.install),
    )
    ok, why = registry.runtime_available("tflite")
    assert not ok and "not part of this mdnet-deploy install" in why
    with pytest.raises(UnavailableError):
        registry.runner_class("tflite")


def test_real_onnxruntime_and_profile_options():
    pytest.importorskip("onnxruntime")
    ok, version = registry.runtime_available("onnxruntime")
    assert ok and version[0].isdigit()
    assert registry.runner_class("onnxruntime").name == "onnxruntime"
    assert registry.runner_options("onnxruntime", "cuda")["providers"][0] == "CUDAExecutionProvider"
    assert registry.runner_options("onnxruntime", "host") == {}
    runner = registry.make_runner("torch", "x.pth", ArtifactMeta(format="pt"), "cuda", threads=2, channels_last=True)
    assert runner.options == {"device": "cuda", "channels_last": True} and runner.threads == 2


def test_doctor_rows():
    rows = registry.doctor_runtimes("rpi")
    assert [r["name"] for r in rows][:2] == ["tflite", "onnxruntime"]  # the profile's order first
    assert {r["name"] for r in rows} == set(registry.NAMES)
    for r in rows:
        assert r["ok"] == (r["reason"] is None) and (r["version"] is not None) == r["ok"]
        assert r["formats"] and r["install"]
    trt = next(r for r in rows if r["name"] == "tensorrt")
    if not trt["ok"]:
        assert "install" in trt["reason"] or "pip" in trt["reason"]
