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
    # NaN compares false with every tolerance, so a NaN max |diff| would "pass": a non-finite
    # logit on either side makes the difference infinite instead, and every parity gate fails.
    broken = int((~np.isfinite(reference)).sum() + (~np.isfinite(candidate)).sum())
    if broken:
        diff = np.where(np.isfinite(diff), diff, np.inf)
    return {
        "n": int(len(reference)),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
        "non_finite": broken,
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


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion, as fractions in [0, 1].

    Ten lines instead of a statistics dependency (statsmodels' proportion_confint(method="wilson")
    gives the same numbers). Unlike the normal approximation p +/- z*sqrt(p(1-p)/n), it stays
    inside [0, 1] and is not zero-width at 0 % or 100 % (Wilson 1927; Brown, Cai & DasGupta 2001).
    """
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, float(centre - half)), min(1.0, float(centre + half)))


def accuracy_interval(top1_percent: float, n: int) -> list[float]:
    """Wilson 95 % interval of a top-1 given in percent over ``n`` images, in percent."""
    lo, hi = wilson_interval(int(round(top1_percent * n / 100.0)), n)
    return [100.0 * lo, 100.0 * hi]


def drop_uncertainty(
    n: int, max_drop: float, drop: float | None = None, disagreement: float | None = None
) -> dict[str, Any]:
    """How sure a top-1 drop (points) measured on ``n`` images is, against a budget of ``max_drop`` points.

    One image is ``100 / n`` points; the drop of two models scored on the same
    images moves in those steps, so the budget is resolvable only when one
    image is worth at most half of it. With the models' top-1 ``disagreement``
    (fraction of images whose predicted class differs), a conservative 95 %
    interval of the drop follows: the drop is (b - c) / n over the b images
    only the float model gets right and the c only the INT8 one does, and
    b + c <= disagreement * n, so its standard error is at most
    sqrt(disagreement / n) (the paired, McNemar-style variance bound).
    """
    step = 100.0 / n if n > 0 else float("inf")
    out: dict[str, Any] = {
        "n": n,
        "points_per_image": step,
        "resolvable": step <= max_drop / 2.0,
        "drop_ci95_points": None,
    }
    if drop is not None and disagreement is not None and n > 0:
        half = 1.959963984540054 * 100.0 * float(np.sqrt(max(0.0, disagreement) / n))
        out["drop_ci95_points"] = [drop - half, drop + half]
    return out
