"""Judges for the INT8 fallback search: the runtime that will run the model says whether a step meets the budget.

quantize's accuracy guard tries float-fallback sets (the ``k`` most
sensitive layers float) and keeps the smallest that meets ``--max-drop``.
By default each step is scored by ONNX Runtime on the workstation; a TFLite
deployment is then guarded on kernels it will never run (issue 6 measured
98.49 % on aarch64 and 98.24 % on x86 for one file). A judge scores a step
on the target runtime's kernels instead:

* :class:`OnnxRuntimeJudge`: the step's QDQ ONNX in ONNX Runtime (today's guard).
* :class:`TfliteJudge`: the same float-fallback set converted to a
  full-integer TFLite file (the ``compile --target tflite`` conversion:
  PT2E calibration on the same images, litert-torch), run by the LiteRT
  interpreter.

A judge is a plain callable ``judge(step_model, float_nodes) -> JudgeScore``
so it plugs into the guard's evaluate hook without importing the guard.
Workstation-side (needs torch for TFLite).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from ..errors import InputError
from ..metrics import topk_accuracy

JUDGES = ("onnxruntime", "tflite")


@dataclass
class JudgeScore:
    top1: float  # percent
    top5: float
    logits: np.ndarray  # (N, classes), for agreement with the float model
    judge: str


class Judge(Protocol):
    name: str

    def __call__(self, step_model: str | Path, float_nodes: Sequence[str]) -> JudgeScore: ...


class OnnxRuntimeJudge:
    """Scores the step's QDQ ONNX with ONNX Runtime on this machine (CPU)."""

    name = "onnxruntime"

    def __init__(self, eval_x: np.ndarray, labels: np.ndarray, batch: int = 64) -> None:
        self.x = np.ascontiguousarray(eval_x, dtype=np.float32)
        self.labels = np.asarray(labels)
        self.batch = batch

    def __call__(self, step_model: str | Path, float_nodes: Sequence[str] = ()) -> JudgeScore:
        from ..runtimes.onnxruntime import run_onnx

        logits = run_onnx(str(step_model), self.x, batch=self.batch)
        acc = topk_accuracy(logits, self.labels)
        return JudgeScore(acc["top1"], acc["top5"], logits, self.name)


class TfliteJudge:
    """Scores a float-fallback set on the LiteRT interpreter's int8 kernels.

    Each call converts the checkpoint with the step's float layers (ONNX node
    names mapped to torch modules) and the given calibration images, then
    evaluates with LiteRT; converted files are cached by fallback set, since
    the guard's bisection revisits sizes.
    """

    name = "tflite"

    def __init__(self, checkpoint: str | Path, calib_x: np.ndarray, eval_x: np.ndarray, labels: np.ndarray,
                 *, observer: str = "minmax", threads: int | None = 1, trust_pickle: bool = False) -> None:
        from ..model.checkpoint import load_checkpoint

        self.ckpt = load_checkpoint(checkpoint, trust_pickle=trust_pickle)
        self.calib_x = np.ascontiguousarray(calib_x, dtype=np.float32)
        self.x = np.ascontiguousarray(eval_x, dtype=np.float32)
        self.labels = np.asarray(labels)
        if self.calib_x.ndim != 4 or self.x.ndim != 4 or self.x.shape[1] != 3:
            raise InputError("the TFLite judge takes preprocessed NCHW float32 calibration and evaluation images")
        self.size = (int(self.x.shape[2]), int(self.x.shape[3]))
        self.observer = observer
        self.threads = threads
        self._tmp = tempfile.TemporaryDirectory(prefix="mdnet-judge-tflite-")
        self._cache: dict[frozenset[str], JudgeScore] = {}

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> "TfliteJudge":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def float_modules(self, float_nodes: Sequence[str]) -> list[str]:
        from ..export.tflite.source import onnx_node_module

        names = {name for name, _ in self.ckpt.model.named_modules()}
        return sorted({m for m in (onnx_node_module(n) for n in float_nodes) if m and m in names})

    def __call__(self, step_model: str | Path | None, float_nodes: Sequence[str]) -> JudgeScore:
        modules = self.float_modules(float_nodes)
        key = frozenset(modules)
        if key not in self._cache:
            path = Path(self._tmp.name) / f"step-{len(self._cache)}.tflite"
            path.write_bytes(self._convert(modules))
            logits = self._run(path)
            acc = topk_accuracy(logits, self.labels)
            self._cache[key] = JudgeScore(acc["top1"], acc["top5"], logits, self.name)
        return self._cache[key]

    def _convert(self, modules: list[str]) -> bytes:
        from ..export.tflite import convert as tc
        from ..export.tflite.compile import _set_io

        prepared, quantizer = tc.prepare_int8(self.ckpt.model, self.size, modules, self.observer)
        tc.calibrate(prepared, self.calib_x)
        return _set_io(tc.finish_int8(prepared, quantizer, 1, self.size), "float")

    def _run(self, path: Path) -> np.ndarray:
        from ..artifact import ArtifactMeta, TensorSpec
        from ..export.tflite.verify import tflite_logits
        from ..runtimes.tflite import TfliteRunner

        n = self.ckpt.num_classes
        meta = ArtifactMeta(format="tflite", precision="int8", num_classes=n,
                            input=TensorSpec(name="input", shape=[1, *self.size, 3], layout="NHWC"),
                            output=TensorSpec(name="logits", shape=[1, n], layout="NC"))
        with TfliteRunner(path, meta, threads=self.threads) as runner:
            return tflite_logits(runner, self.x)  # runners take NCHW float and lay it out themselves


def make_judge(name: str, **inputs: Any) -> Any:
    """``onnxruntime`` needs eval_x, labels; ``tflite`` also checkpoint and calib_x."""
    if name == "onnxruntime":
        return OnnxRuntimeJudge(inputs["eval_x"], inputs["labels"])
    if name == "tflite":
        return TfliteJudge(inputs["checkpoint"], inputs["calib_x"], inputs["eval_x"], inputs["labels"],
                           trust_pickle=bool(inputs.get("trust_pickle", False)))
    raise InputError(f"--judge '{name}' is not known; choose one of {', '.join(JUDGES)}")
