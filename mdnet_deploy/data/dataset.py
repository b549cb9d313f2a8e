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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

#: Largest image (pixels) read from an image folder: a few-hundred-byte PNG can
#: claim 30000x30000 and decode to gigabytes (a decompression bomb).
MAX_IMAGE_PIXELS = 8192 * 8192
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

    def take(self, index: np.ndarray, description: str | None = None) -> Dataset:
        return Dataset(
            self.images[index], self.labels[index], self.class_names, description or self.description, self.skipped
        )


def _split_spec(spec: str) -> tuple[str, str | None]:
    for split in ("train", "test", "all"):
        if spec.endswith(f":{split}"):
            return spec[: -len(split) - 1], split
    return spec, None


def _no_splits(spec: str, named: str | None, kind: str) -> None:
    """A ':train'/':test' suffix on a source without splits would silently mean 'all images': refuse it."""
    if named in ("train", "test"):
        raise DataError(
            f"data set {spec}: {kind} has no train/test splits, so ':{named}' cannot be honoured; drop ':{named}' "
            "and give separate folders or .npz files for calibration and evaluation"
        )


def has_splits(spec: str) -> bool:
    """Whether the source of ``spec`` has its own train/test splits (digits, a CIFAR folder)."""
    base, _ = _split_spec(str(spec))
    if base == "digits":
        return True
    path = Path(base).expanduser()
    return path.is_dir() and _find_cifar(path) is not None


def validation_spec(data: str, val: str | None = None) -> str | None:
    """What training validates on: ``val`` when given, else the test split of ``data`` where it has one.

    A source without splits (an image folder, an .npz) gets no validation set
    rather than its own training images under another name.
    """
    if val is not None:
        return val
    base, _ = _split_spec(str(data))
    return f"{base}:test" if has_splits(base) else None


def load_dataset(spec: str, split: str = "test", size: tuple[int, int] | None = None) -> Dataset:
    """Load ``spec``; ``split`` applies where the source has one and the spec names none."""
    base, named = _split_spec(str(spec))
    split = named or split
    if base == "digits":
        ds = _load_digits(split)
    else:
        path = Path(base).expanduser()
        if not path.exists():
            raise DataError(
                f"data set {path} does not exist; give a CIFAR folder, an image folder, an .npz or 'digits'"
            )
        if path.is_file():
            if path.suffix.lower() != ".npz":
                raise DataError(f"data set {path} is a file but not an .npz; give a folder or an .npz with x and y")
            _no_splits(spec, named, "an .npz")
            ds = _load_npz(path)
        else:
            cifar = _find_cifar(path)
            if cifar is None:
                _no_splits(spec, named, "an image folder")
            ds = _load_cifar(cifar, split) if cifar is not None else _load_image_folder(path)
    if len(ds) == 0:
        raise DataError(f"data set {spec} holds no images; check the path (class sub-folders with PNG/JPEG files)")
    if size is not None and ds.images.dtype == np.uint8 and ds.images.shape[1:3] != tuple(size):
        from .preprocess import resize_images

        ds.images = resize_images(ds.images, size)
    return ds


