"""Judges plugged into quantize's evaluate hook: the guard's steps scored by the runtime that will run the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mdnet_deploy.calibration.judge import OnnxRuntimeJudge, float_layers, make_judge

pytestmark = pytest.mark.timeout(900)


def test_tflite_judge_scores_the_guard_on_litert_kernels(tiny_onnx: Path, tmp_path: Path):
    from mdnet_deploy.calibration import quantize_model

    judge = make_judge("tflite", tiny_onnx, "digits:train", "digits:test", calib_size=16, eval_size=20)
    calls: list[str] = []
    real = judge.__call__

    def spy(model_path):
        calls.append(Path(model_path).name)
        return real(model_path)

    judge.__call__ = spy  # type: ignore[method-assign]
    try:
        # A budget every step meets: the float parent and the all-INT8 step are scored, nothing else.
        result = quantize_model(
            tiny_onnx,
            tmp_path / "m.int8.onnx",
            "digits:train",
            calib_size=16,
            eval_spec="digits:test",
            eval_size=20,
            max_drop=100.0,
            target="tflite",
            evaluate=spy,
            force=True,
        )
    finally:
        judge.close()
    report = json.loads(result.report_path.read_text())
    assert calls[0] == tiny_onnx.name and len(calls) >= 2
    acc = report["accuracy"]
    assert acc["n"] == 20 and acc["met"] is True
    # Both figures are LiteRT's: fp32 TFLite for the float parent, full-integer TFLite for the step.
    assert set(judge._cache) == {None, frozenset()}
    assert judge._cache[None].top1 == acc["float"]["top1"] and judge._cache[frozenset()].top1 == acc["int8"]["top1"]
    assert judge._cache[frozenset()].logits.shape == (20, 10)


def test_float_layers_reads_the_fallback_set_from_a_qdq_model(tiny_onnx: Path, tmp_path: Path):
    from mdnet_deploy.calibration import quantize_model

    assert float_layers(tiny_onnx) is None  # no Q/DQ: the float parent
    result = quantize_model(
        tiny_onnx,
        tmp_path / "m.int8.onnx",
        "digits:train",
        calib_size=16,
        exclude=["conv2"],
        target="tflite",
        force=True,
    )
    floats = float_layers(result.path)
    assert floats and all("conv2" in n for n in floats)


def test_onnxruntime_judge_is_onnx_runtime_on_the_given_images(tiny_onnx: Path):
    # The judge is quantize's default evaluation (same session, same batching), so the logits are identical.
    from mdnet_deploy.calibration.sensitivity import make_session, run_logits

    x = np.random.default_rng(0).standard_normal((6, 3, 32, 32)).astype(np.float32)
    y = np.arange(6) % 10
    score = OnnxRuntimeJudge(x, y)(tiny_onnx)
    assert np.array_equal(score.logits, run_logits(make_session(str(tiny_onnx)), x))
    assert 0.0 <= score.top1 <= 100.0
