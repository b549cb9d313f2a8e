"""INT8 QDQ forms, ORT's ``quantize_static`` on a cached calibration, and QDQ graph surgery.

Two forms:

``tensorrt`` / ``tflite`` (``qdq-int8-symmetric``): what TensorRT's explicit
quantization consumes. INT8 activations with zero point 0
(``ActivationSymmetric``), per-channel symmetric INT8 weights
(``WeightSymmetric``), biases left float (TensorRT cannot dequantize INT32
biases; it folds float biases itself). Q/DQ sit only on the *inputs* of
weighted ops and of residual Adds (``OpTypesToExcludeOutputQuantization``),
never between a Conv and its ReLU/ReLU6 (BatchNorm is already folded by
export), so TensorRT fuses conv+bias+activation and the following Q into
one INT8 kernel. On a residual Add, the branch coming straight from a Conv
is left unquantized (:func:`unquantize_conv_branch_of_adds`) so TensorRT
can fuse the Add into that Conv, while the skip input stays quantized, as
TensorRT's Q/DQ placement guide recommends. ``QDQKeepRemovableActivations``
keeps any ReLU/Clip that gets quantized explicit, since TensorRT does its
own activation fusion. The same graph is the accuracy reference for the
TFLite path (whose converter works from PyTorch and honours the float set).

``ort`` (``qdq-uint8-asymmetric``): asymmetric uint8 activations and
per-channel int8 weights with INT32 biases, outputs of Conv/Add quantized
and ReLU/Clip folded into the output range, so ONNX Runtime's CPU EP fuses
DQ -> Conv -> Q into QLinearConv.

Every variant is made from one calibration (ORT's calibration cache), and
:func:`partial_model` builds "only these nodes quantized" graphs by copying
Q/DQ chains from a fully quantized graph into the float one: the
sensitivity sweep needs dozens of those, and graph surgery is far cheaper
than re-running the quantizer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import ConversionError, InputError
from .calib_data import ort_method, quiet
from .graph import COMPANION_OP_TYPES, WEIGHTED_OP_TYPES, strip_unused_opsets

TARGETS = ("tensorrt", "tflite", "ort")


@dataclass(frozen=True)
class QuantForm:
    target: str
    name: str
    activation_type: str  # int8 | uint8
    activation_symmetric: bool
    weight_type: str
    weight_symmetric: bool
    per_channel: bool
    quantize_bias: bool
    quantize_outputs: bool  # Q/DQ on outputs of weighted ops (ORT fusion) or inputs only (TensorRT)
    description: str
    quantize_activation_matmuls: bool = True  # MatMuls between two computed tensors (attention) are candidates
    extra_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["extra_options"] = {k: v for k, v in self.extra_options.items()}
        return d


def form_for(target: str) -> QuantForm:
    if target in ("tensorrt", "tflite"):
        excluded_outputs = list(WEIGHTED_OP_TYPES) + ["Add"]
        return QuantForm(
            target=target,
            name="qdq-int8-symmetric",
            activation_type="int8",
            activation_symmetric=True,
            weight_type="int8",
            weight_symmetric=True,
            per_channel=True,
            quantize_bias=False,
            quantize_outputs=False,
            description=(
                "QDQ, symmetric INT8 activations (zero point 0), per-channel symmetric INT8 weights, float biases; "
                "Q/DQ on inputs of Conv/MatMul/Gemm and residual Adds only (TensorRT explicit quantization)"
            ),
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": False,
                "QDQKeepRemovableActivations": True,
                "OpTypesToExcludeOutputQuantization": excluded_outputs,
            },
        )
    if target == "ort":
        return QuantForm(
            target=target,
            name="qdq-uint8-asymmetric",
            activation_type="uint8",
            activation_symmetric=False,
            weight_type="int8",
            weight_symmetric=True,
            per_channel=True,
            quantize_bias=True,
            quantize_outputs=True,
            description=(
                "QDQ, asymmetric uint8 activations, per-channel symmetric INT8 weights, INT32 biases; "
                "Conv/Add outputs quantized and ReLU/Clip folded so ONNX Runtime's CPU EP fuses QLinearConv"
            ),
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            quantize_activation_matmuls=False,
        )
    raise InputError(f"--target '{target}' is not known; use one of {', '.join(TARGETS)}")


def calibration_op_types(form: QuantForm) -> list[str]:
    types = list(WEIGHTED_OP_TYPES) + ["Add"]
    return types + list(COMPANION_OP_TYPES) if form.quantize_outputs else types


def quantize(
    float_model: Path,
    out_path: Path,
    *,
    form: QuantForm,
    method: str,
    cache: Path,
    nodes: Sequence[str],
    layers: Iterable[str] | None = None,
) -> Any:
    """Quantize exactly ``nodes`` of ``float_model`` with the cached ranges; returns the ModelProto (also saved).

    ``layers``: every node that could have been quantized (candidates and their
    followers). In the ``ort`` form only those of them left float get float
    inputs back; other readers of a quantized layer's output keep its Q/DQ (see
    :func:`restore_float_inputs`).
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    if not nodes:
        raise InputError("nothing is left to quantize: every quantizable layer is excluded or kept float")
    qtype = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    try:
        with quiet():
            quantize_static(
                str(float_model),
                str(out_path),
                None,  # ranges come from the cache: no recalibration
                quant_format=QuantFormat.QDQ,
                per_channel=form.per_channel,
                activation_type=qtype[form.activation_type],
                weight_type=qtype[form.weight_type],
                nodes_to_quantize=list(nodes),
                calibrate_method=ort_method(method),
                calibration_cache_path=str(cache),
                extra_options=dict(form.extra_options),
            )
    except Exception as exc:  # the quantizer raises bare ValueError/RuntimeError on odd graphs
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(f"ONNX Runtime's quantizer failed ({first}); report the model") from None
    model = onnx.load(str(out_path))
    only = set(layers) - set(nodes) if (form.quantize_outputs and layers is not None) else None
    restore_float_inputs(model, onnx.load(str(float_model)), nodes, only=only)
    if form.target in ("tensorrt", "tflite"):
        unquantize_conv_branch_of_adds(model)
    strip_unused_opsets(model)
    onnx.save(model, str(out_path))
    return model


