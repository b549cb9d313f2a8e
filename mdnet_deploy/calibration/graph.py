"""What in an ONNX graph can be quantized, and what each node is called in PyTorch.

Users think in torch module paths (``transform.attn.qkv``) and blocks
(``transform.attn``, ``stage4.2``), not in ONNX node names. The TorchScript
exporter names nodes after the module scopes they ran in:
``/stage2/stage2.1/residual/residual.0/Conv`` ran in ``stage2.1.residual.0``
(a Sequential child ``1`` of ``stage2`` shows up as the scope ``stage2.1``).
:func:`module_path` undoes that encoding; :func:`assign_blocks` groups
modules into blocks from the set of paths alone, so it needs no torch.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..errors import ArtifactError, InputError
from ..node_names import module_path

#: Ops whose presence means the model is already quantized.
QUANTIZED_OP_TYPES = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "QLinearAdd",
        "QLinearMul",
        "QLinearConcat",
        "QLinearGlobalAveragePool",
        "QLinearAveragePool",
        "QLinearSigmoid",
        "QLinearLeakyRelu",
        "QLinearSoftmax",
        "QGemm",
        "ConvInteger",
        "MatMulInteger",
        "DynamicQuantizeMatMul",
        "MatMulIntegerToFloat",
        "MatMulNBits",
    }
)

#: Compute-heavy ops that INT8 accelerates: the unit of quantization and of float fallback.
WEIGHTED_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul")

#: Ops that, in the ONNX Runtime (uint8) form, ride along with the candidate that feeds them so that
#: ORT can fuse DQ -> Conv -> Q (the activation is folded into the output range).
COMPANION_OP_TYPES = ("Clip", "Relu", "GlobalAveragePool", "AveragePool", "MaxPool")


@dataclass(frozen=True)
class Candidate:
    """One node the tool may quantize (or return to float)."""

    name: str  # ONNX node name
    op_type: str
    module: str  # torch module path, "" for top-level ops
    block: str  # user-level group, e.g. transform.attn or stage4.2

    def to_dict(self) -> dict[str, str]:
        return {"node": self.name, "op": self.op_type, "module": self.module, "block": self.block}


def check_not_quantized(model: Any, path: str) -> None:
    """Refuse a model that already holds Q/DQ or integer ops: quantizing twice stacks errors."""
    found = sorted({n.op_type for n in model.graph.node if n.op_type in QUANTIZED_OP_TYPES})
    if found:
        raise ArtifactError(
            f"{path} is already quantized (it has {', '.join(found[:3])} nodes); give the float ONNX model from 'mdnet-deploy export'"
        )


def assign_blocks(modules: Iterable[str]) -> dict[str, str]:
    """Map every module path to its block.

    A top-level module whose children include containers and that has more
    than one child (``transform``: norm1/attn/norm2/ffn; ``stage4``: 0..3) is
    split one level down; the others (``pre``, ``stage1``, ``conv1``) are one
    block each.
    """
    modules = set(modules)
    children: dict[str, set[str]] = {}
    deeper: set[tuple[str, str]] = set()
    for m in modules:
        parts = m.split(".") if m else []
        if len(parts) >= 2:
            children.setdefault(parts[0], set()).add(parts[1])
            if len(parts) >= 3:
                deeper.add((parts[0], parts[1]))
    blocks = {}
    for m in modules:
        parts = m.split(".") if m else []
        if not parts:
            blocks[m] = "(model)"
            continue
        top = parts[0]
        split = len(children.get(top, ())) > 1 and any(t == top for t, _ in deeper)
        blocks[m] = ".".join(parts[:2]) if split and len(parts) >= 2 else top
    return blocks


def _producers(graph: Any) -> dict[str, Any]:
    return {out: node for node in graph.node for out in node.output}


def _is_dynamic(name: str, initializers: set[str], producers: dict[str, Any]) -> bool:
    if not name or name in initializers:
        return False
    producer = producers.get(name)
    return producer is None or producer.op_type != "Constant"


def find_candidates(model: Any, activation_matmuls: bool = True) -> list[Candidate]:
    """Weighted ops plus residual Adds (two computed inputs), in graph order.

    Adds with a constant input (LayerNorm's eps and bias) and the other
    elementwise maths of the MDIFFormer (norms, L2 normalisation, softmax,
    the differential lambda) stay float by policy: INT8 gains nothing there
    and, with one scale per tensor, loses the small values they carry.

    ``activation_matmuls=False`` also leaves float the MatMuls between two
    computed tensors (the attention's q.k^T and attn.v): ONNX Runtime runs them
    as MatMulIntegerToFloat over tiny per-head matrices, measured 20x slower
    than the float MatMul, in the middle of the float attention maths.
    """
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    producers = _producers(graph)
    picked = []
    for node in graph.node:
        if node.op_type in WEIGHTED_OP_TYPES:
            if (
                activation_matmuls
                or node.op_type != "MatMul"
                or not all(_is_dynamic(i, inits, producers) for i in node.input)
            ):
                picked.append(node)
        elif (
            node.op_type == "Add" and len(node.input) == 2 and all(_is_dynamic(i, inits, producers) for i in node.input)
        ):
            picked.append(node)
    modules = {module_path(n.name) for n in graph.node}
    blocks = assign_blocks(modules)
    unnamed = [n for n in picked if not n.name]
    if unnamed:
        raise ArtifactError("the ONNX graph has unnamed compute nodes; re-export it with 'mdnet-deploy export'")
    return [Candidate(n.name, n.op_type, module_path(n.name), blocks[module_path(n.name)]) for n in picked]


def companions(model: Any, candidates: Sequence[Candidate]) -> dict[str, str]:
    """Companion node -> the candidate it follows (through other companions)."""
    graph = model.graph
    producers = _producers(graph)
    owner: dict[str, str] = {c.name: c.name for c in candidates}
    found: dict[str, str] = {}
    for node in graph.node:  # graph order is topological, so owners are known first
        if node.op_type in COMPANION_OP_TYPES and node.input:
            src = producers.get(node.input[0])
            if src is not None and src.name in owner:
                owner[node.name] = owner[src.name]
                found[node.name] = owner[src.name]
    return found


def not_quantized_summary(model: Any, candidates: Sequence[Candidate]) -> dict[str, Any]:
    """What stays float by policy (not a candidate), by op type and by module."""
    names = {c.name for c in candidates}
    skip = {"Constant", "Shape", "Identity"}
    rest = [n for n in model.graph.node if n.name not in names and n.op_type not in skip]
    return {
        "op_types": dict(sorted(Counter(n.op_type for n in rest).items())),
        "modules": sorted({module_path(n.name) or "(model)" for n in rest}),
    }


def match_patterns(candidates: Sequence[Candidate], patterns: Sequence[str]) -> list[Candidate]:
    """Candidates named by ``--exclude`` patterns (node names or module paths, globs allowed).

    A plain module path also matches everything inside it (``transform.attn``
    matches ``transform.attn.qkv``). A pattern that matches nothing is a typo:
    refuse it rather than quantize what the user wanted float.
    """
    chosen: dict[str, Candidate] = {}
    for pattern in patterns:
        hits = [
            c
            for c in candidates
            if fnmatch.fnmatchcase(c.name, pattern)
            or fnmatch.fnmatchcase(c.module, pattern)
            or c.block == pattern
            or (c.module + ".").startswith(pattern.rstrip(".") + ".")
        ]
        if not hits:
            blocks = sorted({c.block for c in candidates})
            raise InputError(
                f"--exclude '{pattern}' matches no quantizable layer; give a module path or block "
                f"(e.g. {', '.join(blocks[:4])}) or an ONNX node name, globs allowed"
            )
        for c in hits:
            chosen[c.name] = c
    return [c for c in candidates if c.name in chosen]


def strip_unused_opsets(model: Any) -> None:
    """Drop opset imports no node uses: ORT's optimiser adds a dozen, TensorRT's parser wants few."""
    used = {n.domain or "" for n in model.graph.node}
    keep = [o for o in model.opset_import if (o.domain or "") in used or (o.domain or "") in ("", "ai.onnx")]
    if len(keep) != len(model.opset_import):
        del model.opset_import[:]
        model.opset_import.extend(keep)
