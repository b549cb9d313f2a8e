"""Build an engine with TensorRT's Python API: one code path for 8.5, 8.6 and 10.x.

Differences handled here (and nowhere else):

* 8.x needs the EXPLICIT_BATCH network flag for ONNX; 10.x ignores it and
  warns, so it is set only before 10.
* 10.x can build *strongly typed* networks: precision then comes from the
  graph (Q/DQ, tensor types) and the FP16/INT8 builder flags are refused.
  The default keeps weak typing (flags) wherever the flags exist, because
  that is what lets the layers left in float run in FP16.
* The workspace limit is ``set_memory_pool_limit`` (8.4+), with the old
  ``max_workspace_size`` as a fallback.
* ``build_serialized_network`` everywhere (``build_engine`` is gone in 10).

Explicit quantization only: the Q/DQ scales in the ONNX are used; no
implicit calibrator is ever attached.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConversionError, InputError, UnavailableError
from ...runtimes.engine_meta import BatchSpec


def collecting_logger(trt: Any, echo: bool = False) -> Any:
    """A TensorRT logger that keeps errors (for one-line messages) instead of spraying stderr."""

    class _Logger(trt.ILogger):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []
            self.warnings: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(" ".join(str(msg).split()))
            elif severity == trt.ILogger.Severity.WARNING:
                self.warnings.append(" ".join(str(msg).split()))
            if echo:
                print(f"[TensorRT] {msg}")

    return _Logger()


def trt_major(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


@dataclass
class BuildResult:
    plan: bytes
    tensorrt: str
    input_name: str
    input_shape: list[int]  # as the network declares it; -1 = dynamic
    strongly_typed: bool
    warnings: list[str] = field(default_factory=list)


def build_serialized(
    onnx_path: str | os.PathLike[str],
    precision: str,
    batch: BatchSpec,
    workspace_mib: int | None = None,
    dla_core: int | None = None,
    strongly_typed: bool | None = None,
) -> BuildResult:
    """Parse the ONNX and build a serialized engine in memory."""
    import tensorrt as trt  # heavy; only here

    version = str(trt.__version__)
    logger = collecting_logger(trt)
    try:
        # Without a usable GPU/driver the factory returns null, which pybind11 raises as TypeError.
        builder = trt.Builder(logger)
    except (TypeError, RuntimeError):
        builder = None
    if builder is None:
        raise UnavailableError(f"TensorRT {version} cannot create a builder: {_why(logger)}; check the GPU driver (nvidia-smi / tegrastats)")

    weak_flags = hasattr(trt.BuilderFlag, "INT8") and hasattr(trt.BuilderFlag, "FP16")
    if strongly_typed is None:
        strongly_typed = not weak_flags  # TensorRT 11+: strong typing is all there is
    flags = 0
    if trt_major(version) < 10:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if strongly_typed:
        st = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if st is None:
            raise UnavailableError(f"TensorRT {version} has no strongly typed networks (TensorRT 10 or newer); build without strong typing")
        if precision == "fp16":
            raise InputError("a strongly typed build keeps the ONNX's float32 layers, so it cannot make an fp16 engine; build without strong typing")
        flags |= 1 << int(st)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    # parse_from_file resolves external weight files relative to the ONNX.
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ConversionError(f"TensorRT {version} cannot parse {onnx_path}: {errors[0] if errors else _why(logger)}")

    if precision == "int8" and not getattr(builder, "platform_has_fast_int8", True):
        raise UnavailableError(
            "this GPU has no fast INT8 (e.g. Jetson Nano / Maxwell); compile the float model.onnx with --precision fp16 instead"
        )

    config = builder.create_builder_config()
    if workspace_mib:
        if hasattr(config, "set_memory_pool_limit"):
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
        else:  # before 8.4
            config.max_workspace_size = int(workspace_mib) << 20
    if not strongly_typed:
        config.set_flag(trt.BuilderFlag.FP16)  # fp16 engine, or the float layers of an int8 one
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)  # required for Q/DQ networks on 8.x

    inp = network.get_input(0)
    shape = [int(d) for d in inp.shape]
    if any(d < 0 for d in shape[1:]):
        raise InputError(f"{onnx_path}: only the batch dimension may be dynamic, input '{inp.name}' is {shape}; re-export with a fixed image size")
    if shape and shape[0] < 0:
        profile = builder.create_optimization_profile()
        rest = shape[1:]
        profile.set_shape(inp.name, (batch.min, *rest), (batch.opt, *rest), (batch.max, *rest))
        config.add_optimization_profile(profile)
    elif shape and (batch.dynamic or batch.max != shape[0]):
        raise InputError(
            f"{onnx_path} has a fixed batch of {shape[0]} (input '{inp.name}' {shape}); "
            f"build with --batch {shape[0]} or re-export the ONNX with a dynamic batch"
        )

    if dla_core is not None:
        cores = int(getattr(builder, "num_DLA_cores", 0))
        if dla_core >= cores:
            raise UnavailableError(f"--dla {dla_core}: this device has {cores} DLA core(s); use --dla 0..{cores - 1} or leave --dla out" if cores else f"--dla {dla_core}: this device has no DLA; leave --dla out")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)  # layers DLA cannot run go to the GPU

    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ConversionError(f"TensorRT {version} could not build an engine from {onnx_path}: {_why(logger)}")
    return BuildResult(
        plan=bytes(memoryview(plan)), tensorrt=version, input_name=str(inp.name), input_shape=shape,
        strongly_typed=bool(strongly_typed), warnings=list(logger.warnings),
    )


def _parser_error(err: Any) -> str:
    desc = err.desc() if hasattr(err, "desc") else str(err)
    node = err.node() if hasattr(err, "node") else -1
    text = " ".join(str(desc).split())
    return text + (f" (node {node})" if isinstance(node, int) and node >= 0 else "")


def _why(logger: Any) -> str:
    errors = getattr(logger, "errors", [])
    return errors[0] if errors else "no error was logged; rerun with a newer TensorRT or check the ONNX with polygraphy"
