"""PyTorch MDNET -> TFLite flatbuffer bytes with litert-torch (no TensorFlow).

* fp32: ``litert_torch.convert`` of the model behind an NHWC-input wrapper:
  TFLite kernels and XNNPACK are NHWC-native, so taking NHWC at the input
  costs nothing, where an NCHW input would leave a TRANSPOSE in every run.
* fp16: the fp32 file with its conv/FC weights cast to float16 by
  ai-edge-quantizer (weight-only FLOAT_CASTING): half the size, float
  compute; XNNPACK folds the DEQUANTIZE ops at load time.
* int8: PT2E post-training quantization (litert-torch's PT2EQuantizer,
  symmetric per-channel int8 weights, per-tensor int8 activations, plus
  residual adds and concats as quantize's ONNX form has them) with a list of
  torch modules left in float, calibrated by running the prepared model on
  the calibration images, then converted in STATIC mode with the converter's
  strict QDQ mode, so that exactly the annotated ops become int8.

Everything litert-torch, JAX and the MLIR passes print goes to a log file;
a failure becomes one :class:`ConversionError` line naming the op.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ...errors import ConversionError
from ...progress import Steps

Progress = Steps  # see mdnet_deploy.progress
OBSERVERS = ("histogram", "minmax")
WRAPPER_ATTR = "model"  # module paths inside the wrapper start with this


class NhwcInput(nn.Module):
    """Takes NHWC images and hands the wrapped NCHW model its usual layout."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model  # attribute name == WRAPPER_ATTR

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.permute(0, 3, 1, 2))


def _example(batch: int, size: Sequence[int]) -> tuple[torch.Tensor]:
    return (torch.zeros(batch, int(size[0]), int(size[1]), 3),)


def convert_float(model: nn.Module, batch: int, size: Sequence[int]) -> bytes:
    """fp32 TFLite bytes for ``model`` (eval mode), NHWC input of fixed ``batch``."""
    import litert_torch

    wrapped = NhwcInput(model).eval()
    return bytes(litert_torch.convert(wrapped, _example(batch, size)).model_content())


def to_fp16(fp32: bytes) -> bytes:
    """Cast conv / depthwise / FC weights to float16 (weight-only, float compute)."""
    from ai_edge_quantizer import qtyping, quantizer

    qt = quantizer.Quantizer(bytearray(fp32))
    qt.add_weight_only_config(
        regex=".*",
        operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
        num_bits=16,
        algorithm_key=quantizer.AlgorithmName.FLOAT_CASTING,
    )
    result = qt.quantize(enable_progress_bar=False, enable_progress_report=False)
    return bytes(result.quantized_model)


# -- int8 ----------------------------------------------------------------------
def _quant_config(observer: str) -> Any:
    from litert_torch.quantize import pt2e_quantizer as pq

    config = pq.get_symmetric_quantization_config(is_per_channel=True)
    if observer == "histogram":
        return config
    # MinMax activations, to match an ONNX model calibrated with --method minmax.
    from torchao.quantization.pt2e.observer import MinMaxObserver

    act = dataclasses.replace(config.input_activation, observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12))
    return dataclasses.replace(config, input_activation=act, output_activation=act)


def module_paths(node: Any) -> set[str]:
    """Torch module paths (relative to the wrapped model) a graph node ran in."""
    paths = set()
    for value in node.meta.get("nn_module_stack", {}).values():
        path = str(value[0]) if isinstance(value, tuple) else str(value)
        # Strict export spells paths L['self'].model.x; non-strict model.x.
        path = path.replace("L['self'].", "").replace("L__self__.", "")
        if path == WRAPPER_ATTR or path.startswith(WRAPPER_ATTR + "."):
            paths.add(path[len(WRAPPER_ATTR) + 1 :])
    return paths


def make_quantizer(float_modules: Sequence[str], observer: str) -> Any:
    """A PT2EQuantizer that annotates everything except nodes inside ``float_modules``.

    litert-torch's own ``set_module_name`` cannot express "leave in float"
    (it asserts a config) and matches names by replacing '_' with '.', which
    breaks on ``qkv_dwconv3x3``; so the global annotators run with our filter.
    """
    from litert_torch.quantize import pt2e_quantizer as pq
    from litert_torch.quantize import pt2e_quantizer_utils as pqu

    floats = tuple(float_modules)

    def is_float(node: Any) -> bool:
        return any(p == f or p.startswith(f + ".") for p in module_paths(node) for f in floats)

    class FallbackQuantizer(pq.PT2EQuantizer):
        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            keep = (lambda n: not is_float(n)) if floats else None
            config = self.global_config
            for op in self.STATIC_OPS:
                pqu.OP_TO_ANNOTATOR[op](model, config, keep)
            # litert-torch finds adds and cats through source partitions, which
            # a non-strict torch.export does not record: annotate them here.
            _annotate_residual_adds(model, config, is_float)
            _annotate_cats(model, config, is_float)
            pqu.propagate_annotation(model)
            if floats:
                _strip_annotations(model, is_float)
            return model

    return FallbackQuantizer().set_global(_quant_config(observer))


