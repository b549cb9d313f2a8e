"""The FP16 ONNX written for strongly typed (TensorRT 11) fp16 builds, checked with ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from mdnet_deploy.artifact import ArtifactMeta, file_ref, write_meta  # noqa: E402
from mdnet_deploy.export.tensorrt.build import guard_float_nodes  # noqa: E402
from mdnet_deploy.export.tensorrt.fp16 import write_fp16_onnx  # noqa: E402
from mdnet_deploy.export.tensorrt.smoke import write_tiny_classifier  # noqa: E402


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def test_tiny_classifier_fp16_keeps_float32_io_and_agrees(tmp_path: Path) -> None:
    src = write_tiny_classifier(tmp_path / "m.onnx", qdq=False)
    kept = write_fp16_onnx(src, tmp_path / "m.fp16.onnx", keep_fp32=["no-such-node"])
    model = onnx.load(str(tmp_path / "m.fp16.onnx"))
    assert kept == []
    assert {i.data_type for i in model.graph.initializer} == {TensorProto.FLOAT16}
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    x = np.random.default_rng(0).normal(0, 1, (4, 3, 32, 32)).astype(np.float32)
    ref, got = _run(src, x), _run(tmp_path / "m.fp16.onnx", x)
    # By construction: the same graph in half precision, within FP16 rounding of logits of size ~1.
    assert got.dtype == np.float32 and np.abs(ref - got).max() < 1e-2 * max(1.0, float(np.abs(ref).max()))


def test_guard_layers_and_fragile_ops_stay_fp32(tmp_path: Path) -> None:
    # x -> Conv -> ReduceMean -> Add(1e-12) -> Sqrt -> Div: a norm whose epsilon FP16 would flush to zero.
    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.5, (4, 3, 1, 1)).astype(np.float32), "w"),
        numpy_helper.from_array(np.array(1e-12, np.float32), "eps"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], name="conv"),
        helper.make_node("Mul", ["c", "c"], ["sq"], name="square"),
        helper.make_node("ReduceMean", ["sq"], ["m"], name="mean", axes=[1], keepdims=1),
        helper.make_node("Add", ["m", "eps"], ["me"], name="add_eps"),
        helper.make_node("Sqrt", ["me"], ["s"], name="sqrt"),
        helper.make_node("Div", ["c", "s"], ["out"], name="norm"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["b", 3, 4, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", 4, 4, 4])],
        initializer=inits,
    )
    src = tmp_path / "n.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(src))
    kept = write_fp16_onnx(src, tmp_path / "n.fp16.onnx", keep_fp32=["square"])
    assert kept == ["add_eps", "mean", "sqrt", "square"]  # guard's choice + fragile ops + the tiny epsilon's user
    x = np.zeros((1, 3, 4, 4), np.float32)  # all-zero: only a kept epsilon avoids 0/0
    assert np.isfinite(_run(tmp_path / "n.fp16.onnx", x)).all()


def test_guard_float_nodes_come_from_the_int8_model_of_this_onnx(tmp_path: Path) -> None:
    src = write_tiny_classifier(tmp_path / "model.onnx", qdq=False)
    other = write_tiny_classifier(tmp_path / "other.onnx", qdq=False, seed=3)
    q = write_tiny_classifier(tmp_path / "model.int8.onnx", qdq=True)
    write_meta(
        q,
        ArtifactMeta(
            format="onnx",
            precision="int8",
            parent=file_ref(src),
            quantization={"float_nodes": ["/fc/Gemm", {"node": "/conv/Conv"}]},
        ),
    )
    assert guard_float_nodes(src) == ["/fc/Gemm", "/conv/Conv"]
    assert guard_float_nodes(other) == []  # quantized from another model: not its guard's choice


def test_qdq_model_gets_float16_scales_and_keeps_guard_layers_fp32(tmp_path: Path) -> None:
    src = write_tiny_classifier(tmp_path / "m.int8.onnx", qdq=True)
    gemm = next(n.name for n in onnx.load(str(src)).graph.node if n.op_type == "Gemm")
    kept = write_fp16_onnx(src, tmp_path / "m.mixed.onnx", keep_fp32=[gemm])
    model = onnx.load(str(tmp_path / "m.mixed.onnx"))
    types = {i.name: i.data_type for i in model.graph.initializer}
    assert model.opset_import[0].version == 19
    assert types["x_scale"] == types["w_scale"] == TensorProto.FLOAT16  # Q/DQ in float16: INT8 with FP16 around it
    assert types["conv_w_q"] == TensorProto.INT8 and types["x_zp"] == TensorProto.INT8
    assert kept == [gemm] and types["fc_w"] == TensorProto.FLOAT  # the guard's layer stays FP32, weights and all
    x = np.random.default_rng(2).normal(0, 1, (3, 3, 32, 32)).astype(np.float32)
    ref, got = _run(src, x), _run(tmp_path / "m.mixed.onnx", x)
    assert np.abs(ref - got).max() < 1e-2 * max(1.0, float(np.abs(ref).max()))
