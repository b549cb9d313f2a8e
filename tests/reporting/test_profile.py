"""Per-layer profiles: ONNX Runtime's real profiler output, layer names -> MDNET modules, trtexec's format, LiteRT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mdnet_deploy.reporting.profile import (
    assign_blocks,
    layer_label,
    module_of,
    parse_ort_profile,
    parse_trtexec_profile,
    top_layers,
)


def _input(onnx: Path) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)


def _check_shape(profile: dict) -> None:
    assert profile["available"] is True
    layers = profile["layers"]
    assert layers and all(layer["ms"] >= 0 for layer in layers)
    assert [la["ms"] for la in layers] == sorted((la["ms"] for la in layers), reverse=True)
    assert sum(la["share"] for la in layers) == pytest.approx(1.0, abs=1e-6)
    assert profile["total_ms"] == pytest.approx(sum(la["ms"] for la in layers))
    assert sum(b["layers"] for b in profile["blocks"]) == len(layers)


def test_ort_session_profile_file_is_parsed_per_run(tiny_onnx: Path, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp_path / "ort")
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(tiny_onnx), opts, providers=["CPUExecutionProvider"])
    for _ in range(4):
        session.run(None, {"input": _input(tiny_onnx)})
    events = json.loads(Path(session.end_profiling()).read_text())

    profile = parse_ort_profile(events)
    _check_shape(profile)
    assert profile["runs"] == 3  # the first call is discarded
    assert profile["run_ms"] > 0
    nodes = {
        e["name"][: -len("_kernel_time")]
        for e in events
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
    }
    assert {la["name"] for la in profile["layers"]} == nodes
    # Every node ran once per call in this graph.
    assert all(la["calls"] == pytest.approx(1.0) for la in profile["layers"])
    modules = {la["module"] for la in profile["layers"]}
    assert "transform.attn.qkv_dwconv7x7" in modules  # the example name, from the optimised graph
    blocks = {la["block"] for la in profile["layers"] if la["module"] == "transform.attn.qkv_dwconv7x7"}
    assert blocks == {"transform.attn"}
    # ORT's own layout reorders are named as such, not passed off as model layers.
    inserted = [la for la in profile["layers"] if la["inserted"]]
    assert all(la["module"] == "" and la["block"] == "(runtime)" for la in inserted)


def test_ort_runner_profile_uses_a_separate_session(tiny_onnx: Path) -> None:
    pytest.importorskip("onnxruntime")
    from mdnet_deploy.artifact import read_meta
    from mdnet_deploy.runtimes.onnxruntime import OnnxRuntimeRunner

    with OnnxRuntimeRunner(tiny_onnx, read_meta(tiny_onnx), threads=1) as runner:
        native = runner.prepare(_input(tiny_onnx))
        profile = runner.profile(native, 3)
        assert runner.session.get_session_options().enable_profiling is False  # the timed session stays clean
    _check_shape(profile)
    assert profile["runtime"] == "onnxruntime" and profile["runs"] == 3
    assert len(top_layers(profile, 10)) == 10


@pytest.mark.parametrize(
    ("name", "op", "module", "fused"),
    [
        ("/transform/attn/qkv_dwconv7x7/Conv_output_0_nchwc", "Conv", "transform.attn.qkv_dwconv7x7", None),
        ("/stage2/stage2.1/residual/residual.0/Conv", "Conv", "stage2.1.residual.0", None),
        ("/stage1/residual/residual.2/Clip_output_0_nchwc", "Conv", "stage1.residual.2", "Clip"),
        ("/transform/attn/MatMul/MatmulTransposeFusion/", "FusedMatMul", "transform.attn", None),
        (
            "/stage1/residual/residual.0/Conv + /stage1/residual/residual.2/Clip",
            None,
            "stage1.residual.0",
            None,
        ),  # TensorRT
        ("PWN(/transform/ffn/Relu_2, /transform/ffn/Concat_2)", None, "transform.ffn", None),
        ("{ForeignNode[/transform/norm1/ReduceMean.../transform/Add_1]}", None, "transform.norm1", None),
        ("Reformatting CopyNode for Input Tensor 0 to /pre/pre.0/Conv", None, "", None),
        ("ReorderOutput_token_189", "ReorderOutput", "", None),
        ("/Flatten", "Flatten", "", None),
    ],
)
def test_layer_names_map_to_mdnet_modules(name: str, op: str | None, module: str, fused: str | None) -> None:
    assert module_of(name, op) == (module, fused)


def test_blocks_follow_the_quantize_rule() -> None:
    blocks = assign_blocks(
        [
            "transform.attn.qkv",
            "transform.ffn.project_in",
            "stage1.residual.0",
            "stage4.2.residual.0",
            "stage4.0.residual.3",
            "pre.0",
        ]
    )
    assert blocks == {
        "transform.attn.qkv": "transform.attn",
        "transform.ffn.project_in": "transform.ffn",
        "stage1.residual.0": "stage1",
        "stage4.2.residual.0": "stage4.2",
        "stage4.0.residual.3": "stage4.0",
        "pre.0": "pre",
    }


def _trtexec_export(count: int, layers: list[tuple[str, float]]) -> str:
    """Byte for byte what trtexec's Profiler::exportJSONProfile writes (TensorRT samples/common/sampleReporting.cpp)."""
    total = sum(t for _, t in layers)
    text = "[\n" + f'  {{ "count" : {count} }}\n'
    for name, t in layers:
        text += (
            f', {{ "name" : "{name}", "timeMs" : {t}, "averageMs" : {t / count}, "medianMs" : {t / count}, '
            f'"percentage" : {t / total * 100} }}\n'
        )
    return text + "]\n"


