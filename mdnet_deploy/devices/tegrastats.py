"""Jetson power from ``tegrastats`` output.

``tegrastats --interval MS`` prints one line per interval. Power rails look
like ``POM_5V_IN 4520/4680`` (JetPack 4: current/average in mW, no unit) or
``VDD_IN 4824mW/4824mW`` (JetPack 5/6); JetPack 5/6 lines may start with a
date. Only the current value is used: the average is tegrastats' own running
mean since it started, which covers more than our window.

Each line is timestamped when it arrives (tegrastats flushes every line), so
the sample times carry the pipe's small latency; the rate is recorded.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time

from ..errors import UnavailableError
from . import _sys
from .meter import PowerMeter, mean_rails
from .rails import is_unconnected, total_power, total_rule
from .trace import METHOD_SAMPLES, Trace

# A rail: an identifier at a word start, then "cur/avg" with an optional mW on
# both; the lookahead rejects "RAM 1180/3965MB" and "IRAM 0/252kB(lfb".
_RAIL = re.compile(r"(?<!\S)([A-Za-z][A-Za-z0-9_]*) (\d+(?:\.\d+)?)(?:mW)?/(\d+(?:\.\d+)?)(?:mW)?(?=\s|$)")

#: 10 Hz, the lowest rate the benchmarks accept; tegrastats gets costly faster.
DEFAULT_INTERVAL_MS = 100


def parse_tegrastats_line(line: str) -> dict[str, tuple[float, float]]:
    """Rail name -> (current mW, average mW) for every power rail in one line."""
    rails = {}
    for m in _RAIL.finditer(line):
        name = m.group(1)
        if not is_unconnected(name):
            rails[name] = (float(m.group(2)), float(m.group(3)))
    return rails


def rails_watts(line: str) -> dict[str, float]:
    return {name: cur / 1000.0 for name, (cur, _avg) in parse_tegrastats_line(line).items()}


class TegrastatsMeter(PowerMeter):
    """Spawns tegrastats for the window and integrates its module-input rail."""

    name = "tegrastats"
    scope = "tegrastats rails"
    method = METHOD_SAMPLES

    def __init__(
        self, command: str | None = None, interval_ms: int = DEFAULT_INTERVAL_MS, first_line_timeout_s: float = 5.0
    ) -> None:
        self.command = _sys.command_path(_sys.ENV_TEGRASTATS, "tegrastats", command)
        self.interval_ms = int(interval_ms)
        self.first_line_timeout_s = first_line_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Condition()
        self._times: list[float] = []
        self._rails: list[dict[str, float]] = []
        self._skipped = 0
        self._t_start = 0.0

    def available(self) -> tuple[bool, str]:
        path = _sys.resolve_executable(self.command)
        if path is None:
            return False, (
                f"'{self.command}' not found (tegrastats ships with JetPack on Jetson only; "
                f"point {_sys.ENV_TEGRASTATS} at it, or use --power-meter csv:FILE)"
            )
        return True, f"{path} --interval {self.interval_ms}"

    # -- reader thread ---------------------------------------------------
    def _reader(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            now = time.perf_counter()
            rails = rails_watts(raw.decode("utf-8", "replace"))
            with self._lock:
                if rails:
                    self._times.append(now)
                    self._rails.append(rails)
                else:
                    self._skipped += 1
                self._lock.notify_all()
        with self._lock:
            self._lock.notify_all()

    def _wait_for(self, count: int, timeout: float, max_skipped: int | None = None) -> bool:
        """Wait until ``count`` rail lines have arrived (False on timeout, exit or too many rail-less lines)."""
        deadline = time.perf_counter() + timeout
        with self._lock:
            while len(self._times) < count:
                left = deadline - time.perf_counter()
                alive = self._thread is not None and self._thread.is_alive()
                if left <= 0 or not alive or (max_skipped is not None and self._skipped >= max_skipped):
                    return False
                self._lock.wait(min(left, 0.05))
        return True

    # -- protocol --------------------------------------------------------
    def start(self) -> None:
        self.close()
        path = _sys.resolve_executable(self.command)
        if path is None:
            raise UnavailableError(f"power meter 'tegrastats' is unavailable: {self.available()[1]}")
        self._times, self._rails, self._skipped = [], [], 0
        try:
            self._proc = subprocess.Popen(
                [path, "--interval", str(self.interval_ms)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            raise UnavailableError(f"power meter 'tegrastats' could not start {path}: {exc.strerror or exc}") from None
        self._thread = threading.Thread(target=self._reader, args=(self._proc,), name="mdnet-tegrastats", daemon=True)
        self._thread.start()
        # The window opens only once a reading exists, so its start is bracketed.
        timeout = max(self.first_line_timeout_s, 5 * self.interval_ms / 1000.0)
        # Every tegrastats line carries the rails when the board has any, so a
        # couple of lines without them settle it (the first may be a notice).
        if not self._wait_for(1, timeout, max_skipped=2):
            skipped = self._skipped
            self.close()
            if skipped:
                raise UnavailableError(
                    "power meter 'tegrastats' is unavailable: tegrastats prints no power rails on this board "
                    "(no INA3221, e.g. Jetson Nano 2GB); use --power-meter csv:FILE with an external meter"
                )
            raise UnavailableError(
                f"power meter 'tegrastats' is unavailable: {path} printed nothing within {timeout:g} s "
                "(try running it by hand, or with sudo)"
            )
        with self._lock:
            names = dict(self._rails[0])
        _, self.scope, self.partial = total_rule(names)
        self._t_start = time.perf_counter()

    def stop(self) -> Trace:
        if self._proc is None:
            raise RuntimeError("power meter 'tegrastats': stop() without start()")
        t_stop = time.perf_counter()
        # One line after the window closes brackets its end (interpolated, not held).
        with self._lock:
            have = len(self._times)
        self._wait_for(have + 1, 3 * self.interval_ms / 1000.0 + 0.5)
        self.close()
        times = list(self._times)
        rails = list(self._rails)
        watts = [total_power(r) for r in rails]
        return Trace(
            meter=self.name,
            scope=self.scope,
            method=self.method,
            t_start=self._t_start,
            t_stop=t_stop,
            times=times,
            values=watts,
            partial=self.partial,
            rails=mean_rails(times, list(rails), self._t_start, t_stop),
        )

    def close(self) -> None:
        proc, self._proc = self._proc, None
        thread, self._thread = self._thread, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=2.0)
        # The reader ends when the pipe does; close our end only after it has,
        # since closing a file another thread is reading would block on its lock.
        if thread is not None:
            thread.join(timeout=5.0)
        if proc is not None and proc.stdout is not None and (thread is None or not thread.is_alive()):
            proc.stdout.close()
