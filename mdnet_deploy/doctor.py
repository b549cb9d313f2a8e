"""What works on this machine and how to fix the rest: the data behind ``mdnet-deploy doctor``.

Runtimes (which backends import here, their versions, and for each one that
does not work why and how to fix it), power meters, the install, and on a
Jetson the TensorRT block. Each backend is imported only to check it, so the
doctor runs on a bare device. The CLI draws the tables; nothing here prints.
"""

from __future__ import annotations

from typing import Any

from .devices import doctor_meters, select_meter
from .devices.environment import capture_environment
from .runtimes.registry import RUNTIMES, choose_runtime, doctor_runtimes


def doctor_report(kind: str) -> dict[str, Any]:
    """The whole report for a ``kind`` device: install, environment, runtimes, power meters (+ TensorRT on Jetson)."""
    from .installation import describe_installation

    report: dict[str, Any] = {
        "install": describe_installation(),
        "device": capture_environment(kind),
        "runtimes": runtime_report(kind),
        "power_meters": power_meter_report(kind),
    }
    if kind == "jetson":
        from .export.tensorrt.build import doctor_report as tensorrt_report

        report["tensorrt"] = tensorrt_report()
    return report


def runtime_report(kind: str) -> dict[str, Any]:
    """Every runtime's status on a ``kind`` device and what ``--runtime auto`` picks per format."""
    rows = doctor_runtimes(kind)
    for row in rows:
        if row["name"] == "onnxruntime" and row["ok"]:
            row["detail"] = _ort_providers(kind)
    auto: dict[str, Any] = {}
    for fmt in sorted({f for spec in RUNTIMES.values() for f in spec.formats}):
        try:
            auto[fmt] = {"runtime": choose_runtime(fmt, kind), "reason": None}
        except Exception as exc:  # UnavailableError: the reason is the report
            auto[fmt] = {"runtime": None, "reason": str(exc)}
    return {"kind": kind, "runtimes": rows, "auto": auto}


def _ort_providers(kind: str) -> str | None:
    try:
        import onnxruntime as ort

        have = list(ort.get_available_providers())
    except Exception:  # the version check passed; a provider query failing is not worth a crash
        return None
    text = "providers: " + ", ".join(have)
    if kind == "cuda" and "CUDAExecutionProvider" not in have:
        text += " (no CUDA provider: pip install onnxruntime-gpu for --device cuda)"
    return text


def power_meter_report(kind: str) -> dict[str, Any]:
    """Every meter's status on a ``kind`` device and what ``--power-meter auto`` picks."""
    rows = doctor_meters(kind)
    meter, why = select_meter("auto", kind)
    return {"kind": kind, "meters": rows, "auto": meter.name, "auto_reason": why}
