"""What a power meter hands back: samples or a counter delta over one window.

Two methods exist: ``integrated samples`` (power readings in W at known
times, integrated with the trapezoidal rule) and ``counter`` (a hardware
energy counter read at both ends of the window). In both cases the figures
cover exactly ``[t_start, t_stop]``: readings rarely fall on the window's
edges, so the value at each edge is interpolated linearly from the readings
either side of it (or held from the nearest one when there is none beyond).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Sequence

METHOD_SAMPLES = "integrated samples"
METHOD_COUNTER = "counter"
METHOD_NONE = "none"


def value_at(times: Sequence[float], values: Sequence[float], t: float) -> float:
    """Linear interpolation of ``values`` at ``t``; the end values are held outside the range."""
    if not times:
        raise ValueError("no samples")
    if t <= times[0]:
        return float(values[0])
    if t >= times[-1]:
        return float(values[-1])
    i = bisect.bisect_right(times, t)
    t0, t1 = times[i - 1], times[i]
    v0, v1 = values[i - 1], values[i]
    if t1 == t0:
        return float(v1)
    return float(v0 + (v1 - v0) * (t - t0) / (t1 - t0))


def clip_to_window(
    times: Sequence[float], values: Sequence[float], t_start: float, t_stop: float
) -> tuple[list[float], list[float]]:
    """The samples inside the window with interpolated points added on both edges."""
    if t_stop < t_start:
        raise ValueError("window ends before it starts")
    inner = [(t, float(v)) for t, v in zip(times, values) if t_start < t < t_stop]
    ts = [t_start] + [t for t, _ in inner] + [t_stop]
    vs = [value_at(times, values, t_start)] + [v for _, v in inner] + [value_at(times, values, t_stop)]
    return ts, vs


def trapezoid(times: Sequence[float], values: Sequence[float]) -> float:
    # Written out rather than np.trapz: its name changed in numpy 2 and this
    # module must not depend on which numpy a device happens to have.
    total = 0.0
    for i in range(1, len(times)):
        total += 0.5 * (values[i] + values[i - 1]) * (times[i] - times[i - 1])
    return total


def integrate_power(times: Sequence[float], watts: Sequence[float], t_start: float, t_stop: float) -> float:
    """Energy in J over exactly ``[t_start, t_stop]`` from power samples in W."""
    ts, ws = clip_to_window(times, watts, t_start, t_stop)
    return trapezoid(ts, ws)


def samples_used(times: Sequence[float], t_start: float, t_stop: float) -> list[float]:
    """Real readings that shaped the window: those inside it plus the nearest one beyond each edge."""
    if not times:
        return []
    lo = bisect.bisect_left(times, t_start)
    hi = bisect.bisect_right(times, t_stop)
    # The outer neighbour only counts when an edge falls between two readings.
    first = lo if lo < len(times) and times[lo] == t_start else max(lo - 1, 0)
    last = hi if hi > 0 and times[hi - 1] == t_stop else min(hi + 1, len(times))
    return list(times[first:last])


@dataclass
class Trace:
    """One measurement window of one meter."""

    meter: str
    scope: str
    method: str
    t_start: float
    t_stop: float
    #: reading times in the same clock as t_start/t_stop (perf_counter, or epoch for csv)
    times: list[float] = field(default_factory=list)
    #: power in W at each time (samples), or the cumulative energy in J (counter)
    values: list[float] = field(default_factory=list)
    #: True when the scope is a sum of rails that misses part of the board
    partial: bool = False
    #: mean power per rail in W over the window, when the meter sees rails
    rails: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def window_s(self) -> float:
        return self.t_stop - self.t_start

    @property
    def has_energy(self) -> bool:
        return self.method != METHOD_NONE and len(self.times) > 0

    @property
    def samples(self) -> int:
        """Readings that contribute to the window (counter reads, for a counter)."""
        return len(samples_used(self.times, self.t_start, self.t_stop))

    @property
    def sample_rate_hz(self) -> float | None:
        """Actual reading rate: intervals between readings over the span they cover."""
        used = samples_used(self.times, self.t_start, self.t_stop)
        if len(used) < 2 or used[-1] <= used[0]:
            return None
        return (len(used) - 1) / (used[-1] - used[0])

    @property
    def joules(self) -> float | None:
        if not self.has_energy:
            return None
        if self.method == METHOD_COUNTER:
            # Cumulative counter: the difference of its interpolated values at the edges.
            return value_at(self.times, self.values, self.t_stop) - value_at(self.times, self.values, self.t_start)
        return integrate_power(self.times, self.values, self.t_start, self.t_stop)

    @property
    def avg_power_w(self) -> float | None:
        energy = self.joules
        if energy is None:
            return None
        if self.window_s <= 0:
            # A zero-length window has no energy but still has a power reading.
            return value_at(self.times, self.values, self.t_start) if self.method == METHOD_SAMPLES else None
        return energy / self.window_s