# -- digits ---------------------------------------------------------------------------
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as (images (1797, 8, 8) float 0..16, labels), the same arrays as ``load_digits``.

    Read straight from the CSV scikit-learn ships: importing scikit-learn to
    reach it took 1.2 s of a 7 s quantize (docs/BENCHMARKS.md, issue 12).
    ``load_digits`` is the fallback if the file ever moves.
    """
    import gzip
    from importlib.util import find_spec

    spec = find_spec("sklearn")  # finds the package without importing it
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if csv is not None and csv.is_file():
        with gzip.open(csv, "rt") as f:
            data = np.loadtxt(f, delimiter=",")
        return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target.astype(np.int64)


def _load_digits(split: str) -> Dataset:
    raw, labels = digits_arrays()
    # 0..16 grey levels -> 0..255, nearest-neighbour x4 to 32x32, grey -> RGB.
    grey = np.clip(raw * (255.0 / 16.0), 0, 255).astype(np.uint8)
    big = grey.repeat(4, axis=1).repeat(4, axis=2)
    images = np.repeat(big[..., None], 3, axis=3)
    order = np.random.default_rng(DIGITS_SEED).permutation(len(labels))
    n_test = int(round(len(labels) * DIGITS_TEST_FRACTION))
    index = {"test": order[:n_test], "train": order[n_test:], "all": order}[split]
    names = [str(i) for i in range(10)]
    return Dataset(images[index], labels[index], names, f"digits:{split} (scikit-learn, 32x32 RGB, seed {DIGITS_SEED})")


# -- npz ------------------------------------------------------------------------------
def _load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):  # np.load of a bare .npy
                raise DataError(f"{path} is a single .npy array, not an .npz; save x and y with numpy.savez")
            if "x" not in f or "y" not in f:
                raise DataError(f"{path} must hold arrays 'x' and 'y' (it has {', '.join(f.files) or 'none'})")
            x, y_raw = f["x"], f["y"]
            names = [str(n) for n in np.asarray(f["labels"]).reshape(-1)] if "labels" in f else None
    except DataError:
        raise
    except Exception as exc:
        # zipfile, zlib and numpy raise many types for a truncated or altered file (BadZipFile,
        # zlib.error, EOFError, ValueError for an object array, ...): all mean the same to the user.
        raise DataError(
            f"{path} is not a readable .npz ({type(exc).__name__}); re-create it with pack-eval or numpy.savez"
        ) from None
    y = labels_array(y_raw, str(path))
    if x.dtype not in (np.uint8, np.float32) or x.ndim != 4 or len(x) != len(y):
        raise DataError(
            f"{path}: x must be (N,H,W,3) uint8 or (N,3,H,W) float32 with N = len(y); got x {x.shape}, y {y.shape}"
        )
    if x.dtype == np.uint8:
        if x.shape[3] != 3:
            raise DataError(f"{path}: uint8 x must be (N,H,W,3) RGB; got {x.shape}")
    elif x.shape[1] != 3:
        raise DataError(f"{path}: float x must be (N,3,H,W) model input; got {x.shape}")
    if 0 in x.shape[1:]:
        raise DataError(f"{path}: x has an empty dimension {x.shape}; give images of at least 1x1 pixels")
    if names is None:
        names = [str(i) for i in range(int(y.max()) + 1 if len(y) else 0)]
    elif len(y) and int(y.max()) >= len(names):
        raise DataError(f"{path}: label {int(y.max())} has no name in 'labels' ({len(names)} names); fix y or labels")
    return Dataset(x, y, names, f"npz:{path.name}")


def labels_array(y: object, where: str) -> np.ndarray:
    """Class indices as int64, refusing what would silently turn into wrong labels.

    NaN or 2.5 cast to int64 become garbage, and a negative label would be
    scored as "never right" (or index from the end), so both are errors.
    """
    arr = np.asarray(y)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(f"{where}: labels must be integer class indices, not {arr.dtype}; fix the labels")
    arr = arr.reshape(-1)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise DataError(f"{where}: labels hold NaN, infinite or fractional values; give integer class indices")
        if len(arr) and np.abs(arr).max() > 2**31:
            raise DataError(f"{where}: labels up to {arr.max():g} are not class indices; give integer class indices")
    if len(arr) and arr.min() < 0:
        raise DataError(f"{where}: labels must be 0 or more (found {int(arr.min())}); give class indices 0..N-1")
    return arr.astype(np.int64)


# -- CIFAR ----------------------------------------------------------------------------
def _find_cifar(path: Path) -> Path | None:
    for candidate in (path, path / "cifar-10-batches-py", path / "cifar-100-python"):
        if (candidate / "batches.meta").exists() or (candidate / "meta").exists() and (candidate / "test").exists():
            return candidate
    return None


def _unpickle(path: Path) -> dict:
    from .pickles import safe_load

    try:
        with open(path, "rb") as f:
            obj = safe_load(f, what=str(path))
    except DataError:
        raise
    except Exception as exc:  # a truncated or foreign file: tell the user which one
        raise DataError(
            f"{path} is not a CIFAR python-pickle batch ({type(exc).__name__}); re-extract the archive"
        ) from None
    if not isinstance(obj, dict):
        raise DataError(
            f"{path} is not a CIFAR python-pickle batch (it holds a {type(obj).__name__}, not a dict); re-extract the archive"
        )
    return obj


def _key(d: dict, name: str, path: Path):
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    raise DataError(f"{path} is not a CIFAR python-pickle batch (no '{name}' entry); re-extract the archive")


def _names(meta: dict, key: str, path: Path) -> list[str]:
    raw = _key(meta, key, path)
    if not isinstance(raw, (list, tuple)) or not all(isinstance(n, (bytes, str)) for n in raw):
        raise DataError(f"{path}: '{key}' is not a list of class names; re-extract the archive")
    try:
        return [n.decode() if isinstance(n, bytes) else n for n in raw]
    except UnicodeDecodeError:
        raise DataError(f"{path}: '{key}' holds class names that are not text; re-extract the archive") from None


def _batch_arrays(batch: dict, label_key: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    data, labels = _key(batch, "data", path), _key(batch, label_key, path)
    try:
        flat = np.asarray(data)
        if flat.dtype != np.uint8 or flat.size % 3072:
            raise ValueError("data")
        x = flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        y = labels_array(labels, str(path))
    except (ValueError, TypeError):
        raise DataError(f"{path}: 'data' is not N x 3072 uint8 pixels; re-extract the archive") from None
    if len(x) != len(y):
        raise DataError(f"{path}: {len(x)} images but {len(y)} labels; re-extract the archive")
    return x, y


def _load_cifar(folder: Path, split: str) -> Dataset:
    if (folder / "batches.meta").exists():  # CIFAR-10
        meta = _unpickle(folder / "batches.meta")
        names = _names(meta, "label_names", folder / "batches.meta")
        files = {"train": sorted(folder.glob("data_batch_*")), "test": [folder / "test_batch"]}
        label_key, kind = "labels", "CIFAR-10"
    else:  # CIFAR-100
        meta = _unpickle(folder / "meta")
        names = _names(meta, "fine_label_names", folder / "meta")
        files = {"train": [folder / "train"], "test": [folder / "test"]}
        label_key, kind = "fine_labels", "CIFAR-100"
    chosen = files["train"] + files["test"] if split == "all" else files[split]
    xs, ys = [], []
    for f in chosen:
        if not f.exists():
            raise DataError(f"{kind} folder {folder} lacks {f.name}; re-extract the archive")
        x, y = _batch_arrays(_unpickle(f), label_key, f)
        if len(y) and int(y.max()) >= len(names):
            raise DataError(
                f"{f}: label {int(y.max())} but the meta file names {len(names)} classes; re-extract the archive"
            )
        xs.append(x)
        ys.append(y)
    return Dataset(np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys), names, f"{kind}:{split} ({folder})")


# -- image folders --------------------------------------------------------------------
def read_labels_file(path: Path) -> list[str]:
    try:
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"labels file {path} cannot be read ({exc}); give a text file with one class name per line"
        ) from None
    if not names:
        raise DataError(f"labels file {path} is empty; give one class name per line")
    return names


def _pillow() -> tuple[Any, Any]:
    """Pillow's Image module and the error it raises for non-images, or one line on how to get it."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise DataError(
            "reading an image folder needs Pillow, which is not installed here; pip install pillow "
            "(or pack the images into an .npz with mdnet-deploy pack-eval on a workstation)"
        ) from None
    return Image, UnidentifiedImageError


