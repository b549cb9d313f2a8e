"""The bench result: one JSON object per model x runtime x device (DESIGN.md, schema 1).

Every row carries every key, failed rows included (their measurements are
null), so a reader never has to guess whether a key is missing or zero.
Beyond DESIGN.md's keys a row holds ``status`` ("ok" | "failed"),
``reason`` (why it failed), ``warnings`` (things a reader must know before
trusting a figure), ``created`` and the tool version. CSV rows are the
same result flattened to fixed columns.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

from .. import __version__

SCHEMA_VERSION = 1

#: Top-level keys of every row, in the order they are written.
ROW_KEYS: tuple[str, ...] = (
    "schema",
    "status",
    "reason",
    "device",
    "runtime",
    "model",
    "batch",
    "iterations",
    "warmup",
    "warmup_s",
    "duration_s",
    "latency_ms",
    "throughput_ips",
    "energy",
    "energy_unavailable",
    "accuracy",
    "warnings",
    "created",
    "mdnet_deploy",
    "conditions",
    "repeats",
)
LATENCY_KEYS: tuple[str, ...] = ("mean", "std", "min", "p50", "p90", "p99", "max", "cov")  # cov: std / mean, no unit
#: Keys DESIGN.md requires in a non-null energy block (energy_summary adds more).
ENERGY_KEYS: tuple[str, ...] = (
    "meter",
    "scope",
    "samples",
    "avg_power_w",
    "idle_power_w",
    "joules_per_inference",
    "dynamic_joules_per_inference",
)
ACCURACY_KEYS: tuple[str, ...] = ("top1", "top5", "n", "dataset")

STATUS_OK = "ok"
STATUS_FAILED = "failed"
#: Measured, but not steady enough to trust (bench/stats.py says why in ``reason``); not a failure.
STATUS_UNSTABLE = "unstable"


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def new_row(device: dict[str, Any], model: dict[str, Any], runtime: dict[str, Any], batch: int) -> dict[str, Any]:
    """A row with every key present and no measurement yet (status 'failed' until the run completes)."""
    return {
        "schema": SCHEMA_VERSION,
        "status": STATUS_FAILED,
        "reason": "not run",
        "device": device,
        "runtime": runtime,
        "model": model,
        "batch": batch,
        "iterations": None,
        "warmup": None,
        "warmup_s": None,
        "duration_s": None,
        "latency_ms": None,
        "throughput_ips": None,
        "energy": None,
        "energy_unavailable": None,
        "accuracy": None,
        "warnings": [],
        "created": utc_now(),
        "mdnet_deploy": __version__,
        "conditions": None,  # load, CPU frequency/governor, temperature, throttling before and after (bench/conditions.py)
        "repeats": None,  # with --repeat N: every repeat's p50, their median and 95 % CI (bench/stats.py)
    }


def mark_failed(row: dict[str, Any], reason: str) -> dict[str, Any]:
    """Fail a row: keep what identifies it, drop partial measurements (never report half a run)."""
    row.update(status=STATUS_FAILED, reason=" ".join(str(reason).split()) or "unknown error")
    for key in ("iterations", "duration_s", "latency_ms", "throughput_ips", "energy", "accuracy", "repeats"):
        row[key] = None
    return row


def is_failed(row: Any) -> bool:
    """A row without figures; 'unstable' rows were measured (their reason says why they are not 'ok')."""
    return not isinstance(row, dict) or row.get("status", STATUS_OK) not in (STATUS_OK, STATUS_UNSTABLE)


# -- CSV ------------------------------------------------------------------------------
CSV_COLUMNS: tuple[str, ...] = (
    "created",
    "status",
    "reason",
    "device_kind",
    "device_name",
    "runtime",
    "runtime_version",
    "threads",
    "model_path",
    "format",
    "precision",
    "size_mb",
    "sha256",
    "batch",
    "warmup",
    "iterations",
    "duration_s",
    "latency_mean_ms",
    "latency_std_ms",
    "latency_min_ms",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "throughput_ips",
    "top1",
    "top5",
    "eval_n",
    "dataset",
    "energy_meter",
    "energy_scope",
    "energy_samples",
    "energy_window_s",
    "avg_power_w",
    "idle_power_w",
    "joules_per_inference",
    "dynamic_joules_per_inference",
    "energy_unavailable",
    "warnings",
    "remote_target",
    "latency_cov",
    "repeats",
    "median_p50_ms",
    "p50_ci95_low_ms",
    "p50_ci95_high_ms",
    "top1_ci95_low",
    "top1_ci95_high",
    "load_before",
    "load_after",
)


def _get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def flatten(row: dict[str, Any]) -> dict[str, Any]:
    """One CSV record (column -> value; None for what the row lacks)."""
    lat = row.get("latency_ms") or {}
    out: dict[str, Any] = {
        "created": row.get("created"),
        "status": row.get("status", STATUS_OK),
        "reason": row.get("reason"),
        "device_kind": _get(row, "device", "kind"),
        "device_name": _get(row, "device", "name"),
        "runtime": _get(row, "runtime", "name"),
        "runtime_version": _get(row, "runtime", "version"),
        "threads": _get(row, "runtime", "threads"),
        "model_path": _get(row, "model", "path"),
        "format": _get(row, "model", "format"),
        "precision": _get(row, "model", "precision"),
        "size_mb": _get(row, "model", "size_mb"),
        "sha256": _get(row, "model", "sha256"),
        "batch": row.get("batch"),
        "warmup": row.get("warmup"),
        "iterations": row.get("iterations"),
        "duration_s": row.get("duration_s"),
        "throughput_ips": row.get("throughput_ips"),
        "top1": _get(row, "accuracy", "top1"),
        "top5": _get(row, "accuracy", "top5"),
        "eval_n": _get(row, "accuracy", "n"),
        "dataset": _get(row, "accuracy", "dataset"),
        "energy_meter": _get(row, "energy", "meter"),
        "energy_scope": _get(row, "energy", "scope"),
        "energy_samples": _get(row, "energy", "samples"),
        "energy_window_s": _get(row, "energy", "window_s"),
        "avg_power_w": _get(row, "energy", "avg_power_w"),
        "idle_power_w": _get(row, "energy", "idle_power_w"),
        "joules_per_inference": _get(row, "energy", "joules_per_inference"),
        "dynamic_joules_per_inference": _get(row, "energy", "dynamic_joules_per_inference"),
        "energy_unavailable": row.get("energy_unavailable"),
        "warnings": " | ".join(row_warnings(row)) or None,
        "remote_target": _get(row, "remote", "target"),
        "latency_cov": _get(row, "latency_ms", "cov"),
        "repeats": _get(row, "repeats", "n"),
        "median_p50_ms": _get(row, "repeats", "median_p50_ms"),
        "p50_ci95_low_ms": (_get(row, "repeats", "ci95_p50_ms") or [None, None])[0],
        "p50_ci95_high_ms": (_get(row, "repeats", "ci95_p50_ms") or [None, None])[1],
        "top1_ci95_low": (_get(row, "accuracy", "top1_ci95") or [None, None])[0],
        "top1_ci95_high": (_get(row, "accuracy", "top1_ci95") or [None, None])[1],
        "load_before": (_get(row, "conditions", "before", "loadavg") or [None])[0],
        "load_after": (_get(row, "conditions", "after", "loadavg") or [None])[0],
    }
    for key in LATENCY_KEYS:
        out[f"latency_{key}_ms"] = lat.get(key) if isinstance(lat, dict) else None
    return {c: out.get(c) for c in CSV_COLUMNS}


def row_warnings(row: dict[str, Any]) -> list[str]:
    """The row's own warnings and its energy block's, without duplicates, in order."""
    seen: list[str] = []
    for w in list(row.get("warnings") or []) + list(_get(row, "energy", "warnings") or []):
        if w not in seen:
            seen.append(str(w))
    return seen


def missing_keys(row: dict[str, Any], keys: Iterable[str] = ROW_KEYS) -> list[str]:
    return [k for k in keys if k not in row]
