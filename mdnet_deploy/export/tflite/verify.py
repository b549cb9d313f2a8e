"""Host-side checks of a converted TFLite file, through the same runner ``bench`` uses.

Parity: dequantized TFLite logits against PyTorch float logits on the same
inputs (max |diff|, top-1 agreement). Accuracy: top-1/top-5 of both on the
evaluation set. Coverage: which ops XNNPACK took, and the dtypes of the ops
each float-fallback module became (the proof that the fallback held).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...artifact import ArtifactMeta
from ...metrics import topk_accuracy
from ...runtimes.tflite import TfliteRunner, _op_label
from ..parity import ParityCheck
from .flatbuffer import module_of_tensor

__all__ = ["ParityCheck", "accuracy", "module_ops", "open_runner", "parity", "tflite_logits", "torch_logits"]

WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def torch_logits(model: Any, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """PyTorch float reference through the TorchRunner, channels-last (MDNET's grouped convs run ~2.5x faster so on CPU)."""
    from ...runtimes.torch_runner import TorchRunner

    reference = TorchRunner.for_model(model, ArtifactMeta(format="pt"), channels_last=True)
    with reference:
        return reference.logits(x, batch=batch)


def tflite_logits(runner: TfliteRunner, x: np.ndarray) -> np.ndarray:
    step = max(runner.model_batch, 1)
    outs = [runner.infer(x[i : i + step]) for i in range(0, len(x), step)]
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def parity(name: str, reference: np.ndarray, candidate: np.ndarray) -> ParityCheck:
    return ParityCheck.of(name, reference, candidate)


def accuracy(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray, dataset: str) -> dict[str, Any]:
    ref, got = topk_accuracy(reference, labels), topk_accuracy(candidate, labels)
    return {
        "dataset": dataset,
        "n": got["n"],
        "torch_top1": ref["top1"],
        "torch_top5": ref["top5"],
        "top1": got["top1"],
        "top5": got["top5"],
    }


def open_runner(path: Path, meta: ArtifactMeta, threads: int | None) -> TfliteRunner:
    runner = TfliteRunner(path, meta, threads=threads)
    runner.__enter__()
    return runner


def module_ops(runner: TfliteRunner, modules: Sequence[str]) -> dict[str, dict[str, int]]:
    """For each module path: ``{"CONV_2D(float32)": 1, ...}``, the ops whose outputs it produced.

    litert-torch names tensors after the module scope that made them. A
    conv/FC op belongs to the module that owns its weights (its output is
    often named after a fused BN or ReLU6); any other op to the module its
    output came from. A float-fallback conv shows up as ``CONV_2D(float32)``.
    """
    interp = runner.interpreter
    names = {d["index"]: d["name"] for d in interp.get_tensor_details()}
    found: dict[str, Counter[str]] = {m: Counter() for m in modules}
    for op in interp._get_ops_details():
        if op["op_name"] == "DELEGATE":
            continue
        owner = [op["inputs"][1]] if op["op_name"] in WEIGHTED_OPS and len(op["inputs"]) > 1 else op["outputs"]
        paths = {module_of_tensor(names.get(int(t), "")) for t in owner if int(t) >= 0}
        for m in modules:
            if any(p == m or p.startswith(m + ".") for p in paths):
                found[m][_op_label(op)] += 1
    return {m: dict(sorted(c.items())) for m, c in found.items()}


def weighted_op_dtypes(ops: dict[str, int]) -> set[str]:
    """The operand dtypes of the conv / FC ops in a :func:`module_ops` entry."""
    return {label.split("(")[1].rstrip(")") for label in ops if label.split("(")[0] in WEIGHTED_OPS}
