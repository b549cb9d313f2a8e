"""OpenVINO runner: the same ONNX file on Intel's CPU runtime (x86 hosts; ``pip install 'mdnet-deploy[openvino]'``).

Measured on the dev machine (docs/BENCHMARKS.md, issue 12), OpenVINO runs
MDNET's CPU-graph ONNX faster than ONNX Runtime runs any form of it, float
or INT8, so ``bench --runtime openvino`` is there to say which runtime a
host should use. It reads the ONNX directly (no conversion step, no second
artifact); ``auto`` still picks ONNX Runtime for ``.onnx`` so results stay
comparable across hosts. Not part of the device-side install.
"""

from __future__ import annotations

from typing import Any

from ..errors import ArtifactError, UnavailableError
from .base import Runner


class OpenVinoRunner(Runner):
    name = "openvino"
    formats = ("onnx",)
    #: OpenVINO's INFERENCE_PRECISION_HINT: f32 computes what the float artifact says
    precision_hint = "f32"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            import openvino as ov
        except ImportError as exc:
            return False, f"openvino is not importable ({exc}); install it with pip install 'mdnet-deploy[openvino]'"
        return True, str(ov.__version__).split("-")[0]

    def open(self) -> None:
        ok, why = self.available()
        if not ok:
            raise UnavailableError(why)
        self._check_precision()
        self.compiled = self._compile(profiling=False)
        self.request = self.compiled.create_infer_request()

    def _config(self, profiling: bool) -> dict[str, Any]:
        # One stream, latency hint: one request at a time, like the other runners are timed. The precision is
        # always set: on CPUs with native bf16 (AVX512-BF16, AMX) OpenVINO would otherwise compute a float
        # artifact in bf16 unasked (logits off by 3e-4 on the test model), which only OpenVinoBf16Runner may do.
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_PRECISION_HINT": self.precision_hint,
        }
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = int(self.threads)
        if profiling:
            config["PERF_COUNT"] = True
        return config

    def _check_precision(self) -> None:
        """Nothing to check for f32; the bf16 runner needs a CPU that computes bf16 natively."""

    def _compile(self, profiling: bool) -> Any:
        import openvino as ov

        core = ov.Core()
        try:
            model = core.read_model(str(self.artifact))
            return core.compile_model(model, "CPU", self._config(profiling))
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own for bad files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArtifactError(f"OpenVINO cannot open {self.artifact}: {first}") from None

    def run(self, native_input: Any) -> Any:
        # infer() returns after the CPU plugin has finished; the output is copied out of the request's buffer.
        return self.request.infer({0: native_input})[self.compiled.outputs[0]].copy()

    def profile(self, native_input: Any, runs: int) -> dict[str, Any]:
        """Per-layer times from OpenVINO's performance counters (``bench --profile``), in a second compiled model."""
        from ..reporting.profile import SKIP_FIRST_RUNS, from_layer_times

        request = self._compile(profiling=True).create_infer_request()
        times: dict[str, list[float]] = {}
        ops: dict[str, str] = {}
        for _ in range(runs + SKIP_FIRST_RUNS):
            request.infer({0: native_input})
            for info in request.profiling_info:
                if str(info.status).endswith("NOT_RUN"):
                    continue  # fused into a neighbour or optimised away
                times.setdefault(info.node_name, []).append(info.real_time.total_seconds() * 1000.0)
                ops[info.node_name] = info.node_type
        return from_layer_times(times, "openvino", "OpenVINO performance counters (PERF_COUNT)", ops=ops)

    def close(self) -> None:
        self.request = None
        self.compiled = None
        super().close()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(device="CPU", inference_precision=self.precision_hint)
        return d


class OpenVinoBf16Runner(OpenVinoRunner):
    """The float ONNX computed in bfloat16 (OpenVINO's CPU plugin, AVX512-BF16 / AMX).

    A precision choice like TensorRT's fp16, not an artifact of its own: its
    result rows say ``bf16`` and its accuracy is measured like any other's
    (``bench --eval``). On the dev machine it was the fastest way to run
    MDNET, at an INT8-sized top-1 change (docs/BENCHMARKS.md, issue 12).
    """

    name = "openvino-bf16"
    precision_hint = "bf16"

    def _check_precision(self) -> None:
        import openvino as ov

        caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if "BF16" not in caps:
            raise UnavailableError(
                "this CPU has no native bf16 (OpenVINO lists " + ", ".join(caps) + "); use --runtime openvino (f32)"
            )
