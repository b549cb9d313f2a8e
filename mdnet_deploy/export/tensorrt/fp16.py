"""An FP16 (mixed) ONNX from a float model, for TensorRT's strongly typed builds.

TensorRT 11 has no FP16 builder flag: a strongly typed network runs each
layer in the type the graph gives it. So an FP16 engine needs an ONNX whose
layers compute in float16. This writes one with the ``onnx`` package:

* inputs and outputs stay float32 (a Cast at each end), so the engine's I/O
  and every runner stay as they are;
* the layers named in ``keep_fp32`` (the ones the accuracy guard kept float)
  stay FP32, and so do numerically fragile ones: reductions, powers, square
  roots, softmax, and any layer fed a constant outside FP16's range (a 1e-12
  epsilon would flush to zero and divide by it);
* everything else (convolutions, matmuls, activations, adds) computes in
  FP16; a Cast sits on every edge where the two meet (TensorRT fuses them).

A Q/DQ (INT8) model gets the same treatment, which is what a strongly typed
INT8 engine needs for its float islands to run in FP16 as they do under
10.x's FP16 flag: the Q/DQ scales become float16 (ONNX opset 19 allows
that, so the opset is raised to 19 when lower), the integer weights and zero
points stay as they are, and the layers the accuracy guard kept float stay
FP32. This is the form NVIDIA's ModelOpt writes for ``high_precision_dtype
fp16``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

# Kept FP32 whatever the caller says: their range or accumulation needs it.
FRAGILE_OPS = frozenset(
    {
        "Pow",
        "Sqrt",
        "Reciprocal",
        "Exp",
        "Log",
        "Softmax",
        "LogSoftmax",
        "ReduceL1",
        "ReduceL2",
        "ReduceLogSum",
        "ReduceLogSumExp",
        "ReduceMean",
        "ReduceSum",
        "ReduceSumSquare",
        "ReduceProd",
        "LayerNormalization",
        "InstanceNormalization",
        "GroupNormalization",
        "Range",
        "CumSum",
        "TopK",
        "NonMaxSuppression",
        "RoiAlign",
        "Resize",
    }
)
_FP16_MAX = 65504.0
_FP16_MIN_NORMAL = 6.103515625e-05
_SMALL_CONSTANT = 16  # elements: an epsilon or a scale, not a weight tensor
_QDQ = ("QuantizeLinear", "DequantizeLinear")
_QDQ_FP16_OPSET = 19  # QuantizeLinear/DequantizeLinear-19 take float16 scales


def _out_of_range(arr: np.ndarray) -> bool:
    """A value FP16 cannot hold: overflow anywhere, or (in a small constant) a non-zero below the normal range."""
    a = np.abs(arr.astype(np.float64, copy=False))
    if a.size and float(a.max()) > _FP16_MAX:
        return True
    if a.size <= _SMALL_CONSTANT:
        nz = a[a > 0]
        return bool(nz.size and float(nz.min()) < _FP16_MIN_NORMAL)
    return False


def convert_to_fp16(model: Any, keep_fp32: Iterable[str] = ()) -> tuple[Any, list[str]]:
    """Return (a float16/float32 mixed copy of ``model``, the names of the nodes kept FP32)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.shape_inference.infer_shapes(model)
    g = model.graph
    for i, node in enumerate(g.node):  # names are how layers are kept FP32: give the unnamed ones one
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    float_tensors = {
        vi.name for vi in [*g.value_info, *g.input, *g.output] if vi.type.tensor_type.elem_type == TensorProto.FLOAT
    }
    inits = {t.name: t for t in g.initializer}
    float_tensors |= {n for n, t in inits.items() if t.data_type == TensorProto.FLOAT}
    consts: dict[str, np.ndarray] = {}
    for node in g.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].t.data_type == TensorProto.FLOAT:
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            float_tensors.add(node.output[0])
    const_values = {
        **{n: numpy_helper.to_array(t) for n, t in inits.items() if t.data_type == TensorProto.FLOAT},
        **consts,
    }

    wanted = set(keep_fp32)
    kept: set[str] = set()
    for node in g.node:
        if node.op_type == "Constant":
            continue
        # A Q/DQ scale is small by nature; FP16 holds it (as a subnormal at worst), so only overflow keeps it FP32.
        scale_ok = node.op_type in _QDQ
        if (
            node.name in wanted
            or node.op_type in FRAGILE_OPS
            or any(i in const_values and (_out_of_range(const_values[i]) and not scale_ok) for i in node.input)
        ):
            kept.add(node.name)
    if any(n.op_type in _QDQ for n in g.node):
        for opset in model.opset_import:
            if opset.domain in ("", "ai.onnx") and opset.version < _QDQ_FP16_OPSET:
                opset.version = _QDQ_FP16_OPSET

    def runs_fp16(node: Any) -> bool:
        return node.op_type != "Constant" and node.name not in kept

    consumers: dict[str, list[Any]] = {}
    for node in g.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    # Producer precision of every float tensor: graph inputs, Constants and shared initializers stay FP32.
    fp16_tensors: set[str] = set()
    for name, t in inits.items():
        users = consumers.get(name, [])
        if t.data_type == TensorProto.FLOAT and users and all(runs_fp16(u) for u in users):
            arr = numpy_helper.to_array(t)
            t.CopyFrom(numpy_helper.from_array(arr.astype(np.float16), name))
            fp16_tensors.add(name)
    for node in g.node:
        if runs_fp16(node):
            fp16_tensors.update(o for o in node.output if o in float_tensors)
            for attr in node.attribute:
                if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                    attr.i = TensorProto.FLOAT16

    new_nodes: list[Any] = []
    casts: dict[tuple[str, int], str] = {}

    def cast(name: str, to: int) -> str:
        key = (name, to)
        if key not in casts:
            suffix = "fp16" if to == TensorProto.FLOAT16 else "fp32"
            casts[key] = f"{name}__{suffix}"
            new_nodes.append(helper.make_node("Cast", [name], [casts[key]], name=f"{name}__cast_{suffix}", to=to))
        return casts[key]

    for node in g.node:
        want16 = runs_fp16(node)
        for idx, name in enumerate(node.input):
            if name not in float_tensors or name == "":
                continue
            is16 = name in fp16_tensors
            if want16 and not is16:
                node.input[idx] = cast(name, TensorProto.FLOAT16)
            elif not want16 and is16:
                node.input[idx] = cast(name, TensorProto.FLOAT)
        new_nodes.append(node)
    # Outputs stay float32 under their own names: the producer writes NAME__fp16, a Cast restores NAME.
    for out in g.output:
        if out.name in fp16_tensors:
            inner = f"{out.name}__fp16out"
            for node in new_nodes:
                node.output[:] = [inner if o == out.name else o for o in node.output]
                node.input[:] = [inner if i == out.name else i for i in node.input]
            new_nodes.append(
                helper.make_node("Cast", [inner], [out.name], name=f"{out.name}__cast_out", to=TensorProto.FLOAT)
            )
    del g.node[:]
    g.node.extend(new_nodes)
    del g.value_info[:]  # stale types; re-inferred below and by TensorRT's parser
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    return model, sorted(kept)


def write_fp16_onnx(
    src: str | os.PathLike[str], dest: str | os.PathLike[str], keep_fp32: Iterable[str] = ()
) -> list[str]:
    """Write ``dest``, the FP16 mixed form of the float ONNX ``src``; return the nodes kept FP32."""
    import onnx

    model = onnx.load(str(src))
    converted, kept = convert_to_fp16(model, keep_fp32)
    onnx.save(converted, str(Path(dest)))
    return kept
