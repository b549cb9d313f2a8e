"""Evaluation sets for ``bench --eval``: loading, the class check, accuracy, packing.

Accuracy goes through the same runner and the same preprocessing as the
timed loop (``preprocess`` with the artifact's metadata, then the runner's
``prepare``/``run``/``finish``), in batches. ``pack_eval`` writes a set as a
uint8 ``.npz`` that a device reads with numpy alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..artifact import ArtifactMeta
from ..data.dataset import Dataset, load_dataset, select_subset
from ..data.preprocess import preprocess
from ..errors import DataError, InputError
from ..fsutil import atomic_output, check_output
from ..metrics import accuracy_interval, topk_accuracy
from ..runtimes.base import Runner

#: Batch for accuracy when the artifact takes any batch: big enough to amortise calls.
EVAL_BATCH = 64


def load_eval(spec: str) -> Dataset:
    """The evaluation set (test split where the source has one)."""
    ds = load_dataset(spec, split="test")
    if str(spec).lower().endswith(".npz"):
        source = npz_description(spec)
        if source:
            ds.description = f"{source} [{Path(spec).name}]"
    if ds.images.dtype == np.uint8:
        return ds
    if ds.images.dtype != np.float32:
        raise DataError(f"evaluation set {spec}: x must be uint8 images or float32 model input, not {ds.images.dtype}")
    if not np.isfinite(ds.images).all():
        bad = int((~np.isfinite(ds.images)).reshape(len(ds.images), -1).any(axis=1).sum())
        raise DataError(
            f"evaluation set {spec}: {bad} images hold NaN or infinite values; repack the set from the raw images"
        )
    return ds


def _default_names(names: list[str]) -> bool:
    return names == [str(i) for i in range(len(names))]


def check_classes(ds: Dataset, meta: ArtifactMeta, model: str) -> None:
    """DataError when the set cannot be scored against this model (before anything is timed)."""
    if len(ds.labels) and (int(ds.labels.min()) < 0 or int(ds.labels.max()) >= meta.num_classes):
        raise DataError(
            f"evaluation set {ds.description} has labels {int(ds.labels.min())}..{int(ds.labels.max())} "
            f"but {model} has {meta.num_classes} classes; give the evaluation set the model was trained for"
        )
    # Names are compared only when both sides have real ones: an .npz without
    # 'labels' gets "0", "1", ... which says nothing about the classes.
    if meta.labels and not _default_names(ds.class_names):
        ours, theirs = list(ds.class_names), list(meta.labels)
        if ours != theirs[: len(ours)]:
            i = next((k for k, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
            a = ours[i] if i < len(ours) else "(none)"
            b = theirs[i] if i < len(theirs) else "(none)"
            raise DataError(
                f"evaluation set {ds.description} names its classes differently from {model} "
                f"(class {i}: '{a}' vs '{b}'); give the evaluation set the model was trained for"
            )
    if ds.images.dtype != np.uint8:
        want = (3, *(int(s) for s in meta.preprocessing.size))
        if tuple(ds.images.shape[1:]) != want:
            raise DataError(
                f"evaluation set {ds.description} holds float input of shape {list(ds.images.shape[1:])} but {model} "
                f"takes {list(want)}; pack the raw images with mdnet-deploy pack-eval instead"
            )


def static_batch(meta: ArtifactMeta) -> int | None:
    """The batch an artifact is fixed to, or None when its batch is dynamic."""
    shape = meta.input.shape
    if shape and isinstance(shape[0], int) and shape[0] > 0:
        return int(shape[0])
    return None


def model_input(images: np.ndarray, meta: ArtifactMeta) -> np.ndarray:
    """Canonical float32 NCHW input for ``meta`` from uint8 NHWC images (or float input as is)."""
    return preprocess(images, meta.preprocessing)


def evaluate(
    runner: Runner, ds: Dataset, batch: int | None = None, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Top-1/top-5 over the whole set through ``runner`` (already open)."""
    meta = runner.meta
    fixed = static_batch(meta)
    step = fixed or max(int(batch or 1), EVAL_BATCH)
    outs = []
    n = len(ds)
    for i in range(0, n, step):
        chunk = ds.images[i : i + step]
        real = len(chunk)
        if fixed and real < fixed:
            # A fixed-batch artifact takes exactly `fixed` images: pad with
            # copies of the last one and drop their outputs.
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fixed - real, axis=0)])
        logits = runner.infer(model_input(chunk, meta))
        outs.append(np.asarray(logits)[:real])
        if progress is not None:
            progress(min(i + step, n), n)
    logits = np.concatenate(outs) if outs else np.zeros((0, meta.num_classes), np.float32)
    if logits.size and not np.isfinite(logits).all():  # NaN logits would score as class 0, silently
        raise DataError(
            f"the model returned NaN or infinite logits on {ds.description}; its weights or input are broken"
        )
    acc = topk_accuracy(logits, ds.labels)
    return {
        "top1": acc["top1"],
        "top5": acc["top5"],
        "n": acc["n"],
        "dataset": ds.description,
        "top1_ci95": accuracy_interval(acc["top1"], int(acc["n"])),
        "ci_method": "Wilson score interval, 95 %",
    }


# -- pack-eval ------------------------------------------------------------------------
@dataclass
class PackedEval:
    path: Path
    n: int
    size: tuple[int, int]
    num_classes: int
    description: str
    bytes: int


def pack_eval(
    spec: str,
    output: str | os.PathLike[str],
    size: tuple[int, int] | int = (32, 32),
    limit: int | None = None,
    seed: int = 0,
) -> PackedEval:
    """Write ``spec``'s test split as ``x`` (N,H,W,3 uint8), ``y`` (int64), ``labels`` to ``output`` atomically.

    ``limit`` keeps a deterministic, class-balanced subset of that many images.
    """
    if isinstance(size, int):
        size = (size, size)
    size = (int(size[0]), int(size[1]))
    if min(size) < 1:
        raise InputError(f"--size {size[0]} is not valid; give a positive image size such as 32")
    if limit is not None and limit < 1:
        raise InputError(f"--limit {limit} is not valid; give a positive number of images")
    output = Path(output)
    if output.suffix.lower() != ".npz":
        raise InputError(f"output {output} must end in .npz (bench --eval reads .npz files)")
    check_output(output)
    ds = load_dataset(spec, split="test", size=size)
    if ds.images.dtype != np.uint8:
        raise DataError(f"{spec} holds float model input, not images; pack-eval needs uint8 images (N,H,W,3)")
    if limit is not None:
        ds = select_subset(ds, limit, seed=seed)
    description = ds.description
    with atomic_output(output) as tmp:
        # A file object, not a name: np.savez would append '.npz' to the temporary name.
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                x=np.ascontiguousarray(ds.images, dtype=np.uint8),
                y=np.asarray(ds.labels, dtype=np.int64),
                labels=np.asarray(ds.class_names, dtype=str),
                description=np.asarray(description),
            )
    return PackedEval(output, len(ds), size, ds.num_classes, description, output.stat().st_size)


def npz_description(path: str | os.PathLike[str]) -> str | None:
    """The source description pack-eval stored, so results name the real data set."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return str(f["description"]) if "description" in f.files else None
    except Exception:  # a damaged member (zlib.error, BadZipFile, ...): the set simply has no description
        return None
