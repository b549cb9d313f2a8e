"""What a TensorRT engine is tied to, and the check that refuses a mismatch.

A serialized engine runs only with the TensorRT version and the GPU it was
built for; loading it elsewhere gives, at best, a cryptic error and, on some
Jetson releases, a crash. So every engine's sidecar records a ``target``
(TensorRT version, GPU name, compute capability, JetPack/L4T release) and
the runner compares it with this machine *before* handing the bytes to
TensorRT.

JetPack/L4T and the board come from ``devices`` (one parser for both this
record and the bench environment). Standard library only: the runtime side (a Jetson with nothing but numpy and
JetPack's TensorRT) imports this module.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
from dataclasses import dataclass
from typing import Any, Mapping

from ..devices import _sys
from ..devices.environment import read_l4t_release
from ..errors import ArtifactError, InputError


# -- batch / optimisation profile -------------------------------------------
@dataclass(frozen=True)
class BatchSpec:
    """The batch sizes an engine accepts: min == opt == max for a fixed batch."""

    min: int = 1
    opt: int = 1
    max: int = 1

    def __post_init__(self) -> None:
        if not (1 <= self.min <= self.opt <= self.max):
            raise InputError(
                f"batch sizes must satisfy 1 <= MIN <= OPT <= MAX, got {self.min},{self.opt},{self.max}; "
                "give --batch N or --batch dynamic:MIN,OPT,MAX"
            )

    @property
    def dynamic(self) -> bool:
        return self.min != self.max

    def to_cli(self) -> str:
        return str(self.min) if not self.dynamic else f"dynamic:{self.min},{self.opt},{self.max}"

    def to_dict(self) -> dict[str, int]:
        return {"min": self.min, "opt": self.opt, "max": self.max}

    @classmethod
    def parse(cls, value: BatchSpec | int | str | tuple[int, int, int] | list[int] | None) -> BatchSpec:
        """Accept 4, "4", "dynamic", "dynamic:1,8,64", "dynamic 1,8,64", "1,8,64" or (1, 8, 64)."""
        if value is None:
            return cls()
        if isinstance(value, BatchSpec):
            return value
        if isinstance(value, bool):  # bool is an int; never a batch size
            raise InputError(f"--batch '{value}' is not a batch size; give N or dynamic:MIN,OPT,MAX")
        if isinstance(value, int):
            return cls(value, value, value)
        if isinstance(value, (tuple, list)):
            if len(value) != 3:
                raise InputError(f"--batch needs three sizes MIN,OPT,MAX, got {list(value)}")
            return cls(*(int(v) for v in value))
        text = str(value).strip().lower()
        if text.startswith("dynamic"):
            text = text[len("dynamic") :].lstrip(" :=")
            if not text:
                return cls(1, 8, 64)  # a sensible default range for a 32x32 classifier
        parts = [p for p in re.split(r"[,\s]+", text) if p]
        try:
            sizes = [int(p) for p in parts]
        except ValueError:
            raise InputError(
                f"--batch '{value}' is not N or dynamic:MIN,OPT,MAX (e.g. --batch dynamic:1,8,64)"
            ) from None
        if len(sizes) == 1:
            return cls(sizes[0], sizes[0], sizes[0])
        if len(sizes) == 3:
            return cls(*sizes)
        raise InputError(f"--batch '{value}' is not N or dynamic:MIN,OPT,MAX (e.g. --batch dynamic:1,8,64)")


def rebuild_command(
    onnx: str | os.PathLike[str],
    engine: str | os.PathLike[str],
    precision: str,
    workspace_mib: int | None = None,
    batch: BatchSpec | None = None,
    dla_core: int | None = None,
) -> str:
    """The exact ``mdnet-deploy compile`` line that rebuilds an engine (for messages)."""
    argv = ["mdnet-deploy", "compile", str(onnx), "--target", "tensorrt", "--precision", precision]
    if workspace_mib:
        argv += ["--workspace", str(workspace_mib)]
    if batch is not None and batch != BatchSpec():
        argv += ["--batch", batch.to_cli()]
    if dla_core is not None:
        argv += ["--dla", str(dla_core)]
    argv += ["-o", str(engine), "--force"]
    return shlex.join(argv)


# -- what this machine is -----------------------------------------------------
def cuda_runtime_module() -> Any:
    """cuda-python's runtime module: ``cuda.bindings.runtime`` (12.6+) or ``cuda.cudart`` (older)."""
    try:
        from cuda.bindings import runtime  # type: ignore[import-not-found]

        return runtime
    except ImportError:
        from cuda import cudart  # type: ignore[import-not-found]

        return cudart


def _gpu_from_cuda_python(device: int) -> dict[str, str]:
    rt = cuda_runtime_module()
    result = rt.cudaGetDeviceProperties(device)
    if result[0] != rt.cudaError_t.cudaSuccess:
        return {}
    props = result[1]
    name = props.name
    if isinstance(name, (bytes, bytearray)):
        name = bytes(name).split(b"\x00", 1)[0].decode("utf-8", "replace")
    return {"gpu": str(name).strip(), "compute_capability": f"{props.major}.{props.minor}", "gpu_source": "cuda-python"}


