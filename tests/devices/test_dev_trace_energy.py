"""Integration over the window, counters, and the energy block's arithmetic."""

from __future__ import annotations

import time

import pytest

from mdnet_deploy.devices.energy import energy_summary, measure_idle
from mdnet_deploy.devices.meter import PollingMeter
from mdnet_deploy.devices.trace import (
    METHOD_COUNTER,
    METHOD_NONE,
    METHOD_SAMPLES,
    Trace,
    clip_to_window,
    integrate_power,
)


def constant_trace(watts: float, t0: float, t1: float, step: float = 0.25, **kw) -> Trace:
    n = int(round((t1 - t0) / step))
    times = [t0 + i * step for i in range(n + 1)]
    return Trace(
        meter="test",
        scope="test rail",
        method=METHOD_SAMPLES,
        t_start=t0,
        t_stop=t1,
        times=times,
        values=[watts] * len(times),
        **kw,
    )


def test_constant_power_integrates_to_exactly_p_times_t():
    # Dyadic timestamps: every step is exact in binary, so the sum is exact too.
    times = [i * 0.25 for i in range(9)]  # 0 .. 2 s
    assert integrate_power(times, [4.0] * 9, 0.5, 1.75) == 4.0 * 1.25
    assert integrate_power(times, [4.0] * 9, 0.0, 2.0) == 8.0


def test_constant_power_unaligned_window():
    times = [0.1 * i for i in range(101)]
    assert integrate_power(times, [3.3] * 101, 0.123, 9.87) == pytest.approx(3.3 * (9.87 - 0.123), rel=1e-12)


def test_edges_are_interpolated_not_rounded_to_samples():
    # Power rises linearly, P = t: the trapezoid is exact for a line, and the
    # energy over [a, b] is (b^2 - a^2) / 2 only if both edges are interpolated.
    times = [0.0, 1.0, 2.0, 3.0, 4.0]
    assert integrate_power(times, times, 0.5, 3.25) == pytest.approx((3.25**2 - 0.5**2) / 2, rel=1e-12)
    ts, ws = clip_to_window(times, times, 0.5, 3.25)
    assert ts == [0.5, 1.0, 2.0, 3.0, 3.25]
    assert ws == [0.5, 1.0, 2.0, 3.0, 3.25]


def test_edges_outside_the_samples_hold_the_nearest_value():
    assert integrate_power([1.0, 2.0], [5.0, 5.0], 0.0, 3.0) == 15.0


def test_counter_trace_uses_the_counter_delta():
    trace = Trace(
        meter="c",
        scope="pkg",
        method=METHOD_COUNTER,
        t_start=10.0,
        t_stop=20.0,
        times=[10.0, 15.0, 20.0],
        values=[100.0, 130.0, 160.0],
    )
    assert trace.joules == 60.0
    assert trace.avg_power_w == 6.0
    assert trace.samples == 3
    assert trace.sample_rate_hz == pytest.approx(0.2)


def test_samples_and_rate_count_only_the_window():
    trace = constant_trace(2.0, 0.0, 10.0, step=0.5)
    trace.t_start, trace.t_stop = 2.0, 4.0
    # 2.0, 2.5, ..., 4.0 are inside: 5 readings, 2 per second.
    assert trace.samples == 5
    assert trace.sample_rate_hz == pytest.approx(2.0)
    assert trace.joules == 4.0


def test_summary_math_with_idle():
    run = constant_trace(5.0, 0.0, 20.0)
    idle = constant_trace(2.0, 100.0, 112.0)
    block = energy_summary(run, images=100, idle=idle)
    assert block["meter"] == "test" and block["scope"] == "test rail" and block["method"] == METHOD_SAMPLES
    assert block["samples"] == 81
    assert block["sample_rate_hz"] == pytest.approx(4.0)
    assert block["window_s"] == 20.0
    assert block["avg_power_w"] == pytest.approx(5.0)
    assert block["joules"] == pytest.approx(100.0)
    assert block["joules_per_inference"] == pytest.approx(1.0)
    assert block["idle_power_w"] == pytest.approx(2.0)
    assert block["dynamic_power_w"] == pytest.approx(3.0)
    # (5 W - 2 W) x 20 s / 100 images
    assert block["dynamic_joules_per_inference"] == pytest.approx(0.6)
    assert block["idle_samples"] == 49 and block["idle_window_s"] == 12.0
    assert block["partial"] is False
    # 4 Hz is below the 10 Hz floor: warned; windows are long enough: not warned.
    assert any("4.0 Hz" in w for w in block["warnings"])
    assert not any("under 10 s" in w for w in block["warnings"])


def test_summary_without_idle_has_none_idle_fields():
    block = energy_summary(constant_trace(5.0, 0.0, 12.0, step=0.0625), images=10)
    assert block["idle_power_w"] is None
    assert block["dynamic_joules_per_inference"] is None
    assert block["dynamic_power_w"] is None
    assert block["warnings"] == []


def test_short_window_warns():
    block = energy_summary(constant_trace(5.0, 0.0, 2.0, step=0.0625), images=10)
    assert any("under 10 s" in w for w in block["warnings"])


def test_partial_scope_is_flagged():
    block = energy_summary(constant_trace(5.0, 0.0, 12.0, step=0.0625, partial=True), images=10)
    assert block["partial"] is True
    assert any("partial" in w for w in block["warnings"])


def test_none_trace_gives_no_block():
    trace = Trace(meter="none", scope="none", method=METHOD_NONE, t_start=0.0, t_stop=1.0)
    assert energy_summary(trace, images=10) is None


def test_below_idle_warns():
    block = energy_summary(constant_trace(2.0, 0.0, 12.0), images=10, idle=constant_trace(3.0, 0.0, 12.0))
    assert block["dynamic_power_w"] == pytest.approx(-1.0)
    assert any("below idle" in w for w in block["warnings"])


class ConstantMeter(PollingMeter):
    name = "const"
    scope = "test"

    def __init__(self, watts: float) -> None:
        super().__init__(interval_s=0.01)
        self.watts = watts

    def available(self):
        return True, "test"

    def _read(self):
        return self.watts, {"A": self.watts}


def test_measure_idle_samples_while_sleeping():
    slept = []

    def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(0.05)

    meter = ConstantMeter(3.0)
    trace = measure_idle(meter, seconds=7.5, sleep=fake_sleep)
    assert slept == [7.5]
    assert trace.samples >= 2
    assert trace.avg_power_w == pytest.approx(3.0)
    assert trace.rails == {"A": 3.0}
    # The idle trace feeds the summary directly.
    block = energy_summary(trace, images=1, idle=trace)
    assert block["dynamic_power_w"] == pytest.approx(0.0, abs=1e-12)


def test_measure_idle_closes_the_meter_on_interrupt():
    meter = ConstantMeter(1.0)

    def interrupted(_s: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        measure_idle(meter, seconds=1.0, sleep=interrupted)
    assert meter._poller is None
