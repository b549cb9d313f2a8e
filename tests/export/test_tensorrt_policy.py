"""TensorRT version and board policy: typing mode, flags, DLA (no bindings needed).

The real bindings are checked by test_tensorrt_api.py (make test-tensorrt-api);
here a stand-in module object stands in ONLY for what the version-branch
selection reads from it: whether ``BuilderFlag`` has INT8/FP16.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mdnet_deploy.errors import InputError, UnavailableError
from mdnet_deploy.export.tensorrt.builder import precision_flags_of
from mdnet_deploy.export.tensorrt.policy import (
    STRONG,
    WEAK,
    check_dla,
    choose_typing,
    dla_refusal,
    jetson_report,
    plan_build,
    resolve_precision,
)

AGX_ORIN = "NVIDIA Jetson AGX Orin Developer Kit"
ORIN_NANO = "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"
ORIN_NX = "NVIDIA Jetson Orin NX Engineering Reference Developer Kit"


@pytest.mark.parametrize(
    ("version", "typing", "flags", "trtexec", "network"),
    [
        ("8.5.2.2", WEAK, ("FP16", "INT8"), ("--int8", "--fp16"), ("EXPLICIT_BATCH",)),  # JetPack 5
        ("8.6.2", WEAK, ("FP16", "INT8"), ("--int8", "--fp16"), ("EXPLICIT_BATCH",)),
        ("10.3.0", WEAK, ("FP16", "INT8"), ("--int8", "--fp16"), ()),  # JetPack 6
        ("10.16.1.11", WEAK, ("FP16", "INT8"), ("--int8", "--fp16"), ()),
        ("11.4.0.106", STRONG, (), (), ("STRONGLY_TYPED",)),  # JetPack 7.2
    ],
)
def test_int8_plan_per_version(version: str, typing: str, flags: tuple, trtexec: tuple, network: tuple) -> None:
    plan = plan_build(version, "int8", has_qdq=True)
    assert (plan.typing, plan.builder_flags, plan.trtexec_flags, plan.network_flags) == (
        typing,
        flags,
        trtexec,
        network,
    )
    assert plan.fp16_onnx == (typing == STRONG)  # 11: a mixed ONNX puts the float islands in FP16


def test_fp16_and_best() -> None:
    assert plan_build("10.3.0", "fp16", False).builder_flags == ("FP16",)
    p11 = plan_build("11.0.0", "fp16", False)
    assert p11.typing == STRONG and p11.fp16_onnx and p11.builder_flags == ()
    assert plan_build("11.0.0", "best", has_qdq=True).precision == "int8"
    assert plan_build("10.3.0", "best", has_qdq=False).precision == "fp16"
    with pytest.raises(InputError, match="int8, fp16, fp32, best"):
        resolve_precision("bf16", False)
    for version in ("8.5.2", "11.0.0"):
        fp32 = plan_build(version, "fp32", False)
        assert fp32.builder_flags == () and fp32.trtexec_flags == () and not fp32.fp16_onnx


def test_strong_typing_on_request() -> None:
    assert plan_build("10.3.0", "int8", True, strongly_typed=True).trtexec_flags == ("--stronglyTyped",)
    with pytest.raises(UnavailableError, match="TensorRT 10 or newer"):
        choose_typing("8.5.2", requested=True)
    with pytest.raises(InputError, match="strongly typed networks only"):
        choose_typing("11.1.0", requested=False)


def test_the_bindings_decide_over_the_version_string() -> None:
    # Stand-ins for the one thing the selection reads from a module: BuilderFlag's members.
    weak = SimpleNamespace(BuilderFlag=SimpleNamespace(FP16=0, INT8=1, GPU_FALLBACK=2))
    strong = SimpleNamespace(BuilderFlag=SimpleNamespace(GPU_FALLBACK=2))
    assert precision_flags_of(weak) and not precision_flags_of(strong)
    assert plan_build("10.99", "int8", True, precision_flags=precision_flags_of(strong)).typing == STRONG
    assert plan_build(None, "int8", True, precision_flags=precision_flags_of(weak)).typing == WEAK


@pytest.mark.parametrize(
    ("version", "board", "refused"),
    [
        ("8.5.2", AGX_ORIN, None),
        ("8.5.2", ORIN_NX, None),
        ("10.3.0", "NVIDIA Jetson Xavier NX Developer Kit", None),
        ("10.3.0", ORIN_NANO, "has no DLA"),
        ("10.3.0", None, None),  # not a Jetson: the builder's DLA core count decides
        ("10.8.0", AGX_ORIN, "no DLA support"),
        ("11.3.0", AGX_ORIN, "no DLA support"),
        ("11.4.0", AGX_ORIN, "no DLA support"),
        ("11.4.1", AGX_ORIN, None),
        ("11.4.1", ORIN_NX, "has no DLA with TensorRT 11.4.1 or later"),
        ("11.4.1", None, "not a Jetson"),
        ("11.5.0", "NVIDIA Jetson AGX Thor Developer Kit", "has no DLA"),
    ],
)
def test_dla_matrix(version: str, board: str | None, refused: str | None) -> None:
    why = dla_refusal(version, board)
    assert (why is None) if refused is None else (why is not None and refused in why)


def test_dla_refusal_is_one_line_naming_what_works() -> None:
    with pytest.raises(UnavailableError) as info:
        check_dla(1, "11.2.0", AGX_ORIN)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("--dla 1: TensorRT 11.2.0 has no DLA support")
    assert "AGX Orin alone with TensorRT 11.4.1 or later" in msg and "leave --dla out" in msg
    check_dla(None, "11.2.0", ORIN_NANO)  # no --dla: nothing to refuse


def test_jetson_report_says_what_compile_will_do() -> None:
    r = jetson_report("11.4.1", AGX_ORIN, {"l4t": "38.4.0"})
    assert r["typing"] == STRONG and r["dla"]["supported"] is True and r["l4t"] == "38.4.0"
    assert "mixed ONNX" in r["compile"]["int8"] and "FP16 ONNX" in r["compile"]["fp16"]
    r6 = jetson_report("10.3.0", ORIN_NANO, {"l4t": "36.4.3", "jetpack": "6.2"})
    assert r6["typing"] == WEAK and r6["dla"]["supported"] is False and "FP16, INT8" in r6["compile"]["int8"]
    assert jetson_report(None, None, None)["compile"] is None