def _shape(node: Any) -> str | None:
    val = node.meta.get("val") if isinstance(node, torch.fx.Node) else None
    return str(tuple(val.shape)) if isinstance(val, torch.Tensor) else None


def _annotate_residual_adds(model: Any, config: Any, is_float: Callable[[Any], bool]) -> None:
    """Quantize ``x + f(x)`` (two activations of one shape), as quantize's ONNX form does.

    Adds with a constant or a broadcast parameter (layer norm's ``var + eps``,
    ``* w + b``) stay float: int8 would wreck the normalisation.
    """
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    for node in model.graph.nodes:
        if node.op != "call_function" or node.target != torch.ops.aten.add.Tensor or len(node.args) < 2:
            continue
        a, b = node.args[:2]
        if not all(isinstance(x, torch.fx.Node) and x.op == "call_function" for x in (a, b)):
            continue
        if _shape(a) is None or _shape(a) != _shape(b) or _shape(a) != _shape(node):
            continue
        if "quantization_annotation" in node.meta or is_float(node):
            continue
        act = config.input_activation
        node.meta["quantization_annotation"] = QuantizationAnnotation(
            input_qspec_map={a: act, b: act}, output_qspec=config.output_activation, _annotated=True
        )


def _annotate_cats(model: Any, config: Any, is_float: Callable[[Any], bool]) -> None:
    """Quantize channel concatenations with one scale for all inputs (TFLite CONCATENATION needs it)."""
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec

    for node in model.graph.nodes:
        if node.op != "call_function" or node.target != torch.ops.aten.cat.default:
            continue
        inputs = node.args[0]
        if (
            "quantization_annotation" in node.meta
            or is_float(node)
            or not all(isinstance(x, torch.fx.Node) for x in inputs)
        ):
            continue
        shared = SharedQuantizationSpec((inputs[0], node))
        qmap = {inputs[0]: config.input_activation, **{x: shared for x in inputs[1:]}}
        node.meta["quantization_annotation"] = QuantizationAnnotation(
            input_qspec_map=qmap, output_qspec=shared, _annotated=True
        )


def _strip_annotations(model: Any, is_float: Callable[[Any], bool]) -> None:
    """Undo annotations that propagation (reshape/permute sharing a producer's qspec) put inside float modules."""
    from torchao.quantization.pt2e.quantizer import SharedQuantizationSpec

    removed: set[Any] = set()
    changed = True
    while changed:
        changed = False
        for node in model.graph.nodes:
            ann = node.meta.get("quantization_annotation")
            if ann is None:
                continue
            specs = [ann.output_qspec, *ann.input_qspec_map.values()]
            refs = {s.edge_or_node for s in specs if isinstance(s, SharedQuantizationSpec)}
            refs = {r[0] if isinstance(r, tuple) else r for r in refs}
            if is_float(node) or refs & removed:
                del node.meta["quantization_annotation"]
                removed.add(node)
                changed = True


