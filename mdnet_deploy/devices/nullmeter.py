"""The ``none`` meter: always available, measures nothing.

``auto`` falls back to it when no real meter works; its ``reason`` then
says why, for the result's ``energy_unavailable`` field.
"""

from __future__ import annotations

import time

from .meter import PowerMeter
from .trace import METHOD_NONE, Trace


class NoneMeter(PowerMeter):
    name = "none"
    scope = "none"
    method = METHOD_NONE

    def __init__(self, reason: str = "power measurement disabled (--power-meter none)") -> None:
        self.reason = reason
        self._t_start = 0.0

    def available(self) -> tuple[bool, str]:
        return True, self.reason

    def start(self) -> None:
        self._t_start = time.perf_counter()

    def stop(self) -> Trace:
        return Trace(
            meter=self.name, scope=self.scope, method=self.method, t_start=self._t_start, t_stop=time.perf_counter()
        )
