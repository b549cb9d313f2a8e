"""bench_models end to end on a tiny MDNET with ONNX Runtime and torch (counts and keys, never timings)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from mdnet_deploy.bench import ROW_KEYS, bench_models
from mdnet_deploy.bench.schema import ACCURACY_KEYS, ENERGY_KEYS, LATENCY_KEYS
from mdnet_deploy.errors import DataError, InputError, UnavailableError
from tests.helpers.bench import MEASURED, copy_model, corrupt_model, outcome, rewrite_meta, write_eval_npz

FAST = dict(warmup="2", iterations=5, power_meter="none")


def design_keys_present(row):
    """Every key of DESIGN.md's bench result schema."""
    for key in (
        "schema",
        "device",
        "runtime",
        "model",
        "batch",
        "iterations",
        "warmup",
        "duration_s",
        "latency_ms",
        "throughput_ips",
        "energy",
        "energy_unavailable",
        "accuracy",
    ):
        assert key in row, key
    assert {"kind", "name", "env"} <= set(row["device"])
    assert {"name", "version", "threads"} <= set(row["runtime"])
    assert {"path", "sha256", "precision", "format"} <= set(row["model"])


def test_row_has_every_schema_key(models, eval_npz, no_rapl):
    lines = []
    rows = bench_models(
        [models["onnx"]], device="host", eval_spec=str(eval_npz), batch=2, threads=1, progress=lines.append, **FAST
    )
    assert len(rows) == 1
    row = rows[0]
    design_keys_present(row)
    assert set(ROW_KEYS) <= set(row)
    assert row["schema"] == 1 and row["status"] in MEASURED and (row["reason"] is None) == (row["status"] == "ok")
    assert row["device"]["kind"] == "host" and row["device"]["env"]["kind"] == "host"
    assert set(row["device"]["temperatures_c"]) == {"before", "after"}
    assert row["runtime"]["name"] == "onnxruntime" and row["runtime"]["threads"] == 1 and row["runtime"]["version"]
    assert row["model"]["path"] == str(models["onnx"]) and row["model"]["format"] == "onnx"
    assert row["model"]["precision"] == "fp32" and len(row["model"]["sha256"]) == 64
    assert row["batch"] == 2 and row["iterations"] == 5 and row["warmup"] == 2
    assert set(row["latency_ms"]) == set(LATENCY_KEYS)
    lat = row["latency_ms"]
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert row["throughput_ips"] == pytest.approx(10 / row["duration_s"])
    assert set(ACCURACY_KEYS) <= set(row["accuracy"]) and row["accuracy"]["n"] == 24
    assert 0 <= row["accuracy"]["top1"] <= row["accuracy"]["top5"] <= 100
    assert row["energy"] is None and "disabled" in row["energy_unavailable"]
    json.dumps(rows)  # JSON-serialisable as is
    assert any("opening" in l for l in lines) and any(l.endswith("images/s") for l in lines)


def test_accuracy_matches_direct_inference(models, tmp_path):
    """Same preprocessing, same runner: the harness's top-1 equals ONNX Runtime's on the same images."""
    from mdnet_deploy.artifact import read_meta
    from mdnet_deploy.data import load_dataset, preprocess
    from mdnet_deploy.metrics import topk_accuracy
    from mdnet_deploy.runtimes.onnxruntime import OnnxRuntimeRunner

    ev = write_eval_npz(tmp_path / "e.npz", n=37)
    row = bench_models([models["onnx"]], eval_spec=str(ev), **FAST)[0]
    meta = read_meta(models["onnx"])
    ds = load_dataset(str(ev))
    with OnnxRuntimeRunner(models["onnx"], meta) as r:
        ref = topk_accuracy(r.infer(preprocess(ds.images, meta.preprocessing)), ds.labels)
    assert row["accuracy"]["n"] == 37
    assert row["accuracy"]["top1"] == pytest.approx(ref["top1"]) and row["accuracy"]["top5"] == pytest.approx(
        ref["top5"]
    )


def test_warmup_seconds_and_duration_are_honoured(models):
    t0 = time.perf_counter()
    row = bench_models([models["onnx"]], warmup="0.2s", duration=0.3, power_meter="none")[0]
    assert row["status"] in MEASURED
    assert row["warmup"] >= 1 and row["warmup_s"] >= 0.2
    assert row["iterations"] >= 1 and row["duration_s"] >= 0.3
    assert time.perf_counter() - t0 >= 0.5


