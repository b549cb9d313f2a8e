"""The quantize stages on their own: config validation, the evaluate hook, the lean guard, the ORT form."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import onnx
import pytest

from mdnet_deploy.calibration.pipeline import (
    Builder,
    Context,
    QuantizeConfig,
    Score,
    calibrate_ranges,
    prepare,
    quantize_model,
    rank_layers,
)
from mdnet_deploy.errors import AccuracyBudgetError, InputError

CALIB = dict(calib_spec="digits:train", calib_size=16, sensitivity_images=4)


def _config(src: Path, tmp_path: Path, **kw) -> QuantizeConfig:
    return QuantizeConfig(src=src, out=tmp_path / "model.int8.onnx", **{**CALIB, **kw})


def test_config_validates_once_and_is_frozen(tiny_onnx, tmp_path):
    cfg = _config(tiny_onnx, tmp_path, exclude=["transform.attn"])
    assert cfg.exclude == ("transform.attn",) and cfg.report_path.name == "model.int8.report.json"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.max_drop = 1.0  # type: ignore[misc]
    for bad in (dict(max_drop=-1.0), dict(calib_size=0), dict(method="kl"), dict(target="gpu"), dict(eval_size=0)):
        with pytest.raises(InputError):
            _config(tiny_onnx, tmp_path, **bad)
    with pytest.raises(InputError, match="must end in .onnx"):
        QuantizeConfig(src=tiny_onnx, out=tmp_path / "x.bin", **CALIB)


def test_prepare_calibrate_and_rank_stand_alone(tiny_onnx, tmp_path):
    cfg = _config(tiny_onnx, tmp_path, target="ort")
    ctx = Context(tmp_path)
    prep = prepare(cfg, ctx)
    ops = {c.op_type for c in prep.candidates}
    assert "Conv" in ops and "MatMul" not in ops  # the ORT form leaves the attention's activation MatMuls float
    assert len(prep.calib) == 16 and prep.ev is None
    cache = calibrate_ranges(cfg, prep, ctx)
    assert cache.is_file()
    ranking = rank_layers(cfg, prep, Builder(cfg, prep, cache, tmp_path), ctx)
    assert ranking.sens is not None  # no evaluator: the default rule needs the ranking
    assert set(ranking.ranked) == {c.name for c in ranking.layers}
    assert "after_calibration_mib" in ctx.memory


def test_an_evaluate_hook_judges_and_sensitivity_is_skipped_when_all_int8_passes(tiny_onnx, tmp_path):
    seen: list[Path] = []

    def judge(path: Path) -> float:
        seen.append(Path(path))
        return 80.0  # the same top-1 for float and INT8: within any budget

    res = quantize_model(tiny_onnx, tmp_path / "model.int8.onnx", evaluate=judge, target="ort", **CALIB)
    assert res.met is True and res.report["status"] == "ok"
    assert seen[0] == Path(tiny_onnx) and len(seen) == 2  # the float parent, then the all-INT8 model only
    assert res.report["sensitivity"]["skipped"] and res.report["sensitivity"]["layers"] == []
    steps = res.report["guard"]["steps"]
    assert len(steps) == 1 and steps[0]["float_layers"] == 0 and steps[0]["top1_agreement"] is None
    assert res.report["layers"]["float"] == 0


def test_a_missed_budget_ranks_layers_and_the_error_carries_the_result(tiny_onnx, tmp_path):
    def judge(path: Path) -> Score:
        return Score(90.0 if Path(path) == Path(tiny_onnx) else 10.0)  # INT8 never recovers

    with pytest.raises(AccuracyBudgetError) as info:
        quantize_model(tiny_onnx, tmp_path / "model.int8.onnx", evaluate=judge, max_float_layers=1, **CALIB)
    result = info.value.result
    assert result is not None and result.path.name == "model.int8.over-budget.onnx" and result.met is False
    assert result.report["sensitivity"]["layers"]  # the ranking ran because all-INT8 missed
    assert len(result.report["guard"]["steps"]) == 2
    assert not (tmp_path / "model.int8.onnx").exists()


def test_ort_form_runs_every_conv_as_an_integer_kernel(tiny_onnx, tmp_path):
    res = quantize_model(tiny_onnx, tmp_path / "model.int8.onnx", target="ort", evaluate=lambda p: 50.0, **CALIB)
    kernels = res.report["form"]["integer_kernels"]
    assert kernels["float_convs"] == 0 and kernels["integer_convs"] > 0
    meta = onnx.load(str(tiny_onnx)).metadata_props
    assert '"graph": "cpu"' in {p.key: p.value for p in meta}["mdnet_deploy"]
