"""Is the assumed preprocessing right? Check a default mean/std against labelled images.

A checkpoint carries no preprocessing. When the user gives none, the tools
assume the CIFAR-100 statistics (``Preprocessing.source == "default: CIFAR-100"``);
a model trained with other statistics then scores far below its real accuracy
and nothing else would notice. Whenever labelled images are at hand, this
module evaluates a sample under the default and the obvious alternatives
(the data set's own per-channel statistics, 0.5/0.5, ImageNet) and refuses
with one line naming the better ``--mean/--std`` when one is clearly better.

"Clearly": more than :data:`MARGIN_POINTS` top-1 points on at least
:data:`MIN_IMAGES` images. At 200 images one image is 0.5 points, and the
95 % interval of a top-1 around 50 % is about +/-7 points for each candidate
alone; but the candidates are scored on the same images (a paired
comparison), and a wrong normalisation typically costs tens of points (the
issue that asked for this saw 63 % vs 98 %), so 5 points separates a wrong
guess from noise without refusing a right one.

Library only: numpy, no printing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from .artifact import CIFAR100_MEAN, CIFAR100_STD, SOURCE_DEFAULT, Preprocessing
from .errors import InputError

#: Images evaluated per candidate (a class-balanced, seeded subset).
CHECK_IMAGES = 256
#: Below this many images the check does not refuse (too few to be sure).
MIN_IMAGES = 200
#: A candidate must beat the default by more than this many top-1 points.
MARGIN_POINTS = 5.0

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Logits = Callable[[np.ndarray], np.ndarray]  # float32 NCHW model input -> (N, classes) logits


@dataclass
class Candidate:
    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    top1: float | None = None

    def options(self) -> str:
        return f"--mean {_fmt(self.mean)} --std {_fmt(self.std)}"


@dataclass
class CheckResult:
    """What the check saw; goes into metadata / results as a dict."""

    n: int
    dataset: str
    candidates: list[Candidate]
    verdict: str  # "default confirmed" | "too few images" | "refused"

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "dataset": self.dataset,
            "verdict": self.verdict,
            "candidates": [asdict(c) for c in self.candidates],
        }


def _fmt(values: Any) -> str:
    return ",".join(f"{float(v):.4g}" for v in values)


def candidates_for(images: np.ndarray) -> list[Candidate]:
    """The default first, then the data set's own statistics, 0.5/0.5 and ImageNet."""
    x = images.reshape(-1, 3).astype(np.float64) / 255.0
    own_mean = tuple(float(v) for v in x.mean(0))
    own_std = tuple(float(max(v, 1e-3)) for v in x.std(0))  # a constant channel must not divide by 0
    return [
        Candidate(SOURCE_DEFAULT, CIFAR100_MEAN, CIFAR100_STD),
        Candidate("the data set's own statistics", own_mean, own_std),  # type: ignore[arg-type]
        Candidate("0.5/0.5", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        Candidate("ImageNet", IMAGENET_MEAN, IMAGENET_STD),
    ]


def check_assumed_preprocessing(
    prep: Preprocessing,
    images: np.ndarray,
    labels: np.ndarray,
    logits: Logits,
    *,
    model: str,
    dataset: str,
    num_classes: int | None = None,
) -> CheckResult | None:
    """Refuse (InputError) when ``prep`` is the unrequested default and another choice is clearly better.

    ``images``: uint8 (N, H, W, 3) with their ``labels``. Returns None when
    there is nothing to check (the user gave the statistics, the images are
    already float model input, or the labels do not fit the model), else
    what was measured.
    """
    if prep.source != SOURCE_DEFAULT or images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        return None
    labels = np.asarray(labels).reshape(-1)
    if num_classes is not None and (labels.min() < 0 or labels.max() >= num_classes):
        return None  # the class check elsewhere says what is wrong
    images, labels = _sample(images, labels, CHECK_IMAGES)
    cands = candidates_for(images)
    for c in cands:
        x = _normalise(images, prep, c)
        c.top1 = float((np.asarray(logits(x)).argmax(1) == labels).mean() * 100.0)
        if c is cands[0] and c.top1 > 100.0 - MARGIN_POINTS:
            break  # nothing can beat the default by the margin: the alternatives need not run
    n = len(labels)
    default = cands[0]
    best = max(cands[1:], key=lambda c: c.top1 or 0.0)
    better = (best.top1 or 0.0) - (default.top1 or 0.0) > MARGIN_POINTS
    if n < MIN_IMAGES:
        return CheckResult(n, dataset, cands, "too few images")
    if better:
        raise InputError(
            f"{model} has no recorded preprocessing, so the CIFAR-100 statistics were assumed, but on {n} images of {dataset} "
            f"they give {default.top1:.1f} % top-1 while {best.name} give {best.top1:.1f} %: pass {best.options()} "
            "(or the statistics the model was trained with)"
        )
    return CheckResult(n, dataset, cands, "default confirmed")


def _sample(images: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded, class-balanced subset of ``n`` images (all of them when there are fewer)."""
    if len(labels) <= n:
        return images, labels
    from .data.dataset import Dataset, select_subset

    names = [str(i) for i in range(int(labels.max()) + 1)]
    sub = select_subset(Dataset(images, labels, names, "check"), n, seed=0)
    return sub.images, sub.labels


def _normalise(images: np.ndarray, prep: Preprocessing, c: Candidate) -> np.ndarray:
    from .data.preprocess import preprocess

    return preprocess(images, Preprocessing(size=prep.size, mean=c.mean, std=c.std, scale=prep.scale, source="check"))


def resolve_preprocessing(
    mean: Any,
    std: Any,
    stored: tuple[Any, Any] | None = None,
    size: tuple[int, int] = (32, 32),
) -> Preprocessing:
    """The preprocessing a command uses, with where it came from.

    ``--mean/--std`` (both, finite, std > 0) -> ``given``; else statistics
    stored in the checkpoint -> ``checkpoint``; else the CIFAR-100 default ->
    ``default: CIFAR-100`` (which :func:`check_assumed_preprocessing` then
    checks wherever labelled images are at hand).
    """
    from .artifact import SOURCE_CHECKPOINT, SOURCE_GIVEN, check_mean_std

    if (mean is None) != (std is None):
        missing = "--std" if std is None else "--mean"
        raise InputError(f"give {missing} too: --mean and --std describe one normalisation and go together")
    if mean is not None:
        check_mean_std(mean, std)
        return Preprocessing(
            size=size,
            mean=tuple(float(v) for v in mean),  # type: ignore[arg-type]  # three values, checked above
            std=tuple(float(v) for v in std),  # type: ignore[arg-type]
            source=SOURCE_GIVEN,
        )
    if stored is not None:
        check_mean_std(stored[0], stored[1], "the statistics stored in the checkpoint")
        return Preprocessing(
            size=size,
            mean=tuple(float(v) for v in stored[0]),  # type: ignore[arg-type]  # three values, checked above
            std=tuple(float(v) for v in stored[1]),  # type: ignore[arg-type]
            source=SOURCE_CHECKPOINT,
        )
    return Preprocessing(size=size, source=SOURCE_DEFAULT)


def onnx_logits(path: str, batch: int = 16) -> Logits:
    """Logits of an ONNX model in ONNX Runtime (CPU), in batches; a fixed-batch model gets padded chunks."""
    import onnxruntime as ort

    # Small batches and no memory arena: the check must not set quantize's peak memory (the arena keeps
    # the largest batch's buffers for the session's lifetime).
    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = False
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    fixed = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None
    step = fixed or batch

    def run(x: np.ndarray) -> np.ndarray:
        outs = []
        for i in range(0, len(x), step):
            chunk = x[i : i + step]
            real = len(chunk)
            if fixed and real < fixed:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fixed - real, axis=0)])
            outs.append(np.asarray(sess.run(None, {inp.name: np.ascontiguousarray(chunk, dtype=np.float32)})[0])[:real])
        return np.concatenate(outs)

    return run


def check_onnx_preprocessing(meta: Any, onnx_path: Any, spec: str, split: str) -> CheckResult | None:
    """:func:`check_assumed_preprocessing` for an ONNX artifact whose metadata says the default was assumed."""
    prep = meta.preprocessing
    if prep.source != SOURCE_DEFAULT:
        return None
    from .data import load_dataset

    ds = load_dataset(spec, split=split, size=tuple(prep.size))
    return check_assumed_preprocessing(
        prep,
        ds.images,
        ds.labels,
        onnx_logits(str(onnx_path)),
        model=str(onnx_path),
        dataset=ds.description,
        num_classes=meta.num_classes or None,
    )
