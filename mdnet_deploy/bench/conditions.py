"""The conditions a measurement ran in: load, CPU frequency and governor, temperature, throttling.

Read right before the first timed call and right after the last one, so a
reader can tell a slow device from a busy or hot one. Best-effort: what a
machine does not expose is recorded as None (a container has no cpufreq; a
Jetson's throttle counters need root), never guessed.
"""

from __future__ import annotations

import os
from typing import Any

from ..devices import _sys
from ..devices.environment import cpu_governor, decode_throttled, read_temperatures


def usable_cores() -> int | None:
    try:
        return len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return os.cpu_count()


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def cpu_freq_mhz() -> dict[str, dict[str, float]] | None:
    """{policy or cpu: {"cur", "max"}} in MHz from cpufreq (kHz in sysfs), or None where there is none."""
    base = _sys.sysfs_root() / "devices" / "system" / "cpu"
    found: dict[str, dict[str, float]] = {}
    paths = sorted(base.glob("cpufreq/policy*/scaling_cur_freq")) or sorted(
        base.glob("cpu[0-9]*/cpufreq/scaling_cur_freq")
    )
    for cur_path in paths:
        folder = cur_path.parent
        cur = _sys.read_number(cur_path)
        if cur is None:
            continue
        name = folder.name if folder.name.startswith("policy") else folder.parent.name
        entry = {"cur": round(cur / 1000.0, 1)}
        top = _sys.read_number(folder / "scaling_max_freq")
        if top is not None:
            entry["max"] = round(top / 1000.0, 1)
        found[name] = entry
    return found or None


def throttling(kind: str) -> dict[str, Any] | None:
    """Raspberry Pi firmware throttle flags (vcgencmd get_throttled); None where they cannot be read."""
    if kind != "rpi":
        return None  # Jetson: the soctherm throttle counters are root-only debugfs; cpu_freq shows capping instead
    vcgencmd = _sys.command_path(_sys.ENV_VCGENCMD, "vcgencmd")
    status, text = _sys.run_command([vcgencmd, "get_throttled"])
    return decode_throttled(text) if status == 0 else None


def snapshot(kind: str) -> dict[str, Any]:
    """One reading of everything above."""
    return {
        "loadavg": loadavg(),
        "cpu_freq_mhz": cpu_freq_mhz(),
        "cpu_governor": cpu_governor(),
        "temperatures_c": read_temperatures() or None,
        "throttled": throttling(kind),
    }


def conditions_block(kind: str, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """A result's ``conditions``: the core count the load is compared with, and both readings."""
    return {"cores": usable_cores(), "before": before, "after": after}
