"""Numpy-only comparisons used by every verification and benchmark step."""

from __future__ import annotations

from typing import Any

import numpy as np


def compare_logits(reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    """Max/mean |diff| and top-1 agreement of two (N, classes) logit arrays."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ValueError(f"shape mismatch {reference.shape} vs {candidate.shape}")
    diff = np.abs(reference - candidate)
    return {
        "n": int(len(reference)),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "top1_agreement": float((reference.argmax(1) == candidate.argmax(1)).mean()) if len(reference) else 1.0,
    }


def topk_accuracy(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1 / top-5 accuracy in percent (top-5 = top-1 when there are fewer than 5 classes)."""
    logits = np.asarray(logits)
    labels = np.asarray(labels).reshape(-1)
    k = min(5, logits.shape[1])
    top = np.argsort(-logits, axis=1)[:, :k]
    return {
        "top1": float((top[:, 0] == labels).mean() * 100.0),
        "top5": float((top == labels[:, None]).any(axis=1).mean() * 100.0),
        "n": int(len(labels)),
    }
