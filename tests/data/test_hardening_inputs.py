"""Issue 10: malformed data sets give one `error:` line, never a traceback or wrong labels.

Each test names the reproduction that used to print a traceback (or silently score wrong labels).
"""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

from tests.helpers.cli import assert_one_line_error, run, tree
from tests.helpers.datasets import cifar100, image_folder, npz, png_bomb


def test_truncated_npz(tmp_path):
    """`pack-eval half.npz` where half.npz is the first half of a valid .npz: was a BadZipFile traceback."""
    whole = npz(tmp_path / "whole.npz").read_bytes()
    (tmp_path / "half.npz").write_bytes(whole[: len(whole) // 2])
    assert_one_line_error(
        run("pack-eval", tmp_path / "half.npz", "-o", tmp_path / "e.npz"), "half.npz is not a readable .npz"
    )
    assert not (tmp_path / "e.npz").exists()


def test_nan_labels_are_refused(tmp_path):
    """`pack-eval nan.npz` with y = [nan, 1.0, ...]: NaN was cast to -9223372036854775808 and packed."""
    spec = npz(tmp_path / "nan.npz", y=np.array([np.nan, 1.0, 0.0, 1.0]))
    assert_one_line_error(run("pack-eval", spec, "-o", tmp_path / "e.npz"), "NaN")


def test_quantize_eval_with_negative_labels_is_refused(tmp_path, tiny_onnx):
    """`quantize m.onnx --calib digits:train --eval neg.npz` with y = -1: accuracy 0 vs 0, "budget met"."""
    neg = npz(tmp_path / "neg.npz", y=-np.ones(4, np.int64))
    res = run(
        "quantize",
        tiny_onnx,
        "--calib",
        npz(tmp_path / "cal.npz"),
        "--calib-size",
        "4",
        "--eval",
        neg,
        "-o",
        tmp_path / "q.onnx",
    )
    assert_one_line_error(res, "labels must be 0 or more")
    assert not (tmp_path / "q.onnx").exists()


@pytest.mark.parametrize(
    "batch,fragment",
    [
        ({b"data": np.zeros((2, 100), np.uint8), b"fine_labels": [0, 1]}, "N x 3072 uint8"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "no 'fine_labels'"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0]}, "2 images but 1 labels"),
        ({b"data": "pixels", b"fine_labels": [0, 1]}, "N x 3072 uint8"),
        ([1, 2, 3], "not a dict"),
    ],
)
def test_malformed_cifar_batch(tmp_path, batch, fragment):
    """`pack-eval cifar/` whose `test` batch has a wrong shape, misses labels or is no dict: was a ValueError/KeyError traceback."""
    folder = cifar100(tmp_path / "cifar")
    pickle.dump(batch, open(folder / "test", "wb"))
    assert_one_line_error(run("pack-eval", folder, "-o", tmp_path / "e.npz"), fragment)


def test_png_decompression_bomb_is_capped(tmp_path):
    """`pack-eval imgs/` holding a 100-byte PNG whose header claims 30000x30000: was a DecompressionBombError traceback."""
    folder = image_folder(tmp_path / "imgs")
    png_bomb(folder / "c0" / "bomb.png")
    assert (folder / "c0" / "bomb.png").stat().st_size < 200
    assert_one_line_error(run("pack-eval", folder, "-o", tmp_path / "e.npz"), "bomb.png", "pixels")
    assert not (tmp_path / "e.npz").exists()


def test_image_folder_without_pillow_says_how_to_get_it(tmp_path, monkeypatch):
    """`pack-eval imgs/` on a device install without Pillow: was `ModuleNotFoundError: PIL`."""
    folder = image_folder(tmp_path / "imgs")
    monkeypatch.setitem(sys.modules, "PIL", None)  # what an install without Pillow looks like to `import`
    assert_one_line_error(run("pack-eval", folder, "-o", tmp_path / "e.npz"), "pip install pillow")


def test_resize_without_pillow_says_how_to_get_it(tmp_path, monkeypatch):
    """`pack-eval s.npz --size 16` without Pillow (resizing needs it): one line, not ModuleNotFoundError."""
    spec = npz(tmp_path / "s.npz")
    monkeypatch.setitem(sys.modules, "PIL", None)
    assert_one_line_error(run("pack-eval", spec, "-o", tmp_path / "e.npz", "--size", "16"), "pip install pillow")
    assert tree(tmp_path) == ["s.npz"]
