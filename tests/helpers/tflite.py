"""Build-once TFLite artifacts shared by tests/export and tests/runtimes.

Conversions cost 30-60 s each on 2 shared cores, so each artifact is built
at most once per pytest process (module-level cache; the runtime tests
import this module by path, so both folders share one copy) in a temporary
folder removed at exit.

The checkpoint is a width-0.25 MDNET trained briefly on digits (the same
recipe as tests/calibration's): trained weights and batch-norm statistics
give realistic activation ranges and well-separated logits, which is what
makes int8 parity and top-1 agreement mean something. (A random network's
pooled features barely differ between images, so every reduced-precision
check on it fails for reasons that have nothing to do with the converter.)
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import numpy as np

FLOAT_MODULES = ["transform.attn.qkv", "stage2.0.residual.3"]  # an isolated conv and one between quantized neighbours
CALIB = "digits:train"
CALIB_SIZE = 64
_CACHE: dict[str, Any] = {}


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: on 2 cores shared with other jobs, two OpenMP threads spin-wait
    on each other and training takes 3-4x longer (measured: 22 s vs 60-90 s for the fixture)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def workdir() -> Path:
    if "dir" not in _CACHE:
        path = Path(tempfile.mkdtemp(prefix="mdnet-tflite-tests-"))
        atexit.register(shutil.rmtree, path, True)
        _CACHE["dir"] = path
    return _CACHE["dir"]


SHARED_FIXTURE = "trained_tiny_ckpt"  # a session fixture a root conftest may offer (same recipe)


def adopt_shared_checkpoint(request: Any) -> None:
    """Use the session's shared trained checkpoint when tests/conftest.py offers one: training is
    the costliest step here and tests/calibration trains the very same model."""
    import pytest

    if "ckpt" in _CACHE:
        return
    try:
        _CACHE["ckpt"] = Path(request.getfixturevalue(SHARED_FIXTURE))
    except pytest.FixtureLookupError:
        pass


def tiny_checkpoint() -> Path:
    """A width-0.25 MDNET trained 2 epochs on digits:train (about 20 s on one thread, ~75-85 % top-1)."""
    if "ckpt" not in _CACHE:
        from mdnet_deploy.data import load_dataset
        from mdnet_deploy.model.checkpoint import save_checkpoint
        from mdnet_deploy.model.train import TrainConfig, train_model

        ds = load_dataset("digits", "train")
        cfg = TrainConfig(epochs=2, width=0.25, batch_size=32, lr=3e-3, hflip=False, crop_padding=0, rotation_deg=0, warmup_epochs=0.3)
        with one_torch_thread():
            model = train_model(ds.images, ds.labels, 10, cfg)
        _CACHE["ckpt"] = save_checkpoint(model, workdir() / "tiny.pth")
    return _CACHE["ckpt"]


def quant_report() -> Path:
    """A report in the shape 'mdnet-deploy quantize' writes (float_fallback + calibration)."""
    path = workdir() / "model.int8.report.json"
    if not path.exists():
        report = {
            "float_fallback": {"modules": FLOAT_MODULES, "nodes": [f"/{m.replace('.', '/')}/Conv" for m in FLOAT_MODULES]},
            "calibration": {"source": CALIB, "count": CALIB_SIZE, "seed": 0, "method": "minmax"},
        }
        path.write_text(json.dumps(report))
    return path


def fp32() -> Any:
    """(TfliteResult) fp32 with --eval digits; keeps the raw fp32 bytes for the fp16 build."""
    if "fp32" not in _CACHE:
        from mdnet_deploy.export.tflite import convert as tflite_convert
        from mdnet_deploy.export.tflite.compile import convert_tflite

        real = tflite_convert.convert_float

        def keep(*args: Any, **kwargs: Any) -> bytes:
            _CACHE["fp32_bytes"] = real(*args, **kwargs)
            return _CACHE["fp32_bytes"]

        with mock.patch.object(tflite_convert, "convert_float", keep), one_torch_thread():
            _CACHE["fp32"] = convert_tflite(tiny_checkpoint(), workdir() / "model.fp32.tflite", "fp32", eval_spec="digits")
    return _CACHE["fp32"]


def fp16() -> Any:
    """fp16 from the same checkpoint; the litert-torch step is reused from fp32 (same model, same call)."""
    if "fp16" not in _CACHE:
        from mdnet_deploy.export.tflite import convert as tflite_convert
        from mdnet_deploy.export.tflite.compile import convert_tflite

        fp32()
        with mock.patch.object(tflite_convert, "convert_float", lambda *a, **k: _CACHE["fp32_bytes"]), one_torch_thread():
            _CACHE["fp16"] = convert_tflite(tiny_checkpoint(), workdir() / "model.fp16.tflite", "fp16")
    return _CACHE["fp16"]


def int8_io() -> Any:
    """int8 with int8 I/O, quantize's report (two float modules), calibration digits:train x64, --eval digits."""
    if "int8" not in _CACHE:
        from mdnet_deploy.export.tflite.compile import convert_tflite

        ckpt = tiny_checkpoint()
        with one_torch_thread():
            _CACHE["int8"] = convert_tflite(
                ckpt, workdir() / "model.int8.tflite", "int8", io="int8", quant_report=quant_report(), eval_spec="digits"
            )
    return _CACHE["int8"]


def digits_test_input() -> tuple[np.ndarray, np.ndarray]:
    from mdnet_deploy.artifact import Preprocessing
    from mdnet_deploy.data import load_dataset, preprocess

    ds = load_dataset("digits", "test")
    return preprocess(ds.images, Preprocessing()), ds.labels
