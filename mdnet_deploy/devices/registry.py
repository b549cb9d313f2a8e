"""Power meters by name: ``make_meter(spec, device_kind)`` and the doctor's list.

``spec`` is one of auto | ina3221 | tegrastats | pmic | rapl | nvml |
csv:FILE | none. An explicitly named meter that cannot work here raises
UnavailableError (the user asked for it); ``auto`` instead falls back to the
``none`` meter whose ``reason`` says what was tried, so a benchmark still
runs and records ``energy_unavailable``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import InputError, UnavailableError
from .csvmeter import CsvMeter
from .ina3221 import Ina3221Meter
from .meter import PowerMeter
from .nullmeter import NoneMeter
from .nvml import NvmlMeter
from .pmic import PmicMeter
from .profiles import KINDS, get_profile
from .rapl import RaplMeter
from .tegrastats import TegrastatsMeter


@dataclass(frozen=True)
class MeterOptions:
    """Where the OS boundaries are, for the meters that read them (None: the environment's default)."""

    path: str | os.PathLike[str] | None = None
    sysfs_root: str | os.PathLike[str] | None = None
    tegrastats: str | None = None
    vcgencmd: str | None = None
    gpu_index: int = 0


def _csv(options: MeterOptions) -> PowerMeter:
    if not options.path:
        raise InputError("--power-meter csv needs a file: csv:FILE with lines of epoch_seconds,watts")
    return CsvMeter(options.path)


#: The one table of meters: a new sensor is a class plus one line here (and its profile's preference).
METERS: dict[str, Callable[[MeterOptions], PowerMeter]] = {
    "ina3221": lambda o: Ina3221Meter(sysfs_root=o.sysfs_root),
    "tegrastats": lambda o: TegrastatsMeter(command=o.tegrastats),
    "pmic": lambda o: PmicMeter(command=o.vcgencmd),
    "rapl": lambda o: RaplMeter(sysfs_root=o.sysfs_root),
    "nvml": lambda o: NvmlMeter(index=o.gpu_index),
    "csv": _csv,
    "none": lambda o: NoneMeter(),
}
METER_NAMES: tuple[str, ...] = tuple(METERS)
SPECS = " | ".join(["auto", *("csv:FILE" if n == "csv" else n for n in METERS)])


def create_meter(name: str, **options: Any) -> PowerMeter:
    """Construct a meter by name without checking that it works (see ``available()``).

    ``options`` are the fields of :class:`MeterOptions` (path, sysfs_root, tegrastats, vcgencmd, gpu_index).
    """
    factory = METERS.get(name)
    if factory is None:
        raise InputError(f"unknown power meter '{name}'; choose one of {SPECS}")
    return factory(MeterOptions(**options))


def select_meter(spec: str, device_kind: str, **overrides: Any) -> tuple[PowerMeter, str | None]:
    """(meter, None) or, for ``auto`` with nothing usable, (the none meter, why)."""
    profile = get_profile(device_kind)
    spec = (spec or "auto").strip()
    name, _, arg = spec.partition(":")
    name = name.lower()
    if name == "auto":
        tried = []
        for candidate in profile.meters:
            meter = create_meter(candidate, **overrides)
            ok, why = meter.available()
            if ok:
                return meter, None
            tried.append(f"{candidate}: {why}")
        reason = f"no power meter works on this {device_kind} device ({'; '.join(tried)})"
        return NoneMeter(reason), reason
    if name == "csv":
        meter = create_meter("csv", path=arg, **overrides)
    elif arg:
        raise InputError(f"power meter '{spec}' takes no argument; choose one of {SPECS}")
    else:
        meter = create_meter(name, **overrides)
    if name == "none":
        return meter, meter.reason  # type: ignore[attr-defined]
    meter.require()
    return meter, None


def make_meter(spec: str, device_kind: str, **overrides: Any) -> PowerMeter:
    """The meter for ``--power-meter SPEC`` on a ``device_kind`` device.

    With ``auto`` and nothing usable, the none meter comes back and its
    ``reason`` attribute says why. Raises UnavailableError for an explicit
    meter that cannot work, InputError for an unknown spec or kind.
    """
    meter, _ = select_meter(spec, device_kind, **overrides)
    return meter


def doctor_meters(kind: str | None = None, **overrides: Any) -> list[dict[str, Any]]:
    """Every meter's availability here, with why and how to fix; the kind's own meters first."""
    names = list(METER_NAMES)
    preferred: tuple[str, ...] = ()
    if kind is not None:
        preferred = get_profile(kind).meters
        names = list(preferred) + [n for n in names if n not in preferred]
    rows = []
    for name in names:
        if name == "csv":
            ok, why = True, "works with any external meter: --power-meter csv:FILE (lines of epoch_seconds,watts)"
        elif name == "none":
            ok, why = True, "always available; records no energy"
        else:
            try:
                ok, why = create_meter(name, **overrides).available()
            except UnavailableError as exc:  # defensive: available() should not raise
                ok, why = False, str(exc)
        rows.append({"name": name, "ok": bool(ok), "reason": why, "preferred": name in preferred})
    return rows


__all__ = [
    "METERS",
    "METER_NAMES",
    "MeterOptions",
    "KINDS",
    "create_meter",
    "select_meter",
    "make_meter",
    "doctor_meters",
]
