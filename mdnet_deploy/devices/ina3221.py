"""Jetson INA3221 power monitors read straight from sysfs.

Layouts (found by glob, never by a fixed ``hwmonN`` or ``iio:deviceN``,
whose numbers change between boots and boards; this is how jetson-stats
finds them too):

* JetPack 4 (L4T R32, driver ``ina3221x``), an IIO device::

      <sysfs>/bus/i2c/drivers/ina3221x/6-0040/iio:device0/rail_name_0      POM_5V_IN
      <sysfs>/bus/i2c/drivers/ina3221x/6-0040/iio:device0/in_power0_input  mW

* JetPack 5/6 (L4T R35/R36, mainline driver ``ina3221``), a hwmon device::

      <sysfs>/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/in1_label   VDD_IN
      <sysfs>/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/in1_input   mV (bus voltage)
      <sysfs>/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/curr1_input mA

  Channel 7 is the "sum of shunt voltages", not a rail; unconnected
  channels are labelled ``NC``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnavailableError
from . import _sys
from .meter import DEFAULT_INTERVAL_S, PollingMeter, Reading
from .rails import is_unconnected, total_rule

_RAIL_NAME = re.compile(r"^rail_name_(\d+)$")
_HWMON_LABEL = re.compile(r"^in(\d+)_label$")
_SUM_CHANNEL = 7


@dataclass(frozen=True)
class Rail:
    name: str
    #: JetPack 4: one file in mW; JetPack 5/6: (voltage mV, current mA) files
    power_file: Path | None = None
    volt_file: Path | None = None
    curr_file: Path | None = None

    def read_w(self) -> float:
        if self.power_file is not None:
            mw = _sys.read_number(self.power_file)
            if mw is None:
                raise OSError(f"cannot read {self.power_file}")
            return mw / 1000.0
        mv = _sys.read_number(self.volt_file)  # type: ignore[arg-type]
        ma = _sys.read_number(self.curr_file)  # type: ignore[arg-type]
        if mv is None or ma is None:
            raise OSError(f"cannot read {self.volt_file} / {self.curr_file}")
        return mv * ma / 1e6


def _device_folders(sysfs: Path) -> list[Path]:
    """Every iio/hwmon folder of every INA3221 on the I2C bus, each once."""
    found: dict[str, Path] = {}
    drivers = sorted(sysfs.glob("bus/i2c/drivers/ina3221*/*"))
    # Some kernels bind the chip under another driver name; the device's
    # own 'name' file still says ina3221 (jetson-stats checks it the same way).
    devices = [d for d in sorted(sysfs.glob("bus/i2c/devices/*")) if "ina3221" in (_sys.read_text(d / "name") or "")]
    for dev in drivers + devices:
        for folder in sorted(dev.glob("iio:device*")) + sorted(dev.glob("hwmon/hwmon*")):
            if folder.is_dir():
                found.setdefault(os.path.realpath(folder), folder)
    return list(found.values())


def _rails_in(folder: Path) -> list[Rail]:
    rails = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        m = _RAIL_NAME.match(entry.name)
        if m:
            n = m.group(1)
            label = _sys.read_text(entry) or ""
            power = folder / f"in_power{n}_input"
            if label and not is_unconnected(label) and power.exists():
                rails.append(Rail(label, power_file=power))
            continue
        m = _HWMON_LABEL.match(entry.name)
        if m:
            n = int(m.group(1))
            label = _sys.read_text(entry) or ""
            volt, curr = folder / f"in{n}_input", folder / f"curr{n}_input"
            if n == _SUM_CHANNEL or "sum of" in label.lower() or not label or is_unconnected(label):
                continue
            if volt.exists() and curr.exists():
                rails.append(Rail(label, volt_file=volt, curr_file=curr))
    return rails


def discover_rails(sysfs_root: str | os.PathLike[str] | None = None) -> list[Rail]:
    """All connected INA3221 rails under the sysfs root, in a stable order."""
    sysfs = _sys.sysfs_root(sysfs_root)
    rails: list[Rail] = []
    seen: set[str] = set()
    for folder in _device_folders(sysfs):
        for rail in _rails_in(folder):
            if rail.name not in seen:  # the same label twice would be double counted
                seen.add(rail.name)
                rails.append(rail)
    return rails


class Ina3221Meter(PollingMeter):
    """Jetson on-module power monitors, polled from sysfs at 20 Hz by default."""

    name = "ina3221"
    scope = "Jetson INA3221 rails"

    def __init__(
        self, sysfs_root: str | os.PathLike[str] | None = None, interval_s: float = DEFAULT_INTERVAL_S
    ) -> None:
        super().__init__(interval_s)
        self.sysfs_root = _sys.sysfs_root(sysfs_root)
        self._rails: list[Rail] = []
        self._total: str | None = None

    def _discover(self) -> tuple[bool, str]:
        rails = discover_rails(self.sysfs_root)
        if not rails:
            return False, (
                f"no INA3221 rails under {self.sysfs_root}/bus/i2c/drivers/ina3221*/ (not a Jetson, or a board "
                "without on-module monitors such as the Nano 2GB); try --power-meter tegrastats or csv:FILE"
            )
        bad = [r.name for r in rails if _safe_read(r) is None]
        if bad:
            return (
                False,
                f"INA3221 rails {', '.join(bad)} cannot be read (run as a user that can read {self.sysfs_root}/bus/i2c)",
            )
        self._rails = rails
        readings = {r.name: 0.0 for r in rails}
        self._total, self.scope, self.partial = total_rule(readings)
        return True, f"{self.scope}; rails: {', '.join(r.name for r in rails)}"

    def available(self) -> tuple[bool, str]:
        return self._discover()

    def _prepare(self) -> None:
        ok, why = self._discover()
        if not ok:
            raise UnavailableError(f"power meter 'ina3221' is unavailable: {why}")

    def _read(self) -> Reading:
        rails = {r.name: r.read_w() for r in self._rails}
        if self._total is not None:
            return rails[self._total], rails
        return sum(rails.values()), rails


def _safe_read(rail: Rail) -> float | None:
    try:
        return rail.read_w()
    except OSError:
        return None
