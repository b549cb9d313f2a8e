"""Rendering and writing results: the comparison table, notes, JSON list, CSV rows.

``results_table`` builds the table (Ultralytics' benchmark layout: one row
per model x runtime with size, accuracy, speed, energy and a status) and is
shared by ``bench`` and ``demo``. An energy cell shows a number only when a
meter measured it; otherwise "unavailable", with the reason in the notes
that ``result_notes`` returns. Writers are atomic: an interrupted run never
leaves half a JSON or CSV file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from ..errors import OutputError
from ..fsutil import atomic_write_text
from .schema import CSV_COLUMNS, flatten, is_failed, row_warnings

UNAVAILABLE = "unavailable"


def _num(value: Any, digits: int, scale: float = 1.0) -> str:
    if value is None or not isinstance(value, (int, float)):
        return "-"
    return f"{value * scale:.{digits}f}"


def _get(row: dict[str, Any], *path: str) -> Any:
    d: Any = row
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def device_label(row: dict[str, Any]) -> str:
    remote = _get(row, "remote", "target")
    name = _get(row, "device", "name") or _get(row, "device", "kind") or "?"
    return f"{remote} ({name})" if remote and remote != name else str(name)


def _model_label(row: dict[str, Any]) -> str:
    path = _get(row, "model", "path") or "?"
    label = Path(str(path)).name
    if _get(row, "model", "baseline_of"):
        label += " (checkpoint)"
    return label


def results_table(results: Sequence[dict[str, Any]], title: str | None = "Benchmark") -> Table:
    """The comparison table; a ``device`` column appears when rows come from several devices."""
    devices = {device_label(r) for r in results if isinstance(r, dict)}
    show_device = len(devices) > 1 or any(isinstance(r, dict) and r.get("remote") for r in results)
    table = Table(title=title, show_lines=False)
    if show_device:
        table.add_column("device", overflow="fold")
    columns = [
        ("model", "left"), ("format", "left"), ("precision", "left"), ("runtime", "left"), ("size (MB)", "right"),
        ("top-1 %", "right"), ("top-5 %", "right"), ("p50 ms", "right"), ("p99 ms", "right"),
        ("images/s", "right"), ("mJ/image", "right"), ("avg W", "right"), ("status", "left"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for r in results:
        if not isinstance(r, dict):
            r = {"status": "failed", "reason": f"not a result object: {r!r}"}
        failed = is_failed(r)
        energy = r.get("energy")
        if failed:
            mj, watts = "-", "-"
        elif isinstance(energy, dict) and energy.get("joules_per_inference") is not None:
            mj, watts = _num(energy.get("joules_per_inference"), 3, 1000.0), _num(energy.get("avg_power_w"), 2)
        else:
            mj, watts = UNAVAILABLE, UNAVAILABLE
        status = "[green]ok[/green]" if not failed else f"[red]failed[/red]: {escape(str(r.get('reason') or 'unknown'))}"
        cells = [
            escape(_model_label(r)),
            escape(str(_get(r, "model", "format") or "-")),
            escape(str(_get(r, "model", "precision") or "-")),
            escape(str(_get(r, "runtime", "name") or "-")),
            _num(_get(r, "model", "size_mb"), 2),
            _num(_get(r, "accuracy", "top1"), 2),
            _num(_get(r, "accuracy", "top5"), 2),
            _num(_get(r, "latency_ms", "p50"), 3),
            _num(_get(r, "latency_ms", "p99"), 3),
            _num(r.get("throughput_ips"), 1),
            mj,
            watts,
            status,
        ]
        if show_device:
            cells.insert(0, escape(device_label(r)))
        table.add_row(*cells)
    return table


def result_notes(results: Sequence[dict[str, Any]]) -> list[str]:
    """Plain-text lines to show under the table: why energy is unavailable, and every warning."""
    notes: list[str] = []
    for r in results:
        if not isinstance(r, dict) or is_failed(r):
            continue
        who = f"{_model_label(r)} ({_get(r, 'runtime', 'name') or '?'})"
        if r.get("energy") is None:
            notes.append(f"{who}: energy unavailable: {r.get('energy_unavailable') or 'no power meter'}")
        else:
            e = r["energy"]
            idle = f", idle {e['idle_power_w']:.2f} W" if e.get("idle_power_w") is not None else ""
            notes.append(f"{who}: energy from '{e.get('meter')}' ({e.get('scope')}), {e.get('samples')} samples{idle}")
        for w in row_warnings(r):
            notes.append(f"{who}: warning: {w}")
    return notes


def json_text(results: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(results), indent=2, default=str) + "\n"


def write_json(results: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """The whole run as a JSON list (replaces ``path`` atomically)."""
    return atomic_write_text(path, json_text(results))


def append_csv(results: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Append one row per result; write the header only when creating the file.

    The existing content is copied into a temporary file with the new rows
    and renamed over the original, so a crash never leaves a torn line.
    """
    path = Path(path)
    existing = ""
    if path.exists():
        try:
            existing = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise OutputError(f"cannot read {path} to append to it ({exc}); give another --csv file") from None
    header = ",".join(CSV_COLUMNS)
    if existing.strip():
        first = existing.splitlines()[0].strip()
        if first != header:
            raise OutputError(
                f"{path} has other columns than this version of mdnet-deploy writes; give a new --csv file"
            )
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    if not existing.strip():
        writer.writeheader()
    elif not existing.endswith("\n"):
        buf.write("\n")
    for r in results:
        if isinstance(r, dict):
            writer.writerow({k: ("" if v is None else v) for k, v in flatten(r).items()})
    return atomic_write_text(path, existing + buf.getvalue())
