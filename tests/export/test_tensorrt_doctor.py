"""doctor --device jetson: which TensorRT, typing mode, DLA, and what compile will do (a pretend Jetson)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mdnet_deploy.cli import main

FAKE = "#!/bin/sh\necho '&&&& RUNNING TensorRT.trtexec [TensorRT v{code}] [b106] # trtexec --help'\n"


@pytest.fixture
def jetson(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def make(board: str, code: str, release: str) -> None:
        (tmp_path / "etc").mkdir(exist_ok=True)
        (tmp_path / "etc" / "nv_tegra_release").write_text(release + "\n")
        dt = tmp_path / "proc" / "device-tree"
        dt.mkdir(parents=True, exist_ok=True)
        (dt / "model").write_bytes(board.encode() + b"\x00")
        trtexec = tmp_path / "trtexec"
        trtexec.write_text(FAKE.format(code=code))
        trtexec.chmod(0o755)
        monkeypatch.setenv("MDNET_DEPLOY_TRTEXEC", str(trtexec))

    for name, sub in (("ETC", "etc"), ("PROC", "proc"), ("SYSFS", "sys")):
        monkeypatch.setenv(f"MDNET_DEPLOY_{name}_ROOT", str(tmp_path / sub))
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # JetPack's bindings not visible: trtexec tells the version
    return make


def test_jetpack6_orin_nano(jetson) -> None:
    jetson(
        "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
        "100300",
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025",
    )
    res = CliRunner().invoke(main, ["doctor", "--device", "jetson", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output)["tensorrt"]
    assert (r["tensorrt"], r["typing"], r["jetpack"], r["l4t"]) == ("10.3.0", "weak", "6.2", "36.4.3")
    assert r["dla"]["supported"] is False and "has no DLA" in r["dla"]["reason"]
    assert "FP16, INT8" in r["compile"]["int8"] and r["source"].startswith("trtexec at ")


def test_tensorrt_11_agx_orin_text(jetson) -> None:
    jetson(
        "NVIDIA Jetson AGX Orin Developer Kit",
        "110401",
        "# R38 (release), REVISION: 4, GCID: 1, BOARD: generic, EABI: aarch64",
    )
    res = CliRunner().invoke(main, ["doctor", "--device", "jetson"])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "TensorRT 11.4.1 (trtexec at" in out and "strongly typed builds; DLA: yes; l4t 38.4.0" in out
    assert "compile --precision fp16: TensorRT 11.4.1: an FP16 engine from the float model, strongly typed" in out
