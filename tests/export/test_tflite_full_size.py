"""The authors' full-size network through the int8 path (slow: about 2 minutes on 2 cores)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("litert_torch", reason="litert-torch is not installed (pip install 'mdnet-deploy[tflite]')")


@pytest.mark.slow
def test_full_size_int8_with_float_io(official_ckpt: Path, tmp_path: Path) -> None:
    from mdnet_deploy.artifact import read_meta
    from mdnet_deploy.export.tflite.compile import convert_tflite
    from mdnet_deploy.runtimes.tflite import TfliteRunner

    # The 100-class reference checkpoint, calibrated on digits images (any images
    # exercise the converter; accuracy is the trained-model tests' business).
    result = convert_tflite(official_ckpt, tmp_path / "mdnet.int8.tflite", "int8", calib="digits:train", calib_size=128)
    meta = read_meta(result.path)
    assert meta.input.dtype == "float32" and meta.quantization["io"] == "float"  # the default
    assert meta.num_classes == 100 and meta.model_config["width"] == 1.0
    assert result.size_bytes < 4_000_000  # 2.4 M int8 weights plus float islands
    assert result.delegation["ops_delegated"] >= result.delegation["ops_total"] - 3
    with TfliteRunner(result.path, meta, threads=1) as runner:
        y = runner.infer(np.zeros((1, 3, 32, 32), np.float32))
    assert y.shape == (1, 100) and np.isfinite(y).all()
