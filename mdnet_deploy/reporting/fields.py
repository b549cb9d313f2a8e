"""What a result row says, read defensively: labels, status, metrics and their confidence intervals.

Rows come from any version of ``bench`` (schema 1): keys that newer versions
add (``conditions``, ``repeats.ci95_p50_ms``, ``accuracy.top1_ci95``,
``latency_ms.cov``, status ``unstable``) are optional here, and a figure a
row does not have is None, never zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, Mapping):
            return None
        d = d.get(key)
    return d


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    path: tuple[str, ...]
    higher_is_better: bool
    scale: float = 1.0
    #: where an interval may be: the first present wins
    ci_paths: tuple[tuple[str, ...], ...] = ()
    relative: bool = True  # default threshold kind in compare: % (latency, energy) or absolute (accuracy points)


METRICS: dict[str, Metric] = {
    "top1": Metric(
        "top1", "top-1 %", ("accuracy", "top1"), True, ci_paths=(("accuracy", "top1_ci95"),), relative=False
    ),
    "top5": Metric(
        "top5", "top-5 %", ("accuracy", "top5"), True, ci_paths=(("accuracy", "top5_ci95"),), relative=False
    ),
    "p50": Metric(
        "p50",
        "p50 latency (ms)",
        ("latency_ms", "p50"),
        False,
        ci_paths=(("latency_ms", "p50_ci95"), ("repeats", "ci95_p50_ms"), ("stability", "p50_ci95")),
    ),
    "p90": Metric(
        "p90",
        "p90 latency (ms)",
        ("latency_ms", "p90"),
        False,
        ci_paths=(("latency_ms", "p90_ci95"), ("stability", "p90_ci95")),
    ),
    "p99": Metric(
        "p99",
        "p99 latency (ms)",
        ("latency_ms", "p99"),
        False,
        ci_paths=(("latency_ms", "p99_ci95"), ("stability", "p99_ci95")),
    ),
    "mean": Metric(
        "mean",
        "mean latency (ms)",
        ("latency_ms", "mean"),
        False,
        ci_paths=(("latency_ms", "mean_ci95"), ("stability", "mean_ci95")),
    ),
    "ips": Metric(
        "ips",
        "images/s",
        ("throughput_ips",),
        True,
        ci_paths=(("throughput_ips_ci95",), ("stability", "throughput_ci95")),
    ),
    "mj": Metric(
        "mj",
        "mJ/image",
        ("energy", "joules_per_inference"),
        False,
        scale=1000.0,
        ci_paths=(("energy", "joules_per_inference_ci95"), ("stability", "joules_per_inference_ci95")),
    ),
    "size": Metric("size", "size (MB)", ("model", "size_mb"), False),
}


def status(row: Mapping[str, Any]) -> str:
    """ok | unstable | failed (anything unknown counts as failed: never show it as a good figure)."""
    s = str(row.get("status") or "ok")
    return s if s in ("ok", "unstable", "failed") else "failed"


def usable(row: Mapping[str, Any]) -> bool:
    return status(row) != "failed"


def value(row: Mapping[str, Any], metric: Metric | str) -> float | None:
    m = METRICS[metric] if isinstance(metric, str) else metric
    if m.key != "size" and not usable(row):
        return None
    v = _num(get(row, *m.path))
    return None if v is None else v * m.scale


def interval(row: Mapping[str, Any], metric: Metric | str) -> tuple[float, float] | None:
    """The 95 % confidence interval of a metric, when the row carries one ([lo, hi] or {"lo", "hi"})."""
    m = METRICS[metric] if isinstance(metric, str) else metric
    if not usable(row):
        return None
    for path in m.ci_paths:
        ci = get(row, *path)
        lo = hi = None
        if isinstance(ci, Sequence) and not isinstance(ci, str) and len(ci) == 2:
            lo, hi = _num(ci[0]), _num(ci[1])
        elif isinstance(ci, Mapping):
            lo, hi = _num(ci.get("lo", ci.get("low"))), _num(ci.get("hi", ci.get("high")))
        if lo is not None and hi is not None:
            a, b = sorted((lo * m.scale, hi * m.scale))
            return a, b
    return None


def model_name(row: Mapping[str, Any]) -> str:
    path = get(row, "model", "path") or get(row, "model", "name") or "?"
    name = Path(str(path)).name
    return name + (" (checkpoint)" if get(row, "model", "baseline_of") else "")


def runtime_name(row: Mapping[str, Any]) -> str:
    return str(get(row, "runtime", "name") or "-")


def device_label(row: Mapping[str, Any]) -> str:
    remote = get(row, "remote", "target")
    name = get(row, "device", "name") or get(row, "device", "kind") or "?"
    return f"{remote} ({name})" if remote and remote != name else str(name)


def row_label(row: Mapping[str, Any]) -> str:
    return f"{model_name(row)} · {runtime_name(row)}"


def reasons(row: Mapping[str, Any]) -> list[str]:
    """Why a row is failed or unstable, then its warnings (no duplicates)."""
    out: list[str] = []
    for r in [
        row.get("reason"),
        *(row.get("reasons") or []),
        *(row.get("warnings") or []),
        *(get(row, "energy", "warnings") or []),
    ]:
        if r and str(r) not in out:
            out.append(str(r))
    return out


def latency_samples(row: Mapping[str, Any]) -> list[float]:
    """Per-call latencies in ms when the bench kept them (newer versions may)."""
    for path in (("latency_ms", "samples"), ("latency_samples_ms",)):
        v = get(row, *path)
        if isinstance(v, Sequence) and not isinstance(v, str):
            return [float(x) for x in v if _num(x) is not None]
    return []