def prepare_int8(
    model: nn.Module, size: Sequence[int], float_modules: Sequence[str], observer: str = "histogram"
) -> tuple[Any, Any]:
    """Export the NHWC-wrapped model and insert PT2E observers; returns (prepared graph, quantizer)."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    wrapped = NhwcInput(model).eval()
    # A batch-2 example with a dynamic batch dim: batch 1 would be specialised
    # away, and calibration wants large batches.
    dim = torch.export.Dim("batch", min=1, max=4096)
    graph = torch.export.export(wrapped, _example(2, size), dynamic_shapes=({0: dim},)).module()
    quantizer = make_quantizer(float_modules, observer)
    return prepare_pt2e(graph, quantizer), quantizer


def calibrate(prepared: Any, calib_x: np.ndarray, batch: int = 64, progress: Progress | None = None) -> None:
    """Run the prepared model on ``calib_x`` (float32 NCHW) in batches so the observers see every image."""
    say = progress or (lambda *_: None)
    nhwc = np.ascontiguousarray(calib_x.transpose(0, 2, 3, 1))
    total = (len(nhwc) + batch - 1) // batch
    say("calibrate", 0, total)
    try:
        with torch.no_grad():
            for i, start in enumerate(range(0, len(nhwc), batch)):
                prepared(torch.from_numpy(nhwc[start : start + batch]))
                say("calibrate", i + 1, total)
    except RuntimeError as exc:  # shape or dtype trouble inside the observed graph
        first = next((s for s in str(exc).splitlines() if s.strip()), type(exc).__name__)
        raise ConversionError(f"calibration failed inside the PT2E-prepared model: {first[:200]}") from None


def finish_int8(prepared: Any, quantizer: Any, batch: int, size: Sequence[int], strict: bool = True) -> bytes:
    """Fold the observers into Q/DQ and convert in STATIC mode: full-integer bytes with int8 I/O.

    ``strict``: the converter quantizes exactly the ops that carry Q/DQ. In
    its default mode it also quantizes any float op found between a
    DEQUANTIZE and a QUANTIZE, which silently undoes the float fallback of a
    conv sitting between quantized neighbours.
    """
    import litert_torch
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    quantized = convert_pt2e(prepared, fold_quantize=False)
    _to_eval(quantized)
    with _strict_qdq(strict):
        edge = litert_torch.convert(
            quantized, _example(batch, size), quant_config=QuantConfig(pt2e_quantizer=quantizer)
        )
    return bytes(edge.model_content())


def _to_eval(graph: Any) -> None:
    """Exported graphs come back in train mode; litert-torch warns (dropout/BN are already fixed in the graph)."""
    try:
        from torchao.quantization.pt2e import move_exported_model_to_eval

        move_exported_model_to_eval(graph)
    except (ImportError, AttributeError):
        graph.eval()


@contextlib.contextmanager
def _strict_qdq(strict: bool) -> Iterator[None]:
    """Set the LiteRT converter's ``strict_qdq_mode`` for one conversion.

    litert-torch 0.10 builds its converter config internally and exposes no
    flag for this on the PT2E path (only its TensorFlow-based v2 path sets
    it), so the config class is wrapped for the duration of the call.
    """
    from litert_torch._convert import litert_converter as lc

    api = lc.converter_api_ext
    original = api.ConvertToTFLConfig
    if not strict or not hasattr(original(), "strict_qdq_mode"):
        yield
        return

    def strict_config() -> Any:
        config = original()
        config.strict_qdq_mode = True
        return config

    api.ConvertToTFLConfig = strict_config
    try:
        yield
    finally:
        api.ConvertToTFLConfig = original


# -- failure capture -----------------------------------------------------------
@contextlib.contextmanager
def conversion_log(log_path: Path) -> Iterator[None]:
    """Send everything printed (Python and C++) to ``log_path``; turn failures into one line.

    On success the log is removed (it describes no artifact); on failure it
    is kept beside the output and the error names the op and the log.
    """
    log_path = Path(log_path)
    sys.stdout.flush()
    sys.stderr.flush()
    keep = False  # only a conversion failure keeps the log; success and Ctrl-C leave nothing
    try:
        with open(log_path, "w", encoding="utf-8", errors="replace") as log:
            saved = {fd: os.dup(fd) for fd in (1, 2)}
            try:
                for fd in (1, 2):
                    os.dup2(log.fileno(), fd)
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    yield
            except ConversionError:
                raise
            except Exception as exc:  # litert-torch, JAX and MLIR raise anything; all are conversion failures
                keep = True
                text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                log.write("\n" + text)
                raise ConversionError(f"{describe_failure(text, exc)}; full log in {log_path}") from None
            finally:
                log.flush()
                for fd, dup in saved.items():
                    os.dup2(dup, fd)
                    os.close(dup)
    finally:
        if not keep:
            log_path.unlink(missing_ok=True)


_OP_PATTERNS = (
    re.compile(r"Lowering not found: (?:torch\.ops\.)?([\w.]+)"),
    re.compile(r"call_function\[target=(?:torch\.ops\.)?([\w.]+)\]"),
    re.compile(r"'(tfl\.\w+|stablehlo\.\w+)' op"),
    re.compile(r"failed to legalize operation '([\w.]+)'"),
)
_SOURCE_LINE = re.compile(r'File "([^"]*mdnet_deploy[^"]*)", line (\d+)')


def describe_failure(text: str, exc: BaseException | None = None) -> str:
    """``litert-torch could not convert aten.view.default (mdnet.py:88): TypeError: ...``"""
    op = next((m.group(1) for p in _OP_PATTERNS for m in [p.search(text)] if m), None)
    where = ""
    if "Original traceback" in text:
        sources = _SOURCE_LINE.findall(text.split("Original traceback", 1)[1])
        if sources:
            where = f" ({Path(sources[-1][0]).name}:{sources[-1][1]})"
    reason = ""
    if exc is not None:
        first = next((s.strip() for s in str(exc).splitlines() if s.strip()), "")
        reason = f": {type(exc).__name__}: {first[:200]}" if first else f": {type(exc).__name__}"
    subject = f"op {op}{where}" if op else f"the model{where}"
    return f"litert-torch could not convert {subject}{reason}"
