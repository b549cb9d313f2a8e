"""Data-set specs: CIFAR pickles, image folders, .npz files and the built-in digits.

A spec is a string given to ``--data``, ``--calib`` and ``--eval``:

* ``digits`` / ``digits:train`` / ``digits:test`` / ``digits:all``: scikit-learn's
  bundled 8x8 digits upscaled to 32x32 RGB, split 80/20 with a fixed seed;
* a CIFAR-10 (``cifar-10-batches-py``) or CIFAR-100 (``cifar-100-python``)
  python-pickle folder (or its parent), optionally ``:train`` / ``:test``;
* a folder with one sub-folder per class (PNG/JPEG); labels are the sorted
  folder names unless a ``labels.txt`` in the folder gives the order;
* an ``.npz`` with ``x`` (N,H,W,3 uint8, or N,3,H,W float32 model input) and ``y``
  (optionally ``labels``).
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
DIGITS_SEED = 0
DIGITS_TEST_FRACTION = 0.2


@dataclass
class Dataset:
    images: np.ndarray  # uint8 (N, H, W, 3) RGB, or float32 (N, 3, H, W) model input
    labels: np.ndarray  # int64 (N,)
    class_names: list[str]
    description: str
    skipped: list[str] = field(default_factory=list)  # files that were not images

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def digest(self) -> str:
        """sha256 over pixels and labels: identifies exactly which images were used."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.images).tobytes())
        h.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return h.hexdigest()

    def take(self, index: np.ndarray, description: str | None = None) -> "Dataset":
        return Dataset(self.images[index], self.labels[index], self.class_names, description or self.description, self.skipped)


def _split_spec(spec: str) -> tuple[str, str | None]:
    for split in ("train", "test", "all"):
        if spec.endswith(f":{split}"):
            return spec[: -len(split) - 1], split
    return spec, None


def load_dataset(spec: str, split: str = "test", size: tuple[int, int] | None = None) -> Dataset:
    """Load ``spec``; ``split`` applies where the source has one and the spec names none."""
    base, named = _split_spec(str(spec))
    split = named or split
    if base == "digits":
        ds = _load_digits(split)
    else:
        path = Path(base).expanduser()
        if not path.exists():
            raise DataError(f"data set {path} does not exist; give a CIFAR folder, an image folder, an .npz or 'digits'")
        if path.is_file():
            if path.suffix.lower() != ".npz":
                raise DataError(f"data set {path} is a file but not an .npz; give a folder or an .npz with x and y")
            ds = _load_npz(path)
        else:
            cifar = _find_cifar(path)
            ds = _load_cifar(cifar, split) if cifar is not None else _load_image_folder(path)
    if len(ds) == 0:
        raise DataError(f"data set {spec} holds no images; check the path (class sub-folders with PNG/JPEG files)")
    if size is not None and ds.images.dtype == np.uint8 and ds.images.shape[1:3] != tuple(size):
        from .preprocess import resize_images

        ds.images = resize_images(ds.images, size)
    return ds


# -- digits ---------------------------------------------------------------------------
def _load_digits(split: str) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 0..16 grey levels -> 0..255, nearest-neighbour x4 to 32x32, grey -> RGB.
    grey = np.clip(bunch.images * (255.0 / 16.0), 0, 255).astype(np.uint8)
    big = grey.repeat(4, axis=1).repeat(4, axis=2)
    images = np.repeat(big[..., None], 3, axis=3)
    labels = bunch.target.astype(np.int64)
    order = np.random.default_rng(DIGITS_SEED).permutation(len(labels))
    n_test = int(round(len(labels) * DIGITS_TEST_FRACTION))
    index = {"test": order[:n_test], "train": order[n_test:], "all": order}[split]
    names = [str(i) for i in range(10)]
    return Dataset(images[index], labels[index], names, f"digits:{split} (scikit-learn, 32x32 RGB, seed {DIGITS_SEED})")


# -- npz ------------------------------------------------------------------------------
def _load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f or "y" not in f:
                raise DataError(f"{path} must hold arrays 'x' and 'y' (it has {', '.join(f.files) or 'none'})")
            x, y = f["x"], f["y"].astype(np.int64).reshape(-1)
            names = [str(n) for n in f["labels"]] if "labels" in f else None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable .npz ({exc})") from None
    if x.ndim != 4 or len(x) != len(y):
        raise DataError(f"{path}: x must be (N,H,W,3) uint8 or (N,3,H,W) float32 with N = len(y); got x {x.shape}, y {y.shape}")
    if x.dtype == np.uint8:
        if x.shape[3] != 3:
            raise DataError(f"{path}: uint8 x must be (N,H,W,3) RGB; got {x.shape}")
    elif x.shape[1] != 3:
        raise DataError(f"{path}: float x must be (N,3,H,W) model input; got {x.shape}")
    if names is None:
        names = [str(i) for i in range(int(y.max()) + 1 if len(y) else 0)]
    return Dataset(x, y, names, f"npz:{path.name}")


