"""Keep every device test away from the real machine's /sys, /proc and tools."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Point every OS boundary at empty places so no test sees the real machine."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("MDNET_DEPLOY_SYSFS_ROOT", str(empty / "sys"))
    monkeypatch.setenv("MDNET_DEPLOY_PROC_ROOT", str(empty / "proc"))
    monkeypatch.setenv("MDNET_DEPLOY_ETC_ROOT", str(empty / "etc"))
    monkeypatch.setenv("MDNET_DEPLOY_TEGRASTATS", str(empty / "no-tegrastats"))
    monkeypatch.setenv("MDNET_DEPLOY_VCGENCMD", str(empty / "no-vcgencmd"))
    monkeypatch.setenv("MDNET_DEPLOY_NVPMODEL", str(empty / "no-nvpmodel"))
    monkeypatch.delenv("MDNET_DEPLOY_EMULATED", raising=False)
    for key in list(os.environ):
        if key.startswith("QEMU"):
            monkeypatch.delenv(key)
    # No real NVML either, except for the tests marked gpu: those exist to read the real sensor.
    if request.node.get_closest_marker("gpu") is None:
        monkeypatch.setitem(sys.modules, "pynvml", None)


@pytest.fixture
def sysfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty sysfs root the test fills with the layout it needs."""
    root = tmp_path / "sys"
    root.mkdir()
    monkeypatch.setenv("MDNET_DEPLOY_SYSFS_ROOT", str(root))
    return root
