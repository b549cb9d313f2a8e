"""TensorRT per-layer timings: the bindings' IProfiler, or ``trtexec --exportProfile`` where only trtexec exists.

With the Python bindings, an ``IProfiler`` attached to the execution context
receives every layer's time after each call (enqueue included: TensorRT
reports them when the stream is synchronised, which the runner does). On a
Jetson whose venv cannot see JetPack's bindings, ``trtexec --loadEngine
--exportProfile`` writes the same per-layer table as JSON. Layer names
derive from the ONNX node names (``/a/Conv + /a/Relu``); the engine must not
have been built with ``--profilingVerbosity=none``.

Standard library only at import time (the device side imports it).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import UnavailableError
from ..reporting.profile import SKIP_FIRST_RUNS, from_layer_times, parse_trtexec_profile

SOURCE_BINDINGS = "TensorRT IProfiler (per-layer times reported after each call)"


def make_profiler(trt: Any) -> Any:
    """An ``IProfiler`` that keeps every reported time per layer name (ms)."""

    class _LayerTimes(trt.IProfiler):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.times: dict[str, list[float]] = {}

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.times.setdefault(str(layer_name), []).append(float(ms))

    return _LayerTimes()


def profile_context(trt: Any, context: Any, run: Callable[[], Any], runs: int) -> dict[str, Any]:
    """Attach a profiler to ``context``, call ``run`` ``runs`` (+ warm-up) times, return the profile."""
    profiler = make_profiler(trt)
    context.profiler = profiler
    for _ in range(runs + SKIP_FIRST_RUNS):
        run()
    if not profiler.times:
        raise UnavailableError("TensorRT reported no layer times; rebuild the engine without --profilingVerbosity=none")
    return from_layer_times(profiler.times, "tensorrt", SOURCE_BINDINGS)


def trtexec_profile_argv(
    trtexec: str | os.PathLike[str],
    engine: str | os.PathLike[str],
    profile_json: str | os.PathLike[str],
    iterations: int = 50,
    shapes: str | None = None,
) -> list[str]:
    """The trtexec command that times each layer of ``engine`` and writes them to ``profile_json``.

    ``--separateProfileRun`` keeps the profiled run apart from the timed one
    (the profiler slows every layer down); ``--dumpProfile`` is what turns
    the per-layer timing on. ``shapes`` (``input:1x3x32x32``) is needed for
    a dynamic-batch engine.
    """
    argv = [
        str(trtexec),
        f"--loadEngine={engine}",
        f"--iterations={int(iterations)}",
        "--duration=0",
        "--warmUp=100",
        "--dumpProfile",
        "--separateProfileRun",
        f"--exportProfile={profile_json}",
    ]
    if shapes:
        argv.append(f"--shapes={shapes}")
    return argv


def profile_with_trtexec(
    trtexec: str | os.PathLike[str],
    engine: str | os.PathLike[str],
    iterations: int = 50,
    shapes: str | None = None,
    timeout: float = 600.0,
    runner: Callable[[Sequence[str]], Any] | None = None,
) -> dict[str, Any]:
    """Run trtexec on ``engine`` with per-layer profiling and parse what it exported."""
    with tempfile.TemporaryDirectory(prefix="mdnet-trtexec-profile-") as tmp:
        out = Path(tmp) / "profile.json"
        argv = trtexec_profile_argv(trtexec, engine, out, iterations, shapes)
        try:
            proc = runner(argv) if runner is not None else _run(argv, timeout)
        except FileNotFoundError:
            raise UnavailableError(f"trtexec not found at {trtexec}; give its path with MDNET_DEPLOY_TRTEXEC") from None
        except subprocess.TimeoutExpired:
            raise UnavailableError(f"trtexec did not finish profiling within {timeout:.0f} s") from None
        if getattr(proc, "returncode", 0) != 0 or not out.exists():
            tail = (getattr(proc, "stdout", "") or "").strip().splitlines()[-1:] or ["no output"]
            raise UnavailableError(f"trtexec could not profile {Path(engine).name}: {tail[0]}")
        profile = parse_trtexec_profile(out.read_text(encoding="utf-8", errors="replace"))
    profile["source"] = "trtexec --exportProfile"
    return profile


def _run(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