# -- graph helpers ------------------------------------------------------------------------
def _producers(graph: Any) -> dict[str, Any]:
    return {out: node for node in graph.node for out in node.output}


def _consumers(graph: Any) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def _drop_unused_initializers(graph: Any) -> None:
    used = {name for node in graph.node for name in node.input}
    used |= {o.name for o in graph.output}
    keep = [i for i in graph.initializer if i.name in used]
    if len(keep) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(keep)


def unquantize_conv_branch_of_adds(model: Any) -> int:
    """Remove the Q/DQ pair between a Conv and the residual Add it feeds (TensorRT fuses the Add into the Conv).

    Only where the Conv output goes nowhere else, and on one input per Add;
    the skip input keeps its Q/DQ. Returns the number of pairs removed.
    """
    graph = model.graph
    producers, consumers = _producers(graph), _consumers(graph)
    graph_outputs = {o.name for o in graph.output}
    drop: set[str] = set()
    for add in graph.node:
        if add.op_type != "Add":
            continue
        for i, name in enumerate(add.input):
            dq = producers.get(name)
            if dq is None or dq.op_type != "DequantizeLinear" or len(consumers.get(name, [])) != 1:
                continue
            q = producers.get(dq.input[0])
            if q is None or q.op_type != "QuantizeLinear" or len(consumers.get(q.output[0], [])) != 1:
                continue
            src = producers.get(q.input[0])
            if (
                src is None
                or src.op_type != "Conv"
                or q.input[0] in graph_outputs
                or len(consumers.get(q.input[0], [])) != 1
            ):
                continue
            add.input[i] = q.input[0]
            drop |= {q.name, dq.name}
            break  # one branch per Add: the skip input stays quantized
    if drop:
        keep = [n for n in graph.node if n.name not in drop]
        del graph.node[:]
        graph.node.extend(keep)
        _drop_unused_initializers(graph)
    return len(drop) // 2


def quantized_nodes(qdq_model: Any, candidates: Iterable[str]) -> set[str]:
    """Candidates that really read a dequantized input in ``qdq_model`` (ORT may skip some)."""
    producers = _producers(qdq_model.graph)
    wanted = set(candidates)
    out = set()
    for node in qdq_model.graph.node:
        if node.name in wanted and any(
            (p := producers.get(i)) is not None and p.op_type == "DequantizeLinear" for i in node.input
        ):
            out.add(node.name)
    return out


