"""Bench the same models on many devices at once, one merged table.

A device that cannot be reached or whose bench fails becomes failed rows
(one per model, with the reason) while the others finish.
"""

from __future__ import annotations

import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from ..errors import InputError, MdnetDeployError, one_line
from .bench import run_remote_bench
from .session import Progress, cancel_running, cancelled
from .target import DeviceTarget
from .wheel import build_wheel


def failed_rows(target: DeviceTarget, models: Sequence[str | os.PathLike[str]], reason: str) -> list[dict[str, Any]]:
    """Rows in the bench schema's shape that say why a device gave nothing."""
    return [
        {
            "schema": 1,
            "status": "failed",
            "reason": reason,
            "device": {"kind": target.device, "name": target.label},
            "model": {"path": str(m)},
            "remote": {"target": target.label, "address": target.address},
        }
        for m in models
    ]


def run_fleet(
    targets: Sequence[DeviceTarget],
    models: Sequence[str | os.PathLike[str]],
    eval_npz: str | os.PathLike[str] | None = None,
    bench_args: Sequence[str] = (),
    *,
    max_parallel: int = 4,
    progress: Progress | None = None,
    bench: Callable[..., list[dict[str, Any]]] = run_remote_bench,
    **options: Any,
) -> list[dict[str, Any]]:
    """Run :func:`run_remote_bench` on every target, at most ``max_parallel`` at a time.

    ``options`` are passed to it unchanged (setup, accept_new_host_key,
    keep_remote, timeout, known_hosts, ...). Returns rows grouped by target
    in inventory order; every row has ``status`` ("ok" unless the device's
    bench said otherwise, or "failed" with ``reason``). Only a programming
    error or Ctrl-C escapes.
    """
    if not targets:
        raise InputError("no devices to bench; give --host or an inventory with hosts")
    if max_parallel < 1:
        raise InputError(f"max parallel devices must be at least 1, not {max_parallel}")
    say = progress or (lambda _: None)
    lock = threading.Lock()

    def for_target(t: DeviceTarget) -> Progress:
        def emit(line: str) -> None:
            with lock:  # whole lines from parallel devices, never interleaved
                say(f"[{t.label}] {line}")

        return emit

    with tempfile.TemporaryDirectory(prefix="mdnet-fleet-") as tmp:
        # One wheel for all devices rather than one build per device.
        wheel = options.pop("wheel", None) or build_wheel(tmp)

        def one(t: DeviceTarget) -> list[dict[str, Any]]:
            if cancelled():  # interrupted before this device's turn: do not start it
                raise KeyboardInterrupt
            try:
                rows = bench(t, models, eval_npz, bench_args, progress=for_target(t), wheel=wheel, **options)
            except MdnetDeployError as exc:
                for_target(t)(f"failed: {exc}")
                return failed_rows(t, models, str(exc))
            except Exception as exc:  # a bug on one device must not sink the fleet
                reason = f"unexpected error: {one_line(exc)}"
                for_target(t)(f"failed: {reason}")
                return failed_rows(t, models, reason)
            for row in rows:
                if isinstance(row, dict):
                    row.setdefault("status", "ok")
            return rows

        with ThreadPoolExecutor(max_workers=min(max_parallel, len(targets)), thread_name_prefix="mdnet-fleet") as pool:
            try:
                results = list(pool.map(one, targets))
            except BaseException:
                # Ctrl-C / SIGTERM land in this thread only: tell the workers, so each
                # stops its device-side bench and cleans up before the pool is joined.
                cancel_running()
                raise
            finally:
                pool.shutdown(wait=True)
                cancel_running(False)
    return [row for rows in results for row in rows]
