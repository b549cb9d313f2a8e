"""Shared fixtures: the authors' reference checkpoint and tiny MDNETs made on the fly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MDNET_DEPLOY_SHARED", ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures"
OFFICIAL_CKPT = FIXTURES / "mdnet_official_c100_random.pth"
OFFICIAL_IO = FIXTURES / "mdnet_official_c100_random_io.npz"
#: A width-0.25 MDNET trained two epochs on digits, checked in (scripts/make_test_checkpoint.py makes it):
#: trained here it would differ from machine to machine, and so would every INT8 outcome built on it.
TRAINED_TINY = ROOT / "tests" / "assets" / "digits_w025.pth"

# Session fixtures that build TFLite artifacts once for tests/export and tests/runtimes.
pytest_plugins = ["tests.helpers.tflite"]


@pytest.fixture(scope="session")
def official_ckpt() -> Path:
    if not OFFICIAL_CKPT.exists():
        pytest.skip(f"reference fixture {OFFICIAL_CKPT} not found (../shared beside the checkout)")
    return OFFICIAL_CKPT


@pytest.fixture(scope="session")
def official_io() -> Path:
    if not OFFICIAL_IO.exists():
        pytest.skip(f"reference fixture {OFFICIAL_IO} not found")
    return OFFICIAL_IO


@pytest.fixture(scope="session")
def trained_tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checked-in trained checkpoint, copied so no test can write beside the original."""
    import shutil

    path = tmp_path_factory.mktemp("trained") / "digits_w025.pth"
    shutil.copyfile(TRAINED_TINY, path)
    return path


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained width-0.25, 10-class MDNET saved in the authors' format (fast to export)."""
    import torch

    from mdnet_deploy.model.mdnet import create_model

    torch.manual_seed(0)
    model = create_model(10, width=0.25).eval()
    # Non-trivial BatchNorm statistics so parity checks exercise them.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("tiny") / "tiny.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tiny_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mdnet_deploy.export.onnx_export import export_onnx

    return export_onnx(tiny_ckpt, tmp_path_factory.mktemp("tiny_onnx")).path
