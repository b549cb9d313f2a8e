"""Any external meter that logs ``timestamp,watts`` lines (USB meter, wall plug, lab supply).

Timestamps are Unix epoch seconds, so the logger's clock must be the bench
machine's (or NTP-synchronised with it). An optional header line is
skipped, as are blank lines and ``#`` comments; extra columns are ignored.
The file is read when the window closes; only the samples that fall in the
window count, with the power at both edges interpolated.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from ..errors import UnavailableError
from .meter import PowerMeter
from .trace import METHOD_SAMPLES, Trace, samples_used


def parse_power_csv(text: str) -> tuple[list[float], list[float], int]:
    """(times, watts, unparseable line count) sorted by time."""
    rows: list[tuple[float, float]] = []
    bad = 0
    first = True
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.replace(";", ",").split(",")]
        try:
            t, w = float(parts[0]), float(parts[1])
            # NaN, infinite or negative watts are a logger glitch, not power:
            # counted as bad lines (and warned about), never summed into energy.
            if not (math.isfinite(t) and math.isfinite(w) and w >= 0):
                raise ValueError(line)
            rows.append((t, w))
        except (ValueError, IndexError):
            if not first:  # the first data-like line may be a header
                bad += 1
        first = False
    rows.sort()
    return [t for t, _ in rows], [w for _, w in rows], bad


class CsvMeter(PowerMeter):
    """Power from a CSV an external meter writes; scope is wherever that meter is wired."""

    name = "csv"
    method = METHOD_SAMPLES

    def __init__(self, path: str | os.PathLike[str], scope: str = "external meter (wall or supply, as wired)") -> None:
        self.path = Path(path)
        self.scope = f"{scope}, {self.path.name}"
        self._t_start: float | None = None

    def available(self) -> tuple[bool, str]:
        if not self.path.is_file():
            return False, (
                f"{self.path} does not exist; start the external meter's logger writing "
                "'epoch_seconds,watts' lines to it before the benchmark"
            )
        if not os.access(self.path, os.R_OK):
            return False, f"{self.path} is not readable; fix its permissions"
        return True, self.scope

    def start(self) -> None:
        self.require()
        # Epoch time, the external logger's clock, rather than perf_counter.
        self._t_start = time.time()

    def stop(self) -> Trace:
        if self._t_start is None:
            raise RuntimeError("power meter 'csv': stop() without start()")
        t_start, t_stop = self._t_start, time.time()
        self._t_start = None
        return self.trace_for(t_start, t_stop)

    def trace_for(self, t_start: float, t_stop: float) -> Trace:
        """The trace of an arbitrary epoch window (also used to re-read a log after the fact)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise UnavailableError(f"power meter 'csv' cannot read {self.path}: {exc.strerror or exc}") from None
        times, watts, bad = parse_power_csv(text)
        used = samples_used(times, t_start, t_stop)
        if not used or (used[0] > t_stop or used[-1] < t_start):
            span = f"{times[0]:.3f}..{times[-1]:.3f}" if times else "no samples"
            raise UnavailableError(
                f"power meter 'csv': {self.path} has no samples near the window {t_start:.3f}..{t_stop:.3f} "
                f"(file covers {span}); check that the logger runs during the benchmark and uses epoch seconds"
            )
        warnings = []
        if bad:
            warnings.append(f"{bad} line(s) of {self.path.name} are not 'timestamp,watts' and were skipped")
        if used[0] > t_start or used[-1] < t_stop:
            warnings.append(
                f"{self.path.name} covers only part of the window ({max(used[0], t_start) - t_start:.2f} s late, "
                f"{t_stop - min(used[-1], t_stop):.2f} s early); the edge readings were held"
            )
        return Trace(
            meter=self.name,
            scope=self.scope,
            method=self.method,
            t_start=t_start,
            t_stop=t_stop,
            times=times,
            values=watts,
            warnings=warnings,
        )
