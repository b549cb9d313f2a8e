"""trtexec command lines (argument lists), batch specs and finding trtexec."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mdnet_deploy.devices import _sys
from mdnet_deploy.errors import InputError
from mdnet_deploy.export.tensorrt.trtexec import find_trtexec, trtexec_command
from mdnet_deploy.runtimes.engine_meta import BatchSpec, rebuild_command


def test_int8_static_batch_on_a_dynamic_onnx() -> None:
    argv = trtexec_command("/usr/src/tensorrt/bin/trtexec", "out/model.int8.onnx", "out/model.engine", "int8")
    assert argv == [
        "/usr/src/tensorrt/bin/trtexec",
        "--onnx=out/model.int8.onnx",
        "--saveEngine=out/model.engine",
        "--int8",
        "--fp16",
        "--minShapes=input:1x3x32x32",
        "--optShapes=input:1x3x32x32",
        "--maxShapes=input:1x3x32x32",
    ]


def test_dynamic_batch_workspace_and_dla() -> None:
    argv = trtexec_command(
        "trtexec",
        "m.int8.onnx",
        "m.engine",
        "int8",
        batch=BatchSpec.parse("dynamic:1,8,64"),
        workspace_mib=256,
        dla_core=1,
        trt_version="8.5.2",
    )
    assert argv[3:] == [
        "--int8",
        "--fp16",
        "--memPoolSize=workspace:256M",
        "--minShapes=input:1x3x32x32",
        "--optShapes=input:8x3x32x32",
        "--maxShapes=input:64x3x32x32",
        "--useDLACore=1",
        "--allowGPUFallback",
    ]


def test_fp16_static_onnx_takes_no_shapes_and_old_trtexec_gets_workspace() -> None:
    argv = trtexec_command(
        "trtexec", "m.onnx", "m.engine", "fp16", dynamic_input=False, workspace_mib=128, trt_version="8.2.1"
    )
    assert argv == ["trtexec", "--onnx=m.onnx", "--saveEngine=m.engine", "--fp16", "--workspace=128"]


def test_strongly_typed_sets_no_precision_flags() -> None:
    argv = trtexec_command("trtexec", "m.int8.onnx", "m.engine", "int8", dynamic_input=False, strongly_typed=True)
    assert argv == ["trtexec", "--onnx=m.int8.onnx", "--saveEngine=m.engine", "--stronglyTyped"]


def test_paths_with_spaces_stay_one_argument() -> None:
    argv = trtexec_command("trtexec", "my models/m.int8.onnx", "out dir/m.engine", "int8", input_name="images")
    assert "--onnx=my models/m.int8.onnx" in argv and "--saveEngine=out dir/m.engine" in argv
    assert "--minShapes=images:1x3x32x32" in argv


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, (1, 1, 1)),
        ("4", (4, 4, 4)),
        ("dynamic", (1, 8, 64)),
        ("dynamic:1,8,32", (1, 8, 32)),
        ("dynamic 2,4,8", (2, 4, 8)),
        ("1,16,128", (1, 16, 128)),
        ((1, 2, 3), (1, 2, 3)),
        (None, (1, 1, 1)),
    ],
)
def test_batch_spec_parse(value: object, expected: tuple[int, int, int]) -> None:
    spec = BatchSpec.parse(value)  # type: ignore[arg-type]
    assert (spec.min, spec.opt, spec.max) == expected
    assert spec.dynamic == (expected[0] != expected[2])


@pytest.mark.parametrize("value", ["0", "dynamic:8,4,16", "1,2", "big", True, (1, 2)])
def test_batch_spec_rejects(value: object) -> None:
    with pytest.raises(InputError):
        BatchSpec.parse(value)  # type: ignore[arg-type]


def test_rebuild_command_round_trips_options() -> None:
    cmd = rebuild_command("/d/m.int8.onnx", "/d/m engine.engine", "int8", 256, BatchSpec(1, 8, 64), 0)
    assert cmd == (
        "mdnet-deploy compile /d/m.int8.onnx --target tensorrt --precision int8 --workspace 256 "
        "--batch dynamic:1,8,64 --dla 0 -o '/d/m engine.engine' --force"
    )


def _exe(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_find_trtexec_env_path_and_jetpack_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.delenv("MDNET_DEPLOY_TRTEXEC", raising=False)
    jetpack = _exe(tmp_path / "usr_src_trtexec")
    monkeypatch.setattr(_sys, "TRTEXEC_LOCATIONS", (str(tmp_path / "missing"),))
    assert find_trtexec() is None
    monkeypatch.setattr(_sys, "TRTEXEC_LOCATIONS", (str(jetpack),))
    assert find_trtexec() == jetpack
    on_path = _exe(bindir / "trtexec")
    assert find_trtexec() == on_path
    override = _exe(tmp_path / "my-trtexec")
    monkeypatch.setenv("MDNET_DEPLOY_TRTEXEC", str(override))
    assert find_trtexec() == override
    monkeypatch.setenv("MDNET_DEPLOY_TRTEXEC", str(tmp_path / "nope"))
    assert find_trtexec() is None  # an explicit override that is wrong is not silently replaced
    assert os.access(on_path, os.X_OK)
