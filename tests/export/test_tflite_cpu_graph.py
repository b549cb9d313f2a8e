"""compile --target tflite writes the CPU graph for float precisions, checked against the authors' module."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("litert_torch", reason="litert-torch is not installed (pip install 'mdnet-deploy[tflite]')")
pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed")

from mdnet_deploy.artifact import read_meta  # noqa: E402
from mdnet_deploy.errors import InputError  # noqa: E402
from mdnet_deploy.export.tflite.compile import FP32_TOLERANCE, convert_tflite  # noqa: E402


def test_fp32_tflite_is_the_cpu_graph_and_passes_parity(tiny_ckpt: Path, tmp_path: Path) -> None:
    result = convert_tflite(tiny_ckpt, tmp_path / "model.tflite", "fp32")
    meta = read_meta(result.path)
    assert meta.model_config["graph"] == "cpu"
    assert "transform.attn" in meta.model_config["rewritten_modules"]
    assert "transform.attn.qkv_dwconv7x7 (row bands)" in meta.model_config["rewritten_modules"]
    assert max(c.max_abs_diff for c in result.checks) <= FP32_TOLERANCE  # against the original module
    assert all(c.top1_agreement == 1.0 for c in result.checks)


def test_cpu_graph_gives_xnnpack_only_layout_friendly_ops(tiny_ckpt: Path, tmp_path: Path) -> None:
    """No depthwise kernel wider than XNNPACK's 25 taps, no NCHW transposes, no dead attention maths."""
    from ai_edge_litert.interpreter import Interpreter

    from mdnet_deploy.model.cpu_graph import XNNPACK_DWCONV_TAPS

    result = convert_tflite(tiny_ckpt, tmp_path / "model.tflite", "fp32")
    interp = Interpreter(model_path=str(result.path))
    interp.allocate_tensors()
    shapes = {d["index"]: list(d["shape"]) for d in interp.get_tensor_details()}
    ops = interp._get_ops_details()
    names = {op["op_name"] for op in ops}
    assert not names & {"TRANSPOSE", "BATCH_MATMUL", "EXP", "SUM"}, names
    for op in ops:
        if op["op_name"] == "DEPTHWISE_CONV_2D":
            _, kh, kw, _ = shapes[int(op["inputs"][1])]
            assert kh * kw <= XNNPACK_DWCONV_TAPS


def test_unknown_graph_is_refused_before_any_work(tiny_ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="graph"):
        convert_tflite(tiny_ckpt, tmp_path / "model.tflite", "fp32", graph="gpu")
    assert not (tmp_path / "model.tflite").exists()
