"""A tiny classifier ONNX (optionally QDQ) to check a TensorRT install end to end.

Building MDNET itself takes minutes on a Jetson Nano; this 3x32x32 ->
conv -> pool -> linear net builds in seconds, so tests (and a device
health check) can exercise parse, build, load and run without the
workstation-side exporter. Needs the ``onnx`` package.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...artifact import ArtifactMeta, TensorSpec, write_meta

INPUT_SCALE = 2.0 / 127.0  # normalized pixels lie within about +-2
WEIGHT_SCALE = 0.01


def write_tiny_classifier(
    path: str | os.PathLike[str],
    qdq: bool = True,
    num_classes: int = 10,
    batch: int | str = "batch",
    seed: int = 0,
) -> Path:
    """Write ``path`` (ONNX, opset 13) and its sidecar; return the path.

    ``qdq=True`` puts QuantizeLinear/DequantizeLinear on the input and the
    conv weights (explicit quantization, as ``mdnet-deploy quantize`` does);
    ``batch`` is a fixed size or a symbolic name for a dynamic batch.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w_int = rng.integers(-127, 128, size=(8, 3, 3, 3)).astype(np.int8)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "conv_b"),
        numpy_helper.from_array(rng.normal(0, 0.5, (num_classes, 8)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(rng.normal(0, 0.1, num_classes).astype(np.float32), "fc_b"),
    ]
    nodes = []
    if qdq:
        inits += [
            numpy_helper.from_array(w_int, "conv_w_q"),
            numpy_helper.from_array(np.array(WEIGHT_SCALE, np.float32), "w_scale"),
            numpy_helper.from_array(np.array(0, np.int8), "w_zp"),
            numpy_helper.from_array(np.array(INPUT_SCALE, np.float32), "x_scale"),
            numpy_helper.from_array(np.array(0, np.int8), "x_zp"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["input", "x_scale", "x_zp"], ["x_q"], name="input_q"),
            helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"], name="input_dq"),
            helper.make_node("DequantizeLinear", ["conv_w_q", "w_scale", "w_zp"], ["conv_w"], name="conv_w_dq"),
        ]
        conv_in = "x_dq"
    else:
        inits.append(numpy_helper.from_array(w_int.astype(np.float32) * WEIGHT_SCALE, "conv_w"))
        conv_in = "input"
    nodes += [
        helper.make_node("Conv", [conv_in, "conv_w", "conv_b"], ["conv"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, num_classes])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="mdnet-deploy")
    model.ir_version = 8  # readable by the ONNX parsers of TensorRT 8.5 and later
    onnx.checker.check_model(model)
    out = Path(path)
    onnx.save(model, str(out))
    meta = ArtifactMeta(
        format="onnx",
        precision="int8" if qdq else "fp32",
        variant="tiny-smoke",
        num_classes=num_classes,
        labels=[f"class{i}" for i in range(num_classes)],
        input=TensorSpec(name="input", shape=[batch, 3, 32, 32]),
        output=TensorSpec(name="logits", shape=[batch, num_classes], layout="NC"),
        quantization={"format": "QDQ", "activations": "int8", "weights": "int8"} if qdq else None,
    )
    write_meta(out, meta)
    return out
