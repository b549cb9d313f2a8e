"""quantize --speed-fallback: per-conv INT8 vs float timings decide, the whole model confirms, the report says.

Which layers come out float depends on this machine's kernels and load, so the
tests assert the bookkeeping that holds whatever the timings are: every conv was
timed, the float rows are exactly the layers the rule picked and the whole-model
check kept, and those layers really are float in the written model.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from mdnet_deploy.calibration.speed import MIN_GAIN_US, SPEED_MARGIN, LayerSpeed, _Resolver
from tests.helpers.calib import quick_quantize
from tests.helpers.cli import assert_one_line_error


def test_speed_fallback_report_matches_what_was_written(trained_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.int8-ort.onnx"
    result = quick_quantize(trained_onnx, out, "--target", "ort", "--speed-fallback")
    assert result.exit_code == 0, result.output
    report = json.loads(out.with_name("model.int8-ort.report.json").read_text())
    speed = report["speed"]
    convs = [n.name for n in onnx.load(str(trained_onnx)).graph.node if n.op_type == "Conv"]
    assert sorted(layer["node"] for layer in speed["layers"]) == sorted(convs)  # every conv timed in both precisions
    for layer in speed["layers"]:
        # >= 0: ORT's profiler counts whole microseconds, and a small layer on a fast CPU can round to 0.
        assert layer["int8_us"] >= 0 and layer["float_us"] >= 0
        rule = (
            layer["float_us"] * SPEED_MARGIN < layer["int8_us"] and layer["int8_us"] - layer["float_us"] >= MIN_GAIN_US
        )
        assert layer["float_faster"] == rule
    assert speed["candidates"] == [layer["node"] for layer in speed["layers"] if layer["float_faster"]]
    by_speed = [row["node"] for row in report["float_fallback"]["layers"] if row["by"] == "speed"]
    if speed["chosen"] == "with_float_layers":
        assert speed["p50_ms"]["with_float_layers"] < speed["p50_ms"]["all_int8"]
        assert sorted(by_speed) == sorted(speed["kept_float"]) == sorted(speed["candidates"])
    else:
        assert speed["chosen"] == "all_int8" and by_speed == [] and speed["kept_float"] == []
    # The convs with float weights in the file are exactly the report's float rows (speed and, without --eval,
    # the SQNR rule, whose choice may differ by machine), and the speed rows are among them.
    model = onnx.load(str(out))
    producer = {o: n for n in model.graph.node for o in n.output}
    float_convs = set()
    for node in model.graph.node:
        if node.op_type == "Conv":
            w = producer.get(node.input[1])
            if w is None or w.op_type != "DequantizeLinear":
                float_convs.add(node.name)
    float_rows = {row["node"] for row in report["float_fallback"]["layers"]}
    assert set(by_speed) <= float_convs
    assert float_convs == {n for n in float_rows if n in set(convs)}
    assert "speed fallback" in result.output


def test_speed_fallback_needs_the_ort_form(trained_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.int8.onnx"
    result = quick_quantize(trained_onnx, out, "--speed-fallback")
    assert_one_line_error(result, "--speed-fallback", "--target ort")
    assert not out.exists()


def test_layer_rule_needs_ratio_and_absolute_gain() -> None:
    assert LayerSpeed("a", "a", int8_us=60.0, float_us=30.0).float_faster
    assert not LayerSpeed("b", "b", int8_us=4.0, float_us=2.0).float_faster  # 2x, but within profiler noise
    assert not LayerSpeed("c", "c", int8_us=100.0, float_us=90.0).float_faster  # a gain below the margin


def _graph() -> onnx.GraphProto:
    """x -> Conv c1 -> Relu r1 -> Conv c2 -> Add(with x) a1."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 1, 1], [1.0])
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c1_out"], name="/m/c1/Conv"),
        helper.make_node("Relu", ["c1_out"], ["/m/Relu_output_0"], name="/m/Relu"),
        helper.make_node("Conv", ["/m/Relu_output_0", "w"], ["/m/c2/Conv_output_0"], name="/m/c2/Conv"),
        helper.make_node("Add", ["/m/c2/Conv_output_0", "x"], ["/m/Add_output_0"], name="/m/Add"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])
    y = helper.make_tensor_value_info("/m/Add_output_0", TensorProto.FLOAT, [1, 1, 2, 2])
    return helper.make_graph(nodes, "g", [x], [y], [w])


@pytest.mark.parametrize(
    "profiled,conv",
    [
        ("/m/c1/Conv_token_7", "/m/c1/Conv"),  # QDQ-fused QLinearConv
        ("/m/Relu_output_0_nchwc", "/m/c1/Conv"),  # float conv fused with its activation, NCHWc layout
        ("/m/Add_output_0_nchwc", "/m/c2/Conv"),  # float conv fused with the residual add
        ("/m/c2/Conv", "/m/c2/Conv"),  # a conv ORT left alone
        ("ReorderOutput_token_3", None),  # a node the runtime made
    ],
)
def test_profiled_names_resolve_to_the_float_conv(profiled: str, conv: str | None) -> None:
    assert _Resolver(_graph())(profiled) == conv
