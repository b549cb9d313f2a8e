"""Build an engine with TensorRT's Python API: one code path for 8.5, 8.6, 10.x and 11.x.

What differs by version is decided in ``policy.py`` (typing mode, flags);
this module only applies the plan to the installed bindings:

* 8.x needs the EXPLICIT_BATCH network flag for ONNX; 10.x ignores it and
  11.x removed it, so it is set only before 10.
* Weakly typed (8.5 to 10.x, the default there): the FP16 / INT8 builder
  flags. Strongly typed (11.x always, 10.x on request): no precision flag,
  the graph's Q/DQ and tensor types decide; an fp16 engine is then built
  from an FP16 ONNX that ``build.py`` writes first.
* The workspace limit is ``set_memory_pool_limit`` (8.4+), with the old
  ``max_workspace_size`` as a fallback.
* ``build_serialized_network`` everywhere (``build_engine`` is gone in 10).
* DLA: ``default_device_type`` + ``DLA_core`` + ``GPU_FALLBACK``; the layers
  DLA cannot run are listed (``can_run_on_DLA``) so the metadata says what
  falls back to the GPU.

Explicit quantization only: the Q/DQ scales in the ONNX are used; no
implicit calibrator is ever attached.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConversionError, InputError, UnavailableError
from ...runtimes.engine_meta import BatchSpec, collecting_logger
from .policy import STRONG, BuildPlan

# Every TensorRT name the builder touches, by where it lives: the API tests check
# them against the real bindings of each version (or that they are deliberately
# avoided there: see _AVOIDED).
API_NAMES: dict[str, tuple[str, ...]] = {
    "module": (
        "Builder",
        "OnnxParser",
        "ILogger",
        "BuilderFlag",
        "NetworkDefinitionCreationFlag",
        "MemoryPoolType",
        "DeviceType",
    ),
    "BuilderFlag": ("GPU_FALLBACK",),
    "MemoryPoolType": ("WORKSPACE",),
    "DeviceType": ("GPU", "DLA"),
    "ILogger.Severity": ("INTERNAL_ERROR", "ERROR", "WARNING"),
    "Builder": (
        "create_network",
        "create_builder_config",
        "create_optimization_profile",
        "build_serialized_network",
        "num_DLA_cores",
    ),
    "IBuilderConfig": (
        "set_memory_pool_limit",
        "set_flag",
        "add_optimization_profile",
        "default_device_type",
        "DLA_core",
        "can_run_on_DLA",
    ),
    "OnnxParser": ("parse_from_file", "num_errors", "get_error"),
}
# Used only where they exist: the weak-typing flags (gone in 11), EXPLICIT_BATCH (before 10),
# STRONGLY_TYPED (10+), platform_has_fast_int8 (gone in 11).
_AVOIDED = {"BuilderFlag": ("FP16", "INT8"), "NetworkDefinitionCreationFlag": ("EXPLICIT_BATCH", "STRONGLY_TYPED")}


def precision_flags_of(trt: Any) -> bool:
    """Whether these bindings have the weak-typing precision flags (everything before TensorRT 11)."""
    return hasattr(trt.BuilderFlag, "INT8") and hasattr(trt.BuilderFlag, "FP16")


@dataclass
class BuildResult:
    plan: bytes
    tensorrt: str
    input_name: str
    input_shape: list[int]  # as the network declares it; -1 = dynamic
    strongly_typed: bool
    warnings: list[str] = field(default_factory=list)
    gpu_fallback_layers: list[str] = field(default_factory=list)  # DLA builds: layers DLA cannot run


def network_flags(trt: Any, plan: BuildPlan) -> int:
    """The ``create_network`` bit mask for the plan, from the flags these bindings have."""
    flags = 0
    for name in plan.network_flags:
        flag = getattr(trt.NetworkDefinitionCreationFlag, name, None)
        if flag is None:
            if name == "STRONGLY_TYPED" and not precision_flags_of(trt):
                continue  # a TensorRT without weak typing needs no flag to be strongly typed
            raise UnavailableError(
                f"TensorRT {trt.__version__} has no NetworkDefinitionCreationFlag.{name}; build without strong typing"
            )
        flags |= 1 << int(flag)
    return flags


def apply_precision(trt: Any, config: Any, plan: BuildPlan) -> None:
    """Set the plan's builder flags; a strongly typed plan sets none of FP16/INT8."""
    for name in plan.builder_flags:
        flag = getattr(trt.BuilderFlag, name, None)
        if flag is None:  # policy and bindings disagree: say so rather than build something else
            raise UnavailableError(
                f"TensorRT {trt.__version__} has no BuilderFlag.{name}; this build needs {plan.typing} typing support"
            )
        config.set_flag(flag)


