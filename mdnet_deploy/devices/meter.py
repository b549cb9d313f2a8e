"""The PowerMeter protocol and the background poller most meters share.

A meter is used as::

    ok, why = meter.available()
    meter.start()          # returns once the first reading is in hand
    ...timed work...
    trace = meter.stop()   # the window is [start() returned, stop() called]

``close()`` aborts a window (kills a helper process, stops the thread); the
harness calls it in a ``finally`` so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import abc
import threading
import time
from typing import Callable, Optional, Tuple

from ..errors import UnavailableError
from .trace import METHOD_COUNTER, METHOD_SAMPLES, Trace

#: One reading: a value (W for samples, cumulative J for counters) and, when
#: the meter sees them, the power of each rail in W.
Reading = Tuple[float, Optional[dict]]

#: 20 Hz: comfortably above the 10 Hz the benchmarks require, cheap in sysfs.
DEFAULT_INTERVAL_S = 0.05


class PowerMeter(abc.ABC):
    """Base class of every meter."""

    #: registry name: ina3221 | tegrastats | pmic | rapl | nvml | csv | none
    name: str = "meter"
    #: what the figure covers (refined once the meter has found its rails)
    scope: str = ""
    method: str = METHOD_SAMPLES
    partial: bool = False

    @abc.abstractmethod
    def available(self) -> tuple[bool, str]:
        """(True, what it will measure) or (False, why not and how to fix it, one line)."""

    @abc.abstractmethod
    def start(self) -> None:
        """Open the window; raises UnavailableError when the meter cannot run."""

    @abc.abstractmethod
    def stop(self) -> Trace:
        """Close the window and return its trace."""

    def close(self) -> None:  # noqa: B027 - deliberately optional: stateless meters have nothing to abort
        """Abort an open window without a trace; safe to call at any time."""

    def require(self) -> None:
        ok, why = self.available()
        if not ok:
            raise UnavailableError(f"power meter '{self.name}' is unavailable: {why}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}: {self.scope or '?'}>"


class Poller:
    """Calls ``read`` every ``interval_s`` in a daemon thread.

    The first reading is taken synchronously before the window opens and the
    last one synchronously after it closes, so the readings always bracket the
    window and the edges are interpolated, never extrapolated.
    """

    def __init__(self, read: Callable[[], Reading], interval_s: float) -> None:
        self.read = read
        self.interval_s = max(float(interval_s), 0.001)
        self.times: list[float] = []
        self.values: list[float] = []
        self.rails: list[dict | None] = []
        self.errors = 0
        self.first_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self, raise_errors: bool) -> None:
        t0 = time.perf_counter()
        try:
            value, rails = self.read()
        except Exception as exc:  # a flaky sensor read must not kill the benchmark
            if raise_errors:
                raise
            self.errors += 1
            self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"
            return
        t1 = time.perf_counter()
        # The midpoint of the read is the best estimate of when the value held
        # (a vcgencmd call takes tens of ms).
        self.times.append(0.5 * (t0 + t1))
        self.values.append(float(value))
        self.rails.append(rails)

    def _loop(self) -> None:
        # Ticks on a fixed grid so a slow read does not make the rate drift.
        origin = time.perf_counter()
        tick = 1
        while True:
            delay = origin + tick * self.interval_s - time.perf_counter()
            if self._stop.wait(max(delay, 0.0)):
                return
            self._sample(raise_errors=False)
            tick = max(tick + 1, int((time.perf_counter() - origin) / self.interval_s) + 1)

    def start(self) -> float:
        """Take the first reading, start the thread; returns the window's start time."""
        self._sample(raise_errors=True)
        t_start = time.perf_counter()
        self._thread = threading.Thread(target=self._loop, name="mdnet-power-poller", daemon=True)
        self._thread.start()
        return t_start

    def stop(self) -> float:
        """Stop the thread, take the last reading; returns the window's stop time."""
        t_stop = time.perf_counter()
        self.halt()
        self._sample(raise_errors=False)
        return t_stop

    def halt(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None


def mean_rails(times: list[float], rails: list[dict | None], t_start: float, t_stop: float) -> dict[str, float]:
    """Plain mean of each rail over the readings inside the window (informational only)."""
    picked = [r for t, r in zip(times, rails) if r and t_start <= t <= t_stop] or [r for r in rails if r]
    if not picked:
        return {}
    names = sorted({name for r in picked for name in r})
    return {n: sum(r.get(n, 0.0) for r in picked) / len(picked) for n in names}


class PollingMeter(PowerMeter):
    """A meter whose readings come from a function called on a timer."""

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._poller: Poller | None = None
        self._t_start = 0.0

    # -- subclass hooks ----------------------------------------------------
    def _prepare(self) -> None:
        """Find the sensors; raise UnavailableError when there are none."""
        self.require()

    @abc.abstractmethod
    def _read(self) -> Reading:
        """One reading (W, or cumulative J for a counter)."""

    def _finish(self) -> None:
        """Release what _prepare took."""

    # -- protocol ----------------------------------------------------------
    def start(self) -> None:
        self.close()
        self._prepare()
        self._poller = Poller(self._read, self.interval_s)
        try:
            self._t_start = self._poller.start()
        except UnavailableError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise UnavailableError(f"power meter '{self.name}' could not take a first reading ({exc})") from None

    def stop(self) -> Trace:
        if self._poller is None:
            raise RuntimeError(f"power meter '{self.name}': stop() without start()")
        poller = self._poller
        t_stop = poller.stop()
        self._poller = None
        self._finish()
        t_start = self._t_start
        if self.method == METHOD_COUNTER and len(poller.times) >= 2:
            # A counter's window is its first and last read: they bracket the
            # caller's window by microseconds, and the delta is then exact.
            t_start, t_stop = poller.times[0], poller.times[-1]
        warnings = []
        if poller.errors:
            warnings.append(
                f"{poller.errors} reading(s) of '{self.name}' failed and were skipped (first: {poller.first_error})"
            )
        return Trace(
            meter=self.name,
            scope=self.scope,
            method=self.method,
            t_start=t_start,
            t_stop=t_stop,
            times=poller.times,
            values=poller.values,
            partial=self.partial,
            rails=mean_rails(poller.times, poller.rails, t_start, t_stop),
            warnings=warnings + self._extra_warnings(),
        )

    def _extra_warnings(self) -> list[str]:
        return []

    def close(self) -> None:
        if self._poller is not None:
            self._poller.halt()
            self._poller = None
            self._finish()
