"""CPU package energy from RAPL via the powercap sysfs interface (Intel and AMD).

Each ``<sysfs>/class/powercap/intel-rapl:N`` zone whose ``name`` starts with
``package`` is one CPU socket; its ``energy_uj`` counter counts microjoules
and wraps at ``max_energy_range_uj``. Sub-zones (``core``, ``uncore``,
``dram``, named ``intel-rapl:N:M``) are not added: they are inside the
package or a different scope. The counter is polled during the window, so
a wrap is seen between two reads and added back (one wrap per poll at most,
which at 10 Hz needs more than a megawatt to break).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnavailableError
from . import _sys
from .meter import PollingMeter, Reading
from .trace import METHOD_COUNTER

DEFAULT_INTERVAL_S = 0.1


def read_energy_uj(path: Path) -> int:
    """One counter read; unlike the best-effort readers, errors propagate (permission matters here)."""
    with open(path, "rb") as f:
        return int(f.read().split()[0])


@dataclass
class Zone:
    name: str
    folder: Path
    max_range_uj: int | None


def package_zones(sysfs_root: str | os.PathLike[str] | None = None) -> list[Zone]:
    base = _sys.sysfs_root(sysfs_root) / "class" / "powercap"
    zones: dict[str, Zone] = {}
    # 'intel-rapl:*' also lists sub-zones (intel-rapl:0:0); the name filter drops them.
    for folder in sorted(base.glob("intel-rapl:*")):
        name = _sys.read_text(folder / "name") or ""
        if not name.startswith("package") or name in zones:
            continue
        rng = _sys.read_number(folder / "max_energy_range_uj")
        zones[name] = Zone(name, folder, int(rng) if rng else None)
    return list(zones.values())


def permission_hint(path: Path) -> str:
    return (
        f"cannot read {path}: permission denied (RAPL counters are root-only on current kernels); "
        f"run as root, or allow it with 'sudo chmod o+r {path.parent.parent}/intel-rapl:*/energy_uj' "
        "(a udev rule makes that permanent)"
    )


class RaplMeter(PollingMeter):
    """Energy counter of every CPU package, summed."""

    name = "rapl"
    method = METHOD_COUNTER
    scope = "CPU package (RAPL)"

    def __init__(
        self, sysfs_root: str | os.PathLike[str] | None = None, interval_s: float = DEFAULT_INTERVAL_S
    ) -> None:
        super().__init__(interval_s)
        self.sysfs_root = _sys.sysfs_root(sysfs_root)
        self._zones: list[Zone] = []
        self._last: dict[str, int] = {}
        self._joules = 0.0
        self._wraps = 0

    def available(self) -> tuple[bool, str]:
        zones = package_zones(self.sysfs_root)
        if not zones:
            return False, (
                f"no RAPL package zones under {self.sysfs_root}/class/powercap (not an Intel/AMD x86 host, a VM, "
                "or the driver is not loaded: sudo modprobe intel_rapl_msr)"
            )
        for zone in zones:
            path = zone.folder / "energy_uj"
            try:
                read_energy_uj(path)
            except PermissionError:
                return False, permission_hint(path)
            except (OSError, ValueError, IndexError) as exc:
                return False, f"cannot read {path} ({exc})"
        self._zones = zones
        self.scope = (
            f"CPU package (RAPL {'+'.join(z.name for z in zones)}; excludes DRAM, GPU and the rest of the board)"
        )
        return True, self.scope

    def _prepare(self) -> None:
        ok, why = self.available()
        if not ok:
            raise UnavailableError(f"power meter 'rapl' is unavailable: {why}")
        self._last, self._joules, self._wraps = {}, 0.0, 0

    def _read(self) -> Reading:
        for zone in self._zones:
            now = read_energy_uj(zone.folder / "energy_uj")
            before = self._last.get(zone.name)
            if before is not None:
                delta = now - before
                if delta < 0:
                    # Wrapped: the counter went past max_energy_range_uj back to 0.
                    self._wraps += 1
                    delta += zone.max_range_uj if zone.max_range_uj else 0
                self._joules += max(delta, 0) / 1e6
            self._last[zone.name] = now
        return self._joules, None

    def _extra_warnings(self) -> list[str]:
        missing = [z.name for z in self._zones if not z.max_range_uj]
        if self._wraps and missing:
            return [
                f"RAPL counter of {', '.join(missing)} wrapped but its max_energy_range_uj is unreadable; energy is low"
            ]
        return []
