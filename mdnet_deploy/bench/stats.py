"""How sure a bench figure is: coefficient of variation, confidence intervals, the ``unstable`` status.

A latency figure is only worth printing as ``ok`` when the run behind it was
steady. :func:`unstable_reasons` names what makes a run untrustworthy:

* coefficient of variation (std / mean) of the latencies above 10 %:
  the calls themselves disagree;
* p99 above 3x p50 (only with enough calls for a p99, see
  ``MIN_ITERATIONS_FOR_P99``): stalls, preemption or throttling in the window;
* a 1-minute load average above the usable core count before or after
  the run: other work competed for the CPU;
* with ``--repeat``: the p50s of the repeats vary by more than 10 %.

Across repeats the reported figure is the median p50 with a 95 % confidence
interval for the mean p50 (Student's t; the repeats are few, so the normal
approximation would be too narrow). Standard library only: the device side
runs this.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

#: Thresholds of the ``unstable`` status (module docstring).
MAX_COV = 0.10
MAX_P99_OVER_P50 = 3.0
MIN_CALLS_FOR_TAIL = 100

# Two-sided 95 % Student t quantiles (t_{0.975, df}), df = 1..30; beyond, the normal 1.96
# is within 2 % (df 30: 2.042). Tabulated so the device side needs no scipy.
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t975(df: int) -> float:
    if df < 1:
        raise ValueError("a confidence interval needs at least 2 values")
    return _T975[df - 1] if df <= len(_T975) else 1.96 + 2.4 / df  # 2.4/df: matches t at df 60 (2.000) and 120 (1.980)


def cov(values: Sequence[float]) -> float | None:
    """Coefficient of variation (population std / mean); None for no values or a zero mean."""
    if not values:
        return None
    mean = math.fsum(values) / len(values)
    if mean == 0:
        return None
    var = math.fsum((v - mean) ** 2 for v in values) / len(values)
    return math.sqrt(var) / abs(mean)


def mean_ci95(values: Sequence[float]) -> tuple[float, float] | None:
    """95 % t-interval of the mean of ``values``; None with fewer than 2 values."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    half = t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return (mean - half, mean + half)


def repeats_summary(p50s: Sequence[float]) -> dict[str, Any]:
    """The ``repeats`` block of a result: every repeat's p50, their median, CoV and 95 % CI."""
    ci = mean_ci95(p50s)
    return {
        "n": len(p50s),
        "p50_ms": [float(v) for v in p50s],
        "median_p50_ms": float(statistics.median(p50s)) if p50s else None,
        "ci95_p50_ms": [ci[0], ci[1]] if ci else None,
        "ci_method": "Student t interval of the mean p50 across repeats",
        "cov_p50": cov(p50s),
    }


def unstable_reasons(
    latency_ms: dict[str, float] | None,
    n_calls: int,
    conditions: dict[str, Any] | None = None,
    repeats: dict[str, Any] | None = None,
) -> list[str]:
    """Why a measured row must not be called ``ok`` (empty when it may)."""
    reasons: list[str] = []
    lat = latency_ms or {}
    c = lat.get("cov")
    if isinstance(c, (int, float)) and c > MAX_COV:
        reasons.append(f"latency CoV {100 * c:.0f} % > {100 * MAX_COV:.0f} %")
    p50, p99 = lat.get("p50"), lat.get("p99")
    if (
        n_calls >= MIN_CALLS_FOR_TAIL
        and isinstance(p50, (int, float))
        and isinstance(p99, (int, float))
        and p50 > 0
        and p99 > MAX_P99_OVER_P50 * p50
    ):
        reasons.append(f"p99 {p99 / p50:.1f}x p50 (> {MAX_P99_OVER_P50:g}x)")
    if repeats and isinstance(repeats.get("cov_p50"), (int, float)) and repeats["cov_p50"] > MAX_COV:
        reasons.append(f"p50 varies {100 * repeats['cov_p50']:.0f} % across {repeats['n']} repeats")
    cond = conditions or {}
    cores = cond.get("cores")
    for when in ("before", "after"):
        load = (cond.get(when) or {}).get("loadavg")
        if isinstance(cores, int) and cores > 0 and isinstance(load, list) and load and load[0] > cores:
            reasons.append(f"load average {load[0]:.1f} {when} the run > {cores} cores")
            break
    throttled = [w for w in ("before", "after") if ((cond.get(w) or {}).get("throttled") or {}).get("flags")]
    if throttled:
        flags = (cond[throttled[-1]]["throttled"] or {}).get("flags") or []
        now = [f for f in flags if not f.endswith("_occurred")]
        if now:
            reasons.append(f"throttled: {', '.join(now)}")
    return reasons
