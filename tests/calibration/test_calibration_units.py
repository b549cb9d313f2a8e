"""The parts of the quantizer that can be checked without a full run: names, guard logic, graph surgery."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from mdnet_deploy.calibration.graph import assign_blocks, module_path
from mdnet_deploy.calibration.guard import StepResult, default_float_count, next_k, run_guard


@pytest.mark.parametrize(
    "node,module",
    [
        ("/transform/attn/qkv_dwconv7x7/Conv", "transform.attn.qkv_dwconv7x7"),
        ("/transform/attn/MatMul_1", "transform.attn"),
        ("/stage2/stage2.1/residual/residual.0/Conv", "stage2.1.residual.0"),
        ("/stage1/residual/residual.6/Conv", "stage1.residual.6"),
        ("/pre/pre.0/Conv", "pre.0"),
        ("/conv1/conv1.2/Clip", "conv1.2"),
        ("/Flatten", ""),
        ("Constant_0", ""),
    ],
)
def test_module_path_from_torchscript_names(node, module):
    assert module_path(node) == module


def test_blocks_split_containers_only():
    modules = [
        "pre.0",
        "transform.norm1",
        "transform.attn.qkv",
        "transform.attn",
        "transform.ffn.project_in",
        "transform",
        "stage1.residual.0",
        "stage2.0.residual.0",
        "stage2.1.residual.3",
        "stage7.residual.0",
        "conv1.0",
        "conv2",
        "",
    ]
    blocks = assign_blocks(modules)
    assert blocks["transform.attn.qkv"] == "transform.attn"
    assert blocks["transform.ffn.project_in"] == "transform.ffn"
    assert blocks["transform"] == "transform"
    assert blocks["stage2.1.residual.3"] == "stage2.1"
    assert blocks["stage1.residual.0"] == "stage1"
    assert blocks["stage7.residual.0"] == "stage7"
    assert blocks["pre.0"] == "pre" and blocks["conv1.0"] == "conv1" and blocks["conv2"] == "conv2"
    assert blocks[""] == "(model)"


def _fake_eval(drop_at):
    """evaluate(k) for a model whose drop falls as more of the ranked layers go float."""
    calls = []

    def evaluate(k):
        calls.append(k)
        drop = drop_at(k)
        return StepResult(0, "", k, [], [], 90.0 - drop, 99.0, drop, 1.0, drop <= 0.5, 0.0)

    return evaluate, calls


def test_guard_grows_then_bisects_to_the_smallest_float_set():
    noise = [0.2, 0.05, 0.04, 0.03, 0.02, 0.01] + [0.001] * 20
    evaluate, calls = _fake_eval(lambda k: 3.0 if k < 5 else 0.2)  # five layers must go float
    out = run_guard(evaluate, noise, max_drop=0.5, cap=13)
    assert out.met and out.best.float_layers == 5
    grow = [s.float_layers for s in out.steps if s.phase != "refine"]
    assert calls[0] == 0 and grow == sorted(grow) and len(calls) <= 6
    assert [s.step for s in out.steps] == list(range(len(calls)))
    assert {s.phase for s in out.steps} <= {"start", "grow", "refine"}


def test_guard_stops_at_the_cap_and_keeps_the_best():
    evaluate, calls = _fake_eval(lambda k: 5.0 - 0.1 * k)  # never within budget
    out = run_guard(evaluate, [1.0] * 30, max_drop=0.5, cap=4)
    assert not out.met and max(calls) == 4
    assert out.best.float_layers == 4  # the smallest drop seen


def test_guard_met_at_start_takes_one_step():
    evaluate, calls = _fake_eval(lambda k: 0.1)
    out = run_guard(evaluate, [1.0, 1.0], max_drop=0.5, cap=1)
    assert out.met and calls == [0]


def test_growth_is_bounded():
    noise = [1.0] * 40
    assert next_k(0, noise, 20) == 2
    assert next_k(4, noise, 20) == 8
    assert next_k(16, noise, 20) == 20
    assert next_k(0, [10.0] + [0.001] * 10, 5) == 1  # one dominant layer: just that one
    assert default_float_count([0.01, 0.001, 0.0001], cap=3, target_db=25) == 1


def test_partial_model_equals_quantizer_output(trained_onnx, tmp_path):
    """The sweep's graph surgery builds exactly what quantize_static makes for the same layer set."""
    from onnxruntime.quantization.calibrate import save_tensors_data
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from mdnet_deploy.artifact import read_meta
    from mdnet_deploy.calibration.calib_data import calibrate, load_images
    from mdnet_deploy.calibration.graph import find_candidates
    from mdnet_deploy.calibration.qdq import ChainIndex, calibration_op_types, form_for, partial_model, quantize
    from mdnet_deploy.calibration.sensitivity import make_session, run_logits

    pre = tmp_path / "pre.onnx"
    quant_pre_process(str(trained_onnx), str(pre))
    fm = onnx.load(str(pre))
    form = form_for("tensorrt")
    images = load_images(
        "digits:train", "train", read_meta(trained_onnx).preprocessing, 32, "calibration", lambda _m: None
    )
    ranges = calibrate(
        pre,
        images.x,
        method="minmax",
        op_types=calibration_op_types(form),
        symmetric=True,
        workdir=tmp_path,
        input_name="input",
    )
    save_tensors_data(ranges, tmp_path / "cache.json")
    names = [c.name for c in find_candidates(fm)]
    full = quantize(pre, tmp_path / "full.onnx", form=form, method="minmax", cache=tmp_path / "cache.json", nodes=names)
    index = ChainIndex(fm, full, names)
    subset = names[::3]
    real = quantize(pre, tmp_path / "sub.onnx", form=form, method="minmax", cache=tmp_path / "cache.json", nodes=subset)
    a = run_logits(make_session(real), images.x)
    b = run_logits(make_session(partial_model(index, subset)), images.x)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    # Layers left out of the subset read float inputs (float means float, even beside a quantized sibling).
    producers = {o: n for n in real.graph.node for o in n.output}
    for node in real.graph.node:
        if node.name in names and node.name not in subset:
            assert all(producers.get(i) is None or producers[i].op_type != "DequantizeLinear" for i in node.input), (
                node.name
            )


def test_ort_form_uses_uint8_activations(trained_onnx, tmp_path):
    from mdnet_deploy.calibration import quantize_model

    out = tmp_path / "model.int8.onnx"
    result = quantize_model(trained_onnx, out, "digits:train", calib_size=32, target="ort", sensitivity_images=4)
    assert result.met is None and result.report["status"] == "unchecked"
    assert any("accuracy was not checked" in w for w in result.warnings)
    form = result.report["form"]
    assert form["name"] == "qdq-uint8-asymmetric" and form["activation_type"] == "uint8"
    assert "uint8" in form["check"]["zero_point_dtypes"]
    meta = json.loads(out.with_name("model.int8.onnx.json").read_text())
    assert meta["quantization"]["activation_symmetric"] is False
