"""The four device kinds: which power meters and runtimes each prefers.

``bench --device KIND`` uses the meter order for ``--power-meter auto`` and
the runtime order when no runtime is named. Runtimes are listed by the
names the runners register (runtimes/); options a kind needs for a runtime
(onnxruntime's CUDA provider) travel in ``runtime_options``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import InputError
from . import _sys


@dataclass(frozen=True)
class DeviceProfile:
    kind: str
    description: str
    #: power meters tried in this order by ``auto``
    meters: tuple[str, ...]
    #: runtimes in order of preference
    runtimes: tuple[str, ...]
    #: extra options per runtime, passed to its runner
    runtime_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


PROFILES: dict[str, DeviceProfile] = {
    "jetson": DeviceProfile(
        kind="jetson",
        description="NVIDIA Jetson (JetPack 4-6): on-module INA3221 monitors, TensorRT",
        meters=("ina3221", "tegrastats"),
        runtimes=("tensorrt", "onnxruntime"),
    ),
    "rpi": DeviceProfile(
        kind="rpi",
        description="Raspberry Pi (aarch64): LiteRT interpreter; PMIC power on the Pi 5 only",
        meters=("pmic",),
        runtimes=("tflite", "onnxruntime"),
    ),
    "host": DeviceProfile(
        kind="host",
        description="x86-64 or ARM workstation CPU: RAPL package energy where readable",
        meters=("rapl",),
        runtimes=("onnxruntime", "tflite", "torch"),
    ),
    "cuda": DeviceProfile(
        kind="cuda",
        description="Workstation with an NVIDIA GPU: NVML board energy, TensorRT or ONNX Runtime's CUDA provider",
        meters=("nvml", "rapl"),
        runtimes=("tensorrt", "onnxruntime", "torch"),
        runtime_options={
            "onnxruntime": {"providers": ("CUDAExecutionProvider", "CPUExecutionProvider")},
            "torch": {"device": "cuda"},
        },
    ),
}

KINDS: tuple[str, ...] = tuple(PROFILES)


def get_profile(kind: str) -> DeviceProfile:
    try:
        return PROFILES[kind]
    except KeyError:
        raise InputError(f"unknown device kind '{kind}'; choose one of {', '.join(KINDS)}") from None


def detect_kind(sysfs_root: str | None = None, proc_root: str | None = None, etc_root: str | None = None) -> str:
    """Best guess of this machine's kind (jetson, rpi, cuda, host); never raises."""
    model = (_sys.device_tree_model(proc_root, sysfs_root) or "").lower()
    if "jetson" in model or "nvidia" in model or (_sys.etc_root(etc_root) / "nv_tegra_release").exists():
        return "jetson"
    if "raspberry pi" in model:
        return "rpi"
    # The NVIDIA kernel driver publishes its version here when a GPU is usable.
    if (_sys.proc_root(proc_root) / "driver" / "nvidia" / "version").exists() or os.path.exists("/dev/nvidiactl"):
        return "cuda"
    return "host"
