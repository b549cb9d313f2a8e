"""Which Jetson rail is the board's total (shared by the INA3221 and tegrastats meters).

The module input rail (``VDD_IN`` from JetPack 5 and on most JetPack 4
boards, ``POM_5V_IN`` on the JetPack 4 Nano) is the whole module's power.
Boards without one (AGX Orin, AGX Xavier) only expose sub-rails, so the best
available figure is their sum, which misses whatever is not on a monitored
rail: it is labelled partial. Unconnected channels are labelled ``NC``.
"""

from __future__ import annotations

import re

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")

_NC = re.compile(r"^NC\b", re.IGNORECASE)


def is_unconnected(label: str) -> bool:
    return bool(_NC.match(label.strip()))


def total_rule(rails: dict[str, float]) -> tuple[str | None, str, bool]:
    """(rail to use or None for the sum, scope text, partial) for a set of rail names."""
    names = [n for n in rails if not is_unconnected(n)]
    for total in TOTAL_RAILS:
        if total in names:
            return total, f"{total} (module input rail)", False
    return None, f"sum of rails {'+'.join(sorted(names))} (partial: no module-input rail on this board)", True


def total_power(rails: dict[str, float]) -> float:
    """The total in the unit of the rails, following :func:`total_rule`."""
    total, _, _ = total_rule(rails)
    if total is not None:
        return rails[total]
    return sum(v for n, v in rails.items() if not is_unconnected(n))
