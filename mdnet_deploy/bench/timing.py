"""Warm-up, the timed loop and latency statistics.

Only ``run`` (the runner's timed call, which returns after device
synchronisation) sits between the two ``perf_counter_ns`` readings; input
preparation and output conversion happen outside. The loop keeps its own
bookkeeping to one list append so the harness adds well under a
microsecond per call (measured by :mod:`mdnet_deploy.bench.overhead`).
The clock is a parameter so tests can drive the loops with a fake one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import InputError

Clock = Callable[[], int]  # nanoseconds
RunFn = Callable[[Any], Any]


@dataclass(frozen=True)
class Budget:
    """How long a phase lasts: a number of calls or a number of seconds (exactly one is set)."""

    count: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.count is None) == (self.seconds is None):
            raise ValueError("a Budget is either a count or seconds")

    def describe(self) -> str:
        return f"{self.count}" if self.count is not None else f"{self.seconds:g}s"


def parse_budget(value: str | float | Budget | None, option: str, allow_zero: bool = False) -> Budget | None:
    """'50' -> 50 calls, '5s' -> 5 seconds; None stays None."""
    if value is None or isinstance(value, Budget):
        return value
    text = str(value).strip().lower()
    try:
        if text.endswith("s"):
            seconds = float(text[:-1])
            if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
                raise ValueError
            return Budget(seconds=seconds)
        count = int(text)
        if count < 0 or (count == 0 and not allow_zero):
            raise ValueError
        return Budget(count=count)
    except ValueError:
        least = "0" if allow_zero else "1"
        raise InputError(
            f"{option} '{value}' is not valid; give a count (e.g. 50, at least {least}) or seconds (e.g. 5s)"
        ) from None


def warm_up(run: RunFn, native: Any, budget: Budget, clock: Clock = time.perf_counter_ns) -> tuple[int, float]:
    """Run untimed until the budget is spent; returns (calls, seconds)."""
    start = clock()
    n = 0
    if budget.count is not None:
        for _ in range(budget.count):
            run(native)
        n = budget.count
    else:
        limit = int(round(budget.seconds * 1e9))  # type: ignore[operator]
        while clock() - start < limit:
            run(native)
            n += 1
    return n, (clock() - start) / 1e9


def timed_loop(run: RunFn, native: Any, budget: Budget, clock: Clock = time.perf_counter_ns) -> tuple[list[int], int]:
    """Time each call; returns (latencies in ns, window in ns from before the first call to after the last).

    A duration budget always runs at least one call and stops at the first
    call that ends past it, so the window slightly exceeds the duration.
    """
    latencies: list[int] = []
    append = latencies.append  # bound once: the loop body stays minimal
    if budget.count is not None:
        start = clock()
        for _ in range(budget.count):
            t0 = clock()
            run(native)
            append(clock() - t0)
        end = clock()
    else:
        limit = int(round(budget.seconds * 1e9))  # type: ignore[operator]
        start = end = clock()
        while end - start < limit:
            t0 = clock()
            run(native)
            end = clock()
            append(end - t0)
    return latencies, end - start


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of an already sorted list."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def latency_stats(latencies_ns: Sequence[int]) -> dict[str, float | None]:
    """mean/std (population)/min/p50/p90/p99/max in milliseconds, and ``cov`` (std / mean, a fraction)."""
    if not latencies_ns:
        raise ValueError("no latencies")
    ms = sorted(v / 1e6 for v in latencies_ns)
    n = len(ms)
    mean = math.fsum(ms) / n
    var = math.fsum((v - mean) ** 2 for v in ms) / n
    return {
        "mean": mean,
        "std": math.sqrt(var),
        "min": ms[0],
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": ms[-1],
        "cov": math.sqrt(var) / mean if mean > 0 else None,
    }