def test_trtexec_export_profile_is_parsed() -> None:
    text = _trtexec_export(
        50,
        [
            ("/pre/pre.0/Conv + /pre/pre.2/Clip", 5.0),
            ("/transform/attn/qkv_dwconv7x7/Conv", 20.0),
            ("Reformatting CopyNode for Input Tensor 0 to /conv2/Conv", 1.0),
        ],
    )
    profile = parse_trtexec_profile(text)
    _check_shape(profile)
    assert profile["runs"] == 50 and profile["runtime"] == "tensorrt"
    top = profile["layers"][0]
    assert top["module"] == "transform.attn.qkv_dwconv7x7" and top["ms"] == pytest.approx(0.4)
    assert layer_label(profile["layers"][-1]).endswith("(inserted by the runtime)")


@pytest.mark.parametrize("text", ["", "{}", "[1, 2]", '[{"name": "x"}]'])
def test_trtexec_profile_refuses_other_files(text: str) -> None:
    with pytest.raises(ValueError, match="trtexec profile"):
        parse_trtexec_profile(text)


def test_trtexec_profile_command() -> None:
    from mdnet_deploy.runtimes.trt_profile import trtexec_profile_argv

    argv = trtexec_profile_argv("/usr/src/tensorrt/bin/trtexec", "m y.engine", "/tmp/p.json", 20, "input:1x3x32x32")
    assert argv[1] == "--loadEngine=m y.engine"  # an argument list: the space needs no quoting
    assert "--exportProfile=/tmp/p.json" in argv and "--separateProfileRun" in argv and "--dumpProfile" in argv
    assert argv[-1] == "--shapes=input:1x3x32x32"


def test_trtexec_profile_runs_where_trtexec_exists(tmp_path: Path) -> None:
    from mdnet_deploy.export.tensorrt.trtexec import find_trtexec

    if find_trtexec() is None:
        pytest.skip(
            "trtexec is not installed here (it comes with TensorRT / JetPack); its export format is tested above"
        )
    pytest.skip("profiling with trtexec needs an engine built on this GPU; run bench --profile on the device")


@pytest.mark.tensorrt
def test_tensorrt_layer_profiler() -> None:
    pytest.importorskip(
        "tensorrt", reason="TensorRT's Python bindings are not installed here (x86 NVIDIA hosts, Jetson)"
    )
    from mdnet_deploy.runtimes.tensorrt import TensorRTRunner

    ok, why = TensorRTRunner.available()
    if not ok:
        pytest.skip(why)
    pytest.skip("needs an engine built on this GPU (tests/export builds one where a GPU exists)")


def test_litert_says_it_has_no_op_timings(tmp_path: Path) -> None:
    from mdnet_deploy.artifact import ArtifactMeta
    from mdnet_deploy.runtimes.tflite import TfliteRunner

    profile = TfliteRunner(tmp_path / "model.tflite", ArtifactMeta(format="tflite")).profile(None, 3)
    assert profile["available"] is False
    assert "benchmark_model" in profile["reason"] and "model.tflite" in profile["reason"]
