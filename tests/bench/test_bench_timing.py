"""Timing primitives: statistics on known values, budgets honoured by count (fake clock, no real time)."""

from __future__ import annotations

import numpy as np
import pytest

from mdnet_deploy.bench.timing import Budget, latency_stats, parse_budget, percentile, timed_loop, warm_up
from mdnet_deploy.errors import InputError


class FakeClock:
    """perf_counter_ns stand-in: each run() call costs `cost_ns`; reading the clock is free."""

    def __init__(self, cost_ns: int) -> None:
        self.now = 1_000_000
        self.cost_ns = cost_ns
        self.calls = 0

    def __call__(self) -> int:
        return self.now

    def run(self, _x) -> None:
        self.calls += 1
        self.now += self.cost_ns


def test_stats_on_known_latencies():
    ms = [3.0, 1.0, 2.0, 10.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    stats = latency_stats([int(v * 1e6) for v in ms])
    ref = np.asarray(ms)
    assert stats["mean"] == pytest.approx(5.5)
    assert stats["std"] == pytest.approx(ref.std())  # population std
    assert stats["min"] == 1.0 and stats["max"] == 10.0
    for q in (50, 90, 99):
        assert stats[f"p{q}"] == pytest.approx(np.percentile(ref, q))
    assert (
        stats["p50"] == pytest.approx(5.5)
        and stats["p90"] == pytest.approx(9.1)
        and stats["p99"] == pytest.approx(9.91)
    )


def test_stats_of_one_value_and_of_none():
    assert latency_stats([2_000_000]) == {k: 2.0 for k in ("mean", "min", "p50", "p90", "p99", "max")} | {
        "std": 0.0,
        "cov": 0.0,
    }
    with pytest.raises(ValueError):
        latency_stats([])
    assert percentile([1.0, 3.0], 50) == 2.0


@pytest.mark.parametrize(
    "text, expected",
    [("50", Budget(count=50)), ("5s", Budget(seconds=5.0)), (" 0.5S ", Budget(seconds=0.5)), (7, Budget(count=7))],
)
def test_parse_budget(text, expected):
    assert parse_budget(text, "--warmup") == expected


@pytest.mark.parametrize("text", ["", "-1", "abc", "5m", "0", "0s", "nans", "infs"])
def test_parse_budget_rejects(text):
    with pytest.raises(InputError, match="--warmup"):
        parse_budget(text, "--warmup")


def test_zero_warmup_allowed_where_asked():
    assert parse_budget("0", "--warmup", allow_zero=True) == Budget(count=0)


def test_warmup_by_count_and_by_seconds():
    clock = FakeClock(cost_ns=10_000_000)  # 10 ms per call
    assert warm_up(clock.run, None, Budget(count=7), clock) == (7, pytest.approx(0.07))
    clock = FakeClock(cost_ns=10_000_000)
    n, seconds = warm_up(clock.run, None, Budget(seconds=0.5), clock)
    assert n == 50 and clock.calls == 50 and seconds == pytest.approx(0.5)


def test_timed_loop_by_count():
    clock = FakeClock(cost_ns=2_000_000)
    lat, window = timed_loop(clock.run, None, Budget(count=25), clock)
    assert len(lat) == 25 and set(lat) == {2_000_000} and window == 50_000_000


def test_timed_loop_by_duration_counts_calls():
    clock = FakeClock(cost_ns=10_000_000)
    lat, window = timed_loop(clock.run, None, Budget(seconds=1.0), clock)
    assert len(lat) == 100 and window == 1_000_000_000
    # A call longer than the whole duration still runs (once).
    clock = FakeClock(cost_ns=3_000_000_000)
    lat, window = timed_loop(clock.run, None, Budget(seconds=1.0), clock)
    assert len(lat) == 1 and window == 3_000_000_000


def test_only_the_call_is_inside_the_timed_region():
    clock = FakeClock(cost_ns=1_000)
    seen = []

    def run(x):
        seen.append(x)
        clock.run(x)

    lat, _ = timed_loop(run, "native", Budget(count=3), clock)
    assert seen == ["native"] * 3 and lat == [1_000] * 3
