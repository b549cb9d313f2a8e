"""Fixtures of the bench tests (the helpers live in bench_helpers.py)."""

from __future__ import annotations

import pytest

from bench_helpers import tiny_models, write_eval_npz


@pytest.fixture(scope="session")
def models():
    pytest.importorskip("torch", reason="the tiny test model is made with torch (workstation venv)")
    pytest.importorskip("onnxruntime")
    return tiny_models()


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
