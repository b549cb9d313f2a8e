"""Refusing a foreign engine before TensorRT sees it; probing this machine (no TensorRT needed)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from mdnet_deploy.artifact import ArtifactMeta, TensorSpec, write_meta
from mdnet_deploy.errors import ArtifactError, UnavailableError
from mdnet_deploy.runtimes.engine_meta import (
    BatchSpec,
    check_engine_compat,
    probe_target,
    read_l4t_release,
    rebuild_command,
    same_tensorrt,
)
from mdnet_deploy.runtimes.tensorrt import TensorRTRunner

REBUILD = rebuild_command("/models/m.int8.onnx", "/models/m.engine", "int8", batch=BatchSpec(1, 8, 64))
ORIN_85 = {"tensorrt": "8.5.2", "gpu": "Orin", "compute_capability": "8.7", "build": {"command": REBUILD}}


def test_same_target_passes() -> None:
    check_engine_compat(ORIN_85, {"tensorrt": "8.5.2.2", "gpu": "Orin (nvgpu)", "compute_capability": "8.7"})
    check_engine_compat(ORIN_85, {"tensorrt": "8.5.2"})  # GPU unknown here: TensorRT has the last word
    check_engine_compat(None, {"tensorrt": "10.3.0"})  # no sidecar target: nothing to compare


def test_other_tensorrt_version_is_refused_with_both_versions_and_the_command() -> None:
    here = {"tensorrt": "10.3.0", "gpu": "Orin", "compute_capability": "8.7"}
    with pytest.raises(ArtifactError) as info:
        check_engine_compat(ORIN_85, here, engine="/models/m.engine")
    msg = str(info.value)
    assert "\n" not in msg
    assert "TensorRT 8.5.2" in msg and "TensorRT 10.3.0" in msg and "different TensorRT version" in msg
    assert msg.endswith(REBUILD)
    assert REBUILD == (
        "mdnet-deploy compile /models/m.int8.onnx --target tensorrt --precision int8 "
        "--batch dynamic:1,8,64 -o /models/m.engine --force"
    )


def test_other_gpu_is_refused() -> None:
    here = {"tensorrt": "8.5.2.2", "gpu": "NVIDIA GeForce RTX 3060", "compute_capability": "8.6"}
    with pytest.raises(ArtifactError) as info:
        check_engine_compat(
            ORIN_85, here, rebuild="mdnet-deploy compile x.onnx --target tensorrt --precision int8 -o x.engine --force"
        )
    msg = str(info.value)
    assert "on Orin (compute 8.7)" in msg and "on NVIDIA GeForce RTX 3060 (compute 8.6)" in msg
    assert "different GPU" in msg and "TensorRT version" not in msg.split("(different")[1].split(")")[0]
    assert msg.endswith("mdnet-deploy compile x.onnx --target tensorrt --precision int8 -o x.engine --force")


def test_same_compute_capability_other_gpu_name_is_refused() -> None:
    built = {"tensorrt": "10.3.0", "gpu": "NVIDIA A10", "compute_capability": "8.6"}
    with pytest.raises(ArtifactError, match="different GPU"):
        check_engine_compat(
            built, {"tensorrt": "10.3.0", "gpu": "NVIDIA GeForce RTX 3090", "compute_capability": "8.6"}
        )


def test_both_differ() -> None:
    with pytest.raises(ArtifactError, match="different TensorRT version and GPU"):
        check_engine_compat(ORIN_85, {"tensorrt": "8.6.2", "gpu": "Xavier", "compute_capability": "7.2"})


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("8.5.2.2", "8.5.2", True),
        ("8.5.2", "8.5.3", False),
        ("10.3.0", "10.3.0.26", True),
        ("8.6.1", "10.3.0", False),
        ("", "8.5", False),
    ],
)
def test_version_comparison(a: str, b: str, same: bool) -> None:
    assert same_tensorrt(a, b) is same


@pytest.mark.parametrize(
    ("line", "l4t", "jetpack"),
    [
        (
            "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022",
            "32.7.1",
            "4.6.1",
        ),
        (
            "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023",
            "35.4.1",
            "5.1.2",
        ),
        (
            "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, DATE: Mon May  6 17:34:21 UTC 2024",
            "36.3.0",
            "6.0",
        ),
        ("# R99 (release), REVISION: 1.0, GCID: 1, BOARD: x, EABI: aarch64, DATE: -", "99.1.0", None),
    ],
)
def test_l4t_release(tmp_path: Path, line: str, l4t: str, jetpack: str | None) -> None:
    (tmp_path / "nv_tegra_release").write_text(line + "\n")
    release = read_l4t_release(tmp_path)  # the etc folder itself
    assert release is not None and release["l4t"] == l4t and release.get("jetpack") == jetpack


def test_l4t_release_from_the_etc_root_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # MDNET_DEPLOY_ETC_ROOT is the etc folder itself, for devices/ and the engine target alike.
    (tmp_path / "nv_tegra_release").write_text(
        "# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic, EABI: aarch64\n"
    )
    monkeypatch.setenv("MDNET_DEPLOY_ETC_ROOT", str(tmp_path))
    assert read_l4t_release() == {"l4t": "36.4.3", "jetpack": "6.2", "l4t_board": "generic"}


def test_probe_target_off_jetson(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDNET_DEPLOY_ETC_ROOT", str(tmp_path))
    monkeypatch.setenv("MDNET_DEPLOY_SYSFS_ROOT", str(tmp_path))
    monkeypatch.setenv("MDNET_DEPLOY_PROC_ROOT", str(tmp_path))
    assert read_l4t_release() is None
    target = probe_target("10.3.0", gpu={"gpu": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"})
    assert target["tensorrt"] == "10.3.0" and target["compute_capability"] == "9.0"
    assert "l4t" not in target and "board" not in target


def test_probe_gpu_with_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA GeForce RTX 3060, 8.6'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("MDNET_DEPLOY_NVIDIA_SMI", str(smi))
    monkeypatch.setitem(sys.modules, "cuda", None)  # cuda-python absent: fall back to nvidia-smi
    from mdnet_deploy.runtimes.engine_meta import gpu_info

    assert gpu_info() == {"gpu": "NVIDIA GeForce RTX 3060", "compute_capability": "8.6", "gpu_source": "nvidia-smi"}


def test_unavailable_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    ok, why = TensorRTRunner.available()
    assert not ok
    assert why.startswith("TensorRT Python bindings not importable: ")
    assert "pip install 'mdnet-deploy[tensorrt]'" in why and "--system-site-packages" in why
    runner = TensorRTRunner("m.engine", ArtifactMeta(format="engine"))
    with pytest.raises(UnavailableError, match="not importable"):
        runner.open()


def _engine_with_sidecar(tmp_path: Path, target: dict[str, Any]) -> Path:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not really an engine")
    meta = ArtifactMeta(
        format="engine",
        precision="int8",
        num_classes=10,
        input=TensorSpec(name="input", shape=["batch", 3, 32, 32]),
        parent={"path": "/work/out/m.int8.onnx", "sha256": "0" * 64, "bytes": 1},
        target=target,
    )
    write_meta(engine, meta)
    return engine
