"""compile --target tflite: each precision converts, runs in the TFLite runner and matches PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("litert_torch", reason="litert-torch is not installed (pip install 'mdnet-deploy[tflite]')")
pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed")

from mdnet_deploy.artifact import read_meta, sidecar_path
from mdnet_deploy.export.tflite.flatbuffer import module_of_tensor, read_embedded_meta
from mdnet_deploy.fsutil import sha256_file
from mdnet_deploy.runtimes.tflite import TfliteRunner
from tests.helpers import tflite as fx


def _run(path: Path, x: np.ndarray, **options) -> np.ndarray:
    with TfliteRunner(path, read_meta(path), threads=1, **options) as runner:
        return np.concatenate([runner.infer(x[i : i + 1]) for i in range(len(x))])


def _torch(x: np.ndarray, trained_tiny_ckpt: Path) -> np.ndarray:
    import torch

    from mdnet_deploy.model.checkpoint import load_checkpoint

    model = load_checkpoint(trained_tiny_ckpt).model
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def test_fp32_matches_pytorch_and_records_everything(tflite_fp32, trained_tiny_ckpt: Path) -> None:
    result = tflite_fp32
    meta = read_meta(result.path)
    assert meta.format == "tflite" and meta.precision == "fp32"
    # What the converted model really takes: NHWC float input, NC logits.
    assert (meta.input.layout, meta.input.dtype, meta.input.shape) == ("NHWC", "float32", [1, 32, 32, 3])
    assert (meta.output.layout, meta.output.shape) == ("NC", [1, 10])
    assert meta.checkpoint["sha256"] == sha256_file(trained_tiny_ckpt)
    assert meta.parent["sha256"] == meta.checkpoint["sha256"]  # compiled straight from the checkpoint
    assert meta.preprocessing.size == (32, 32) and meta.labels == [str(i) for i in range(10)]
    assert {"torch", "litert-torch", "ai-edge-litert"} <= set(meta.tools)
    parity = meta.verification["parity"]
    assert parity[0]["name"] == "random" and all(p["max_abs_diff"] < 1e-3 for p in parity)
    assert all(p["top1_agreement"] == 1.0 for p in parity)
    acc = meta.verification["accuracy"]
    assert acc["n"] == 359 and abs(acc["top1"] - acc["torch_top1"]) < 1e-9
    xnn = meta.verification["xnnpack"]
    assert xnn["delegate"] == "XNNPACK" and xnn["ops_delegated"] == xnn["ops_total"] > 50 and xnn["not_delegated"] == {}
    # The same metadata travels inside the flatbuffer (less the sidecar's hash of the file, which no file can hold).
    side = json.loads(sidecar_path(result.path).read_text())
    assert side.pop("artifact")["sha256"] and read_embedded_meta(result.path) == {**side, "artifact": None}
    # And the runner, fed canonical NCHW input, reproduces PyTorch.
    x, _ = fx.digits_test_input()
    np.testing.assert_allclose(_run(result.path, x[:16]), _torch(x[:16], trained_tiny_ckpt), atol=1e-3)
    assert not result.path.with_name(result.path.name + ".log").exists()  # the log goes on success


def test_fp16_halves_the_weights_and_stays_close(tflite_fp32, tflite_fp16, trained_tiny_ckpt: Path) -> None:
    r32, r16 = tflite_fp32, tflite_fp16
    meta = read_meta(r16.path)
    assert meta.precision == "fp16" and meta.input.dtype == "float32"
    assert r16.size_bytes < 0.75 * r32.size_bytes  # weights halve; names and metadata do not
    assert "float16" in meta.quantization["scheme"]
    x, _ = fx.digits_test_input()
    got, ref = _run(r16.path, x[:32]), _torch(x[:32], trained_tiny_ckpt)
    assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max()
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.9
    assert r16.delegation["ops_delegated"] == r16.delegation["ops_total"]


def test_int8_io_records_and_applies_scale_and_zero_point(tflite_int8_io) -> None:
    from ai_edge_litert.interpreter import Interpreter

    result = tflite_int8_io
    meta = read_meta(result.path)
    interp = Interpreter(model_path=str(result.path))
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    for spec, detail in ((meta.input, inp), (meta.output, out)):
        assert spec.dtype == "int8"
        assert spec.scale == pytest.approx(detail["quantization"][0]) and spec.zero_point == detail["quantization"][1]
    assert meta.input.layout == "NHWC" and meta.quantization["io"] == "int8"
    # The runner quantizes the input and dequantizes the logits with those parameters.
    x, labels = fx.digits_test_input()
    interp.allocate_tensors()
    q = np.clip(np.round(x[:1].transpose(0, 2, 3, 1) / meta.input.scale) + meta.input.zero_point, -128, 127).astype(
        np.int8
    )
    interp.set_tensor(inp["index"], q)
    interp.invoke()
    manual = (interp.get_tensor(out["index"]).astype(np.float32) - meta.output.zero_point) * meta.output.scale
    np.testing.assert_allclose(_run(result.path, x[:1]), manual, rtol=0, atol=1e-6)
    # The signature (what LiteRT's own tooling calls) points at the int8 tensors too.
    (signature_out,) = interp.get_signature_runner()(args_0=q).values()
    np.testing.assert_array_equal(signature_out, interp.get_tensor(out["index"]))
    # Close to PyTorch float: within a few output quantization steps, same top-1 mostly.
    acc = meta.verification["accuracy"]
    assert acc["n"] == len(labels) and abs(acc["top1"] - acc["torch_top1"]) <= 10
    parity = meta.verification["parity"][-1]
    assert parity["top1_agreement"] >= 0.7


def test_int8_calibration_is_quantize_s_set(tflite_int8_io) -> None:
    meta = read_meta(tflite_int8_io.path)
    cal = meta.calibration
    assert (cal["source"], cal["count"], cal["seed"], cal["observer"]) == (fx.CALIB, fx.CALIB_SIZE, 0, "minmax")
    assert len(cal["sha256"]) == 64
    assert meta.quantization["float_modules"] == sorted(fx.FLOAT_MODULES)
    assert meta.quantization["weights"] == "int8 symmetric per-channel"


def test_float_fallback_modules_stay_float(tflite_int8_io) -> None:
    """Each listed module's conv runs in float32; its quantized neighbours run in int8.

    The conv is found by its weight tensor, which litert-torch names after the
    module that owns it, independently of the tool's own bookkeeping.
    """
    from ai_edge_litert.interpreter import Interpreter

    result = tflite_int8_io
    interp = Interpreter(model_path=str(result.path))
    interp.allocate_tensors()
    names = {d["index"]: d["name"] for d in interp.get_tensor_details()}
    convs: dict[str, set[str]] = {}
    for op in interp._get_ops_details():
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            module = module_of_tensor(names[int(op["inputs"][1])])
            convs.setdefault(module, set()).add(np.dtype(op["operand_types"][0]).name)
    for module in fx.FLOAT_MODULES:
        assert convs[module] == {"float32"}, module
    for neighbour in ("transform.attn.qkv_dwconv7x7", "stage2.0.residual.0", "stage2.0.residual.6"):
        assert convs[neighbour] == {"int8"}, neighbour
    int8_convs = sum(1 for dtypes in convs.values() if dtypes == {"int8"})
    assert int8_convs >= len(convs) - len(fx.FLOAT_MODULES)
    # The tool's own record says the same.
    ops = read_meta(result.path).quantization["float_module_ops"]
    # Its conv is float; a QUANTIZE of its output for the INT8 depthwise conv after it may share its scope.
    assert ops["transform.attn.qkv"].get("CONV_2D(float32)") == 1
    assert not [op for op in ops["transform.attn.qkv"] if op.startswith(("CONV_2D(int8", "DEPTHWISE"))]


def test_int8_with_float_io_by_default(tmp_path: Path, tflite_int8_io) -> None:
    """--io float (the default) wraps the same int8 graph in QUANTIZE/DEQUANTIZE."""
    from mdnet_deploy.export.tflite.flatbuffer import add_float_io, io_types

    int8_bytes = tflite_int8_io.path.read_bytes()
    wrapped = tmp_path / "float_io.tflite"
    wrapped.write_bytes(add_float_io(int8_bytes))
    assert io_types(wrapped.read_bytes()) == (0, 0)
    meta = read_meta(tflite_int8_io.path)
    meta.input.dtype = meta.output.dtype = "float32"  # the runner trusts the file anyway
    x, _ = fx.digits_test_input()
    with TfliteRunner(wrapped, meta, threads=1) as runner:
        assert runner.input_spec.dtype == "float32"
        got = np.concatenate([runner.infer(x[i : i + 1]) for i in range(8)])
    np.testing.assert_allclose(got, _run(tflite_int8_io.path, x[:8]), atol=1e-5)
