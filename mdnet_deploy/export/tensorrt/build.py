"""``compile --target tensorrt``: QDQ ONNX -> TensorRT engine, on the device.

One entry point, :func:`build_engine`. It validates everything cheap first
(precision, paths, the output, the ONNX's quantization, DLA on this board
and TensorRT) so a mistake costs no build time, then builds with TensorRT's
Python API or, where the bindings are not importable (a Jetson venv without
``--system-site-packages``), with ``trtexec``. Both follow one plan from
``policy.py``: weakly typed with flags up to 10.x, strongly typed on 11.x
(FP16 from an FP16 ONNX written from the float model first). The engine is
written atomically, then its sidecar: the ONNX's metadata plus the
``target`` (TensorRT, typing, GPU/DLA, JetPack/L4T) the runner checks.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ...artifact import ArtifactMeta, file_ref, format_of, read_meta, sidecar_path, write_meta
from ...devices import _sys
from ...errors import ConversionError, InputError, OutputError, UnavailableError
from ...fsutil import atomic_output, check_output, sha256_file
from ...runtimes.engine_meta import BatchSpec, probe_target, rebuild_command
from .policy import PRECISIONS, BuildPlan, check_dla, plan_build, resolve_precision
from .trtexec import (
    DEFAULT_LOCATIONS,
    TRTEXEC_ENV,
    find_trtexec,
    parse_device_info,
    parse_gpu_fallback,
    parse_trtexec_summary,
    probe_trtexec_version,
    run_trtexec,
    trtexec_command,
)

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
        raise InputError(
            f"{path} is not a readable ONNX model ({type(exc).__name__}); re-export it with 'mdnet-deploy export'"
        ) from None
    ops = {node.op_type for node in model.graph.node}
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    name: str | None = None
    shape: list[int | str] | None = None
    if inputs:
        name = inputs[0].name
        dims = inputs[0].type.tensor_type.shape.dim
        shape = [d.dim_param or (int(d.dim_value) if d.dim_value > 0 else "?") for d in dims]
    return OnnxSummary(
        has_qdq=bool(ops & _QDQ_OPS), qoperator=bool(ops & _QOPERATOR_OPS), input_name=name, input_shape=shape
    )


def tensorrt_bindings() -> tuple[bool, str]:
    """(True, version) when ``import tensorrt`` works here, else (False, why)."""
    try:
        import tensorrt
    except Exception as exc:  # ImportError, or OSError from a broken libnvinfer
        return False, f"{type(exc).__name__}: {exc}"
    return True, str(getattr(tensorrt, "__version__", "unknown"))


def tensorrt_here() -> tuple[str | None, str]:
    """(TensorRT version, where it was found): the Python bindings first, else trtexec; (None, why) when neither."""
    ok, found = tensorrt_bindings()
    if ok:
        return found, "Python bindings"
    tool = find_trtexec()
    if tool is not None:
        version = probe_trtexec_version(tool)
        return version, f"trtexec at {tool}"
    return (
        None,
        f"no TensorRT here: bindings not importable ({found}) and no trtexec (PATH, {DEFAULT_LOCATIONS[0]}, ${TRTEXEC_ENV})",
    )


def doctor_report() -> dict[str, Any]:
    """``doctor --device jetson``: TensorRT version, typing mode, DLA support, and what ``compile`` will do here."""
    from ...devices.environment import read_l4t_release
    from .policy import jetson_report

    version, source = tensorrt_here()
    report = jetson_report(version, _sys.device_tree_model(), read_l4t_release())
    report["source"] = source
    return report


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
        raise InputError(
            f"{onnx_path}: no such ONNX file; give the output of 'mdnet-deploy quantize' (model.int8.onnx)"
        )
    if format_of(onnx_path) != "onnx":
        raise InputError(f"{onnx_path}: TensorRT engines are built from an ONNX model, not a {onnx_path.suffix} file")
    if out.suffix.lower() not in (".engine", ".plan"):
        raise OutputError(f"-o {out}: name the engine file NAME.engine (or NAME.plan)")
    check_output(out, force=force)
    meta = read_meta(onnx_path)
    assert meta is not None  # required=True raises instead
    summary = inspect_onnx(onnx_path)
    resolved = resolve_precision(precision, summary.has_qdq)
    _check_quantization(summary, resolved, onnx_path)

    input_name = summary.input_name or meta.input.name or "input"
    shape = summary.input_shape or list(meta.input.shape)
    dynamic = bool(shape) and not isinstance(shape[0], int)
    if shape and not dynamic and (spec.dynamic or spec.max != shape[0]):
        raise InputError(
            f"{onnx_path} has a fixed batch of {shape[0]}; build with --batch {shape[0]} or re-export the ONNX with a dynamic batch"
        )
    req = _Request(
        onnx_path,
        out,
        resolved,
        spec,
        workspace_mib,
        dla_core,
        strongly_typed,
        input_name,
        _chw(summary.input_shape, list(meta.input.shape)),
        dynamic,
        summary.has_qdq,
        precision,
    )
    tool = _pick_trtexec(trtexec, req)
    target, build = _build_with_python(req) if tool is None else _build_with_trtexec(req, tool, timeout_s)
    build.update(
        precision=resolved,
        batch=spec.to_dict(),
        workspace_mib=workspace_mib,
        dla_core=dla_core,
        command=rebuild_command(onnx_path.resolve(), out.resolve(), precision, workspace_mib, spec, dla_core),
    )
    target["typing"] = build["typing"]
    target["device"] = build["device"]
    target["build"] = build

    child = _engine_meta(meta, onnx_path, resolved, spec, input_name, target)
    write_meta(out, child)
    return read_meta(out) or child  # as written: with the engine's checksum stamped in


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
    if precision in ("fp16", "fp32") and summary.has_qdq:
        raise InputError(
            f"{onnx_path} is a QDQ (int8) model; compile it with --precision int8, or compile the float model.onnx for {precision}"
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
    has_qdq: bool = False
    requested: str = "int8"  # as given: int8 | fp16 | best

    def plan(self, version: str | None, precision_flags: bool | None = None) -> BuildPlan:
        plan = plan_build(version, self.requested, self.has_qdq, self.strongly_typed, self.dla_core, precision_flags)
        check_dla(self.dla_core, version, _sys.device_tree_model())
        return plan

    def trtexec_argv(
        self,
        tool: str | os.PathLike[str],
        engine: str | os.PathLike[str],
        trt_version: str | None = None,
        onnx: Path | None = None,
    ) -> list[str]:
        return trtexec_command(
            tool,
            onnx or self.onnx,
            engine,
            self.precision,
            input_name=self.input_name,
            input_chw=self.chw,
            batch=self.batch,
            dynamic_input=self.dynamic,
            workspace_mib=self.workspace_mib,
            dla_core=self.dla_core,
            strongly_typed=bool(self.strongly_typed),
            trt_version=trt_version,
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
    import tensorrt as trt  # the bindings decide the typing mode as much as the version does

    from .builder import build_serialized, precision_flags_of

    plan = req.plan(str(trt.__version__), precision_flags_of(trt))
    with _source_onnx(req, plan) as (source, fp16_info):
        result = build_serialized(source, plan, req.batch, req.workspace_mib)
    with atomic_output(req.out) as tmp:
        tmp.write_bytes(result.plan)
        _drop_stale_sidecar(req.out)
    build = {"builder": "tensorrt-python", "strongly_typed": result.strongly_typed, **plan.to_dict(), **fp16_info}
    if plan.dla_core is not None:
        build["gpu_fallback_layers"] = result.gpu_fallback_layers
    return probe_target(result.tensorrt), build


def _build_with_trtexec(req: _Request, tool: Path, timeout_s: float | None) -> tuple[dict[str, Any], dict[str, Any]]:
    # The flags differ by version (weak/strong typing, workspace), so ask trtexec which TensorRT it is.
    version_hint = probe_trtexec_version(tool)
    plan = req.plan(version_hint)
    with _source_onnx(req, plan) as (source, fp16_info):
        shown = shlex.join(req.trtexec_argv(tool, req.out, version_hint, source if source != req.onnx else None))
        with atomic_output(req.out) as tmp:
            argv = req.trtexec_argv(tool, tmp, version_hint, source)  # trtexec writes the temp file; we rename it
            output = run_trtexec(argv, log_path=req.out.with_name(req.out.name + ".trtexec.log"), timeout=timeout_s)
            if tmp.stat().st_size == 0:
                raise ConversionError(
                    f"trtexec exited successfully but wrote no engine; run it by hand to see why: {shown}"
                )
            _drop_stale_sidecar(req.out)
    # trtexec ran on this GPU and says what it is; probing is only the fallback.
    device = parse_device_info(output)
    version = device.get("tensorrt") or version_hint
    gpu: dict[str, str] = {k: device[k] for k in ("gpu", "compute_capability") if k in device}
    build: dict[str, Any] = {
        "builder": "trtexec",
        "trtexec": str(tool),
        "trtexec_command": shown,
        "strongly_typed": plan.typing == "strong",
        **plan.to_dict(),
        **fp16_info,
    }
    if plan.dla_core is not None:
        build["gpu_fallback_layers"] = parse_gpu_fallback(output)
    perf = _smoke_perf(output, req.batch.opt)
    if perf:
        build["trtexec_perf"] = perf
    return probe_target(version, gpu=gpu or None), build


@contextlib.contextmanager
def _source_onnx(req: _Request, plan: BuildPlan) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The ONNX to hand TensorRT: the given one, or (strongly typed) its FP16 / mixed form written beside the output."""
    if not plan.fp16_onnx:
        yield req.onnx, {}
        return
    try:
        from .fp16 import write_fp16_onnx
    except ImportError as exc:  # pragma: no cover - numpy is a base dependency
        raise UnavailableError(f"cannot write the FP16 ONNX: {exc}") from None
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UnavailableError(
            f"a strongly typed TensorRT {plan.tensorrt} build takes its precision from the graph, so this tool first writes an "
            "FP16 (mixed) ONNX with the onnx package; pip install onnx"
        ) from None
    # The guard's float layers: in a Q/DQ model's own metadata; for a float model, in its quantized child's.
    keep = _own_float_nodes(req.onnx) if req.has_qdq else guard_float_nodes(req.onnx)
    tmp = req.out.with_name(f".{req.out.name}.fp16.onnx.partial")
    try:
        kept = write_fp16_onnx(req.onnx, tmp, keep)
        yield tmp, {"fp16_onnx_kept_fp32": kept, "guard_float_nodes": keep}
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _float_node_names(quant: dict[str, Any]) -> list[str]:
    return [str(n.get("node") if isinstance(n, dict) else n) for n in quant.get("float_nodes") or []]


def _own_float_nodes(onnx_path: Path) -> list[str]:
    meta = read_meta(onnx_path, required=False)
    return _float_node_names((meta.quantization or {}) if meta is not None else {})


def guard_float_nodes(onnx_path: Path) -> list[str]:
    """The layers the accuracy guard kept float when it quantized *this* float ONNX (a sibling
    ``*.onnx`` whose metadata names it as parent by checksum); [] when it was never quantized."""
    digest: str | None = None
    for sibling in sorted(onnx_path.parent.glob("*.onnx")):
        if sibling == onnx_path:
            continue
        try:
            meta = read_meta(sibling, required=False)
        except Exception:  # an unreadable sidecar of some other file is not this build's problem
            continue
        quant = (meta.quantization or {}) if meta is not None else {}
        parent = (meta.parent or {}) if meta is not None else {}
        if not quant.get("float_nodes") or not parent.get("sha256"):
            continue
        digest = digest or sha256_file(onnx_path)
        if parent["sha256"] == digest:
            return _float_node_names(quant)
    return []


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
    meta: ArtifactMeta,
    onnx_path: Path,
    precision: str,
    spec: BatchSpec,
    input_name: str,
    target: dict[str, Any],
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
