"""Small, hostile and honest data sets written on the fly: CIFAR pickles, .npz files, images."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np


class Payload:
    """Unpickling this makes the folder ``canary``: proof that code from a data file ran."""

    def __init__(self, canary: Path) -> None:
        self.canary = str(canary)

    def __reduce__(self):  # noqa: ANN204
        return (os.mkdir, (self.canary,))


def cifar100(folder: Path, n: int = 4, classes: int = 2, meta_extra: object = None, batch_extra: object = None) -> Path:
    """A CIFAR-100 python folder (meta, train, test); ``*_extra`` objects are pickled inside meta or test."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = {b"fine_label_names": [f"c{i}".encode() for i in range(classes)]}
    if meta_extra is not None:
        meta[b"extra"] = meta_extra
    pickle.dump(meta, open(folder / "meta", "wb"), protocol=2)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"fine_labels": [i % classes for i in range(n)],
        }
        if batch_extra is not None and split == "test":
            batch[b"extra"] = batch_extra
        pickle.dump(batch, open(folder / split, "wb"), protocol=2)
    return folder


def cifar10(folder: Path, n: int = 4, batch_extra: object = None) -> Path:
    """A CIFAR-10 python folder (batches.meta, data_batch_1, test_batch)."""
    folder.mkdir(parents=True, exist_ok=True)
    pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, open(folder / "batches.meta", "wb"))
    rng = np.random.default_rng(0)
    for name in ("data_batch_1", "test_batch"):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": [i % 10 for i in range(n)]}
        if batch_extra is not None:
            batch[b"extra"] = batch_extra
        pickle.dump(batch, open(folder / name, "wb"))
    return folder


def npz(path: Path, n: int = 4, y: object = None, size: int = 32) -> Path:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2 if y is None else y
    np.savez(path, x=rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), y=labels)
    return path


def png_bomb(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A ~100-byte PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )
    return path


def image_folder(folder: Path, classes: int = 2, per_class: int = 2, size: int = 32) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        (folder / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"c{c}" / f"{i}.png")
    return folder
