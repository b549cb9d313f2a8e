"""``compile --target tensorrt``: QDQ ONNX -> TensorRT engine, on the device.

One entry point, :func:`build_engine`. It validates everything cheap first
(precision, paths, the output, the ONNX's quantization) so a mistake costs
no build time, then builds with TensorRT's Python API or, where the bindings
are not importable (a Jetson venv without ``--system-site-packages``), with
``trtexec``. The engine is written atomically, then its sidecar: the ONNX's
metadata plus the ``target`` that the runner checks before loading.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...artifact import ArtifactMeta, file_ref, format_of, read_meta, sidecar_path, write_meta
from ...errors import ConversionError, InputError, OutputError, UnavailableError
from ...fsutil import atomic_output, check_output
from ...runtimes.engine_meta import BatchSpec, probe_target, rebuild_command
from .trtexec import (
    DEFAULT_LOCATIONS,
    TRTEXEC_ENV,
    find_trtexec,
    parse_device_info,
    parse_trtexec_summary,
    probe_trtexec_version,
    run_trtexec,
    trtexec_command,
)

PRECISIONS = ("fp16", "int8")
_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}
# Quantized ONNX in "QOperator" form, which TensorRT's parser does not read.
_QOPERATOR_OPS = {"QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QGemm"}


@dataclass
class OnnxSummary:
    """What the build needs to know about an ONNX before handing it to TensorRT."""

    has_qdq: bool
    qoperator: bool = False
    input_name: str | None = None
    input_shape: list[int | str] | None = None  # None when unknown (no onnx package)


def inspect_onnx(path: str | os.PathLike[str]) -> OnnxSummary:
    """Q/DQ nodes and the first input, with the ``onnx`` package when it is installed.

    Without it (a bare device venv) the op names are searched in the raw
    protobuf bytes: op types are stored as plain strings, so this is reliable
    for finding Q/DQ, though it cannot tell the input's shape.
    """
    try:
        import onnx  # lazy: heavy, and optional on the device
    except ImportError:
        data = Path(path).read_bytes()
        return OnnxSummary(
            has_qdq=b"DequantizeLinear" in data or b"QuantizeLinear" in data,
            qoperator=any(op.encode() in data for op in _QOPERATOR_OPS),
        )
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf decode errors have many types
        raise InputError(f"{path} is not a readable ONNX model ({type(exc).__name__}); re-export it with 'mdnet-deploy export'") from None
    ops = {node.op_type for node in model.graph.node}
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    name: str | None = None
    shape: list[int | str] | None = None
    if inputs:
        name = inputs[0].name
        dims = inputs[0].type.tensor_type.shape.dim
        shape = [d.dim_param or (int(d.dim_value) if d.dim_value > 0 else "?") for d in dims]
    return OnnxSummary(has_qdq=bool(ops & _QDQ_OPS), qoperator=bool(ops & _QOPERATOR_OPS), input_name=name, input_shape=shape)


def tensorrt_bindings() -> tuple[bool, str]:
    """(True, version) when ``import tensorrt`` works here, else (False, why)."""
    try:
        import tensorrt
    except Exception as exc:  # ImportError, or OSError from a broken libnvinfer
        return False, f"{type(exc).__name__}: {exc}"
    return True, str(getattr(tensorrt, "__version__", "unknown"))


def build_engine(
    onnx_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    precision: str = "int8",
    workspace_mib: int | None = None,
    batch: BatchSpec | int | str | tuple[int, int, int] | None = 1,
    dla_core: int | None = None,
    force: bool = False,
    trtexec: str | os.PathLike[str] | None = None,
    strongly_typed: bool | None = None,
    timeout_s: float | None = None,
) -> ArtifactMeta:
    """Build a TensorRT engine from an ONNX (QDQ for int8) and write ``out_path`` + its sidecar.

    ``batch``: N, or a dynamic range (``"dynamic:1,8,64"``, ``(1, 8, 64)``).
    ``trtexec``: build with this trtexec instead of the Python API. When None,
    the Python API is used if importable, else a trtexec found by
    :func:`find_trtexec`, else UnavailableError carrying the trtexec command.
    ``strongly_typed``: None = weak typing wherever the FP16/INT8 flags exist.
    Returns the engine's metadata (already written beside it).
    """
    onnx_path, out = Path(onnx_path), Path(out_path)
    precision = _check_options(precision, workspace_mib, dla_core)
    spec = BatchSpec.parse(batch)
    if not onnx_path.is_file():
        raise InputError(f"{onnx_path}: no such ONNX file; give the output of 'mdnet-deploy quantize' (model.int8.onnx)")
    if format_of(onnx_path) != "onnx":
        raise InputError(f"{onnx_path}: TensorRT engines are built from an ONNX model, not a {onnx_path.suffix} file")
    if out.suffix.lower() not in (".engine", ".plan"):
        raise OutputError(f"-o {out}: name the engine file NAME.engine (or NAME.plan)")
    check_output(out, force=force)
    meta = read_meta(onnx_path)
    assert meta is not None  # required=True raises instead
    summary = inspect_onnx(onnx_path)
    _check_quantization(summary, precision, onnx_path)

    input_name = summary.input_name or meta.input.name or "input"
    shape = summary.input_shape or list(meta.input.shape)
    dynamic = bool(shape) and not isinstance(shape[0], int)
    if shape and not dynamic and (spec.dynamic or spec.max != shape[0]):
        raise InputError(
            f"{onnx_path} has a fixed batch of {shape[0]}; build with --batch {shape[0]} or re-export the ONNX with a dynamic batch"
        )
    req = _Request(onnx_path, out, precision, spec, workspace_mib, dla_core, strongly_typed, input_name,
                   _chw(summary.input_shape, list(meta.input.shape)), dynamic)
    tool = _pick_trtexec(trtexec, req)
    target, build = _build_with_python(req) if tool is None else _build_with_trtexec(req, tool, timeout_s)
    build.update(precision=precision, batch=spec.to_dict(), workspace_mib=workspace_mib, dla_core=dla_core,
                 command=rebuild_command(onnx_path.resolve(), out.resolve(), precision, workspace_mib, spec, dla_core))
    target["build"] = build

    child = _engine_meta(meta, onnx_path, precision, spec, input_name, target)
    write_meta(out, child)
    return child


# -- helpers -----------------------------------------------------------------
def _check_options(precision: str, workspace_mib: int | None, dla_core: int | None) -> str:
    p = str(precision).lower()
    if p not in PRECISIONS:
        raise InputError(f"--precision {precision} is not supported for TensorRT; use one of {', '.join(PRECISIONS)}")
    if workspace_mib is not None and int(workspace_mib) <= 0:
        raise InputError(f"--workspace {workspace_mib} must be a positive number of MiB (e.g. --workspace 256)")
    if dla_core is not None and int(dla_core) < 0:
        raise InputError(f"--dla {dla_core} must be a DLA core index (0 or 1 on Xavier/Orin)")
    return p


def _check_quantization(summary: OnnxSummary, precision: str, onnx_path: Path) -> None:
    if summary.qoperator and not summary.has_qdq:
        raise InputError(
            f"{onnx_path} is quantized in QOperator form (QLinearConv ...), which TensorRT cannot read; "
            "quantize the float model with 'mdnet-deploy quantize' (QDQ form)"
        )
    if precision == "int8" and not summary.has_qdq:
        raise InputError(
            f"{onnx_path} has no QuantizeLinear/DequantizeLinear nodes, so an int8 engine has no scales; "
            f"run 'mdnet-deploy quantize {onnx_path}' first and compile the .int8.onnx it writes"
        )
    if precision == "fp16" and summary.has_qdq:
        raise InputError(
            f"{onnx_path} is a QDQ (int8) model; compile it with --precision int8, or compile the float model.onnx for fp16"
        )


def _chw(*shapes: list[int | str] | None) -> list[int]:
    """The input's C, H, W: from the ONNX graph, else the metadata, else MDNET's 3x32x32."""
    for shape in shapes:
        if shape and len(shape) == 4 and all(isinstance(d, int) and d > 0 for d in shape[1:]):
            return [int(d) for d in shape[1:]]
    return [3, 32, 32]


@dataclass
class _Request:
    """One validated build request, shared by both build paths."""

    onnx: Path
    out: Path
    precision: str
    batch: BatchSpec
    workspace_mib: int | None
    dla_core: int | None
    strongly_typed: bool | None
    input_name: str
    chw: list[int]
    dynamic: bool

    def trtexec_argv(self, tool: str | os.PathLike[str], engine: str | os.PathLike[str], trt_version: str | None = None) -> list[str]:
        return trtexec_command(
            tool, self.onnx, engine, self.precision, input_name=self.input_name, input_chw=self.chw, batch=self.batch,
            dynamic_input=self.dynamic, workspace_mib=self.workspace_mib, dla_core=self.dla_core,
            strongly_typed=bool(self.strongly_typed), trt_version=trt_version,
        )


def _pick_trtexec(trtexec: str | os.PathLike[str] | None, req: _Request) -> Path | None:
    """None = use the Python API; a path = build with that trtexec."""
    if trtexec is not None:
        path = Path(trtexec)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise InputError(f"--trtexec {trtexec}: not an executable file; on Jetson it is {DEFAULT_LOCATIONS[0]}")
        return path
    ok, why = tensorrt_bindings()
    if ok:
        return None
    found = find_trtexec()
    if found is not None:
        return found
    raise UnavailableError(
        f"cannot build a TensorRT engine here: the TensorRT Python bindings are not importable ({why}) and no trtexec "
        f"was found (PATH, {DEFAULT_LOCATIONS[0]}, ${TRTEXEC_ENV}); on the device run: {shlex.join(req.trtexec_argv('trtexec', req.out))} "
        f"(on Jetson trtexec is {DEFAULT_LOCATIONS[0]}), or pass --trtexec PATH so the metadata is written too, "
        "or install the bindings: pip install 'mdnet-deploy[tensorrt]', or on Jetson create the venv with "
        "python3 -m venv --system-site-packages to see JetPack's"
    )


def _build_with_python(req: _Request) -> tuple[dict[str, Any], dict[str, Any]]:
    from .builder import build_serialized  # imports tensorrt

    result = build_serialized(req.onnx, req.precision, req.batch, req.workspace_mib, req.dla_core, req.strongly_typed)
    with atomic_output(req.out) as tmp:
        tmp.write_bytes(result.plan)
        _drop_stale_sidecar(req.out)
    return probe_target(result.tensorrt), {"builder": "tensorrt-python", "strongly_typed": result.strongly_typed}


def _build_with_trtexec(req: _Request, tool: Path, timeout_s: float | None) -> tuple[dict[str, Any], dict[str, Any]]:
    # Only the workspace flag differs by version, so ask trtexec for it only then.
    version_hint = probe_trtexec_version(tool) if req.workspace_mib else None
    shown = shlex.join(req.trtexec_argv(tool, req.out, version_hint))
    with atomic_output(req.out) as tmp:
        argv = req.trtexec_argv(tool, tmp, version_hint)  # trtexec writes the temp file; we rename it
        output = run_trtexec(argv, log_path=req.out.with_name(req.out.name + ".trtexec.log"), timeout=timeout_s)
        if tmp.stat().st_size == 0:
            raise ConversionError(f"trtexec exited successfully but wrote no engine; run it by hand to see why: {shown}")
        _drop_stale_sidecar(req.out)
    # trtexec ran on this GPU and says what it is; probing is only the fallback.
    device = parse_device_info(output)
    version = device.get("tensorrt") or version_hint or probe_trtexec_version(tool)
    gpu: dict[str, str] = {k: device[k] for k in ("gpu", "compute_capability") if k in device}
    build: dict[str, Any] = {"builder": "trtexec", "trtexec": str(tool), "trtexec_command": shown,
                             "strongly_typed": bool(req.strongly_typed)}
    perf = _smoke_perf(output, req.batch.opt)
    if perf:
        build["trtexec_perf"] = perf
    return probe_target(version, gpu=gpu or None), build


def _drop_stale_sidecar(out: Path) -> None:
    # Called just before the new engine is renamed into place (force=True):
    # an old sidecar must never describe the new engine, even for a moment.
    with contextlib.suppress(FileNotFoundError):
        sidecar_path(out).unlink()


def _smoke_perf(output: str, batch: int) -> dict[str, Any] | None:
    """trtexec's own timing after the build: a sanity figure, not a benchmark."""
    try:
        parsed = parse_trtexec_summary(output, batch=batch)
    except InputError:
        return None
    return {k: parsed[k] for k in ("latency_ms", "throughput_ips", "latency_source")}


def _engine_meta(
    meta: ArtifactMeta, onnx_path: Path, precision: str, spec: BatchSpec, input_name: str, target: dict[str, Any],
) -> ArtifactMeta:
    """The ONNX's metadata, re-addressed to the engine: format, precision, parent, target, batch."""
    child = meta.derive(format="engine", precision=precision, parent=file_ref(onnx_path), target=target)
    child.verification = {}  # the ONNX's parity numbers do not describe the engine
    child.tools = {**meta.tools, "tensorrt": str(target.get("tensorrt") or "unknown")}
    child.input.name = input_name
    for tensor in (child.input, child.output):
        if not tensor.shape:
            continue
        if spec.dynamic:
            first = tensor.shape[0]
            tensor.shape = [first if isinstance(first, str) else "batch", *tensor.shape[1:]]
        else:
            tensor.shape = [spec.max, *tensor.shape[1:]]
    return child
