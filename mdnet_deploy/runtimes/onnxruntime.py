"""ONNX Runtime runner: CPU everywhere, CUDA / TensorRT execution providers when present."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArtifactError, UnavailableError
from .base import Runner

# Preference order when the user asks for "auto" providers.
PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"
    formats = ("onnx",)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            return False, f"onnxruntime is not importable ({exc}); install it with pip install onnxruntime"
        return True, ort.__version__

    def open(self) -> None:
        ok, why = self.available()
        if not ok:
            raise UnavailableError(why)
        import onnxruntime as ort

        opts = self._session_options(ort)
        providers = self._providers(ort)
        try:
            self.session = ort.InferenceSession(str(self.artifact), sess_options=opts, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for bad files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArtifactError(f"ONNX Runtime cannot open {self.artifact}: {first}") from None
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def _session_options(self, ort: Any) -> Any:
        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = int(self.threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # keep ORT's warnings out of our one-line errors
        return opts

    def profile(self, native_input: Any, runs: int) -> dict[str, Any]:
        """Per-layer times from ONNX Runtime's session profiler (``bench --profile``).

        A second session with the same options and providers is profiled, so
        the timed session never carries the profiler's overhead; its trace
        file lives in a temporary folder and is parsed into the common shape.
        """
        import onnxruntime as ort

        from ..reporting.profile import SKIP_FIRST_RUNS, parse_ort_profile

        with tempfile.TemporaryDirectory(prefix="mdnet-ort-profile-") as tmp:
            opts = self._session_options(ort)
            opts.enable_profiling = True
            opts.profile_file_prefix = str(Path(tmp) / "ort")
            session = ort.InferenceSession(
                str(self.artifact), sess_options=opts, providers=self.session.get_providers()
            )
            for _ in range(runs + SKIP_FIRST_RUNS):
                session.run([self.output_name], {self.input_name: native_input})
            return parse_ort_profile(session.end_profiling())

    def _providers(self, ort: Any) -> list[str]:
        wanted = self.options.get("providers")
        have = ort.get_available_providers()
        if wanted:
            missing = [p for p in wanted if p not in have]
            if missing:
                raise UnavailableError(
                    f"ONNX Runtime here lacks {', '.join(missing)} (has {', '.join(have)}); install onnxruntime-gpu for CUDA/TensorRT"
                )
            return list(wanted)
        if self.options.get("device") == "cuda":
            return [p for p in PROVIDER_ORDER if p in have and p != "TensorrtExecutionProvider"]
        return ["CPUExecutionProvider"]

    def run(self, native_input: Any) -> Any:
        # session.run returns host arrays, so the device is synchronised on return.
        return self.session.run([self.output_name], {self.input_name: native_input})[0]

    def close(self) -> None:
        self.session = None
        super().close()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        session = getattr(self, "session", None)
        if session is not None:
            d["providers"] = session.get_providers()
        return d


def run_onnx(path: str, x: np.ndarray, threads: int | None = None, batch: int | None = None) -> np.ndarray:
    """Convenience: float32 NCHW in, float32 logits out, in chunks of ``batch`` when the model is fixed-batch."""
    from ..artifact import ArtifactMeta

    meta = ArtifactMeta(format="onnx")
    with OnnxRuntimeRunner(path, meta, threads=threads) as runner:
        step = batch or len(x) or 1
        outs = [runner.infer(x[i : i + step]) for i in range(0, len(x), step)]
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)