def zero_points(model: Any) -> list[tuple[str, np.ndarray]]:
    """Every Q/DQ zero point in the model (initializer values)."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            if len(node.input) < 3 or not node.input[2]:
                found.append((node.name, np.zeros(1, np.int8)))  # absent zero point means 0
            elif node.input[2] in inits:
                found.append((node.name, numpy_helper.to_array(inits[node.input[2]])))
    return found


def check_form(model: Any, form: QuantForm) -> dict[str, Any]:
    """Self-check of the written graph: zero points and dtypes as the form promises."""
    zps = zero_points(model)
    nonzero = [name for name, zp in zps if np.any(zp != 0)]
    dtypes = sorted({str(zp.dtype) for _, zp in zps})
    if form.activation_symmetric and nonzero:
        raise ConversionError(
            f"the quantized graph has {len(nonzero)} non-zero zero points (e.g. {nonzero[0]}) although the "
            f"{form.target} form needs symmetric INT8; report the model"
        )
    return {
        "qdq_pairs": sum(n.op_type == "QuantizeLinear" for n in model.graph.node),
        "zero_point_dtypes": dtypes,
        "all_zero_points_zero": not nonzero,
    }


# -- surgery: "only these nodes quantized" -----------------------------------------------
class ChainIndex:
    """For each node of a fully quantized graph, the Q/DQ chains feeding it (to copy elsewhere).

    ``followers`` maps nodes that are not ranked on their own (ORT-form
    companions such as the ReLU after a Conv) to the layer whose fate they share.
    """

    def __init__(
        self, float_model: Any, qdq_model: Any, layers: Iterable[str], followers: dict[str, str] | None = None
    ) -> None:
        self.float_model = float_model
        self.qdq = qdq_model
        self.layers = set(layers)
        self.followers = dict(followers or {})
        self._producers = _producers(qdq_model.graph)
        self._inits = {i.name: i for i in qdq_model.graph.initializer}
        self._qdq_nodes = {n.name: n for n in qdq_model.graph.node}
        self._float_tensors = {i.name for i in float_model.graph.initializer} | {
            i.name for i in float_model.graph.input
        }
        self._float_tensors |= {o for n in float_model.graph.node for o in n.output}

    def chain(self, node_name: str) -> tuple[list[str], list[Any], list[Any]]:
        """(inputs as in the QDQ graph, Q/DQ nodes feeding them, initializers those need)."""
        qnode = self._qdq_nodes.get(node_name)
        if qnode is None:
            return [], [], []
        nodes: list[Any] = []
        inits: list[Any] = []
        seen: set[str] = set()

        def walk(tensor: str) -> None:
            producer = self._producers.get(tensor)
            if (
                producer is None
                or producer.op_type not in ("QuantizeLinear", "DequantizeLinear")
                or producer.name in seen
            ):
                return
            seen.add(producer.name)
            walk(producer.input[0])
            for extra in producer.input:
                if extra in self._inits and extra not in self._float_tensors:
                    inits.append(self._inits[extra])
            nodes.append(producer)

        for name in qnode.input:
            walk(name)
        return list(qnode.input), nodes, inits


def partial_model(index: ChainIndex, quantized: Iterable[str]) -> Any:
    """The float graph with only ``quantized`` layers (and their followers) reading their Q/DQ inputs."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(index.float_model)
    graph = model.graph
    wanted = set(quantized)
    wanted |= {f for f, owner in index.followers.items() if owner in wanted}
    taken = set(index._float_tensors)
    chain_nodes: dict[str, Any] = {}
    extra_inits: dict[str, Any] = {}
    rewired: dict[str, list[str]] = {}
    for node in graph.node:
        if node.name not in wanted:
            continue
        inputs, chain, inits = index.chain(node.name)
        if not inputs:
            continue
        # ORT names a dequantized bias after the float bias; here the float one still exists.
        rename = {o: o + "_dq" for c in chain for o in c.output if o in taken}
        for c in chain:
            if c.name not in chain_nodes:
                copy = onnx.NodeProto()
                copy.CopyFrom(c)
                for i, name in enumerate(copy.input):
                    copy.input[i] = rename.get(name, name)
                for i, name in enumerate(copy.output):
                    copy.output[i] = rename.get(name, name)
                chain_nodes[c.name] = copy
        for init in inits:
            extra_inits.setdefault(init.name, init)
        rewired[node.name] = [rename.get(n, n) for n in inputs]
    new_nodes = list(chain_nodes.values())
    for node in graph.node:
        new_inputs = rewired.get(node.name)
        if new_inputs is not None:
            replaced = onnx.NodeProto()
            replaced.CopyFrom(node)
            del replaced.input[:]
            replaced.input.extend(new_inputs)
            node = replaced
        new_nodes.append(node)
    del graph.node[:]
    graph.node.extend(
        toposort(new_nodes, {i.name for i in graph.input} | {i.name for i in graph.initializer} | set(extra_inits))
    )
    graph.initializer.extend(extra_inits.values())
    # QuantizeLinear/DequantizeLinear (opset 13) are covered by the float model's opset.
    return model


