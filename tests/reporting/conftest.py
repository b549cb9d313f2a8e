"""Real inputs for the report tests, made once per session from the shared tiny MDNET.

- an INT8 QDQ model and its quantize report (no --eval: the per-layer
  sensitivity ranking is computed), and one with --eval (the guard's steps);
- bench rows of the float and INT8 models on ONNX Runtime with accuracy,
  a per-layer profile, and energy from the ``csv:`` meter reading a power
  log written beside the run (the way an external meter's logger works).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from tests.helpers.bench import write_eval_npz


@pytest.fixture(scope="session")
def quant_reports(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("onnxruntime")
    from mdnet_deploy.calibration import quantize_model

    root = tmp_path_factory.mktemp("quant")
    ranked = quantize_model(
        tiny_onnx, root / "model.int8.onnx", "digits:train", calib_size=32, sensitivity_images=4, force=True
    )
    guarded = quantize_model(
        tiny_onnx,
        root / "guarded" / "model.int8.onnx",
        "digits:train",
        calib_size=32,
        sensitivity_images=4,
        eval_spec="digits:test",
        eval_size=50,
        force=True,
    )
    return {"ranked": ranked.report_path, "guarded": guarded.report_path, "int8": ranked.path}


def write_power_log(path: Path, seconds: float = 600.0, rate_hz: float = 20.0) -> Path:
    """An external meter's log (epoch seconds, watts) covering the next ``seconds``."""
    t0 = time.time() - 5.0
    lines = [f"{t0 + i / rate_hz:.3f},{3.0 + 0.8 * math.sin(i / 9.0):.3f}" for i in range(int((seconds + 5) * rate_hz))]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def bench_rows(tiny_onnx: Path, quant_reports: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    from mdnet_deploy.bench import bench_models

    root = tmp_path_factory.mktemp("bench")
    log = write_power_log(root / "power.csv")
    return bench_models(
        [tiny_onnx, quant_reports["int8"]],
        device="host",
        eval_spec=str(write_eval_npz(root / "eval.npz")),
        threads=1,
        warmup="2",
        iterations=30,
        power_meter=f"csv:{log}",
        profile_runs=3,
    )


@pytest.fixture(scope="session")
def results_json(bench_rows: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("results") / "results.json"
    path.write_text(json.dumps(bench_rows))
    return path