def _read_image(Image: Any, f: Path) -> np.ndarray:
    try:
        img = Image.open(f)
    except Image.DecompressionBombError:
        raise DataError(
            f"image {f} claims more pixels than the {MAX_IMAGE_PIXELS} this reads; "
            "resize it or remove it from the folder"
        ) from None
    with img:
        w, h = img.size
        if w * h > MAX_IMAGE_PIXELS:
            raise DataError(
                f"image {f} claims {w}x{h} pixels, more than the {MAX_IMAGE_PIXELS} this reads; "
                "resize it or remove it from the folder"
            )
        return np.asarray(img.convert("RGB"))


def _load_image_folder(folder: Path) -> Dataset:
    Image, UnidentifiedImageError = _pillow()

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(
            f"{folder} has no class sub-folders; give one sub-folder of images per class (or a CIFAR folder / .npz)"
        )
    labels_file = folder / "labels.txt"
    names = read_labels_file(labels_file) if labels_file.exists() else classes
    unknown = sorted(set(classes) - set(names))
    if unknown:
        raise DataError(
            f"{folder}: sub-folders {', '.join(unknown[:3])} are not in {labels_file.name}; add them or remove the folders"
        )
    images, labels, skipped = [], [], []
    for cls in classes:
        for f in sorted((folder / cls).iterdir()):
            if not f.is_file():
                continue
            try:
                arr = _read_image(Image, f)
            except (UnidentifiedImageError, OSError, ValueError, EOFError, SyntaxError):
                # Not an image, or a truncated / malformed one (Pillow's
                # decoders raise all of these): skipped and reported.
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
        images = [
            a if a.shape[:2] == (h, w) else np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR))
            for a in images
        ]
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
