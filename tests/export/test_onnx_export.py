"""Export with parity: the reference fixture through ONNX Runtime, metadata, atomicity."""

import json

import numpy as np
import onnx
import pytest

from mdnet_deploy.artifact import read_meta, sidecar_path
from mdnet_deploy.errors import InputError, OutputError, VerificationError
from mdnet_deploy.export import onnx_export
from mdnet_deploy.export.onnx_export import export_onnx
from mdnet_deploy.runtimes.onnxruntime import run_onnx


@pytest.mark.slow
def test_official_fixture_through_onnx_runtime(official_ckpt, official_io, tmp_path):
    result = export_onnx(official_ckpt, tmp_path)
    io = np.load(official_io)
    assert np.abs(run_onnx(str(result.path), io["input"]) - io["logits"]).max() < 1e-4
    assert result.nodes_after < result.nodes_before
    model = onnx.load(str(result.path))
    assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == ["logits"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch


def test_metadata_travels_in_sidecar_and_model(tiny_ckpt, tmp_path):
    labels = [f"class{i}" for i in range(10)]
    result = export_onnx(tiny_ckpt, tmp_path, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), labels=labels, batch=4)
    meta = read_meta(result.path)
    assert meta.preprocessing.mean == (0.5, 0.5, 0.5) and meta.labels == labels
    assert meta.input.shape == [4, 3, 32, 32] and meta.num_classes == 10
    assert meta.checkpoint["sha256"] and meta.verification["passed"]
    sidecar_path(result.path).unlink()
    embedded = read_meta(result.path)  # falls back to ONNX metadata_props
    assert embedded.labels == labels


def test_parity_failure_leaves_nothing(tiny_ckpt, tmp_path):
    with pytest.raises(VerificationError, match="nothing was written"):
        export_onnx(tiny_ckpt, tmp_path, tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_export_leaves_no_model(tiny_ckpt, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_export, "_parity", boom)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(tiny_ckpt, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_labels_count_contradiction(tiny_ckpt, tmp_path):
    with pytest.raises(InputError, match="labels file has 3 names but the checkpoint has 10 classes"):
        export_onnx(tiny_ckpt, tmp_path / "o", labels=["a", "b", "c"])
    assert not (tmp_path / "o" / "model.onnx").exists()


def test_unwritable_output(tiny_ckpt, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create output folder"):
        export_onnx(tiny_ckpt, blocker / "sub")


def test_real_data_parity_reports_accuracy(tiny_ckpt, tmp_path):
    result = export_onnx(tiny_ckpt, tmp_path, data="digits")
    real = result.checks[1]
    assert real.n == 256 and real.accuracy is not None and real.top1_agreement == 1.0
    assert json.loads(sidecar_path(result.path).read_text())["labels"] == [str(i) for i in range(10)]
