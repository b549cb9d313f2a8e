"""Which runner opens an artifact on a device, by name, without importing any backend.

Runners are named here with the module that holds them, so choosing one
imports only that module (a Raspberry Pi never imports the torch runner's
module, let alone torch). ``choose_runtime`` picks the first runtime of the
device profile that opens the artifact's format and works here; an explicit
``--runtime`` skips the choice but not the checks, and every refusal says
why and how to fix it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifact import ArtifactMeta
from ..devices.profiles import get_profile
from ..errors import InputError, UnavailableError
from .base import Runner


@dataclass(frozen=True)
class RuntimeSpec:
    name: str
    module: str
    cls: str
    #: formats the runtime opens natively (what ``auto`` considers)
    formats: tuple[str, ...]
    install: str  # how to get it, for messages
    #: the precision the runtime computes in when it differs from the artifact's (result rows report it)
    computes: str | None = None
    #: whether ``auto`` may fall back to it; False: only an explicit --runtime runs it
    auto: bool = True


RUNTIMES: dict[str, RuntimeSpec] = {
    "onnxruntime": RuntimeSpec(
        "onnxruntime",
        "mdnet_deploy.runtimes.onnxruntime",
        "OnnxRuntimeRunner",
        ("onnx",),
        "pip install onnxruntime (onnxruntime-gpu for CUDA)",
    ),
    "tflite": RuntimeSpec(
        "tflite", "mdnet_deploy.runtimes.tflite", "TfliteRunner", ("tflite",), "pip install ai-edge-litert"
    ),
    "tensorrt": RuntimeSpec(
        "tensorrt",
        "mdnet_deploy.runtimes.tensorrt",
        "TensorRTRunner",
        ("engine",),
        "pip install 'mdnet-deploy[tensorrt]' (JetPack ships it on a Jetson)",
    ),
    "torch": RuntimeSpec(
        "torch", "mdnet_deploy.runtimes.torch_runner", "TorchRunner", ("pt",), "pip install 'mdnet-deploy[export]'"
    ),
    # Run .onnx, but only when asked (--runtime openvino[-bf16]): never chosen by auto, so a .onnx row means ONNX
    # Runtime unless it says otherwise.
    "openvino": RuntimeSpec(
        "openvino",
        "mdnet_deploy.runtimes.openvino",
        "OpenVinoRunner",
        ("onnx",),
        "pip install 'mdnet-deploy[openvino]' (x86 hosts)",
        auto=False,
    ),
    "openvino-bf16": RuntimeSpec(
        "openvino-bf16",
        "mdnet_deploy.runtimes.openvino",
        "OpenVinoBf16Runner",
        ("onnx",),
        "pip install 'mdnet-deploy[openvino]' (x86 hosts with AVX512-BF16 or AMX)",
        computes="bf16",
        auto=False,
    ),
}
NAMES: tuple[str, ...] = tuple(RUNTIMES)


def _spec(name: str) -> RuntimeSpec:
    try:
        return RUNTIMES[name]
    except KeyError:
        raise InputError(f"unknown runtime '{name}'; choose auto or one of {', '.join(NAMES)}") from None


def runner_class(name: str) -> type[Runner]:
    """The runner class for ``name``; UnavailableError when its module cannot be imported."""
    spec = _spec(name)
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        if exc.name == spec.module:
            raise UnavailableError(
                f"the {name} runner ({spec.module}) is not part of this mdnet-deploy install; update mdnet-deploy"
            ) from None
        raise UnavailableError(f"the {name} runner cannot be imported ({exc}); {spec.install}") from None
    except ImportError as exc:
        raise UnavailableError(f"the {name} runner cannot be imported ({exc}); {spec.install}") from None
    return getattr(module, spec.cls)


def runtime_available(name: str) -> tuple[bool, str]:
    """(True, version) or (False, why and how to fix); never raises for a known name."""
    try:
        cls = runner_class(name)
    except UnavailableError as exc:
        return False, str(exc)
    try:
        return cls.available()
    except Exception as exc:  # available() should not raise; a broken install might
        return False, f"{name}: availability check failed ({type(exc).__name__}: {exc}); {_spec(name).install}"


def opens(name: str, fmt: str, meta: ArtifactMeta | None = None) -> bool:
    """Whether runtime ``name`` can run an artifact of format ``fmt``.

    The torch runner also runs any exported artifact through the checkpoint
    its metadata records (the PyTorch baseline of that artifact).
    """
    if fmt in _spec(name).formats:
        return True
    if name == "torch" and meta is not None and meta.checkpoint and meta.checkpoint.get("path"):
        return True
    return False


def choose_runtime(fmt: str, kind: str, requested: str = "auto", meta: ArtifactMeta | None = None) -> str:
    """The runtime to use for a ``fmt`` artifact on a ``kind`` device; UnavailableError says why none."""
    profile = get_profile(kind)
    if requested and requested != "auto":
        _spec(requested)
        if not opens(requested, fmt, meta):
            native = [n for n in NAMES if fmt in RUNTIMES[n].formats]
            hint = f"use --runtime {native[0]} or auto" if native else "use an artifact this runtime opens"
            extra = " (and its metadata records no checkpoint)" if requested == "torch" else ""
            raise UnavailableError(f"runtime '{requested}' cannot open a .{fmt} artifact{extra}; {hint}")
        ok, why = runtime_available(requested)
        if not ok:
            raise UnavailableError(why)
        return requested
    # The profile's order first; then any runtime that opens the format, so
    # that e.g. a .pth on a host still finds the torch runner.
    candidates = [n for n in profile.runtimes if fmt in RUNTIMES[n].formats]
    candidates += [n for n in NAMES if fmt in RUNTIMES[n].formats and RUNTIMES[n].auto and n not in candidates]
    if not candidates:
        raise UnavailableError(f"no runtime opens .{fmt} artifacts; give an .onnx, .tflite, .engine or .pth")
    tried = []
    for name in candidates:
        ok, why = runtime_available(name)
        if ok:
            return name
        tried.append(why)
    raise UnavailableError(f"no runtime for .{fmt} works on this {kind} device: {'; '.join(tried)}")


def runner_options(name: str, kind: str) -> dict[str, Any]:
    """Options the device profile adds for this runtime (e.g. CUDA providers)."""
    return dict(get_profile(kind).runtime_options.get(name, {}))


def make_runner(
    name: str, artifact: str | Path, meta: ArtifactMeta, kind: str, threads: int | None = None, **options: Any
) -> Runner:
    """An unopened runner; profile options first, the caller's override them."""
    merged = {**runner_options(name, kind), **options}
    return runner_class(name)(artifact, meta, threads=threads, **merged)


def doctor_runtimes(kind: str, names: Sequence[str] = NAMES) -> list[dict[str, Any]]:
    """Every runtime's status here: ok, version or why not, formats, whether the kind prefers it."""
    preferred = get_profile(kind).runtimes
    ordered = list(preferred) + [n for n in names if n not in preferred]
    rows = []
    for name in ordered:
        ok, why = runtime_available(name)
        rows.append(
            {
                "name": name,
                "ok": bool(ok),
                "version": why if ok else None,
                "reason": None if ok else why,
                "formats": list(RUNTIMES[name].formats),
                "preferred": name in preferred,
                "install": RUNTIMES[name].install,
            }
        )
    return rows


__all__ = [
    "NAMES",
    "RUNTIMES",
    "RuntimeSpec",
    "choose_runtime",
    "doctor_runtimes",
    "make_runner",
    "opens",
    "runner_class",
    "runner_options",
    "runtime_available",
]
