"""compile via the CLI: bad inputs give one line, a non-zero exit and no files; TensorRT wiring."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from mdnet_deploy.artifact import ArtifactMeta, file_ref, write_meta
from mdnet_deploy.cli import main


def run(*args: object):
    return CliRunner().invoke(main, ["compile", *[str(a) for a in args]])


def one_line_error(result, exit_code: int) -> str:
    """The error is one line, the last one (progress lines may precede it on stderr)."""
    assert result.exit_code == exit_code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output
    assert "Traceback" not in result.output
    return errors[0]


def only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture()
def ckpt(tmp_path: Path) -> Path:
    """An untrained tiny checkpoint: these tests never get as far as converting."""
    import torch

    from mdnet_deploy.model.mdnet import create_model

    path = tmp_path / "in" / "tiny.pth"
    path.parent.mkdir()
    torch.save(create_model(10, width=0.25).state_dict(), path)
    return path


def fake_onnx(folder: Path, checkpoint: Path) -> Path:
    """An 'exported' artifact: only its sidecar is read before the checkpoint is."""
    onnx = folder / "model.onnx"
    onnx.write_bytes(b"not read")
    meta = ArtifactMeta(format="onnx", num_classes=10, checkpoint=file_ref(checkpoint))
    write_meta(onnx, meta)
    return onnx


# -- options -------------------------------------------------------------------------
def test_unknown_target_and_precision(ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.tflite"
    assert "--target coreml is not known" in one_line_error(
        run(ckpt, "--target", "coreml", "--precision", "fp32", "-o", out), 2
    )
    assert "--precision int4 is not supported for TFLite" in one_line_error(
        run(ckpt, "--target", "tflite", "--precision", "int4", "-o", out), 2
    )
    assert "--io int8 needs --precision int8" in one_line_error(
        run(ckpt, "--target", "tflite", "--precision", "fp32", "--io", "int8", "-o", out), 2
    )
    assert "--calib is not an option of --target tensorrt" in one_line_error(
        run(ckpt, "--target", "tensorrt", "--precision", "int8", "--calib", "digits", "-o", tmp_path / "m.engine"), 2
    )
    assert "name the output NAME.tflite" in one_line_error(
        run(ckpt, "--target", "tflite", "--precision", "fp32", "-o", tmp_path / "m.onnx"), 2
    )
    assert only(tmp_path) == ["in"]


def test_int8_without_calibration_data_is_refused(ckpt: Path, tmp_path: Path) -> None:
    line = one_line_error(run(ckpt, "--target", "tflite", "--precision", "int8", "-o", tmp_path / "m.tflite"), 2)
    assert "int8 needs calibration images" in line and "--calib" in line and "no random or default data" in line
    assert only(tmp_path) == ["in"]


def test_existing_output_is_kept_without_force(ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.tflite"
    out.write_bytes(b"precious")
    line = one_line_error(run(ckpt, "--target", "tflite", "--precision", "fp32", "-o", out), 2)
    assert "already exists" in line and "--force" in line
    assert out.read_bytes() == b"precious" and only(tmp_path) == ["in", "m.tflite"]


# -- provenance ----------------------------------------------------------------------
def test_moved_checkpoint_is_refused_and_can_be_given(ckpt: Path, tmp_path: Path) -> None:
    onnx = fake_onnx(tmp_path, ckpt)
    moved = tmp_path / "moved.pth"
    ckpt.rename(moved)
    line = one_line_error(
        run(onnx, "--target", "tflite", "--precision", "int8", "--calib", "digits", "-o", tmp_path / "m.tflite"), 2
    )
    assert "has moved or been deleted" in line and "--checkpoint" in line

    from mdnet_deploy.export.tflite.source import resolve_source

    assert resolve_source(onnx, checkpoint=moved).checkpoint == moved  # same bytes: accepted


def test_changed_checkpoint_is_refused(ckpt: Path, tmp_path: Path) -> None:
    onnx = fake_onnx(tmp_path, ckpt)
    ckpt.write_bytes(ckpt.read_bytes() + b"\0")
    line = one_line_error(run(onnx, "--target", "tflite", "--precision", "fp32", "-o", tmp_path / "m.tflite"), 2)
    assert "is not the checkpoint model.onnx was exported from" in line and "sha256" in line and "--checkpoint" in line
    assert not (tmp_path / "m.tflite").exists()


def test_quant_report_forms_and_unknown_modules(ckpt: Path, tmp_path: Path) -> None:
    from mdnet_deploy.errors import InputError
    from mdnet_deploy.export.tflite.source import check_modules, onnx_node_module, read_plan
    from mdnet_deploy.model.checkpoint import load_checkpoint

    assert onnx_node_module("/stage2/stage2.1/residual/residual.0/Conv") == "stage2.1.residual.0"
    report = tmp_path / "r.json"
    report.write_text(
        json.dumps(
            {
                "float_fallback": {"modules": [], "nodes": ["/transform/attn/qkv/Conv", "/transform/attn/MatMul"]},
                "calibration": {"source": "digits:train", "count": 32, "sha256": "ab", "method": "minmax"},
            }
        )
    )
    plan = read_plan(report)
    assert plan.float_modules == ["transform.attn.qkv"] and plan.unmapped_nodes == ["/transform/attn/MatMul"]
    assert plan.method == "minmax" and plan.calibration["count"] == 32
    report.write_text(json.dumps({"quantization": {"float_modules": ["transform.nope"]}}))
    with pytest.raises(InputError, match="transform.nope.*not in this model"):
        check_modules(read_plan(report), load_checkpoint(ckpt).model)


def test_int8_onnx_artifact_supplies_quantize_s_plan(ckpt: Path, tmp_path: Path) -> None:
    """Given quantize's model.int8.onnx, its metadata says what stays float and which images calibrated it."""
    from mdnet_deploy.export.tflite.source import resolve_source

    onnx = tmp_path / "model.int8.onnx"
    onnx.write_bytes(b"not read")
    meta = ArtifactMeta(
        format="onnx",
        precision="int8",
        num_classes=10,
        checkpoint=file_ref(ckpt),
        quantization={"float_modules": ["transform.attn.qkv"], "float_nodes": [], "method": "entropy"},
        calibration={"source": "digits:train", "count": 64, "seed": 0, "sha256": "ab"},
    )
    write_meta(onnx, meta)
    src = resolve_source(onnx)
    assert src.checkpoint == ckpt and src.plan is not None
    assert src.plan.float_modules == ["transform.attn.qkv"] and src.plan.method == "entropy"
    assert src.plan.calibration["count"] == 64 and src.plan.origin == str(onnx)


