"""The overhead probe runs and reports its figures (their size goes to docs/BENCHMARKS.md, not here)."""

from __future__ import annotations

import pytest

from mdnet_deploy.bench.overhead import measure_overhead, write_trivial_onnx


def test_trivial_model_and_overhead_figures(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from mdnet_deploy.artifact import read_meta

    path = write_trivial_onnx(tmp_path / "t.onnx")
    assert read_meta(path).num_classes == 3
    out = measure_overhead(iterations=200, threads=1)
    for key in ("timer_us", "loop_us", "trivial_p50_us"):
        assert out[key] is not None and out[key] >= 0
    assert out["trivial_runtime"]["name"] == "onnxruntime"
