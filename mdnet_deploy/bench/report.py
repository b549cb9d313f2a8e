"""Rendering and writing results: the comparison table, notes, JSON list, CSV rows.

``results_table`` builds the table (Ultralytics' benchmark layout: one row
per model x runtime with accuracy, speed, energy and a status) fitted to the
terminal, and is shared by ``bench`` and ``demo``. An energy cell shows a
number only when a meter measured it; otherwise "n/a", and ``result_notes``
says "energy unavailable: <reason>" once under the table. Writers are atomic: an interrupted run never
leaves half a JSON or CSV file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Literal, Optional, Sequence

from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..errors import OutputError
from ..fsutil import atomic_write_text
from .schema import CSV_COLUMNS, STATUS_FAILED, STATUS_OK, flatten, row_warnings

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


def _failed(row: Any) -> bool:
    """Only 'failed' rows lack figures; any other status (e.g. 'unstable') has them and says why it is not 'ok'."""
    return not isinstance(row, dict) or row.get("status", STATUS_OK) == STATUS_FAILED


@dataclass(frozen=True)
class _Col:
    header: str
    justify: Literal["left", "right"]
    numeric: bool  # numbers never wrap: a column too narrow for them is dropped instead
    cell: Callable[[Dict[str, Any], bool], str]


def _energy_cell(r: Dict[str, Any], watts: bool) -> str:
    if _failed(r):
        return "-"
    e = r.get("energy")
    if isinstance(e, dict) and e.get("joules_per_inference") is not None:
        return _num(e.get("avg_power_w"), 2) if watts else _num(e.get("joules_per_inference"), 3, 1000.0)
    return "n/a"  # the reason is said once under the table


def _status_cell(r: Dict[str, Any], wide: bool) -> str:
    status = str(r.get("status") or ("failed" if _failed(r) else "ok"))
    if _failed(r):
        status = "failed"
    color = {"ok": "green", "failed": "red"}.get(status, "yellow")
    text = f"[{color}]{escape(status)}[/{color}]"
    if wide and status != "ok" and r.get("reason"):
        text += f": {escape(str(r['reason']))}"
    return text


_COLUMNS: Dict[str, _Col] = {
    "device": _Col("device", "left", False, lambda r, w: escape(device_label(r))),
    "model": _Col("model", "left", False, lambda r, w: escape(_model_label(r))),
    "format": _Col("format", "left", False, lambda r, w: escape(str(_get(r, "model", "format") or "-"))),
    "precision": _Col("prec", "left", True, lambda r, w: escape(str(_get(r, "model", "precision") or "-"))),
    "runtime": _Col("runtime", "left", True, lambda r, w: escape(str(_get(r, "runtime", "name") or "-"))),
    "size": _Col("size MB", "right", True, lambda r, w: _num(_get(r, "model", "size_mb"), 2)),
    "top1": _Col("top-1 %", "right", True, lambda r, w: _num(_get(r, "accuracy", "top1"), 2)),
    "top5": _Col("top-5 %", "right", True, lambda r, w: _num(_get(r, "accuracy", "top5"), 2)),
    "p50": _Col("p50 ms", "right", True, lambda r, w: _num(_get(r, "latency_ms", "p50"), 3)),
    "p99": _Col("p99 ms", "right", True, lambda r, w: _num(_get(r, "latency_ms", "p99"), 3)),
    "ips": _Col("img/s", "right", True, lambda r, w: _num(r.get("throughput_ips"), 1)),
    "mj": _Col("mJ/img", "right", True, lambda r, w: _energy_cell(r, False)),
    "watts": _Col("avg W", "right", True, lambda r, w: _energy_cell(r, True)),
    "status": _Col("status", "left", False, _status_cell),
}
#: What a terminal shows by default, and what ``--wide`` (and a log file) shows.
DEFAULT_COLUMNS = ("model", "precision", "runtime", "top1", "p50", "p99", "ips", "mj", "status")
WIDE_COLUMNS = (
    "model",
    "format",
    "precision",
    "runtime",
    "size",
    "top1",
    "top5",
    "p50",
    "p99",
    "ips",
    "mj",
    "watts",
    "status",
)
#: Dropped first when even the default columns do not fit the terminal.
DROP_ORDER = ("p99", "runtime", "precision", "ips", "top1")
_MIN_NAME = 10  # model / device names fold (wrap inside the cell) down to this width
_GAP = 2  # one space of padding either side of a column boundary (no vertical rules)


def _plain_len(markup: str) -> int:
    return max((len(line) for line in Text.from_markup(markup).plain.splitlines()), default=0)


def _natural(key: str, cells: List[str]) -> int:
    return max([len(_COLUMNS[key].header), *(_plain_len(c) for c in cells)])


def _needed(keys: Sequence[str], cells: Dict[str, List[str]]) -> int:
    """The narrowest the table can be without wrapping a number: names fold, numbers do not."""
    total = 0
    for k in keys:
        nat = _natural(k, cells[k])
        total += min(nat, max(_MIN_NAME, len(_COLUMNS[k].header))) if not _COLUMNS[k].numeric and k != "status" else nat
    return total + _GAP * (len(keys) - 1)


def results_table(
    results: Sequence[Dict[str, Any]],
    title: Optional[str] = "Benchmark",
    width: Optional[int] = None,
    wide: bool = False,
) -> Table:
    """The comparison table, fitted to ``width`` columns (None: no limit).

    Default columns: model, precision, runtime, top-1, p50, p99, img/s,
    mJ/img and status (plus ``device`` when the rows come from several
    devices). Numbers never wrap: when the terminal is too narrow even for
    those, the least needed columns are dropped and the caption says which.
    ``wide`` keeps every column (format, size, top-5, average W, failure
    reasons in the status cell). Reasons for what is missing are in
    :func:`result_notes`.
    """
    rows = [
        r if isinstance(r, dict) else {"status": "failed", "reason": f"not a result object: {r!r}"} for r in results
    ]
    devices = {device_label(r) for r in rows}
    show_device = len(devices) > 1 or any(r.get("remote") for r in rows)
    keys = list(WIDE_COLUMNS if wide else DEFAULT_COLUMNS)
    if show_device:
        keys.insert(0, "device")
    cells = {k: [_COLUMNS[k].cell(r, wide) for r in rows] for k in keys}
    dropped: List[str] = []
    if width is not None and not wide:
        for k in DROP_ORDER:
            if _needed(keys, cells) <= width:
                break
            keys.remove(k)
            dropped.append(_COLUMNS[k].header)
    caption = f"not shown at {width} columns: {', '.join(dropped)} (--wide shows every column)" if dropped else None
    table = Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    for k in keys:
        col = _COLUMNS[k]
        numeric = col.numeric
        table.add_column(
            col.header,
            justify=col.justify,
            no_wrap=numeric,
            overflow="fold",  # type: ignore[arg-type]
            min_width=_natural(k, cells[k]) if numeric else None,
        )
    for i in range(len(rows)):
        table.add_row(*(cells[k][i] for k in keys))
    return table


def result_notes(results: Sequence[Dict[str, Any]], wide: bool = False) -> List[str]:
    """Plain-text lines to show under the table: what is unavailable and why (once per reason), failures, warnings."""
    notes: List[str] = []
    unavailable: Dict[str, List[str]] = {}
    meters: Dict[str, List[str]] = {}
    ok_rows = [r for r in results if isinstance(r, dict) and not _failed(r)]
    for r in ok_rows:
        who = f"{_model_label(r)} ({_get(r, 'runtime', 'name') or '?'})"
        e = r.get("energy")
        if not isinstance(e, dict):
            unavailable.setdefault(str(r.get("energy_unavailable") or "no power meter"), []).append(who)
        else:
            idle = f", idle {e['idle_power_w']:.2f} W" if e.get("idle_power_w") is not None else ""
            meters.setdefault(f"energy from '{e.get('meter')}' ({e.get('scope')}){idle}", []).append(who)
    for reason, whos in unavailable.items():
        scope = "" if len(whos) == len(ok_rows) else f" for {', '.join(whos)}"
        notes.append(f"energy unavailable{scope}: {reason}")
    for text, whos in meters.items():
        scope = "" if len(whos) == len(ok_rows) else f" for {', '.join(whos)}"
        notes.append(f"{text}{scope}")
    for r in results:
        if not isinstance(r, dict):
            continue
        who = f"{_model_label(r)} ({_get(r, 'runtime', 'name') or '?'})"
        if _failed(r):
            if not wide:
                notes.append(f"{who}: failed: {r.get('reason') or 'unknown'}")
            continue
        status = str(r.get("status") or "ok")
        if status != "ok" and not wide:
            notes.append(f"{who}: {status}: {r.get('reason') or 'see the JSON output'}")
        notes.extend(f"{who}: {line}" for line in _certainty(r))
        for w in row_warnings(r):
            notes.append(f"{who}: warning: {w}")
    return notes


def _certainty(r: Dict[str, Any]) -> List[str]:
    """How sure the row's figures are: latency CoV, the p50 across --repeat, the top-1 interval (bench/stats.py)."""
    lines = []
    lat, rep, acc = r.get("latency_ms") or {}, r.get("repeats") or {}, r.get("accuracy") or {}
    if isinstance(lat.get("cov"), (int, float)):
        lines.append(f"latency CoV {100 * lat['cov']:.1f} % over {r.get('iterations')} calls")
    if rep.get("ci95_p50_ms"):
        lo, hi = rep["ci95_p50_ms"]
        lines.append(f"p50 median of {rep['n']} repeats {rep['median_p50_ms']:.3f} ms, 95 % CI {lo:.3f}-{hi:.3f} ms")
    if acc.get("top1_ci95") and acc.get("n"):
        lo, hi = acc["top1_ci95"]
        lines.append(f"top-1 {acc['top1']:.2f} % on {acc['n']} images, 95 % CI {lo:.1f}-{hi:.1f} % (Wilson)")
    return lines


def json_text(results: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(results), indent=2, default=str) + "\n"


def write_json(results: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """The whole run as a JSON list (replaces ``path`` atomically)."""
    return atomic_write_text(path, json_text(results))


def check_csv(path: str | os.PathLike[str]) -> str:
    """The current content of an existing ``--csv`` file; OutputError when rows cannot be appended to it.

    Called before a bench as well as when appending, so a file with other
    columns is refused in a second, not after an hour of measurements.
    """
    path = Path(path)
    existing = ""
    if path.exists():
        try:
            existing = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise OutputError(f"cannot read {path} to append to it ({exc}); give another --csv file") from None
    if existing.strip() and existing.splitlines()[0].strip() != ",".join(CSV_COLUMNS):
        raise OutputError(f"{path} has other columns than this version of mdnet-deploy writes; give a new --csv file")
    return existing


def append_csv(results: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Append one row per result; write the header only when creating the file.

    The existing content is copied into a temporary file with the new rows
    and renamed over the original, so a crash never leaves a torn line.
    """
    path = Path(path)
    existing = check_csv(path)
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