def build_serialized(
    onnx_path: str | os.PathLike[str],
    plan: BuildPlan,
    batch: BatchSpec,
    workspace_mib: int | None = None,
) -> BuildResult:
    """Parse the ONNX and build a serialized engine in memory, as ``plan`` says."""
    import tensorrt as trt  # heavy; only here

    version = str(trt.__version__)
    logger = collecting_logger(trt)
    try:
        # Without a usable GPU/driver the factory returns null, which pybind11 raises as TypeError.
        builder = trt.Builder(logger)
    except (TypeError, RuntimeError):
        builder = None
    if builder is None:
        raise UnavailableError(
            f"TensorRT {version} cannot create a builder: {_why(logger)}; check the GPU driver (nvidia-smi / tegrastats)"
        )

    network = builder.create_network(network_flags(trt, plan))
    parser = trt.OnnxParser(network, logger)
    # parse_from_file resolves external weight files relative to the ONNX.
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ConversionError(f"TensorRT {version} cannot parse {onnx_path}: {errors[0] if errors else _why(logger)}")

    if plan.precision == "int8" and not getattr(builder, "platform_has_fast_int8", True):
        raise UnavailableError(
            "this GPU has no fast INT8 (e.g. Jetson Nano / Maxwell); compile the float model.onnx with --precision fp16 instead"
        )

    config = builder.create_builder_config()
    if workspace_mib:
        if hasattr(config, "set_memory_pool_limit"):
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
        else:  # before 8.4
            config.max_workspace_size = int(workspace_mib) << 20
    apply_precision(trt, config, plan)

    inp = network.get_input(0)
    shape = [int(d) for d in inp.shape]
    if any(d < 0 for d in shape[1:]):
        raise InputError(
            f"{onnx_path}: only the batch dimension may be dynamic, input '{inp.name}' is {shape}; re-export with a fixed image size"
        )
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

    fallback: list[str] = []
    if plan.dla_core is not None:
        dla_core = plan.dla_core
        cores = int(getattr(builder, "num_DLA_cores", 0))
        if dla_core >= cores:
            raise UnavailableError(
                f"--dla {dla_core}: this device has {cores} DLA core(s); use --dla 0..{cores - 1} or leave --dla out"
                if cores
                else f"--dla {dla_core}: this device has no DLA; leave --dla out"
            )
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(dla_core)
        # GPU_FALLBACK is in plan.builder_flags: layers DLA cannot run go to the GPU, and we say which.
        fallback = [
            network.get_layer(i).name
            for i in range(network.num_layers)
            if not config.can_run_on_DLA(network.get_layer(i))
        ]

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ConversionError(f"TensorRT {version} could not build an engine from {onnx_path}: {_why(logger)}")
    return BuildResult(
        plan=bytes(memoryview(serialized)),
        tensorrt=version,
        input_name=str(inp.name),
        input_shape=shape,
        strongly_typed=plan.typing == STRONG,
        warnings=list(logger.warnings),
        gpu_fallback_layers=fallback,
    )


def _parser_error(err: Any) -> str:
    desc = err.desc() if hasattr(err, "desc") else str(err)
    node = err.node() if hasattr(err, "node") else -1
    text = " ".join(str(desc).split())
    return text + (f" (node {node})" if isinstance(node, int) and node >= 0 else "")


def _why(logger: Any) -> str:
    errors = getattr(logger, "errors", [])
    return errors[0] if errors else "no error was logged; rerun with a newer TensorRT or check the ONNX with polygraphy"
