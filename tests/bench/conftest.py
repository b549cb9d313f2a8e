"""Fixtures of the bench tests (the helpers live in bench_helpers.py)."""

from __future__ import annotations

import pytest

from tests.helpers.bench import make_tflite, write_eval_npz


@pytest.fixture(scope="session")
def models(tiny_ckpt, tiny_onnx):
    """The session's tiny MDNET (width 0.25, 10 classes): its checkpoint and its ONNX export."""
    pytest.importorskip("onnxruntime")
    return {"pth": tiny_ckpt, "onnx": tiny_onnx}


@pytest.fixture
def eval_npz(tmp_path):
    return write_eval_npz(tmp_path / "eval.npz")


@pytest.fixture
def no_rapl(tmp_path, monkeypatch):
    """An empty sysfs: no power meter can work, whatever this machine has."""
    root = tmp_path / "sysfs"
    root.mkdir()
    monkeypatch.setenv("MDNET_DEPLOY_SYSFS_ROOT", str(root))
    return root


@pytest.fixture(scope="session")
def tflite_model(models, tmp_path_factory):
    """The tiny model as .tflite (skips until the TFLite converter exists)."""
    return make_tflite(models["onnx"], tmp_path_factory.mktemp("tflite"))
