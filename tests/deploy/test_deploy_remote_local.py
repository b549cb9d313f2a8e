"""``deploy --device rpi --host`` through the remote code path, with this machine as the "device".

The SSH session is the LocalSession of tests/remote (commands run here from
the same argument lists, copies are file copies); the device venv is
``.venv-device`` (numpy and LiteRT, no torch, no onnx), so the candidates are
benched by the real device-side bench with the uploaded wheel, exactly as on
a board. Timings here mean nothing for a Pi: the choice uses ``--objective size``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mdnet_deploy.deploy.core import deploy
from tests.helpers.deploy import config
from tests.remote.conftest import LocalSession

pytestmark = pytest.mark.timeout(900)
REPO = Path(__file__).resolve().parents[2]
DEVICE_PY = REPO / ".venv-device" / "bin" / "python"


def on_device(device_root: Path) -> dict:
    """What both deploys here change: a quicker loop, the choice by size, the LocalSession's work folder."""
    return dict(
        warmup="1", iterations=5, objective="size", remote_dir=str(device_root), known_hosts=None, power_meter="none"
    )


@pytest.fixture
def device_root(tmp_path: Path) -> Path:
    if not DEVICE_PY.is_file():
        pytest.skip(f"{DEVICE_PY} missing: 'make device-venv' builds the torch-free device venv")
    root = tmp_path / "device-root"
    venv_bin = root / "mdnet-venv-rpi" / "bin"
    venv_bin.mkdir(parents=True)
    py = venv_bin / "python"
    py.write_text(f'#!/bin/sh\nexec "{DEVICE_PY}" "$@"\n')
    py.chmod(0o755)
    LocalSession.instances = []
    LocalSession.fail_put_after = None
    return root


def test_rpi_deploy_over_the_remote_path_chooses_on_the_devices_rows(tiny_ckpt, device_root, tmp_path):
    out = tmp_path / "out"
    cfg = config(tiny_ckpt, out, device="rpi", host="pi@127.0.0.1:2222", **on_device(device_root))
    lines: list[str] = []
    result = deploy(cfg, progress=lines.append, remote_extra={"session_factory": LocalSession})
    (d,) = result.devices
    assert d.device.label == "rpi" and d.device.target.address == "pi@127.0.0.1:2222"
    assert [c.spec.name for c in d.candidates] == ["tflite-fp32", "tflite-fp16", "tflite-int8"]
    for c in d.candidates:
        assert c.row is not None and c.row["status"] != "failed", c.row
        assert c.row["remote"]["target"] == "pi@127.0.0.1:2222"
        assert c.row["runtime"]["name"] == "tflite" and c.row["accuracy"]["n"] == 40
    # The device ran the uploaded wheel: the command line went through the session.
    assert any("mdnet_deploy bench --device rpi" in cmd for s in LocalSession.instances for cmd in s.commands)
    within = [c for c in d.candidates if d.choice.verdict(c.spec.name).outcome in ("chosen", "lost")]
    smallest = min(within, key=lambda c: c.built.path.stat().st_size)
    assert d.choice.chosen == smallest.spec.name and d.choice.reference == "tflite-fp32"
    assert d.best == out / "rpi" / "best.tflite" and d.best.read_bytes() == smallest.built.path.read_bytes()
    doc = json.loads((out / "deploy.json").read_text())
    assert doc["devices"][0]["target"] == "pi@127.0.0.1:2222"
    assert sorted(p.name for p in device_root.iterdir()) == ["mdnet-venv-rpi"]  # the device's work folder is gone


def test_a_failing_device_gets_failed_rows_while_the_other_finishes(tiny_ckpt, device_root, tmp_path):
    inventory = tmp_path / "devices.yaml"
    inventory.write_text(
        "all:\n  hosts:\n"
        "    pi-a: {ansible_host: 127.0.0.1, ansible_port: 2222, ansible_user: pi, mdnet_device: rpi}\n"
        "    orin-1: {ansible_host: 127.0.0.2, ansible_user: nvidia, mdnet_device: jetson}\n"
    )
    out = tmp_path / "out"
    cfg = config(tiny_ckpt, out, device="rpi", inventory=inventory, candidates=(), **on_device(device_root))
    result = deploy(cfg, remote_extra={"session_factory": LocalSession})
    by_label = {d.device.label: d for d in result.devices}
    assert set(by_label) == {"pi-a", "orin-1"} and not result.ok
    pi, orin = by_label["pi-a"], by_label["orin-1"]
    assert pi.choice.chosen is not None and pi.best == out / "pi-a" / "best.tflite"
    # The Jetson has no device venv (no --setup): every engine build failed, with the reason, and nothing was chosen.
    assert [c.spec.name for c in orin.candidates] == ["trt-fp16", "trt-int8"]
    for c in orin.candidates:
        v = orin.choice.verdict(c.spec.name)
        assert v.outcome == "failed" and "venv" in v.reason and "--setup" in v.reason
    assert orin.choice.chosen is None and orin.best is None and not list((out / "orin-1").glob("best*"))
    doc = json.loads((out / "deploy.json").read_text())
    assert [d["device"] for d in doc["devices"]] == ["pi-a", "orin-1"]
