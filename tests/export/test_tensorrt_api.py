"""The builder and runner against the real TensorRT Python bindings, without a GPU.

Run by ``make test-tensorrt-api`` once per TensorRT (newest 10.x, newest
11.x), each in its own venv; skipped wherever no TensorRT wheel is installed
(``make test`` and CI).

What the wheels give here: PyPI serves ``tensorrt-cuXX-bindings`` (the full
module, which needs libnvinfer to load) and the lean runtime
(``tensorrt-lean-cuXX-bindings`` + ``-libs``, which loads without a GPU and
carries the same ``BuilderFlag``, ``DeviceType``, ``MemoryPoolType``,
``ILogger`` and runtime classes). ``tensorrt-cuXX-libs`` (libnvinfer, the ONNX
parser) is a placeholder that downloads from NVIDIA's index: where that is out
of reach the tests that need the full module skip, saying so. Creating a
``Builder`` (and so a network for the ONNX parser) needs a CUDA device on
every version: those checks skip with the error TensorRT gives.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mdnet_deploy.export.tensorrt.builder import (
    _AVOIDED,
    API_NAMES,
    collecting_logger,
    network_flags,
    precision_flags_of,
)
from mdnet_deploy.export.tensorrt.policy import STRONG, WEAK, has_precision_flags, plan_build, version_tuple

pytestmark = pytest.mark.tensorrt_api


def _load(name: str) -> tuple[ModuleType | None, str]:
    try:
        return importlib.import_module(name), ""
    except Exception as exc:  # ImportError, or OSError from a missing libnvinfer
        return None, f"{type(exc).__name__}: {exc}"


LEAN, LEAN_WHY = _load("tensorrt_lean_bindings")
FULL, FULL_WHY = _load("tensorrt_bindings")
if FULL is None:  # a full install (tensorrt-cuXX from NVIDIA's index) may expose it as `tensorrt` only
    FULL, _ = _load("tensorrt")

# What the runner (runtimes/tensorrt.py) calls on TensorRT 8.5+ (the name-based API).
RUNNER_NAMES: dict[str, tuple[str, ...]] = {
    "Runtime": ("deserialize_cuda_engine", "DLA_core", "num_DLA_cores"),
    "ICudaEngine": (
        "num_io_tensors",
        "get_tensor_name",
        "get_tensor_mode",
        "get_tensor_dtype",
        "get_tensor_shape",
        "get_tensor_profile_shape",
        "create_execution_context",
    ),
    "IExecutionContext": ("set_input_shape", "get_tensor_shape", "set_tensor_address", "execute_async_v3"),
    "TensorIOMode": ("INPUT", "OUTPUT"),
}


def _any() -> ModuleType:
    mod = FULL or LEAN
    if mod is None:
        pytest.skip(f"no TensorRT wheel importable here ({LEAN_WHY}); run make test-tensorrt-api")
    return mod


def _full() -> ModuleType:
    _any()  # no wheel at all: say that, not what the full module lacks
    if FULL is None:
        pytest.skip(
            f"the full TensorRT module does not load here ({FULL_WHY}): tensorrt-cuXX-libs, which carries libnvinfer "
            "and the ONNX parser, is a placeholder on PyPI that downloads from NVIDIA's index"
        )
    return FULL


def _resolve(mod: ModuleType, where: str) -> Any:
    obj: Any = mod
    for part in where.split("."):
        obj = getattr(obj, part)
    return obj


def test_a_supported_major_version() -> None:
    trt = _any()
    assert version_tuple(trt.__version__)[0] in (10, 11)  # type: ignore[index]


def test_precision_flags_exist_exactly_where_the_policy_says() -> None:
    trt = _any()
    assert precision_flags_of(trt) == has_precision_flags(trt.__version__)
    removed = (
        "FP16",
        "INT8",
        "BF16",
        "FP8",
        "INT4",
        "FP4",
        "OBEY_PRECISION_CONSTRAINTS",
        "PREFER_PRECISION_CONSTRAINTS",
    )
    present = [f for f in removed if hasattr(trt.BuilderFlag, f)]
    if version_tuple(trt.__version__)[0] >= 11:  # type: ignore[index]
        assert present == []  # TensorRT 11: weak typing is gone
    else:
        assert {"FP16", "INT8"} <= set(present)


@pytest.mark.parametrize("precision", ["int8", "fp16", "best"])
@pytest.mark.parametrize("dla", [None, 0])
def test_the_plan_uses_only_flags_these_bindings_have(precision: str, dla: int | None) -> None:
    trt = _any()
    plan = plan_build(
        trt.__version__, precision, has_qdq=precision != "fp16", dla_core=dla, precision_flags=precision_flags_of(trt)
    )
    assert plan.typing == (WEAK if version_tuple(trt.__version__)[0] < 11 else STRONG)  # type: ignore[index]
    for name in plan.builder_flags:
        assert hasattr(trt.BuilderFlag, name), f"BuilderFlag.{name} missing in TensorRT {trt.__version__}"
    if plan.typing == STRONG:
        assert not {"FP16", "INT8"} & set(plan.builder_flags)
        assert plan.fp16_onnx  # the FP16 / mixed ONNX carries the precision
        assert "--fp16" not in plan.trtexec_flags and "--int8" not in plan.trtexec_flags


def test_strong_typing_on_request_on_10() -> None:
    trt = _any()
    if version_tuple(trt.__version__)[0] >= 11:  # type: ignore[index]
        pytest.skip("TensorRT 11 is strongly typed whatever is asked")
    plan = plan_build(trt.__version__, "int8", True, strongly_typed=True, precision_flags=precision_flags_of(trt))
    assert plan.typing == STRONG and plan.builder_flags == () and plan.trtexec_flags == ("--stronglyTyped",)


@pytest.mark.parametrize("where", ["BuilderFlag", "MemoryPoolType", "DeviceType", "ILogger.Severity"])
def test_enums_the_builder_touches(where: str) -> None:
    trt = _any()
    enum = _resolve(trt, where)
    for name in API_NAMES[where]:
        assert hasattr(enum, name), f"{where}.{name} missing in TensorRT {trt.__version__}"


@pytest.mark.parametrize("where", sorted(RUNNER_NAMES))
def test_what_the_runner_calls(where: str) -> None:
    trt = _any()
    cls = _resolve(trt, where)
    for name in RUNNER_NAMES[where]:
        assert hasattr(cls, name), f"{where}.{name} missing in TensorRT {trt.__version__}"
    for dtype in (trt.float32, trt.float16, trt.int8, trt.int32):
        assert trt.nptype(dtype) is not None


def test_collecting_logger_subclasses_the_real_ilogger() -> None:
    trt = _any()
    logger = collecting_logger(trt)
    assert isinstance(logger, trt.ILogger)
    logger.log(trt.ILogger.Severity.ERROR, "parse  failed\n in node 3")
    logger.log(trt.ILogger.Severity.WARNING, "slow")
    logger.log(trt.ILogger.Severity.INFO, "ignored")
    assert logger.errors == ["parse failed in node 3"] and logger.warnings == ["slow"]


# -- the full module: Builder, OnnxParser, network flags ------------------------------
def test_builder_classes_and_methods() -> None:
    trt = _full()
    for where, names in API_NAMES.items():
        if where == "module":
            for name in names:
                assert hasattr(trt, name), f"tensorrt.{name} missing in {trt.__version__}"
            continue
        target = _resolve(trt, "IBuilderConfig" if where == "IBuilderConfig" else where)
        for name in names:
            assert hasattr(target, name), f"{where}.{name} missing in TensorRT {trt.__version__}"


def test_network_flags_for_each_plan() -> None:
    trt = _full()
    major = version_tuple(trt.__version__)[0]  # type: ignore[index]
    for avoided in _AVOIDED["NetworkDefinitionCreationFlag"]:
        has = hasattr(trt.NetworkDefinitionCreationFlag, avoided)
        if avoided == "EXPLICIT_BATCH":
            assert has == (major < 11)  # deprecated in 10, removed in 11: never set from 10 on
    plan = plan_build(trt.__version__, "int8", True, precision_flags=precision_flags_of(trt))
    mask = network_flags(trt, plan)
    if major >= 11:
        assert mask in (0, 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    else:
        assert mask == 0  # weak typing, no EXPLICIT_BATCH from 10 on


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("onnx")
    from mdnet_deploy.export.tensorrt.fp16 import write_fp16_onnx
    from mdnet_deploy.export.tensorrt.smoke import write_tiny_classifier

    d = tmp_path_factory.mktemp("trt_api")
    fp32 = write_tiny_classifier(d / "tiny.onnx", qdq=False)
    write_fp16_onnx(fp32, d / "tiny.fp16.onnx")
    return {"fp32": fp32, "fp16": d / "tiny.fp16.onnx", "qdq": write_tiny_classifier(d / "tiny.int8.onnx", qdq=True)}


@pytest.mark.parametrize("kind", ["fp32", "fp16", "qdq"])
def test_onnx_parser_accepts_our_models(models: dict[str, Path], kind: str) -> None:
    trt = _full()
    logger = collecting_logger(trt)
    try:
        builder = trt.Builder(logger)
    except (TypeError, RuntimeError):
        builder = None
    if builder is None:
        pytest.skip(
            f"TensorRT {trt.__version__} cannot create a Builder without a CUDA device: {(logger.errors or ['null'])[0]}"
        )
    plan = plan_build(
        trt.__version__, "int8" if kind == "qdq" else "fp16", kind == "qdq", precision_flags=precision_flags_of(trt)
    )
    network = builder.create_network(network_flags(trt, plan))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(models[kind])), [parser.get_error(i).desc() for i in range(parser.num_errors)]
