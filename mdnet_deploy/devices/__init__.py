"""Device side: profiles, power meters and environment capture.

Imports the standard library and numpy only; NVML is imported inside its
meter. The bench harness needs::

    meter, why = select_meter(spec, kind)      # or make_meter(spec, kind)
    idle = measure_idle(meter, seconds)         # optional, before the load
    meter.start(); ...timed loop...; trace = meter.stop()
    energy = energy_summary(trace, images, idle)   # None -> energy_unavailable = why
    env = capture_environment(kind)
"""

from __future__ import annotations

from .csvmeter import CsvMeter
from .energy import MIN_WINDOW_S, energy_summary, measure_idle
from .environment import capture_environment, read_temperatures
from .ina3221 import Ina3221Meter
from .meter import PowerMeter
from .nullmeter import NoneMeter
from .nvml import NvmlMeter
from .pmic import PmicMeter
from .profiles import KINDS, PROFILES, DeviceProfile, detect_kind, get_profile
from .rapl import RaplMeter
from .registry import METER_NAMES, create_meter, doctor_meters, make_meter, select_meter
from .tegrastats import TegrastatsMeter
from .trace import Trace, integrate_power

__all__ = [
    "CsvMeter",
    "DeviceProfile",
    "Ina3221Meter",
    "KINDS",
    "METER_NAMES",
    "MIN_WINDOW_S",
    "NoneMeter",
    "NvmlMeter",
    "PROFILES",
    "PmicMeter",
    "PowerMeter",
    "RaplMeter",
    "TegrastatsMeter",
    "Trace",
    "capture_environment",
    "create_meter",
    "detect_kind",
    "doctor_meters",
    "energy_summary",
    "get_profile",
    "integrate_power",
    "make_meter",
    "measure_idle",
    "read_temperatures",
    "select_meter",
]
