"""Raspberry Pi 5 power from its PMIC: ``vcgencmd pmic_read_adc``.

The command prints one current and one voltage per rail::

      VDD_CORE_A current(7)=5.03652000A
      VDD_CORE_V volt(15)=0.89369880V

Power is the sum of V x I over rails that have both (``X_A`` with ``X_V``);
voltage-only lines such as ``EXT5V_V`` have no current and are left out. The
figure is what the PMIC delivers to the SoC and memory rails: it excludes the
PMIC's own conversion losses and anything powered straight from 5 V (USB),
so it is an estimate below the wall power.
"""

from __future__ import annotations

import re

from ..errors import UnavailableError
from . import _sys
from .meter import PollingMeter, Reading

_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=\s*([-+0-9.eE]+)\s*[AV]\s*$")

SCOPE = "PMIC estimate (excludes conversion losses)"
#: 10 Hz; the real rate is lower when vcgencmd takes longer than this.
DEFAULT_INTERVAL_S = 0.1


def parse_pmic_adc(text: str) -> dict[str, float]:
    """Rail name -> power in W for every rail with both a current and a voltage."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        name, kind, value = m.group(1), m.group(2), float(m.group(3))
        (amps if kind == "A" else volts)[name] = value
    return {name: amps[name] * volts[name] for name in amps if name in volts}


class PmicMeter(PollingMeter):
    """Polls the Pi 5 PMIC ADC at up to 10 Hz (the recorded rate says what it achieved)."""

    name = "pmic"
    scope = SCOPE
    # The rails miss conversion losses and 5 V consumers: not the whole board.
    partial = True

    def __init__(self, command: str | None = None, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        super().__init__(interval_s)
        self.command = _sys.command_path(_sys.ENV_VCGENCMD, "vcgencmd", command)
        self._path: str | None = None
        self._rail_count = 0

    def _query(self, path: str) -> tuple[dict[str, float], str]:
        status, text = _sys.run_command([path, "pmic_read_adc"], timeout=2.0)
        if status != 0:
            return {}, text
        return parse_pmic_adc(text), text

    def available(self) -> tuple[bool, str]:
        path = _sys.resolve_executable(self.command)
        if path is None:
            return False, (
                f"'{self.command}' not found: the PMIC meter needs a Raspberry Pi 5 with vcgencmd "
                f"(sudo apt install raspi-utils, or set {_sys.ENV_VCGENCMD}); "
                "otherwise measure with an external USB power meter and --power-meter csv:FILE"
            )
        rails, text = self._query(path)
        if not rails:
            said = " ".join(text.split())[:120] or "no rails"
            return False, (
                f"'{path} pmic_read_adc' is not supported here (only the Raspberry Pi 5 has a readable PMIC; "
                f"it said: {said}); measure with an external USB power meter and --power-meter csv:FILE"
            )
        self._path, self._rail_count = path, len(rails)
        self.scope = f"{SCOPE}: sum of V x I over {len(rails)} PMIC rails"
        return True, self.scope

    def _prepare(self) -> None:
        ok, why = self.available()
        if not ok:
            raise UnavailableError(f"power meter 'pmic' is unavailable: {why}")

    def _read(self) -> Reading:
        rails, text = self._query(self._path or self.command)
        if not rails:
            raise OSError(f"vcgencmd pmic_read_adc gave no rails ({' '.join(text.split())[:80]})")
        return sum(rails.values()), rails

    def _extra_warnings(self) -> list[str]:
        return [
            f"{SCOPE}: the Pi's wall power is higher; use --power-meter csv:FILE with a USB meter for the full board"
        ]
