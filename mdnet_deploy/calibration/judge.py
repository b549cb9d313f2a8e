"""Judges for quantize's fallback search: the runtime that will run the model scores each guard step.

quantize's accuracy guard tries float-fallback sets and keeps the smallest
that meets ``--max-drop``. Its ``evaluate`` hook
(:data:`mdnet_deploy.calibration.pipeline.ModelEvaluator`) is called with
the float parent ONNX first, then with each step's QDQ ONNX, and returns a
:class:`~mdnet_deploy.calibration.pipeline.Score`. By default ONNX Runtime
on the workstation scores them; for a TFLite deployment that guards the
budget on kernels the device never runs (issue 6: one INT8 file gave
98.49 % on aarch64 kernels, 98.24 % on x86). The judges here plug into that
hook:

* :class:`OnnxRuntimeJudge`: the ONNX file itself in ONNX Runtime (CPU).
* :class:`TfliteJudge`: the checkpoint converted the way ``compile --target
  tflite`` does it (fp32 for the float parent; for a step, full-integer with
  that step's float layers, calibrated on the same images), scored by the
  LiteRT interpreter. Files are cached by float set: the guard's
  bisection revisits sizes.

Workstation-side (onnx; torch and litert-torch for TFLite).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..metrics import topk_accuracy

JUDGES = ("onnxruntime", "tflite")


def _score(logits: np.ndarray, labels: np.ndarray) -> Any:
    from .pipeline import Score

    acc = topk_accuracy(logits, labels)
    return Score(acc["top1"], acc["top5"], logits)


class OnnxRuntimeJudge:
    """Scores an ONNX file with ONNX Runtime on this machine (what quantize does by default)."""

    name = "onnxruntime"

    def __init__(self, eval_x: np.ndarray, labels: np.ndarray) -> None:
        self.x = np.ascontiguousarray(eval_x, dtype=np.float32)
        self.labels = np.asarray(labels)

    def __call__(self, model_path: str | Path) -> Any:
        # The very session and batching of quantize's default evaluator: the same judge, named.
        from .sensitivity import make_session, run_logits

        return _score(run_logits(make_session(str(model_path)), self.x), self.labels)


def float_layers(qdq_path: str | Path) -> list[str] | None:
    """ONNX nodes of the quantizable layers that read no dequantized input; None for a model without Q/DQ (the float parent)."""
    import onnx

    from .graph import find_candidates
    from .qdq import quantized_nodes

    model = onnx.load(str(qdq_path))
    if not any(n.op_type == "DequantizeLinear" for n in model.graph.node):
        return None
    names = [c.name for c in find_candidates(model)]
    quantized = quantized_nodes(model, names)
    return [n for n in names if n not in quantized]


class TfliteJudge:
    """Scores the model a guard step describes on the LiteRT interpreter's kernels (see the module docstring)."""

    name = "tflite"

    def __init__(
        self,
        checkpoint: str | Path,
        calib_x: np.ndarray,
        eval_x: np.ndarray,
        labels: np.ndarray,
        *,
        observer: str = "minmax",
        threads: int | None = 1,
        trust_pickle: bool = False,
    ) -> None:
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
        self._cache: dict[frozenset[str] | None, Any] = {}
        self._modules = {name for name, _ in self.ckpt.model.named_modules()}

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> TfliteJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def float_modules(self, nodes: list[str]) -> list[str]:
        from ..export.tflite.source import onnx_node_module

        return sorted({m for m in (onnx_node_module(n) for n in nodes) if m and m in self._modules})

    def __call__(self, model_path: str | Path) -> Any:
        nodes = float_layers(model_path)
        key = None if nodes is None else frozenset(self.float_modules(nodes))
        if key not in self._cache:
            path = Path(self._tmp.name) / f"step-{len(self._cache)}.tflite"
            path.write_bytes(self._convert(None if key is None else sorted(key)))
            self._cache[key] = _score(self._run(path, "fp32" if key is None else "int8"), self.labels)
        return self._cache[key]

    def _convert(self, float_modules: list[str] | None) -> bytes:
        from ..export.tflite import convert as tc
        from ..export.tflite.compile import _set_io

        if float_modules is None:  # the float parent: fp32 TFLite, the judge's float reference
            return tc.convert_float(self.ckpt.model, 1, self.size)
        prepared, quantizer = tc.prepare_int8(self.ckpt.model, self.size, float_modules, self.observer)
        tc.calibrate(prepared, self.calib_x)
        return _set_io(tc.finish_int8(prepared, quantizer, 1, self.size), "float")

    def _run(self, path: Path, precision: str) -> np.ndarray:
        from ..artifact import ArtifactMeta, TensorSpec
        from ..export.tflite.verify import tflite_logits
        from ..runtimes.tflite import TfliteRunner

        n = self.ckpt.num_classes
        meta = ArtifactMeta(
            format="tflite",
            precision=precision,
            num_classes=n,
            input=TensorSpec(name="input", shape=[1, *self.size, 3], layout="NHWC"),
            output=TensorSpec(name="logits", shape=[1, n], layout="NC"),
        )
        runner = TfliteRunner(path, meta, threads=self.threads)
        with runner:
            return tflite_logits(runner, self.x)  # runners take NCHW float and lay it out themselves


def make_judge(
    name: str,
    float_onnx: str | Path,
    calib_spec: str,
    eval_spec: str,
    *,
    calib_size: int = 512,
    eval_size: int | None = None,
    trust_pickle: bool = False,
) -> Any:
    """A judge for ``quantize_model(..., evaluate=judge)`` on the same images quantize would use.

    Preprocessing and the checkpoint come from the float ONNX's metadata.
    """
    from ..artifact import read_meta
    from .calib_data import load_images

    if name not in JUDGES:
        raise InputError(f"--judge '{name}' is not known; choose one of {', '.join(JUDGES)}")
    meta = read_meta(float_onnx)
    assert meta is not None
    ev = load_images(eval_spec, "test", meta.preprocessing, eval_size, "evaluation", lambda _w: None)
    if name == "onnxruntime":
        return OnnxRuntimeJudge(ev.x, ev.labels)
    ckpt = (meta.checkpoint or {}).get("path")
    if not ckpt or not Path(ckpt).is_file():
        raise InputError(
            f"the TFLite judge converts the checkpoint {float_onnx} records ({ckpt}), which is not there; re-export it"
        )
    calib = load_images(calib_spec, "train", meta.preprocessing, calib_size, "calibration", lambda _w: None)
    return TfliteJudge(ckpt, calib.x, ev.x, ev.labels, trust_pickle=trust_pickle)
