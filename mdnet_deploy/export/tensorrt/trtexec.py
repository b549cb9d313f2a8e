"""``trtexec``: find it, build its command line, run it, read its summary.

On Jetson the TensorRT Python bindings live in JetPack's system Python and
are invisible from an ordinary virtual environment, while ``trtexec`` sits
in ``/usr/src/tensorrt/bin``. So the engine build can fall back to it, and
``bench`` can read trtexec's own performance summary.

Commands are argument lists, never shell strings: paths with spaces or
quotes must reach trtexec intact. ``shlex.join`` is used only to *show* a
command to a person.

Standard library only (the device side imports it).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any, Sequence

from ...devices._sys import ENV_TRTEXEC as TRTEXEC_ENV
from ...devices._sys import TRTEXEC_LOCATIONS as DEFAULT_LOCATIONS
from ...devices._sys import find_trtexec
from ...errors import ConversionError, InputError
from ...runtimes.engine_meta import BatchSpec
from .policy import plan_build

__all__ = ["DEFAULT_LOCATIONS", "TRTEXEC_ENV", "find_trtexec", "trtexec_command", "parse_trtexec_summary"]


def decode_version_code(code: int | str) -> str:
    """trtexec's ``[TensorRT v8502]`` -> ``8.5.2``; ``v101600`` -> ``10.16.0``.

    NV_TENSORRT_VERSION is MAJOR*1000+MINOR*100+PATCH up to 8.x and
    MAJOR*10000+MINOR*100+PATCH from 10.0 on.
    """
    v = int(code)
    if v >= 100000:
        return f"{v // 10000}.{(v // 100) % 100}.{v % 100}"
    return f"{v // 1000}.{(v // 100) % 10}.{v % 100}"


def _version_tuple(version: str | None) -> tuple[int, ...] | None:
    parts = re.findall(r"\d+", version or "")
    return tuple(int(p) for p in parts[:3]) if parts else None


def trtexec_command(
    trtexec: str | os.PathLike[str],
    onnx: str | os.PathLike[str],
    engine: str | os.PathLike[str],
    precision: str,
    *,
    input_name: str = "input",
    input_chw: Sequence[int] = (3, 32, 32),
    batch: BatchSpec | None = None,
    dynamic_input: bool = True,
    workspace_mib: int | None = None,
    dla_core: int | None = None,
    strongly_typed: bool = False,
    trt_version: str | None = None,
) -> list[str]:
    """The argument list that builds ``engine`` from ``onnx`` with trtexec.

    ``dynamic_input``: whether the ONNX input has a symbolic batch dimension;
    shapes are passed only then (trtexec rejects shapes for static inputs).
    ``trt_version`` picks the precision flags (none on TensorRT 11, which
    builds strongly typed networks only) and ``--workspace=N`` for trtexec
    older than 8.4, which has no ``--memPoolSize``. Unknown: 8.x/10.x flags.
    """
    batch = batch or BatchSpec()
    argv = [str(trtexec), f"--onnx={onnx}", f"--saveEngine={engine}"]
    # The same plan as the Python builder: weak typing with --int8/--fp16 before 11,
    # --stronglyTyped on 10.x when asked, nothing on 11 (strong is all there is).
    plan = plan_build(
        trt_version, precision, has_qdq=precision == "int8", strongly_typed=True if strongly_typed else None
    )
    argv += list(plan.trtexec_flags)
    if workspace_mib:
        old = _version_tuple(trt_version)
        if old is not None and old < (8, 4):
            argv.append(f"--workspace={int(workspace_mib)}")
        else:
            argv.append(f"--memPoolSize=workspace:{int(workspace_mib)}M")
    if dynamic_input:
        chw = "x".join(str(d) for d in input_chw)
        argv += [
            f"--minShapes={input_name}:{batch.min}x{chw}",
            f"--optShapes={input_name}:{batch.opt}x{chw}",
            f"--maxShapes={input_name}:{batch.max}x{chw}",
        ]
    if dla_core is not None:
        argv += [f"--useDLACore={int(dla_core)}", "--allowGPUFallback"]
    return argv


_DLA_FALLBACK = (
    # 8.6 / 10.x: "Layer 'conv1' (CONVOLUTION): Unsupported on DLA. Switching this layer's device type to GPU."
    re.compile(r"Layer '(.+?)' \([A-Z_]+\): Unsupported on DLA"),
    # 8.x: "Default DLA is enabled but layer conv1 is not supported on DLA, falling back to GPU."
    re.compile(r"Default DLA is enabled but layer (.+?) is not (?:supported|running) on DLA, falling back to GPU"),
)


def parse_gpu_fallback(text: str) -> list[str]:
    """The layers a DLA build sent to the GPU, from trtexec's build log (in order, once each)."""
    found: list[str] = []
    for line in text.splitlines():
        for pattern in _DLA_FALLBACK:
            m = pattern.search(line)
            if m and m.group(1) not in found:
                found.append(m.group(1))
    return found


