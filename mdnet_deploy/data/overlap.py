"""Calibration and evaluation images must differ: compare them by content hash.

Calibrating on the images that later judge the accuracy flatters the INT8
model (its activation ranges were fitted to exactly those images). quantize
and compile hash every image of both sets (the model input, after the same
preprocessing, so the same picture gives the same hash whatever file it came
from) and refuse an overlap unless the user allows it.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..errors import DataError


def image_hashes(images: np.ndarray) -> list[str]:
    """One sha256 per image (row of ``images``), over dtype, shape and bytes."""
    out = []
    for img in np.asarray(images):
        h = hashlib.sha256(f"{img.dtype}{img.shape}".encode())
        h.update(np.ascontiguousarray(img).tobytes())
        out.append(h.hexdigest())
    return out


def overlap_count(a: np.ndarray, b: np.ndarray) -> int:
    """How many images of ``b`` also occur in ``a``."""
    seen = set(image_hashes(a))
    return sum(h in seen for h in image_hashes(b))


def check_overlap(
    calib: np.ndarray, evaluation: np.ndarray | None, calib_spec: str, eval_spec: str | None, allow: bool = False
) -> int:
    """DataError when evaluation images are also calibration images (unless ``allow``); returns the count."""
    if evaluation is None or len(evaluation) == 0:
        return 0
    shared = overlap_count(calib, evaluation)
    if shared and not allow:
        raise DataError(
            f"{shared} of {len(evaluation)} evaluation images ({eval_spec}) are also calibration images ({calib_spec}); "
            "calibrate and evaluate on different images (e.g. a CIFAR folder's :train and :test), or pass --allow-overlap"
        )
    return shared
