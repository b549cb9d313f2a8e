"""Data specs mean what they say (issue 11): no ignored ':train'/':test', no calibration images in the evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mdnet_deploy.data.dataset import load_dataset
from mdnet_deploy.data.overlap import check_overlap, overlap_count
from mdnet_deploy.errors import DataError
from tests.helpers.bench import write_eval_npz
from tests.helpers.calib import leftovers
from tests.helpers.cli import assert_one_line_error
from tests.helpers.cli import run as run_cli


def _image_folder(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


@pytest.mark.parametrize("suffix", [":train", ":test"])
def test_a_split_suffix_on_a_source_without_splits_is_an_error(tmp_path: Path, suffix: str) -> None:
    npz = write_eval_npz(tmp_path / "e.npz")
    folder = _image_folder(tmp_path / "imgs")
    for spec in (f"{npz}{suffix}", f"{folder}{suffix}"):
        with pytest.raises(DataError, match=f"no train/test splits, so '{suffix}' cannot be honoured"):
            load_dataset(spec)
    assert len(load_dataset(f"{folder}:all")) == 6 and len(load_dataset(str(folder))) == 6
    assert len(load_dataset("digits:train")) > len(load_dataset("digits:test"))  # real splits still work


def test_pack_eval_refuses_the_suffix_through_the_cli(tmp_path: Path) -> None:
    folder = _image_folder(tmp_path / "imgs")
    out = tmp_path / "packed"
    out.mkdir()
    assert_one_line_error(run_cli("pack-eval", f"{folder}:test", "-o", out / "e.npz"), ":test", "no train/test splits")
    assert leftovers(out) == []


def test_overlap_is_counted_by_content() -> None:
    a = np.arange(4 * 3 * 2 * 2, dtype=np.float32).reshape(4, 3, 2, 2)
    b = np.concatenate([a[1:3], a[:1] + 1000])
    assert overlap_count(a, b) == 2
    with pytest.raises(DataError, match="2 of 3 evaluation images"):
        check_overlap(a, b, "calib", "eval")
    assert check_overlap(a, b, "calib", "eval", allow=True) == 2
    assert check_overlap(a, None, "calib", None) == 0


@pytest.fixture(scope="module")
def onnx_model(tiny_onnx: Path) -> Path:
    pytest.importorskip("onnxruntime")
    return tiny_onnx


def test_quantize_refuses_calibrating_on_the_evaluation_images(onnx_model: Path, tmp_path: Path) -> None:
    """The issue's 'quantize --calib FOLDER:train --eval FOLDER:test' on an image folder."""
    folder = _image_folder(tmp_path / "imgs")
    out = tmp_path / "q" / "model.int8.onnx"
    assert_one_line_error(
        run_cli("quantize", onnx_model, "--calib", f"{folder}:train", "--eval", f"{folder}:test", "-o", out),
        "no train/test splits",
    )
    assert_one_line_error(
        run_cli("quantize", onnx_model, "--calib", folder, "--eval", folder, "-o", out),
        "6 of 6 evaluation images",
        "--allow-overlap",
    )
    assert leftovers(out.parent) == []


def test_compile_int8_refuses_calibrating_on_the_evaluation_images(tiny_ckpt: Path, tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert")
    ev = write_eval_npz(tmp_path / "e.npz", n=16)
    out = tmp_path / "o" / "m.tflite"
    out.parent.mkdir()
    res = run_cli(
        "compile",
        tiny_ckpt,
        "--target",
        "tflite",
        "--precision",
        "int8",
        "--calib",
        ev,
        "--calib-size",
        "16",
        "--eval",
        ev,
        "-o",
        out,
    )
    assert_one_line_error(res, "16 of 16 evaluation images", "--allow-overlap")
    assert leftovers(out.parent) == []


def test_allow_overlap_proceeds_and_the_guard_says_how_sure_its_drop_is(onnx_model: Path, tmp_path: Path) -> None:
    import json

    folder = _image_folder(tmp_path / "imgs")
    out = tmp_path / "q" / "model.int8.onnx"
    res = run_cli(
        "quantize",
        onnx_model,
        "--calib",
        folder,
        "--eval",
        folder,
        "--allow-overlap",
        "--calib-size",
        "6",
        "--sensitivity-images",
        "4",
        "-o",
        out,
    )
    assert res.exit_code in (0, 4), res.output  # 4: over budget (then the best model is kept under another name)
    assert "evaluation images are also calibration images" in res.output
    assert "6 evaluation images cannot resolve --max-drop 0.5" in res.output
    report = json.loads(out.with_name("model.int8.report.json").read_text())
    unc = report["accuracy"]["uncertainty"]
    assert unc["n"] == 6 and unc["resolvable"] is False and unc["points_per_image"] == pytest.approx(100 / 6)
