"""Calibration and evaluation images, and calibration in bounded memory.

Images come from any data-set spec (:func:`mdnet_deploy.data.load_dataset`),
resized and normalised exactly as the artifact's metadata says. The
calibration subset is chosen deterministically (seeded, class-balanced), and
its description, count and sha256 go into the output's metadata.

ONNX Runtime's calibrators keep every intermediate output of every
``collect_data`` call until ``compute_data``; fed a whole data set at once
that is hundreds of MiB per 100 images of MDNET. We feed them one batch per
``collect_data`` call instead: the MinMax calibrator reduces and merges its
ranges at the end of each call, and the histogram calibrators (Entropy,
Percentile) fold each batch into their histograms, so memory stays at one
batch of activations whatever the calibration size. That batch is small
(:data:`CALIB_BATCH`): ORT's calibration session holds about 36 MiB of
activations per image of the full-size MDNET (measured: peak 1.34 GiB at
batch 32, 427 MiB at batch 8), and smaller batches were also faster here
(3.4 s vs 7.0 s for 128 images). With 256 images and the guard, the whole
quantize peaked at 510 MiB at batch 8, 374 MiB at batch 4 (calibration
1.47 s vs 1.65 s) and 347 MiB at batch 2 (2.05 s): 4 keeps it well under
512 MiB for 0.2 s.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..artifact import Preprocessing
from ..errors import DataError, InputError
from ..progress import Steps

Progress = Steps  # see mdnet_deploy.progress

CALIB_SEED = 0
CALIB_BATCH = 4  # images per calibration run: bounds the calibration session's memory (module docstring)
METHODS = ("minmax", "entropy", "percentile")


@dataclass
class ImageSet:
    """Preprocessed model input with its provenance."""

    x: np.ndarray  # float32 NCHW, ready for the model
    labels: np.ndarray
    num_classes: int
    source: str  # the spec the user gave
    description: str
    sha256: str  # Dataset.digest() of the images actually used (uint8 pixels where available)
    requested: int | None
    available: int  # images in the source before subsetting
    skipped: list[str] = field(default_factory=list)  # files that were not images

    def __len__(self) -> int:
        return len(self.x)

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "description": self.description,
            "count": len(self),
            "requested": self.requested,
            "available": self.available,
            "sha256": self.sha256,
            "seed": CALIB_SEED,
            "balanced": True,
            "skipped_files": len(self.skipped),
        }


def load_images(
    spec: str, split: str, prep: Preprocessing, count: int | None, what: str, warn: Callable[[str], None]
) -> ImageSet:
    """Load ``spec`` at the model's input size and keep ``count`` images (all when None)."""
    from ..data import load_dataset, preprocess, select_subset

    ds = load_dataset(spec, split=split, size=(int(prep.size[0]), int(prep.size[1])))
    if ds.skipped:
        example = Path(ds.skipped[0]).name
        warn(f"{what} set {spec}: skipped {len(ds.skipped)} files that are not images (e.g. {example})")
    available = len(ds)
    if count is not None and count > available:
        warn(f"{what} set {spec} has {available} images, fewer than the {count} asked for; using all {available}")
    subset = select_subset(ds, count, seed=CALIB_SEED, balanced=True) if count is not None else ds
    x = preprocess(subset.images, prep)
    if x.ndim != 4 or x.shape[1:] != (3, *tuple(prep.size)):
        raise DataError(
            f"{what} set {spec} gives input of shape {tuple(x.shape[1:])} but the model takes (3, {prep.size[0]}, {prep.size[1]}); "
            "give uint8 images (they are resized) or float tensors of the model's size"
        )
    return ImageSet(
        x=x,
        labels=np.asarray(subset.labels, dtype=np.int64),
        num_classes=ds.num_classes,
        source=spec,
        description=subset.description,
        sha256=subset.digest(),
        requested=count,
        available=available,
        skipped=list(ds.skipped),
    )


class _OneBatch:
    """A CalibrationDataReader that yields a single batch (duck-typed: ORT checks get_next)."""

    def __init__(self, input_name: str, batch: np.ndarray) -> None:
        self._items = [{input_name: batch}]

    def get_next(self) -> dict[str, np.ndarray] | None:
        return self._items.pop() if self._items else None


@contextlib.contextmanager
def quiet() -> Any:
    """Silence ORT's quantization tooling: it print()s and logs warnings on the root logger."""
    import logging

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def ort_method(method: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    table = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if method not in table:
        raise InputError(f"--method '{method}' is not known; use one of {', '.join(METHODS)}")
    return table[method]


def calibrate(
    float_model: Path,
    x: np.ndarray,
    *,
    method: str,
    op_types: Sequence[str],
    symmetric: bool,
    workdir: Path,
    input_name: str,
    batch_size: int = CALIB_BATCH,
    progress: Progress | None = None,
) -> Any:
    """Collect activation ranges of ``float_model`` on ``x``; returns ORT's ``TensorsData``.

    Done once per run: every later quantization (each guard step) reuses the
    result through ORT's calibration cache, which is exact because ORT
    always calibrates the float graph, whatever is later left float.
    """
    from onnxruntime.quantization.calibrate import create_calibrator

    extra = {"symmetric": symmetric}
    with quiet():
        calibrator = create_calibrator(
            Path(float_model),
            list(op_types),
            augmented_model_path=str(workdir / "augmented.onnx"),
            calibrate_method=ort_method(method),
            extra_options=extra,
        )
    total = (len(x) + batch_size - 1) // batch_size
    if progress:
        progress("calibrate", 0, total)
    for i, start in enumerate(range(0, len(x), batch_size)):
        with quiet():
            calibrator.collect_data(_OneBatch(input_name, np.ascontiguousarray(x[start : start + batch_size])))
        if progress:
            progress("calibrate", i + 1, total)
    with quiet():
        data = calibrator.compute_data()
    # Release the augmented session (it holds every intermediate output's buffers).
    del calibrator
    return data
