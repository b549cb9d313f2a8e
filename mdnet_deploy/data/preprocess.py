"""The single preprocessing path shared by every command and runtime.

uint8 RGB (N, H, W, 3) -> resize to the artifact's size when needed -> /255 ->
(x - mean) / std -> float32 NCHW. Float NCHW input is taken as already
preprocessed model input and passed through unchanged.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..artifact import Preprocessing


def resize_images(images: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Bilinear resize of uint8 (N, H, W, 3) images to (N, size[0], size[1], 3)."""
    h, w = int(size[0]), int(size[1])
    if images.shape[1:3] == (h, w):
        return images
    try:
        from PIL import Image
    except ImportError:
        from ..errors import DataError

        raise DataError(
            f"resizing images from {images.shape[1]}x{images.shape[2]} to {h}x{w} needs Pillow, which is not installed here; "
            f"pip install pillow, or pack the set at {h}x{w} with mdnet-deploy pack-eval --size {h}x{w}"
        ) from None

    out = np.empty((len(images), h, w, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img).resize((w, h), getattr(Image, "Resampling", Image).BILINEAR))
    return out


def preprocess(images: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """Model input (float32 NCHW) from uint8 NHWC images, as the metadata says."""
    if images.dtype != np.uint8:
        # Already model input (e.g. an .npz of float32 NCHW tensors).
        return np.ascontiguousarray(images, dtype=np.float32)
    images = resize_images(images, prep.size)
    x = images.astype(np.float32) * np.float32(prep.scale)
    mean = np.asarray(prep.mean, dtype=np.float32).reshape(1, 1, 1, 3)
    std = np.asarray(prep.std, dtype=np.float32).reshape(1, 1, 1, 3)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
