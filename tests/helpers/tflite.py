"""Build-once TFLite artifacts shared by tests/export and tests/runtimes, as session fixtures.

Conversions cost 30-60 s each on 2 shared cores, so each artifact is built at
most once per pytest session (registered as a plugin by tests/conftest.py).

They come from the checked-in trained checkpoint (``trained_tiny_ckpt``):
trained weights and batch-norm statistics give realistic activation ranges
and well-separated logits, which is what makes int8 parity and top-1
agreement mean something. (A random network's pooled features barely differ
between images, so every reduced-precision check on it fails for reasons
that have nothing to do with the converter.)
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import numpy as np
import pytest

FLOAT_MODULES = ["transform.attn.qkv", "stage2.0.residual.3"]  # an isolated conv and one between quantized neighbours
CALIB = "digits:train"
CALIB_SIZE = 64


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: on 2 cores shared with other jobs, two OpenMP threads spin-wait
    on each other and conversion takes several times longer."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tflite_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tflite")


@pytest.fixture(scope="session")
def tflite_quant_report(tflite_workdir: Path) -> Path:
    """A report in the shape 'mdnet-deploy quantize' writes (float_fallback + calibration)."""
    path = tflite_workdir / "model.int8.report.json"
    report = {
        "float_fallback": {"modules": FLOAT_MODULES, "nodes": [f"/{m.replace('.', '/')}/Conv" for m in FLOAT_MODULES]},
        "calibration": {"source": CALIB, "count": CALIB_SIZE, "seed": 0, "method": "minmax"},
    }
    path.write_text(json.dumps(report))
    return path


@pytest.fixture(scope="session")
def _tflite_fp32_build(trained_tiny_ckpt: Path, tflite_workdir: Path) -> tuple[Any, bytes]:
    """(TfliteResult, raw fp32 bytes): fp32 with --eval digits, keeping litert-torch's output for fp16."""
    from mdnet_deploy.export.tflite import convert as tflite_convert
    from mdnet_deploy.export.tflite.compile import convert_tflite

    real = tflite_convert.convert_float
    kept: dict[str, bytes] = {}

    def keep(*args: Any, **kwargs: Any) -> bytes:
        kept["bytes"] = real(*args, **kwargs)
        return kept["bytes"]

    with mock.patch.object(tflite_convert, "convert_float", keep), one_torch_thread():
        result = convert_tflite(trained_tiny_ckpt, tflite_workdir / "model.fp32.tflite", "fp32", eval_spec="digits")
    return result, kept["bytes"]


@pytest.fixture(scope="session")
def tflite_fp32(_tflite_fp32_build: tuple[Any, bytes]) -> Any:
    return _tflite_fp32_build[0]


@pytest.fixture(scope="session")
def tflite_fp16(_tflite_fp32_build: tuple[Any, bytes], trained_tiny_ckpt: Path, tflite_workdir: Path) -> Any:
    """fp16 from the same checkpoint; the litert-torch step is reused from fp32 (same model, same call)."""
    from mdnet_deploy.export.tflite import convert as tflite_convert
    from mdnet_deploy.export.tflite.compile import convert_tflite

    fp32_bytes = _tflite_fp32_build[1]
    with mock.patch.object(tflite_convert, "convert_float", lambda *a, **k: fp32_bytes), one_torch_thread():
        return convert_tflite(trained_tiny_ckpt, tflite_workdir / "model.fp16.tflite", "fp16")


@pytest.fixture(scope="session")
def tflite_int8_io(trained_tiny_ckpt: Path, tflite_workdir: Path, tflite_quant_report: Path) -> Any:
    """int8 with int8 I/O, quantize's report (two float modules), calibration digits:train x64, --eval digits."""
    from mdnet_deploy.export.tflite.compile import convert_tflite

    with one_torch_thread():
        return convert_tflite(
            trained_tiny_ckpt,
            tflite_workdir / "model.int8.tflite",
            "int8",
            io="int8",
            quant_report=tflite_quant_report,
            eval_spec="digits",
        )


def digits_test_input() -> tuple[np.ndarray, np.ndarray]:
    from mdnet_deploy.artifact import Preprocessing
    from mdnet_deploy.data import load_dataset, preprocess

    ds = load_dataset("digits", "test")
    return preprocess(ds.images, Preprocessing()), ds.labels