def probe_trtexec_version(trtexec: str | os.PathLike[str]) -> str | None:
    """The TensorRT version of a trtexec, from the banner it prints for ``--help``; None if unknown."""
    try:
        proc = subprocess.run(
            [str(trtexec), "--help"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_device_info(proc.stdout or "").get("tensorrt")


def run_trtexec(
    argv: Sequence[str], log_path: str | os.PathLike[str] | None = None, timeout: float | None = None
) -> str:
    """Run trtexec; return its combined output, or raise ConversionError with its first error line."""
    try:
        proc = subprocess.run(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise ConversionError(
            f"trtexec not found at {argv[0]}; give its path with --trtexec or set {TRTEXEC_ENV}"
        ) from None
    except PermissionError:
        raise ConversionError(
            f"{argv[0]} is not executable; fix its permissions (chmod +x) or give another --trtexec"
        ) from None
    except subprocess.TimeoutExpired:
        raise ConversionError(
            f"trtexec did not finish within {timeout:.0f} s; build on a less busy device or raise the timeout"
        ) from None
    output = proc.stdout or ""
    if proc.returncode != 0:
        saved = ""
        if log_path is not None:
            try:
                Path(log_path).write_text(output)
                saved = f"; full log in {log_path}"
            except OSError:
                pass
        raise ConversionError(f"trtexec failed (exit {proc.returncode}): {_first_error(output)}{saved}")
    return output


def _first_error(output: str) -> str:
    """The line a person needs: the first [E]/[F] line, else one mentioning an error, else the last."""
    raw = output.splitlines()
    pairs = [(r, _strip_prefixes(r)) for r in raw if _strip_prefixes(r)]
    for pattern in (r"\[(E|F)\]", r"\berror\b"):  # "errorOnTimingCacheMiss: Disabled" is not an error
        for r, text in pairs:
            if re.search(pattern, r, re.IGNORECASE):
                return text
    return pairs[-1][1] if pairs else "no output"


# -- parsing -----------------------------------------------------------------
_PREFIX = re.compile(r"^\s*(?:\[[^\]]*\]\s*)*")
_STAT = re.compile(r"(min|max|mean|median|percentile\((\d+(?:\.\d+)?)%\))\s*=\s*([-+0-9.eE]+)\s*(ms|us|s)\b")
_UNIT = {"ms": 1.0, "us": 1e-3, "s": 1e3}
# Summary line label -> key in the parsed result.
_STAT_LINES = {
    "latency": "host_latency_ms",
    "end-to-end host latency": "end_to_end_host_latency_ms",
    "enqueue time": "enqueue_ms",
    "h2d latency": "h2d_ms",
    "gpu compute time": "gpu_compute_ms",
    "d2h latency": "d2h_ms",
}
_TOTALS = {"total host walltime": "total_host_walltime_s", "total gpu compute time": "total_gpu_compute_s"}
LATENCY_SOURCES = {
    "host": ("host_latency_ms", "host latency (H2D + GPU compute + D2H per query)"),
    "gpu": ("gpu_compute_ms", "GPU compute time (kernels only, no transfers)"),
}


def _strip_prefixes(line: str) -> str:
    # "[07/02/2026-03:47:08] [I] Throughput: ..." and "[I] Throughput: ..." alike.
    return _PREFIX.sub("", line).strip()


def _stats(rest: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in _STAT.finditer(rest):
        value = float(m.group(3)) * _UNIT[m.group(4)]
        key = m.group(1)
        if m.group(2):
            pct = m.group(2)
            key = "p" + (pct[:-2] if pct.endswith(".0") else pct).replace(".", "_")
        elif key == "median":
            key = "p50"
        out[key] = value
    return out


def parse_device_info(text: str) -> dict[str, str]:
    """TensorRT version, GPU name and compute capability that trtexec printed, where it did."""
    info: dict[str, str] = {}
    code = re.search(r"TensorRT\.trtexec \[TensorRT v(\d+)\]", text)
    if code:
        info["tensorrt"] = decode_version_code(code.group(1))
    for line in text.splitlines():
        line = _strip_prefixes(line)
        m = re.match(r"TensorRT version:\s*([\d.]+)", line)
        if m:
            info["tensorrt"] = m.group(1).strip(".")  # the dotted form is the more precise one
        m = re.match(r"Selected Device:\s*(.+)", line)
        if m:
            info["gpu"] = m.group(1).strip()
        m = re.match(r"Compute Capability:\s*(\d+\.\d+)", line)
        if m:
            info["compute_capability"] = m.group(1)
    return info


def parse_trtexec_summary(text: str, batch: int = 1, prefer: str = "host") -> dict[str, Any]:
    """trtexec's "=== Performance summary ===" -> the bench result's timing fields.

    Handles TensorRT 8.x (``percentile(99%)`` only, an End-to-End line) and
    8.6 / 10.x / 11.x (timestamps, ``percentile(90%/95%/99%)``, version and
    device lines; 11.x prints the same summary lines as 10.x, see
    samples/common/sampleReporting.cpp in NVIDIA/TensorRT).
    ``latency_ms`` is the host latency (H2D + GPU compute + D2H, what a user's
    ``run()`` pays) unless ``prefer="gpu"``; ``latency_source`` says which.
    Every line found is also returned under its own key. trtexec reports no
    standard deviation, so ``std`` is None. ``throughput_ips`` is queries per
    second times ``batch`` (a query is one batch).
    """
    if prefer not in LATENCY_SOURCES:
        raise InputError(f"latency source '{prefer}' is not one of {', '.join(LATENCY_SOURCES)}")
    lines = text.splitlines()
    # The last summary wins: trtexec prints one per inference run.
    starts = [i for i, ln in enumerate(lines) if "=== Performance summary ===" in ln]
    body = lines[starts[-1] + 1 :] if starts else lines
    found: dict[str, Any] = {}
    for raw in body:
        line = _strip_prefixes(raw)
        if line.startswith("===") and found:
            break  # the next section
        label, sep, rest = line.partition(":")
        if not sep:
            continue
        key = label.strip().lower()
        if key == "throughput":
            m = re.search(r"([-+0-9.eE]+)\s*qps", rest)
            if m:
                found["throughput_qps"] = float(m.group(1))
        elif key in _STAT_LINES:
            stats = _stats(rest)
            if stats:
                found[_STAT_LINES[key]] = stats
        elif key in _TOTALS:
            m = re.search(r"([-+0-9.eE]+)\s*s\b", rest)
            if m:
                found[_TOTALS[key]] = float(m.group(1))
    source_key, source_text = LATENCY_SOURCES[prefer]
    chosen = found.get(source_key)
    if chosen is None:
        other = "gpu" if prefer == "host" else "host"
        source_key, source_text = LATENCY_SOURCES[other]
        chosen = found.get(source_key)
    if chosen is None or "throughput_qps" not in found:
        raise InputError(
            "no trtexec performance summary found (expected 'Throughput: ... qps' and 'Latency: min = ...' lines); "
            "pass trtexec's complete output, without --verbose filtering"
        )
    latency = {
        "mean": chosen.get("mean"),
        "std": None,
        "min": chosen.get("min"),
        "p50": chosen.get("p50"),
        "p90": chosen.get("p90"),
        "p99": chosen.get("p99"),
        "max": chosen.get("max"),
    }
    result: dict[str, Any] = {
        "latency_ms": latency,
        "throughput_ips": found["throughput_qps"] * max(int(batch), 1),
        "latency_source": source_text,
        "latency_field": source_key,
        "batch": int(batch),
    }
    result.update(found)
    trace = re.search(r"Timing trace has (\d+) queries over ([-+0-9.eE]+) s", text)
    if trace:
        result["iterations"] = int(trace.group(1))
        result["duration_s"] = float(trace.group(2))
    device = parse_device_info(text)
    result["tensorrt_version"] = device.get("tensorrt")
    if device.get("gpu"):
        result["gpu"] = device["gpu"]
    if device.get("compute_capability"):
        result["compute_capability"] = device["compute_capability"]
    return result
