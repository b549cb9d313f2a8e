"""Turn traces into the result's ``energy`` block, and measure idle power.

J per image is the window's energy over the images processed in it. With an
idle trace (the same meter, measured first with the machine at rest) the
idle power is reported too, and the *dynamic* figure is what the inference
adds on top of it: (average - idle) x window / images.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from .meter import PowerMeter
from .trace import METHOD_SAMPLES, Trace

#: Below this, one stray background task moves J/image noticeably.
MIN_WINDOW_S = 10.0
#: Fewer samples than this per second miss short bursts of power.
MIN_RATE_HZ = 10.0


def window_warnings(trace: Trace, what: str = "measurement") -> list[str]:
    warnings = []
    if trace.window_s < MIN_WINDOW_S:
        warnings.append(
            f"{what} window is {trace.window_s:.1f} s, under {MIN_WINDOW_S:g} s: energy figures are noisy; run longer"
        )
    rate = trace.sample_rate_hz
    if trace.method == METHOD_SAMPLES and rate is not None and rate < MIN_RATE_HZ:
        warnings.append(f"{what} sampled at {rate:.1f} Hz, under {MIN_RATE_HZ:g} Hz: short power peaks may be missed")
    return warnings


def energy_summary(trace: Trace, images: int, idle: Trace | None = None) -> dict[str, Any] | None:
    """The schema's energy block, or None when the trace holds no energy (the ``none`` meter)."""
    if not trace.has_energy:
        return None
    joules = trace.joules
    avg = trace.avg_power_w
    window = trace.window_s
    warnings = list(trace.warnings) + window_warnings(trace)
    if trace.partial and trace.meter != "pmic":  # the PMIC meter words its own warning
        warnings.append(f"partial scope: {trace.scope}; the board draws more than this")
    per_image = joules / images if joules is not None and images > 0 else None

    idle_w = dynamic_w = dynamic_per_image = None
    idle_samples = idle_window = None
    if idle is not None and idle.has_energy:
        idle_w = idle.avg_power_w
        idle_samples, idle_window = idle.samples, idle.window_s
        warnings += window_warnings(idle, "idle")
        if (idle.meter, idle.scope) != (trace.meter, trace.scope):
            warnings.append(
                f"idle was measured with '{idle.meter}' ({idle.scope}), not '{trace.meter}'; dynamic figures are not comparable"
            )
        if idle_w is not None and avg is not None:
            dynamic_w = avg - idle_w
            if images > 0:
                dynamic_per_image = dynamic_w * window / images
            if dynamic_w < 0:
                warnings.append("average power is below idle power: the load is within the meter's noise")

    return {
        "meter": trace.meter,
        "scope": trace.scope,
        "method": trace.method,
        "samples": trace.samples,
        "sample_rate_hz": trace.sample_rate_hz,
        "window_s": window,
        "avg_power_w": avg,
        "idle_power_w": idle_w,
        "dynamic_power_w": dynamic_w,
        "joules": joules,
        "joules_per_inference": per_image,
        "dynamic_joules_per_inference": dynamic_per_image,
        "idle_samples": idle_samples,
        "idle_window_s": idle_window,
        "rails": trace.rails or None,
        "partial": bool(trace.partial),
        "warnings": warnings,
    }


def measure_idle(
    meter: PowerMeter, seconds: float = MIN_WINDOW_S, sleep: Callable[[float], None] = time.sleep
) -> Trace:
    """Sample ``meter`` for ``seconds`` while this process sleeps (call it before any load starts)."""
    meter.start()
    try:
        sleep(seconds)
    except BaseException:
        meter.close()
        raise
    return meter.stop()