def test_auto_meter_without_any_meter_records_why(models, no_rapl):
    row = bench_models([models["onnx"]], device="host", **{**FAST, "power_meter": "auto"})[0]
    assert row["status"] in MEASURED and row["energy"] is None
    assert "no power meter works" in row["energy_unavailable"] and "rapl" in row["energy_unavailable"]


def test_explicit_missing_meter_fails_before_anything_runs(models, no_rapl):
    lines = []
    with pytest.raises(UnavailableError, match="rapl"):
        bench_models([models["onnx"]], device="host", power_meter="rapl", progress=lines.append, iterations=5)
    assert lines == []
    with pytest.raises(UnavailableError, match="does not exist"):
        bench_models([models["onnx"]], power_meter="csv:/nonexistent/power.csv", progress=lines.append, iterations=5)
    assert lines == []


def write_power_csv(path, watts, seconds_back=30.0, seconds_ahead=120.0, rate_hz=20.0):
    now = time.time()
    n = int((seconds_back + seconds_ahead) * rate_hz)
    lines = ["timestamp,watts"] + [f"{now - seconds_back + i / rate_hz:.4f},{watts}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_energy_from_a_constant_csv_meter(models, tmp_path):
    power = write_power_csv(tmp_path / "power.csv", 5.0)
    row = bench_models([models["onnx"]], warmup="2", duration=0.5, batch=2, idle=0.2, power_meter=f"csv:{power}")[0]
    assert row["status"] in MEASURED and row["energy_unavailable"] is None
    e = row["energy"]
    assert set(ENERGY_KEYS) <= set(e)
    images = row["iterations"] * row["batch"]
    # The meter window is the timed window: J/image = P x window / images.
    assert e["joules_per_inference"] == pytest.approx(5.0 * row["duration_s"] / images, rel=1e-3)
    assert e["avg_power_w"] == pytest.approx(5.0, rel=1e-6)
    assert e["idle_power_w"] == pytest.approx(5.0, rel=1e-6)
    assert e["dynamic_joules_per_inference"] == pytest.approx(0.0, abs=1e-6)
    assert e["window_s"] == pytest.approx(row["duration_s"], rel=1e-2)
    assert any("under 10 s" in w for w in e["warnings"])


def test_meter_failing_mid_run_keeps_the_row_without_energy(models, tmp_path):
    power = tmp_path / "power.csv"
    power.write_text("timestamp,watts\n1.0,5.0\n2.0,5.0\n")  # samples from 1970: none near the window
    row = bench_models([models["onnx"]], power_meter=f"csv:{power}", warmup="1", iterations=3)[0]
    assert row["status"] in MEASURED and row["energy"] is None
    assert "no samples near the window" in row["energy_unavailable"]


def test_eval_classes_that_do_not_fit_fail_before_timing(models, tmp_path):
    ev = write_eval_npz(tmp_path / "e20.npz", classes=20)
    lines = []
    with pytest.raises(DataError, match="has 10 classes"):
        bench_models([models["onnx"]], eval_spec=str(ev), progress=lines.append, **FAST)
    assert not any("timing" in l for l in lines)


def test_eval_class_names_that_differ_fail(models, tmp_path):
    from mdnet_deploy.artifact import read_meta

    m = copy_model(models["onnx"], tmp_path / "named")
    meta = read_meta(m)
    meta.labels = [f"class{i}" for i in range(10)]
    rewrite_meta(m, meta)
    ev = tmp_path / "e.npz"
    np.savez(
        ev, x=np.zeros((4, 32, 32, 3), np.uint8), y=np.arange(4), labels=np.array([f"other{i}" for i in range(10)])
    )
    with pytest.raises(DataError, match="names its classes differently"):
        bench_models([m], eval_spec=str(ev), **FAST)


def test_missing_and_unknown_files_fail_before_running(models, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        bench_models([models["onnx"], tmp_path / "nope.onnx"], **FAST)
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"x")
    with pytest.raises(InputError, match="unknown artifact type"):
        bench_models([odd], **FAST)


def test_option_errors():
    for kwargs, match in [
        (dict(batch=0), "--batch"),
        (dict(iterations=3, duration=1.0), "either"),
        (dict(threads=0), "--threads"),
        (dict(warmup="x"), "--warmup"),
        (dict(idle=-1), "--idle"),
        (dict(device="toaster"), "device kind"),
        (dict(runtime="tvm"), "unknown runtime"),
    ]:
        with pytest.raises(InputError, match=match):
            bench_models(["whatever.onnx"], **{**FAST, **kwargs})


def test_one_crash_fails_its_row_only(models, tmp_path, monkeypatch):
    from mdnet_deploy.runtimes.onnxruntime import OnnxRuntimeRunner

    broken = copy_model(models["onnx"], tmp_path / "b", "crashy.onnx")
    real_run = OnnxRuntimeRunner.run
    calls = {"n": 0}

    def run(self, native):
        if self.artifact.name == "crashy.onnx":
            calls["n"] += 1
            if calls["n"] > 3:  # well into the warm-up: a crash mid-run
                raise RuntimeError("simulated segfault-ish failure")
        return real_run(self, native)

    monkeypatch.setattr(OnnxRuntimeRunner, "run", run)
    rows = bench_models([models["onnx"], broken, models["onnx"]], **FAST)
    assert [outcome(r) for r in rows] == ["measured", "failed", "measured"]
    assert rows[1]["reason"] == "RuntimeError: simulated segfault-ish failure"
    assert rows[1]["latency_ms"] is None and rows[1]["iterations"] is None
    assert set(ROW_KEYS) <= set(rows[1])


def test_corrupt_model_row_fails_with_the_runtime_reason(models, tmp_path):
    bad = copy_model(models["onnx"], tmp_path / "c", "corrupt.onnx")
    corrupt_model(bad, b"\x08\x07garbage" * 10)
    rows = bench_models([bad, models["onnx"]], **FAST)
    assert rows[0]["status"] == "failed" and "ONNX Runtime cannot open" in rows[0]["reason"]
    assert rows[1]["status"] in MEASURED


def test_torch_baseline_and_several_runtimes(models):
    rows = bench_models([models["onnx"], models["pth"]], runtime=["onnxruntime", "torch"], threads=1, **FAST)
    got = [(r["model"]["path"], r["runtime"]["name"], r["model"]["format"], outcome(r)) for r in rows]
    assert got == [
        (str(models["onnx"]), "onnxruntime", "onnx", "measured"),
        (str(models["onnx"]), "torch", "pt", "measured"),  # the exported model's checkpoint
        (str(models["pth"]), "torch", "pt", "measured"),  # onnxruntime does not open a .pth: skipped
    ]
    assert rows[1]["model"]["baseline_of"] == str(models["onnx"])
    assert rows[1]["runtime"]["device"] == "cpu"


def test_runtime_that_cannot_open_the_format_fails_the_row(models):
    row = bench_models([models["pth"]], runtime="onnxruntime", **FAST)[0]
    assert row["status"] == "failed" and "cannot open a .pt artifact" in row["reason"]


def test_unavailable_runtime_fails_the_row(models, monkeypatch):
    from mdnet_deploy.runtimes import registry

    real = registry.runtime_available
    monkeypatch.setattr(
        registry,
        "runtime_available",
        lambda n: (False, "onnxruntime is not importable (test)") if n == "onnxruntime" else real(n),
    )
    rows = bench_models([models["onnx"], models["pth"]], **FAST)
    assert rows[0]["status"] == "failed" and "not importable (test)" in rows[0]["reason"]
    assert rows[1]["status"] in MEASURED


@pytest.mark.slow  # converts the model to TFLite (tens of seconds)
def test_tflite_row_beside_onnx(models, tflite_model, eval_npz):
    rows = bench_models([models["onnx"], tflite_model], eval_spec=str(eval_npz), batch=2, **FAST)
    assert [(r["runtime"]["name"], outcome(r)) for r in rows] == [("onnxruntime", "measured"), ("tflite", "measured")]
    assert rows[1]["model"]["format"] == "tflite" and rows[1]["accuracy"]["n"] == 24


def test_auto_and_a_named_runtime_do_not_duplicate_rows(models):
    rows = bench_models([models["pth"]], runtime=["auto", "torch"], threads=1, **FAST)
    assert [(r["runtime"]["name"], outcome(r)) for r in rows] == [("torch", "measured")]