# -- CIFAR ----------------------------------------------------------------------------
def _find_cifar(path: Path) -> Path | None:
    for candidate in (path, path / "cifar-10-batches-py", path / "cifar-100-python"):
        if (candidate / "batches.meta").exists() or (candidate / "meta").exists() and (candidate / "test").exists():
            return candidate
    return None


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except Exception as exc:  # a truncated or foreign file: tell the user which one
        raise DataError(f"{path} is not a CIFAR python-pickle batch ({type(exc).__name__}); re-extract the archive") from None


def _key(d: dict, name: str):
    return d[name.encode()] if name.encode() in d else d[name]


def _load_cifar(folder: Path, split: str) -> Dataset:
    if (folder / "batches.meta").exists():  # CIFAR-10
        meta = _unpickle(folder / "batches.meta")
        names = [n.decode() if isinstance(n, bytes) else n for n in _key(meta, "label_names")]
        files = {"train": sorted(folder.glob("data_batch_*")), "test": [folder / "test_batch"]}
        label_key, kind = "labels", "CIFAR-10"
    else:  # CIFAR-100
        meta = _unpickle(folder / "meta")
        names = [n.decode() if isinstance(n, bytes) else n for n in _key(meta, "fine_label_names")]
        files = {"train": [folder / "train"], "test": [folder / "test"]}
        label_key, kind = "fine_labels", "CIFAR-100"
    chosen = files["train"] + files["test"] if split == "all" else files[split]
    xs, ys = [], []
    for f in chosen:
        if not f.exists():
            raise DataError(f"{kind} folder {folder} lacks {f.name}; re-extract the archive")
        batch = _unpickle(f)
        xs.append(np.asarray(_key(batch, "data"), dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(np.asarray(_key(batch, label_key), dtype=np.int64))
    return Dataset(np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys), names, f"{kind}:{split} ({folder})")


# -- image folders --------------------------------------------------------------------
def read_labels_file(path: Path) -> list[str]:
    try:
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"labels file {path} cannot be read ({exc}); give a text file with one class name per line") from None
    if not names:
        raise DataError(f"labels file {path} is empty; give one class name per line")
    return names


def _load_image_folder(folder: Path) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{folder} has no class sub-folders; give one sub-folder of images per class (or a CIFAR folder / .npz)")
    labels_file = folder / "labels.txt"
    names = read_labels_file(labels_file) if labels_file.exists() else classes
    unknown = sorted(set(classes) - set(names))
    if unknown:
        raise DataError(f"{folder}: sub-folders {', '.join(unknown[:3])} are not in {labels_file.name}; add them or remove the folders")
    images, labels, skipped = [], [], []
    for cls in classes:
        for f in sorted((folder / cls).iterdir()):
            if not f.is_file():
                continue
            try:
                with Image.open(f) as img:
                    arr = np.asarray(img.convert("RGB"))
            except (UnidentifiedImageError, OSError, ValueError):
                skipped.append(str(f))
                continue
            images.append(arr)
            labels.append(names.index(cls))
    if not images:
        return Dataset(np.zeros((0, 32, 32, 3), np.uint8), np.zeros(0, np.int64), names, f"images:{folder}", skipped)
    # Images may differ in size: bring them to the first one's size here; the
    # caller resizes to the artifact's input size.
    h, w = images[0].shape[:2]
    if any(a.shape[:2] != (h, w) for a in images):
        images = [a if a.shape[:2] == (h, w) else np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR)) for a in images]
    return Dataset(np.stack(images), np.asarray(labels, np.int64), names, f"images:{folder}", skipped)


# -- deterministic subsets ------------------------------------------------------------
def select_subset(ds: Dataset, n: int, seed: int = 0, balanced: bool = True) -> Dataset:
    """``n`` images chosen deterministically; class-balanced (round robin) where labels exist."""
    if n >= len(ds):
        return ds
    rng = np.random.default_rng(seed)
    if not balanced:
        index = np.sort(rng.permutation(len(ds))[:n])
    else:
        per_class = [rng.permutation(np.flatnonzero(ds.labels == c)) for c in np.unique(ds.labels)]
        picked: list[int] = []
        depth = 0
        while len(picked) < n:
            for members in per_class:
                if depth < len(members) and len(picked) < n:
                    picked.append(int(members[depth]))
            depth += 1
        index = np.sort(np.asarray(picked))
    return ds.take(index, f"{ds.description}, {n} images (seed {seed}{', class-balanced' if balanced else ''})")
