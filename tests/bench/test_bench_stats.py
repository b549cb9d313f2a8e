"""How sure a bench figure is (issue 11): CoV, the unstable status, --repeat CIs, conditions, Wilson intervals.

Synthetic latencies and scripted clocks only: nothing here depends on how fast or busy this machine is.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from mdnet_deploy.bench import bench_models, conditions, stats
from mdnet_deploy.bench.report import result_notes
from mdnet_deploy.bench.schema import CSV_COLUMNS, flatten, is_failed
from mdnet_deploy.bench.timing import latency_stats
from mdnet_deploy.metrics import accuracy_interval, drop_uncertainty, wilson_interval
from tests.helpers.cli import run as run_cli

MS = 1_000_000


def _lat(values_ms):
    return latency_stats([int(v * MS) for v in values_ms])


# -- the unstable rule on synthetic latencies --------------------------------------------------
def test_steady_latencies_are_stable() -> None:
    lat = _lat([10.0, 10.1, 9.9, 10.0] * 50)
    assert lat["cov"] < 0.01
    assert stats.unstable_reasons(lat, 200, {"cores": 4, "before": {"loadavg": [0.5, 0.5, 0.5]}}) == []


def test_the_issue_s_noisy_row_is_unstable() -> None:
    """mean 328.9 ms, std 668.5 ms, p50 75.2 ms, p99 3025 ms was reported 'ok' (issue 11)."""
    values = [75.2] * 180 + [3025.0] * 10 + [400.0] * 10
    lat = _lat(values)
    reasons = stats.unstable_reasons(lat, len(values))
    assert any(r.startswith("latency CoV") for r in reasons)
    assert any(r.startswith("p99") and "x p50" in r for r in reasons)


def test_p99_rule_needs_enough_calls() -> None:
    lat = _lat([1.0] * 20 + [1.05] * 2)  # p99 is just the max of a few samples
    lat["p99"] = 10.0
    assert not any("p99" in r for r in stats.unstable_reasons(lat, 22))


def test_load_above_the_core_count_is_unstable() -> None:
    lat = _lat([5.0] * 100)
    cond = {"cores": 2, "before": {"loadavg": [1.0, 1, 1]}, "after": {"loadavg": [3.5, 2, 1]}}
    assert stats.unstable_reasons(lat, 100, cond) == ["load average 3.5 after the run > 2 cores"]


def test_current_throttling_is_unstable_but_a_past_event_is_not() -> None:
    lat = _lat([5.0] * 100)
    past = {"cores": 4, "after": {"throttled": {"raw": "0x50000", "flags": ["under_voltage_occurred"]}}}
    now = {"cores": 4, "after": {"throttled": {"raw": "0x4", "flags": ["throttled"]}}}
    assert stats.unstable_reasons(lat, 100, past) == []
    assert stats.unstable_reasons(lat, 100, now) == ["throttled: throttled"]


def test_unstable_rows_are_measured_not_failed() -> None:
    assert not is_failed({"status": "unstable"}) and is_failed({"status": "failed"}) and not is_failed({"status": "ok"})


# -- repeats: median p50 and its 95 % interval --------------------------------------------------
def test_repeats_summary_median_and_t_interval() -> None:
    p50s = [10.0, 11.0, 9.0, 10.5, 9.5]
    rep = stats.repeats_summary(p50s)
    assert rep["n"] == 5 and rep["median_p50_ms"] == 10.0
    half = 2.776 * np.std(p50s, ddof=1) / math.sqrt(5)  # t(0.975, 4)
    assert rep["ci95_p50_ms"] == pytest.approx([10.0 - half, 10.0 + half])
    assert stats.repeats_summary([3.0])["ci95_p50_ms"] is None
    assert stats.unstable_reasons(_lat([10.0] * 100), 100, None, stats.repeats_summary([10.0, 20.0, 10.0])) == [
        "p50 varies 35 % across 3 repeats"
    ]


def test_t_quantiles_match_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 4, 9, 29, 30, 60, 120, 1000):
        assert stats.t975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), rel=2e-3), df


# -- Wilson intervals and the guard's resolution --------------------------------------------------
def test_wilson_interval_known_values() -> None:
    assert wilson_interval(81, 100) == pytest.approx((0.7222, 0.8749), abs=1e-4)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)  # not zero-width at 0 %
    assert accuracy_interval(100.0, 240)[1] == pytest.approx(100.0)


def test_wilson_matches_scipy_binomtest() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    for k, n in ((7, 20), (150, 200), (1, 1000)):
        ci = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_drop_uncertainty() -> None:
    small = drop_uncertainty(100, 0.5, drop=1.0, disagreement=0.04)
    assert small["points_per_image"] == 1.0 and small["resolvable"] is False
    lo, hi = small["drop_ci95_points"]
    assert lo < 1.0 < hi and hi - lo == pytest.approx(2 * 1.96 * 100 * math.sqrt(0.04 / 100), rel=1e-3)
    assert drop_uncertainty(2000, 0.5)["resolvable"] is True


# -- conditions on a fake sysfs ---------------------------------------------------------------------
def test_conditions_snapshot_reads_frequency_and_governor(tmp_path, monkeypatch) -> None:
    policy = tmp_path / "devices" / "system" / "cpu" / "cpufreq" / "policy0"
    policy.mkdir(parents=True)
    (policy / "scaling_cur_freq").write_text("1500000\n")
    (policy / "scaling_max_freq").write_text("2400000\n")
    (policy / "scaling_governor").write_text("ondemand\n")
    monkeypatch.setenv("MDNET_DEPLOY_SYSFS_ROOT", str(tmp_path))
    snap = conditions.snapshot("host")
    assert snap["cpu_freq_mhz"] == {"policy0": {"cur": 1500.0, "max": 2400.0}}
    assert snap["cpu_governor"] == "ondemand" and snap["throttled"] is None
    assert snap["loadavg"] is None or len(snap["loadavg"]) == 3


# -- end to end through the harness with a scripted clock -----------------------------------------
def _scripted_clock(steps_ms):
    now = {"t": 0}
    cycle = itertools.cycle(steps_ms)

    def clock() -> int:
        now["t"] += int(next(cycle) * MS)
        return now["t"]

    return clock


@pytest.fixture
def idle_machine(monkeypatch):
    """A load average of 0, so only the latencies decide."""
    monkeypatch.setattr(conditions, "loadavg", lambda: [0.0, 0.0, 0.0])


def test_a_jittery_run_is_unstable_with_its_reason_in_json_and_notes(models, idle_machine, no_rapl) -> None:
    rows = bench_models(
        [models["onnx"]], warmup="1", iterations=30, power_meter="none", clock=_scripted_clock([1, 1, 20]), threads=1
    )
    row = rows[0]
    assert row["status"] == "unstable" and row["reason"].startswith("latency CoV")
    assert row["latency_ms"]["cov"] > 0.1
    assert row["conditions"]["before"]["loadavg"] == [0.0, 0.0, 0.0] and "cores" in row["conditions"]
    assert any(n.endswith(f"unstable: {row['reason']}") for n in result_notes(rows))
    assert flatten(row)["latency_cov"] == row["latency_ms"]["cov"] and "latency_cov" in CSV_COLUMNS


def test_a_steady_run_is_ok(models, idle_machine, no_rapl) -> None:
    rows = bench_models(
        [models["onnx"]], warmup="1", iterations=30, power_meter="none", clock=_scripted_clock([2]), threads=1
    )
    assert rows[0]["status"] == "ok" and rows[0]["reason"] is None and rows[0]["latency_ms"]["cov"] == 0.0


def test_repeat_through_the_cli_reports_the_median_p50_and_its_ci(models, tmp_path, no_rapl) -> None:
    out = tmp_path / "r.json"
    res = run_cli(
        "bench",
        "--device",
        "host",
        "-m",
        models["onnx"],
        "--warmup",
        "1",
        "--iterations",
        "3",
        "--repeat",
        "3",
        "--threads",
        "1",
        "--power-meter",
        "none",
        "--json",
        out,
    )
    assert res.exit_code == 0, res.output
    row = json.loads(out.read_text())[0]
    rep = row["repeats"]
    assert rep["n"] == 3 and len(rep["p50_ms"]) == 3 and row["iterations"] == 9
    lo, hi = rep["ci95_p50_ms"]
    assert lo <= sum(rep["p50_ms"]) / 3 <= hi and min(rep["p50_ms"]) <= rep["median_p50_ms"] <= max(rep["p50_ms"])
    assert "p50 median of 3 repeats" in res.output


def test_repeat_zero_is_refused(models, tmp_path) -> None:
    res = run_cli("bench", "--device", "host", "-m", models["onnx"], "--repeat", "0")
    assert res.exit_code != 0 and "error: --repeat 0 is not valid" in res.output
