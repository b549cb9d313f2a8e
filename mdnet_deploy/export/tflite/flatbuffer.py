"""Small edits of TFLite flatbuffers: the I/O types of a quantized model, embedded metadata.

Uses ai-edge-litert's flatbuffer schema (object API) and nothing else: no
TensorFlow, no torch. litert-torch's PT2E path gives a full-integer model
whose I/O tensors are float (strict QDQ mode) or int8 (default mode),
depending on the converter's mode; these helpers turn either into what the
user asked for: float I/O (QUANTIZE in front, DEQUANTIZE behind, what
TensorFlow's converter emits by default) or int8 I/O.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

META_KEY = "mdnet_deploy"  # same key as in ONNX metadata_props
_QUANTIZE, _DEQUANTIZE = 114, 6  # BuiltinOperator codes
_FLOAT32, _INT8 = 0, 9  # TensorType codes


def _schema() -> tuple[Any, Any]:
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    return schema, flatbuffer_utils


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value or "")


def _opcode(model: Any, schema: Any, builtin: int, version: int) -> int:
    """Index of the operator code for ``builtin``, added when the model lacks it."""
    for i, code in enumerate(model.operatorCodes or []):
        if max(int(code.builtinCode), int(code.deprecatedBuiltinCode)) == builtin:
            code.version = max(int(code.version), version)
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)  # the old int8 field saturates at 127
    code.version = version
    model.operatorCodes = [*(model.operatorCodes or []), code]
    return len(model.operatorCodes) - 1


def _float_twin(schema: Any, tensor: Any, name: str, buffer: int) -> Any:
    twin = schema.TensorT()
    twin.shape = list(tensor.shape)
    twin.shapeSignature = list(tensor.shapeSignature) if tensor.shapeSignature is not None else None
    twin.type = _FLOAT32
    twin.buffer = buffer
    twin.name = name
    return twin


def io_types(data: bytes) -> tuple[int, int]:
    """TensorType codes of the first input and output of subgraph 0."""
    _, fb = _schema()
    model = fb.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    return int(graph.tensors[graph.inputs[0]].type), int(graph.tensors[graph.outputs[0]].type)


def add_float_io(data: bytes) -> bytes:
    """Give an int8-I/O model float32 I/O: QUANTIZE at the input, DEQUANTIZE at the output.

    The int8 tensors keep their scale/zero point (calibrated by PT2E); only
    the interface changes. Signature maps are re-pointed at the new tensors
    so ``get_signature_runner`` sees the float tensors too.
    """
    schema, fb = _schema()
    model = fb.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    empty = _empty_buffer(model, schema)
    remap: dict[int, int] = {}
    new_ops: list[Any] = []
    for kind, indices in (("input", graph.inputs), ("output", graph.outputs)):
        for pos, idx in enumerate(list(indices)):
            tensor = graph.tensors[idx]
            if tensor.type != _INT8:
                continue
            name = _text(tensor.name)
            tensor.name = f"{name}_int8"
            graph.tensors.append(_float_twin(schema, tensor, name, empty))
            new_idx = len(graph.tensors) - 1
            op = schema.OperatorT()
            if kind == "input":
                op.opcodeIndex = _opcode(model, schema, _QUANTIZE, 2)  # v2: float -> int8
                op.inputs, op.outputs = [new_idx], [idx]
                new_ops.insert(0, op)
                graph.inputs[pos] = new_idx
            else:
                op.opcodeIndex = _opcode(model, schema, _DEQUANTIZE, 2)  # v2: int8 -> float
                op.inputs, op.outputs = [idx], [new_idx]
                new_ops.append(op)
                graph.outputs[pos] = new_idx
            remap[idx] = new_idx
    if not remap:
        return bytes(data)
    front = [op for op in new_ops if op.outputs[0] in remap]
    back = [op for op in new_ops if op.outputs[0] not in remap]
    graph.operators = [*front, *graph.operators, *back]
    for sig in model.signatureDefs or []:
        for tmap in [*(sig.inputs or []), *(sig.outputs or [])]:
            if int(tmap.tensorIndex) in remap:
                tmap.tensorIndex = remap[int(tmap.tensorIndex)]
    return bytes(fb.convert_object_to_bytearray(model))


def int8_io(data: bytes) -> bytes:
    """Give a float-I/O quantized model int8 I/O by removing its boundary QUANTIZE/DEQUANTIZE ops.

    Uses the ``modify_model_interface`` tool that ai-edge-litert ships (the
    one behind TensorFlow's ``inference_input_type=tf.int8``). It needs a
    QUANTIZE right after the input and a DEQUANTIZE right before the output;
    a model whose first or last layer was left in float has neither.
    """
    import tempfile

    from ai_edge_litert import _pywrap_modify_model_interface as mmi

    with tempfile.TemporaryDirectory(prefix="mdnet-tflite-io-") as tmp:
        src, dst = Path(tmp) / "in.tflite", Path(tmp) / "out.tflite"
        src.write_bytes(data)
        status = mmi.modify_model_interface(str(src), str(dst), _INT8, _INT8)
        if status != 0 or not dst.is_file():
            raise ValueError("the model has no QUANTIZE/DEQUANTIZE at its input/output to remove")
        return _keep_io_names(data, dst.read_bytes())


def _keep_io_names(before: bytes, after: bytes) -> bytes:
    """Repair what the tool leaves behind: I/O names and signature maps.

    It makes the inner int8 tensors the graph's I/O but keeps their scope
    names, and leaves the signature pointing at the removed float tensors
    (``get_signature_runner`` would then expect float32).
    """
    _, fb = _schema()
    old_model = fb.read_model_from_bytearray(bytearray(before))
    old = old_model.subgraphs[0]
    model = fb.read_model_from_bytearray(bytearray(after))
    graph = model.subgraphs[0]
    for old_ids, new_ids in ((old.inputs, graph.inputs), (old.outputs, graph.outputs)):
        for old_idx, new_idx in zip(old_ids, new_ids):
            graph.tensors[new_idx].name = _text(old.tensors[old_idx].name)
    for old_sig, sig in zip(old_model.signatureDefs or [], model.signatureDefs or []):
        for old_maps, maps, old_ids, new_ids in (
            (old_sig.inputs, sig.inputs, old.inputs, graph.inputs),
            (old_sig.outputs, sig.outputs, old.outputs, graph.outputs),
        ):
            for old_map, tmap in zip(old_maps or [], maps or []):
                if int(old_map.tensorIndex) in list(old_ids):
                    tmap.tensorIndex = new_ids[list(old_ids).index(int(old_map.tensorIndex))]
    return bytes(fb.convert_object_to_bytearray(model))


def _empty_buffer(model: Any, schema: Any) -> int:
    """Buffer 0 is the conventional empty buffer; make sure it is one."""
    if model.buffers and not model.buffers[0].data:
        return 0
    model.buffers = [schema.BufferT(), *(model.buffers or [])]
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            tensor.buffer += 1
    for entry in model.metadata or []:
        entry.buffer += 1
    return 0


def embed_metadata(data: bytes, meta_json: str) -> bytes:
    """Store our metadata JSON in the model's own metadata table (key ``mdnet_deploy``)."""
    schema, fb = _schema()
    model = fb.read_model_from_bytearray(bytearray(data))
    entries = [m for m in (model.metadata or []) if _text(m.name) != META_KEY]
    buffer = schema.BufferT()
    buffer.data = list(meta_json.encode("utf-8"))
    model.buffers = [*(model.buffers or []), buffer]
    entry = schema.MetadataT()
    entry.name = META_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*entries, entry]
    return bytes(fb.convert_object_to_bytearray(model))


