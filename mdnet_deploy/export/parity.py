"""One parity result for every conversion: ONNX export, TFLite compile and quantize's verification.

A converted artifact's logits against its reference on the same inputs:
max / mean |diff| and top-1 agreement (:func:`mdnet_deploy.metrics.compare_logits`),
plus both accuracies when the inputs have labels that fit the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..metrics import compare_logits, topk_accuracy


@dataclass
class ParityCheck:
    name: str  # "random", "calibration images (64)", or a data set's description
    n: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float
    accuracy: dict[str, float] | None = None  # reference and candidate top-1 when labels fit

    @classmethod
    def of(
        cls,
        name: str,
        reference: np.ndarray,
        candidate: np.ndarray,
        labels: np.ndarray | None = None,
        ref_key: str = "torch_top1",
        got_key: str = "onnx_top1",
    ) -> ParityCheck:
        c = compare_logits(reference, candidate)
        acc = None
        if labels is not None:
            acc = {ref_key: topk_accuracy(reference, labels)["top1"], got_key: topk_accuracy(candidate, labels)["top1"]}
        return cls(name, c["n"], c["max_abs_diff"], c["mean_abs_diff"], c["top1_agreement"], acc)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """The four numbers alone (n, max/mean |diff|, top-1 agreement), as reports have always shown them."""
        return {
            "n": self.n,
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_diff,
            "top1_agreement": self.top1_agreement,
        }
