"""The quantization tests' models: the checked-in trained MDNET (tests/assets) exported once per session.

Trained weights and BatchNorm statistics are what make INT8 ranges realistic;
an untrained network would make every accuracy check moot. Accuracy is judged
on a set labelled by the float model itself, so float top-1 is 100 % by
construction on any machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.calib import quick_quantize


@pytest.fixture(scope="session")
def trained_onnx(trained_tiny_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mdnet_deploy.export.onnx_export import export_onnx

    return export_onnx(trained_tiny_ckpt, tmp_path_factory.mktemp("trained_onnx")).path


@pytest.fixture(scope="session")
def guarded_run(trained_onnx: Path, float_labelled_npz: Path, tmp_path_factory: pytest.TempPathFactory):
    """One full CLI run with --eval (the accuracy guard), shared by the assertions that read its outputs.

    The exit status is asserted by the test about the budget, not here: a fixture that asserts would
    turn one failure into errors in every test that reads the outputs.
    """
    out = tmp_path_factory.mktemp("guarded") / "model.int8.onnx"
    result = quick_quantize(trained_onnx, out, "--eval", float_labelled_npz)
    return result, out


@pytest.fixture(scope="session")
def float_labelled_npz(trained_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """digits:test labelled with the float model's own predictions: float top-1 is 100 % by construction.

    The labels come from the session and batching that quantize's evaluator uses, so a near tie cannot be
    broken one way here and the other way there.
    """
    from mdnet_deploy.artifact import read_meta
    from mdnet_deploy.calibration.sensitivity import make_session, run_logits
    from mdnet_deploy.data import load_dataset, preprocess

    meta = read_meta(trained_onnx)
    ds = load_dataset("digits:test")
    x = preprocess(ds.images, meta.preprocessing)
    y = run_logits(make_session(str(trained_onnx)), x).argmax(1)
    path = tmp_path_factory.mktemp("agree") / "float_labelled.npz"
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture(scope="session")
def outlier_onnx(trained_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained model with one outlier channel in the attention's qkv output; float logits unchanged.

    qkv's output channel 0 is scaled by 1000 and the depthwise q/k/v
    convolutions reading it by 1/1000: the float function is the same, but
    one INT8 scale over that tensor now rounds every other channel to zero,
    the failure that makes naive INT8 of MDNET lose tens of points.
    """
    import onnx
    from onnx import numpy_helper

    from mdnet_deploy.artifact import read_meta, write_meta

    model = onnx.load(str(trained_onnx))
    inits = {i.name: i for i in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node}

    def scale(name: str, index: tuple, factor: float) -> None:
        arr = numpy_helper.to_array(inits[name]).copy()
        arr[index] *= factor
        inits[name].CopyFrom(numpy_helper.from_array(arr, name))

    qkv = nodes["/transform/attn/qkv/Conv"]
    scale(qkv.input[1], (0,), 1000.0)
    scale(qkv.input[2], (0,), 1000.0)
    # Channel 0 keeps its index in both graphs (the CPU graph reorders qkv j-major: o*3+j -> j*dim+o), and
    # weight [0, 0] is what reads it: group 0's first input (original) or depthwise channel 0 (CPU graph,
    # where only v's conv is left).
    convs = [f"/transform/attn/{c}/Conv" for c in ("qkv_dwconv3x3", "qkv_dwconv5x5", "qkv_dwconv7x7")]
    for conv in [c for c in convs if c in nodes]:
        scale(nodes[conv].input[1], (0, 0), 1e-3)
    path = tmp_path_factory.mktemp("outlier") / "model.onnx"
    onnx.save(model, str(path))
    # The float model's metadata, stamped for this file (a copied sidecar would not match its sha256).
    write_meta(path, read_meta(trained_onnx))
    return path