def restore_float_inputs(
    qdq_model: Any, float_model: Any, quantized: Iterable[str], only: Iterable[str] | None = None
) -> int:
    """Let every node that is not quantized read float tensors again.

    ORT reroutes *all* readers of a quantized tensor to its dequantized copy,
    so a layer returned to float would still see INT8-rounded input whenever
    a sibling reading the same tensor stays quantized (the q/k/v convolutions
    of the attention all read ``qkv``). Float must mean float. Where ORT
    removed the float tensor (a ReLU folded into a quantization range in the
    ``ort`` form) the dequantized input is kept. Returns the inputs restored.

    ``only``: restore just these nodes (the layers kept float). The ``ort`` form
    passes it: there a quantized layer's *output* is quantized too, and a plain
    reader of it (the Reshape after a depthwise conv, a LayerNorm reading a
    residual Add) that went back to the float tensor would leave the Q/DQ pair
    without its float producer's only consumer, so ORT could not fuse the
    layer into QLinearConv/QLinearAdd: a float island between integer kernels.
    """
    graph = qdq_model.graph
    keep_quant = set(quantized)
    only = set(only) if only is not None else None
    float_nodes = {n.name: n for n in float_model.graph.node}
    # A tensor is "the same" only if the same node still makes it: when ORT folds a ReLU into a
    # quantization range it hands the ReLU's output name to the Conv before it.
    made_by = {o: n.name for n in graph.node for o in n.output}
    float_made_by = {o: n.name for n in float_model.graph.node for o in n.output}
    sources = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    restored = 0
    for node in graph.node:
        if (
            node.name in keep_quant
            or node.name not in float_nodes
            or node.op_type in ("QuantizeLinear", "DequantizeLinear")
        ):
            continue
        if only is not None and node.name not in only:
            continue
        fnode = float_nodes[node.name]
        if len(fnode.input) != len(node.input):
            continue
        for i, (now, orig) in enumerate(zip(node.input, fnode.input)):
            if now != orig and (orig in sources or (orig in made_by and made_by[orig] == float_made_by.get(orig))):
                node.input[i] = orig
                restored += 1
    if restored:
        _drop_dead_qdq(graph)
    return restored


def _drop_dead_qdq(graph: Any) -> None:
    outputs = {o.name for o in graph.output}
    while True:
        used = {name for node in graph.node for name in node.input} | outputs
        dead = [
            n
            for n in graph.node
            if n.op_type in ("QuantizeLinear", "DequantizeLinear") and not any(o in used for o in n.output)
        ]
        if not dead:
            break
        names = {n.name for n in dead}
        keep = [n for n in graph.node if n.name not in names]
        del graph.node[:]
        graph.node.extend(keep)
    _drop_unused_initializers(graph)


def toposort(nodes: Sequence[Any], ready: set[str]) -> list[Any]:
    """Stable topological order (Kahn): nodes keep their relative order where dependencies allow."""
    have = set(ready) | {""}
    pending = list(nodes)
    out: list[Any] = []
    while pending:
        rest = []
        progressed = False
        for node in pending:
            if all(i in have for i in node.input):
                out.append(node)
                have.update(node.output)
                progressed = True
            else:
                rest.append(node)
        if not progressed:
            raise ConversionError(
                f"internal error: the partial QDQ graph has a cycle or a dangling input at {rest[0].name}"
            )
        pending = rest
    return out
