"""`mdnet-deploy quantize` end to end on a small trained MDNET, and every bad input as a user meets it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tests.helpers.calib import leftovers, quick_quantize
from tests.helpers.cli import assert_one_line_error
from tests.helpers.cli import run as run_cli


def _zero_points(model: onnx.ModelProto) -> list[np.ndarray]:
    inits = {i.name: i for i in model.graph.initializer}
    return [
        numpy_helper.to_array(inits[n.input[2]])
        for n in model.graph.node
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2 and n.input[2] in inits
    ]


def _reads_dequantized_weight(model: onnx.ModelProto, node_name: str) -> bool:
    producers = {o: n for n in model.graph.node for o in n.output}
    node = next(n for n in model.graph.node if n.name == node_name)
    p = producers.get(node.input[1])
    return p is not None and p.op_type == "DequantizeLinear"


# -- the guarded run ------------------------------------------------------------------------
def test_int8_within_budget_of_float(guarded_run):
    result, out = guarded_run
    assert result.exit_code == 0, result.output
    report = json.loads(out.with_name("model.int8.report.json").read_text())
    acc = report["accuracy"]
    assert report["status"] == "ok" and acc["met"]
    assert acc["float"]["top1"] == 100.0  # by construction: the set is labelled by the float model
    assert acc["float"]["top1"] - acc["int8"]["top1"] <= 0.5 + 1e-9
    assert acc["drop_top1"] == pytest.approx(acc["float"]["top1"] - acc["int8"]["top1"])
    # The terminal shows the comparison table, the guard steps and the ranked layers.
    for text in ("top-1", "top-5", "model size", "layers in float", "Accuracy guard", "Per-layer sensitivity"):
        assert text in result.stdout
    assert "calibrating" not in result.stdout  # the progress bar goes to stderr


def test_tensorrt_form_is_symmetric_int8(guarded_run):
    _, out = guarded_run
    model = onnx.load(str(out))
    zps = _zero_points(model)
    assert zps, "no Q/DQ nodes in the INT8 model"
    assert all(zp.dtype == np.int8 and not np.any(zp) for zp in zps)
    # Weights are per-channel (a DQ with a 1-D scale and axis 0) and no bias is INT32 (TensorRT cannot take it).
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert not any(v.dtype == np.int32 for v in inits.values())
    per_channel = [
        n
        for n in model.graph.node
        if n.op_type == "DequantizeLinear"
        and inits.get(n.input[1]) is not None
        and inits[n.input[1]].ndim == 1
        and inits[n.input[1]].size > 1
    ]
    assert per_channel
    # No Q/DQ between a Conv and its activation: TensorRT must be able to fuse conv+ReLU6.
    producers = {o: n for n in model.graph.node for o in n.output}
    for n in model.graph.node:
        if n.op_type in ("Clip", "Relu"):
            assert producers[n.input[0]].op_type != "DequantizeLinear", n.name


def test_report_and_metadata(guarded_run, trained_onnx):
    _, out = guarded_run
    report = json.loads(out.with_name("model.int8.report.json").read_text())
    meta = json.loads(out.with_name("model.int8.onnx.json").read_text())
    parent = json.loads(Path(str(trained_onnx) + ".json").read_text())
    assert meta["precision"] == "int8"
    assert meta["parent"]["sha256"] == report["input"]["sha256"]
    assert meta["checkpoint"] == parent["checkpoint"]
    assert meta["preprocessing"] == parent["preprocessing"]
    q = meta["quantization"]
    assert q["form"] == "qdq-int8-symmetric" and q["activation_symmetric"] and q["weight_symmetric"]
    assert q["method"] == "minmax" and Path(q["report"]).name == "model.int8.report.json"
    assert q["float_nodes"] == report["float_fallback"]["nodes"]
    cal = meta["calibration"]
    assert cal["count"] == 64 and cal["source"] == "digits:train" and len(cal["sha256"]) == 64
    assert report["timing"]["total_s"] > 0 and report["memory"]["peak_rss_mib"] > 0
    assert report["calibration"]["reused_across_steps"] is True
    # Same metadata embedded in the file itself.
    embedded = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(embedded["mdnet_deploy"])["quantization"]["form"] == "qdq-int8-symmetric"


def test_excluded_pattern_stays_float(trained_onnx, tmp_path):
    out = tmp_path / "model.int8.onnx"
    result = quick_quantize(trained_onnx, out, "--exclude", "transform.attn")
    assert result.exit_code == 0, result.output
    assert "accuracy was not checked" in " ".join(result.stderr.split())
    model = onnx.load(str(out))
    attn_convs = [n.name for n in model.graph.node if n.op_type == "Conv" and n.name.startswith("/transform/attn/")]
    assert attn_convs and not any(_reads_dequantized_weight(model, name) for name in attn_convs)
    assert _reads_dequantized_weight(model, "/transform/ffn/project_in/Conv")
    meta = json.loads(out.with_name("model.int8.onnx.json").read_text())
    assert "transform.attn.qkv" in meta["quantization"]["float_modules"]
    assert "/transform/attn/qkv/Conv" in meta["quantization"]["float_nodes"]
    report = json.loads(out.with_name("model.int8.report.json").read_text())
    assert report["status"] == "unchecked" and report["accuracy"] is None
    assert {r["by"] for r in report["float_fallback"]["layers"]} >= {"exclude"}


def test_over_budget_keeps_best_model_under_other_name(outlier_onnx, float_labelled_npz, tmp_path):
    # Over budget by construction: all-INT8 of the outlier model loses the budget on any machine (its one
    # outlier channel zeroes the others), --max-drop 0 leaves no slack and --max-float-layers 0 forbids repair.
    # (The plain trained model flips one image here: too few to be sure another machine's kernels flip any.)
    out = tmp_path / "model.int8.onnx"
    result = quick_quantize(
        outlier_onnx, out, "--eval", float_labelled_npz, "--max-drop", "0", "--max-float-layers", "0"
    )
    assert result.exit_code == 4, result.output
    assert_one_line_error(result, "--max-drop 0", "model.int8.over-budget.onnx")
    assert not out.exists() and not out.with_name("model.int8.onnx.json").exists()
    kept = tmp_path / "model.int8.over-budget.onnx"
    assert kept.exists() and kept.with_name(kept.name + ".json").exists()
    report = json.loads((tmp_path / "model.int8.report.json").read_text())
    assert report["status"] == "over-budget" and not report["accuracy"]["met"]
    assert report["output"]["path"] == str(kept.resolve())
    assert "budget not met" in result.stdout  # the tables are still shown


def test_odd_calibration_folder_and_no_metadata(trained_onnx, tmp_path):
    """Too few images, files that are not images, wrong-size images, and an ONNX file without metadata."""
    from PIL import Image

    folder = tmp_path / "calib"
    rng = np.random.default_rng(0)
    for c in range(10):
        (folder / str(c)).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / str(c) / f"{i}.png")
    (folder / "0" / "notes.txt").write_text("not an image")
    (folder / "1" / "broken.png").write_bytes(b"\x89PNG garbage")
    bare = tmp_path / "bare" / "model.onnx"
    bare.parent.mkdir()
    model = onnx.load(str(trained_onnx))
    del model.metadata_props[:]
    onnx.save(model, str(bare))

    out = tmp_path / "out" / "model.int8.onnx"
    mean, std = "0.507,0.487,0.441", "0.267,0.256,0.276"
    result = run_cli(
        "quantize", bare, "--calib", folder, "--sensitivity-images", "4", "--mean", mean, "--std", std, "-o", out
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())  # rich wraps long lines
    assert "skipped 2 files that are not images" in said
    assert "fewer than the 512" in said
    meta = json.loads(out.with_name("model.int8.onnx.json").read_text())
    assert meta["calibration"]["count"] == 20 and meta["calibration"]["skipped_files"] == 2
    assert meta["preprocessing"]["mean"] == pytest.approx([0.507, 0.487, 0.441])
    assert meta["checkpoint"] is None


# -- bad input: one line, non-zero exit, nothing written ----------------------------------------
def _bare(trained_onnx: Path, tmp_path: Path) -> Path:
    bare = tmp_path / "bare.onnx"
    model = onnx.load(str(trained_onnx))
    del model.metadata_props[:]
    onnx.save(model, str(bare))
    return bare


def _not_images(tmp_path: Path) -> Path:
    folder = tmp_path / "txt"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "x.txt").write_text("hello")
    return folder


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(
    "case,fragments",
    [
        ("missing-calib", ["does not exist"]),
        ("empty-calib", ["no class sub-folders"]),
        ("not-images", ["holds no images"]),
        ("no-metadata", ["no mdnet-deploy metadata", "--mean"]),
        ("negative-drop", ["--max-drop -1", ">= 0"]),
        ("bad-exclude", ["--exclude 'nosuch.layer' matches no quantizable layer"]),
        ("mean-contradicts", ["--mean", "contradicts the model's metadata"]),
    ],
)
def test_bad_input(trained_onnx, tmp_path, case, fragments):
    model, calib, extra = trained_onnx, "digits:train", []
    if case == "missing-calib":
        calib = tmp_path / "nowhere"
    elif case == "empty-calib":
        calib = _empty(tmp_path)
    elif case == "not-images":
        calib = _not_images(tmp_path)
    elif case == "no-metadata":
        model = _bare(trained_onnx, tmp_path)
    elif case == "negative-drop":
        extra = ["--max-drop", "-1"]
    elif case == "bad-exclude":
        extra = ["--exclude", "nosuch.layer"]
    elif case == "mean-contradicts":
        extra = ["--mean", "0.5,0.5,0.5"]
    out = tmp_path / "out" / "model.int8.onnx"
    result = run_cli("quantize", model, "--calib", calib, "--calib-size", "16", *extra, "-o", out)
    assert_one_line_error(result, *fragments)
    assert leftovers(out.parent) == []


def test_already_quantized_model_is_refused(guarded_run, tmp_path):
    _, int8 = guarded_run
    out = tmp_path / "again.onnx"
    result = run_cli("quantize", int8, "--calib", "digits:train", "-o", out)
    assert_one_line_error(result, "already quantized")
    assert leftovers(tmp_path) == []


def test_existing_output_needs_force(trained_onnx, tmp_path):
    out = tmp_path / "model.int8.onnx"
    out.write_bytes(b"keep me")
    result = run_cli("quantize", trained_onnx, "--calib", "digits:train", "-o", out)
    assert_one_line_error(result, "already exists", "--force")
    assert out.read_bytes() == b"keep me"
    assert leftovers(tmp_path) == ["model.int8.onnx"]


@pytest.fixture(scope="module")
def outlier_run(outlier_onnx, float_labelled_npz, tmp_path_factory):
    """The guarded quantize of the outlier model: all-INT8 misses the budget, so the layers get ranked."""
    out = tmp_path_factory.mktemp("outlier_run") / "model.int8.onnx"
    result = quick_quantize(outlier_onnx, out, "--eval", float_labelled_npz)
    return result, out


def test_sensitivity_rows_map_nodes_to_modules(outlier_run):
    result, out = outlier_run
    assert result.exit_code in (0, 4), result.output  # ranked either way; meeting the budget is the guard test's claim
    report = json.loads(out.with_name("model.int8.report.json").read_text())
    # The sensitivity table maps ONNX nodes to torch modules and blocks.
    rows = report["sensitivity"]["layers"]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    by_node = {r["node"]: r for r in rows}
    assert by_node["/transform/attn/qkv_dwconv7x7/Conv"]["module"] == "transform.attn.qkv_dwconv7x7"
    assert by_node["/transform/attn/qkv_dwconv7x7/Conv"]["block"] == "transform.attn"
    assert by_node["/stage4/stage4.2/residual/residual.0/Conv"]["block"] == "stage4.2"


def test_guard_finds_and_floats_an_outlier_layer(outlier_onnx, trained_onnx, outlier_run):
    """Naive INT8 of this model loses tens of points; the guard finds the culprit by itself and converges."""
    from mdnet_deploy.runtimes.onnxruntime import run_onnx

    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(str(outlier_onnx), x), run_onnx(str(trained_onnx), x), atol=1e-3)
    result, out = outlier_run
    assert result.exit_code == 0, result.output
    report = json.loads(out.with_name("model.int8.report.json").read_text())
    steps = report["guard"]["steps"]
    # All-INT8 misses the budget (how far depends on the machine's INT8 kernels, so no figure is asserted).
    assert not steps[0]["met"] and steps[0]["float_layers"] == 0
    assert report["accuracy"]["met"] and report["accuracy"]["drop_top1"] <= 0.5
    assert [s["float_layers"] for s in steps if s["phase"] == "grow"] == sorted(
        s["float_layers"] for s in steps if s["phase"] == "grow"
    )
    fallback = report["float_fallback"]
    assert report["sensitivity"]["layers"][0]["block"] == "transform.attn"  # ranked first ...
    first = fallback["layers"][0]
    assert first["block"] == "transform.attn" and "outlier" in first["reason"]  # ... returned to float first, and why
    assert len(fallback["nodes"]) < 40  # fewer than half of the 79 layers (the count itself moves with the kernels)
    assert set(fallback["nodes"]) <= set(
        json.loads(out.with_name("model.int8.onnx.json").read_text())["quantization"]["float_nodes"]
    )


def test_without_eval_the_default_rule_floats_the_outlier_layer(outlier_onnx, tmp_path):
    out = tmp_path / "model.int8.onnx"
    result = quick_quantize(outlier_onnx, out)
    assert result.exit_code == 0, result.output
    assert "accuracy was not checked" in " ".join(result.stderr.split())
    report = json.loads(out.with_name("model.int8.report.json").read_text())
    assert report["status"] == "unchecked"
    rows = report["float_fallback"]["layers"]
    assert rows[0]["block"] == "transform.attn" and "outlier" in rows[0]["reason"]  # the culprit comes first
    assert 1 <= len(rows) < 40 and {row["by"] for row in rows} == {"default"}


def test_judge_needs_eval(trained_onnx, tmp_path):
    result = run_cli(
        "quantize", trained_onnx, "--calib", "digits:train", "--judge", "tflite", "-o", tmp_path / "m.onnx"
    )
    assert_one_line_error(result, "--judge", "--eval")
    assert leftovers(tmp_path) == []


def test_judge_onnxruntime_scores_the_guard_steps(trained_onnx, float_labelled_npz, tmp_path):
    """`--judge onnxruntime` plugs the judge into the guard's evaluate hook: same budget rule, same outputs."""
    out = tmp_path / "model.int8.onnx"
    result = quick_quantize(trained_onnx, out, "--eval", float_labelled_npz, "--judge", "onnxruntime")
    assert result.exit_code in (0, 4), result.output  # 4: over budget, still a judged run
    report = json.loads(next(tmp_path.glob("*.report.json")).read_text())
    assert report["accuracy"]["float"]["top1"] == 100.0  # by construction of the set


def test_rank_layers_ranks_even_when_all_int8_meets_the_budget(guarded_run, trained_onnx, float_labelled_npz, tmp_path):
    """Lean quantize skips the ranking when all-INT8 is within budget; --rank-layers asks for it (report chart)."""
    _, lean = guarded_run
    lean_report = json.loads(lean.with_name("model.int8.report.json").read_text())
    out = tmp_path / "model.int8.onnx"
    result = quick_quantize(trained_onnx, out, "--eval", float_labelled_npz, "--rank-layers")
    assert result.exit_code in (0, 4), result.output
    report = json.loads(next(tmp_path.glob("*.report.json")).read_text())
    assert report["sensitivity"]["layers"]  # ranked, whatever the guard needed
    if lean_report["guard"]["steps"][0]["met"]:
        assert not (lean_report["sensitivity"] or {}).get("layers")  # the lean run did not rank
