"""A power trace small enough to keep in a result row, for the report's power plots.

Only meters that sample power (W at known times) have a trace worth
drawing; a counter's two readings do not. Times become seconds from the
start of the timed window, readings just outside it are kept (the plot
shows where the window starts and ends), and long traces are thinned to at
most ``max_points`` by keeping every n-th reading (the energy figures were
computed from all of them before this).

Standard library only: ``bench`` calls it on devices.
"""

from __future__ import annotations

import math
from typing import Any

METHOD_SAMPLES = "integrated samples"  # devices.trace.METHOD_SAMPLES (not imported: keep this module leaf-level)
MAX_POINTS = 400


def kept_trace(trace: Any, idle_w: float | None = None, max_points: int = MAX_POINTS) -> dict[str, Any] | None:
    """``{"t_s", "w", "window_s": [0, len], "idle_w", "every"}`` from a samples Trace, or None."""
    if getattr(trace, "method", None) != METHOD_SAMPLES or len(getattr(trace, "times", ())) < 2:
        return None
    t0, t1 = float(trace.t_start), float(trace.t_stop)
    margin = max(0.1 * (t1 - t0), 0.5)
    pts = [(float(t) - t0, float(w)) for t, w in zip(trace.times, trace.values) if t0 - margin <= t <= t1 + margin]
    if len(pts) < 2:
        return None
    every = max(1, math.ceil(len(pts) / max(2, max_points)))
    pts = pts[::every]
    return {
        "t_s": [round(t, 4) for t, _ in pts],
        "w": [round(w, 4) for _, w in pts],
        "window_s": [0.0, round(t1 - t0, 4)],
        "idle_w": idle_w,
        "every": every,
    }