def read_embedded_meta(path: str | Path) -> dict[str, Any] | None:
    """The metadata JSON stored by :func:`embed_metadata`, or None."""
    try:
        _, fb = _schema()
    except ImportError:
        return None
    model = fb.read_model_from_bytearray(bytearray(Path(path).read_bytes()))
    for entry in model.metadata or []:
        if _text(entry.name) == META_KEY:
            raw = model.buffers[entry.buffer].data
            try:
                return json.loads(bytes(bytearray(raw)).decode("utf-8"))
            except (ValueError, TypeError):
                return None
    return None


def module_of_tensor(name: str, root: str = "model") -> str:
    """Torch module path from a litert-torch tensor name.

    litert-torch names a tensor after the module scope that produced it:
    ``__main__.NhwcInput/pkg.MDNet_model/pkg.MDIFFormer_transform/torch.nn.modules.conv.Conv2d_qkv;3``
    is ``transform.qkv`` relative to the wrapper's ``model`` attribute. Each
    scope is ``<qualified class>_<attribute>``; class names hold no underscore
    after their last dot, attribute names may (``qkv_dwconv3x3``).
    """
    parts = []
    for scope in name.split(";")[0].split("/")[1:]:  # the first scope is the wrapper itself
        tail = scope.rsplit(".", 1)[-1]
        parts.append(tail.split("_", 1)[1] if "_" in tail else tail)
    if parts and parts[0] == root:
        parts = parts[1:]
    return ".".join(parts)