def _gpu_from_nvidia_smi(device: int) -> dict[str, str]:
    smi = _sys.nvidia_smi()
    if smi is None:
        return {}
    # compute_cap is a newer query field; ask for the name alone if it is refused.
    for fields in ("name,compute_cap", "name"):
        status, text = _sys.run_command(
            [smi, f"--id={device}", f"--query-gpu={fields}", "--format=csv,noheader"], timeout=20
        )
        if status is None:
            return {}
        if status == 0 and text.strip():
            parts = [p.strip() for p in text.strip().splitlines()[0].split(",")]
            out = {"gpu": parts[0], "gpu_source": "nvidia-smi"}
            if len(parts) > 1 and re.fullmatch(r"\d+\.\d+", parts[1]):
                out["compute_capability"] = parts[1]
            return out
    return {}


def gpu_info(device: int = 0) -> dict[str, str]:
    """GPU name and compute capability: cuda-python first, nvidia-smi second, else {}.

    Never raises: a missing driver or library only means less in the record.
    """
    for probe in (_gpu_from_cuda_python, _gpu_from_nvidia_smi):
        try:
            found = probe(device)
        except Exception:  # ImportError, driver errors, odd bindings: try the next source
            continue
        if found.get("gpu"):
            return found
    return {}


def probe_target(tensorrt_version: str | None, device: int = 0, gpu: Mapping[str, str] | None = None) -> dict[str, Any]:
    """This machine as an engine target: TensorRT version, GPU, SoC board, JetPack/L4T."""
    target: dict[str, Any] = {"tensorrt": tensorrt_version}
    target.update(gpu if gpu is not None else gpu_info(device))
    model = _sys.device_tree_model()
    if model:
        target["board"] = model
    release = read_l4t_release()
    if release:
        target.update(release)
    target["machine"] = platform.machine()
    target["host"] = platform.node()
    return target


def collecting_logger(trt: Any) -> Any:
    """A TensorRT logger (for the ``trt`` module given) that keeps errors for one-line messages instead of printing.

    Shared by the runner and the builder (which imports it from here: the runtime side never imports export/).
    """

    class _Logger(trt.ILogger):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []
            self.warnings: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(" ".join(str(msg).split()))
            elif severity == trt.ILogger.Severity.WARNING:
                self.warnings.append(" ".join(str(msg).split()))

    return _Logger()


# -- the check ----------------------------------------------------------------
def _version_parts(version: Any) -> list[str]:
    return re.findall(r"\d+", str(version or ""))


def same_tensorrt(built: Any, here: Any) -> bool:
    """Equal on the components both sides have (``8.5.2.2`` from Python vs ``8.5.2`` from trtexec)."""
    a, b = _version_parts(built), _version_parts(here)
    n = min(len(a), len(b), 3)
    return n > 0 and [int(x) for x in a[:n]] == [int(x) for x in b[:n]]


def _norm_gpu(name: Any) -> str:
    # nvidia-smi says "Orin (nvgpu)" where CUDA says "Orin"; names differ in case and an "NVIDIA " prefix.
    text = re.sub(r"\([^)]*\)", " ", str(name or "")).lower()
    text = re.sub(r"^\s*nvidia\s+", "", text)
    return " ".join(text.split())


def _describe(t: Mapping[str, Any]) -> str:
    gpu = t.get("gpu") or "unknown GPU"
    cc = t.get("compute_capability")
    return f"TensorRT {t.get('tensorrt') or 'unknown'} on {gpu}" + (f" (compute {cc})" if cc else "")


def check_engine_compat(
    meta_target: Mapping[str, Any] | None,
    here: Mapping[str, Any],
    rebuild: str | None = None,
    engine: str | os.PathLike[str] | None = None,
) -> None:
    """Raise ArtifactError when an engine built for ``meta_target`` cannot run ``here``.

    Compares the TensorRT version, the compute capability and the GPU name.
    Whatever either side does not know is not compared: TensorRT itself then
    has the last word (and the runner turns its refusal into one line too).
    """
    if not meta_target:
        return
    problems = []
    if (
        meta_target.get("tensorrt")
        and here.get("tensorrt")
        and not same_tensorrt(meta_target["tensorrt"], here["tensorrt"])
    ):
        problems.append("TensorRT version")
    cc_a, cc_b = meta_target.get("compute_capability"), here.get("compute_capability")
    gpu_a, gpu_b = _norm_gpu(meta_target.get("gpu")), _norm_gpu(here.get("gpu"))
    if (cc_a and cc_b and str(cc_a) != str(cc_b)) or (gpu_a and gpu_b and gpu_a != gpu_b):
        problems.append("GPU")
    if not problems:
        return
    if rebuild is None:
        build = meta_target.get("build") or {}
        rebuild = build.get("command") or (
            "mdnet-deploy compile MODEL.int8.onnx --target tensorrt --precision int8 -o MODEL.engine --force"
        )
    what = f"{engine}: " if engine else ""
    raise ArtifactError(
        f"{what}engine was built with {_describe(meta_target)} but this machine has {_describe(here)} "
        f"(different {' and '.join(problems)}); a TensorRT engine only runs with the TensorRT version and GPU "
        f"it was built for, so rebuild it here: {rebuild}"
    )
