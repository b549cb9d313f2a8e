"""Terminal views of per-layer profiles: the top layers of each row, with their share of the total.

Used by ``bench --profile`` (device side too: rich is a base dependency).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from .profile import layer_label, top_layers

TOP_N = 10


def _who(row: Mapping[str, Any]) -> str:
    model = row.get("model") or {}
    name = Path(str(model.get("path") or model.get("name") or "?")).name
    return f"{name} ({(row.get('runtime') or {}).get('name') or '?'})"


def profile_table(row: Mapping[str, Any], n: int = TOP_N) -> Table | None:
    """The ``n`` slowest layers of a row's profile; None when the row has no usable profile."""
    profile = row.get("profile")
    if not isinstance(profile, Mapping) or not profile.get("available"):
        return None
    total = float(profile.get("total_ms") or 0.0)
    runs = profile.get("runs")
    table = Table(
        title=f"Top {n} layers: {escape(_who(row))}, {total:.3f} ms over all layers (medians of {runs} calls)"
    )
    for name, justify in (
        ("#", "right"),
        ("layer (MDNET module)", "left"),
        ("block", "left"),
        ("ms", "right"),
        ("share %", "right"),
        ("cumulative %", "right"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    cumulative = 0.0
    for i, layer in enumerate(top_layers(profile, n), 1):
        cumulative += float(layer.get("share") or 0.0)
        table.add_row(
            str(i),
            escape(layer_label(layer)),
            escape(str(layer.get("block") or "")),
            f"{float(layer['ms']):.4f}",
            f"{100 * float(layer.get('share') or 0):.1f}",
            f"{100 * cumulative:.1f}",
        )
    return table


def profile_notes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per row whose runtime gave no profile, saying why."""
    notes = []
    for row in rows:
        profile = row.get("profile")
        if isinstance(profile, Mapping) and not profile.get("available"):
            notes.append(f"{_who(row)}: no per-layer profile: {profile.get('reason') or 'unknown reason'}")
    return notes
