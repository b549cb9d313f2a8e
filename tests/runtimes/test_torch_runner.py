"""The PyTorch baseline runner: parity with ONNX Runtime on the same tiny MDNET."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch runner needs torch (workstation venv)")
pytest.importorskip("onnxruntime")


from mdnet_deploy.artifact import read_meta, write_meta
from mdnet_deploy.errors import ArtifactError, CheckpointError, UnavailableError
from mdnet_deploy.runtimes.onnxruntime import OnnxRuntimeRunner
from mdnet_deploy.runtimes.torch_runner import TorchRunner, checkpoint_meta


@pytest.fixture(scope="module")
def models(tiny_ckpt, tiny_onnx):
    return {"pth": tiny_ckpt, "onnx": tiny_onnx}


def inputs(n=6):
    return np.random.default_rng(1).standard_normal((n, 3, 32, 32)).astype(np.float32)


def test_parity_with_onnxruntime(models):
    x = inputs()
    with OnnxRuntimeRunner(models["onnx"], read_meta(models["onnx"]), threads=1) as ort_runner:
        ref = ort_runner.infer(x)
    meta = checkpoint_meta(models["pth"])
    assert meta.format == "pt" and meta.num_classes == 10 and meta.checkpoint["sha256"]
    with TorchRunner(models["pth"], meta, threads=1) as runner:
        got = runner.infer(x)
        d = runner.describe()
    assert got.dtype == np.float32 and got.shape == (6, 10)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)
    assert d["name"] == "torch" and d["version"] == torch.__version__ and d["device"] == "cpu" and d["threads"] == 1


def test_channels_last_and_via_exported_artifact(models):
    """An exported artifact's recorded checkpoint opens as its PyTorch baseline."""
    x = inputs(3)
    meta = read_meta(models["onnx"])
    with TorchRunner(models["pth"], checkpoint_meta(models["pth"])) as plain:
        ref = plain.infer(x)
    with TorchRunner(models["onnx"], meta, channels_last=True) as runner:
        assert runner.checkpoint_path() == Path(meta.checkpoint["path"])
        got = runner.infer(x)
        assert runner.describe()["channels_last"] is True
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_bare_checkpoint_meta_is_filled_on_open(models):
    from mdnet_deploy.artifact import ArtifactMeta

    with TorchRunner(models["pth"], ArtifactMeta(format="pt")) as runner:
        assert runner.meta.num_classes == 10 and runner.meta.variant == "mdnet-w0.25"


def test_artifact_without_checkpoint_has_no_baseline(models, tmp_path):
    import shutil

    m = tmp_path / "model.onnx"
    shutil.copyfile(models["onnx"], m)
    meta = read_meta(m)
    meta.checkpoint = None
    with pytest.raises(ArtifactError, match="records no checkpoint"):
        TorchRunner(m, meta).open()
    meta.checkpoint = {"path": str(tmp_path / "gone.pth")}
    write_meta(m, meta)
    with pytest.raises(ArtifactError, match="is not here"):
        TorchRunner(m, meta).open()


def test_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        checkpoint_meta(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the refusal cannot be shown")
def test_cuda_without_gpu_is_unavailable(models):
    with pytest.raises(UnavailableError, match="no CUDA GPU"):
        TorchRunner(models["pth"], checkpoint_meta(models["pth"]), device="cuda").open()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU and a CUDA build of torch")
def test_cuda_parity(models):  # pragma: no cover - runs on GPU machines only
    x = inputs(4)
    with TorchRunner(models["pth"], checkpoint_meta(models["pth"])) as cpu:
        ref = cpu.infer(x)
    with TorchRunner(models["pth"], checkpoint_meta(models["pth"]), device="cuda") as gpu:
        np.testing.assert_allclose(gpu.infer(x), ref, atol=1e-3)