def test_calibration_set_must_still_be_quantize_s(tmp_path: Path) -> None:
    from mdnet_deploy.artifact import Preprocessing
    from mdnet_deploy.errors import DataError
    from mdnet_deploy.export.tflite.compile import _calibration
    from mdnet_deploy.export.tflite.source import QuantPlan

    plan = QuantPlan(calibration={"source": "digits:train", "count": 16, "seed": 0, "sha256": "0" * 64})
    with pytest.raises(DataError, match="no longer gives the images quantize used"):
        _calibration(None, None, plan, Preprocessing(), [])
    warnings: list[str] = []
    cal = _calibration(
        "digits:train", None, plan, Preprocessing(), warnings
    )  # explicit --calib: allowed, with a warning
    assert cal.x.shape == (16, 3, 32, 32) and cal.info["matches_quantize"] is False and warnings


# -- conversion failure --------------------------------------------------------------
def test_litert_failure_is_one_line_naming_the_op_with_a_log(
    ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    litert_torch = pytest.importorskip("litert_torch")

    def broken(*_a, **_k):
        os.write(2, b"E0000 converter.cc:1] C++ side says hello\n")
        print("python side progress")
        try:
            raise TypeError("Shapes must be 1D sequences of concrete values of integer type")
        except TypeError as exc:
            exc.add_note(
                "While executing %view_2 : [num_users=2] = call_function[target=torch.ops.aten.view.default](args = ())"
            )
            raise

    monkeypatch.setattr(litert_torch, "convert", broken)
    out = tmp_path / "m.tflite"
    line = one_line_error(run(ckpt, "--target", "tflite", "--precision", "fp32", "-o", out), 5)
    assert "could not convert op aten.view.default" in line and "TypeError: Shapes must be 1D" in line
    log = tmp_path / "m.tflite.log"
    assert str(log) in line and only(tmp_path) == ["in", "m.tflite.log"]  # nothing half-written
    text = log.read_text()
    assert "C++ side says hello" in text and "python side progress" in text and "Traceback" in text


def test_describe_failure_finds_the_op_and_the_source_line() -> None:
    from mdnet_deploy.export.tflite.convert import describe_failure

    text = (
        "While executing %view_2 : [num_users=2] = call_function[target=torch.ops.aten.view.default](args = (%clone_13,))\n"
        'Original traceback:\n  File "/x/mdnet_deploy/model/mdnet.py", line 88, in forward\n    q = q.reshape(...)\n'
    )
    assert describe_failure(text).startswith("litert-torch could not convert op aten.view.default (mdnet.py:88)")
    assert "op aten.foo" in describe_failure("RuntimeError: Lowering not found: aten.foo.default")


# -- TensorRT wiring -----------------------------------------------------------------
@pytest.fixture()
def no_tensorrt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mdnet_deploy.export.tensorrt import build as trt

    monkeypatch.setattr(trt, "tensorrt_bindings", lambda: (False, "ModuleNotFoundError: No module named 'tensorrt'"))
    monkeypatch.setattr(trt, "DEFAULT_LOCATIONS", (str(tmp_path / "nowhere" / "trtexec"),))
    monkeypatch.setenv("MDNET_DEPLOY_TRTEXEC", str(tmp_path / "nowhere" / "trtexec"))


def test_tensorrt_unavailable_is_one_short_line(tmp_path: Path, no_tensorrt: None) -> None:
    """Issue 13 replaced the 600-character line (trtexec command + every install route) with a short one that
    names --host and the README section; the library error still carries the command (test_trtexec_build)."""
    from mdnet_deploy.export.tensorrt.smoke import write_tiny_classifier

    onnx = write_tiny_classifier(tmp_path / "model.int8.onnx", qdq=True)
    out = tmp_path / "model.engine"
    line = one_line_error(
        run(onnx, "--target", "tensorrt", "--precision", "int8", "--batch", "dynamic:1,4,8", "-o", out), 6
    )
    assert "TensorRT is not installed here" in line and "--host" in line and 'section "TensorRT"' in line
    assert not out.exists()


def test_tensorrt_int8_needs_a_qdq_onnx(tmp_path: Path, no_tensorrt: None) -> None:
    from mdnet_deploy.export.tensorrt.smoke import write_tiny_classifier

    onnx = write_tiny_classifier(tmp_path / "model.onnx", qdq=False)
    line = one_line_error(run(onnx, "--target", "tensorrt", "--precision", "int8", "-o", tmp_path / "model.engine"), 2)
    assert "no QuantizeLinear/DequantizeLinear" in line and "mdnet-deploy quantize" in line
    assert "unknown" not in line
