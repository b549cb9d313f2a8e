"""Run ``bench`` (and TensorRT engine builds) on a device over SSH.

The workstation copies the artifacts, the packed evaluation set and this
package (as a wheel) to a temporary work folder on the device with SFTP,
runs the device-side command there, brings the JSON back and removes what it
copied. Library functions only: no printing, no ``sys.exit``; progress goes
to a callback and failures raise :mod:`mdnet_deploy.errors` classes.

paramiko is imported lazily (it is the ``remote`` extra), so importing this
package costs nothing on a device.
"""

from __future__ import annotations

from .bench import RemoteOptions, build_remote_engine, check_remote_device, run_remote_bench
from .fleet import failed_rows, run_fleet
from .inventory import load_inventory
from .target import DEVICE_KINDS, DeviceTarget, parse_target

__all__ = [
    "DEVICE_KINDS",
    "DeviceTarget",
    "RemoteOptions",
    "build_remote_engine",
    "check_remote_device",
    "failed_rows",
    "load_inventory",
    "parse_target",
    "run_fleet",
    "run_remote_bench",
]
