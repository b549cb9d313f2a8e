"""RAPL (wrap-around, permissions) and NVML (counter, sampled power, absent)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mdnet_deploy.devices import NvmlMeter, RaplMeter, make_meter, select_meter
from mdnet_deploy.devices import rapl as rapl_module
from mdnet_deploy.devices.rapl import package_zones
from mdnet_deploy.errors import UnavailableError
from tests.helpers.devices import write

MAX_RANGE = 1_000_000


def rapl_tree(sysfs: Path) -> Path:
    base = sysfs / "class" / "powercap"
    for zone, name, value in (
        ("intel-rapl:0", "package-0", 900_000),
        ("intel-rapl:0:0", "core", 500_000),
        ("intel-rapl:0:1", "dram", 100_000),
        ("intel-rapl:1", "package-1", 5_000),
        # MMIO duplicate of package-0 on some Intel parts: must not be added twice.
        ("intel-rapl-mmio:0", "package-0", 123),
    ):
        write(base / zone / "name", name + "\n")
        write(base / zone / "energy_uj", f"{value}\n")
        write(base / zone / "max_energy_range_uj", f"{MAX_RANGE}\n")
    return base


def test_only_package_zones(sysfs):
    rapl_tree(sysfs)
    assert [z.name for z in package_zones()] == ["package-0", "package-1"]


def test_counter_wraps_around(sysfs):
    base = rapl_tree(sysfs)
    # A long poll interval: only the reads at start() and stop() happen.
    meter = RaplMeter(interval_s=60.0)
    assert meter.available()[0]
    assert meter.scope.startswith("CPU package (RAPL package-0+package-1")
    meter.start()
    write(base / "intel-rapl:0" / "energy_uj", "100000\n")  # wrapped: 900000 -> 1000000 -> 100000
    write(base / "intel-rapl:1" / "energy_uj", "305000\n")
    trace = meter.stop()
    assert trace.method == "counter" and trace.samples == 2
    # package-0: (1_000_000 - 900_000 + 100_000) uJ, package-1: 300_000 uJ
    assert trace.joules == pytest.approx(0.5, abs=1e-12)
    assert trace.avg_power_w == pytest.approx(0.5 / trace.window_s)


def test_polled_counter_sums_reads(sysfs):
    base = rapl_tree(sysfs)
    meter = RaplMeter(interval_s=0.01)
    meter.start()
    time.sleep(0.05)
    write(base / "intel-rapl:0" / "energy_uj", "950000\n")
    time.sleep(0.05)
    trace = meter.stop()
    assert trace.samples >= 3
    assert trace.joules == pytest.approx(0.05, abs=1e-12)


def test_permission_denied_explains_the_fix(sysfs, monkeypatch):
    rapl_tree(sysfs)

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(rapl_module, "read_energy_uj", denied)
    ok, why = RaplMeter().available()
    assert not ok
    assert "permission denied" in why and "chmod o+r" in why and "udev" in why and "\n" not in why
    with pytest.raises(UnavailableError, match="chmod o\\+r"):
        make_meter("rapl", "host")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files regardless of their mode")
def test_permission_denied_on_a_real_file(sysfs):
    base = rapl_tree(sysfs)
    for zone in ("intel-rapl:0", "intel-rapl:1"):
        (base / zone / "energy_uj").chmod(0)
    ok, why = RaplMeter().available()
    assert not ok and "chmod o+r" in why


def test_no_rapl_falls_back_to_none_on_host():
    meter, why = select_meter("auto", "host")
    assert meter.name == "none" and "RAPL" in why


# -- NVML ------------------------------------------------------------------------


def test_nvml_missing_bindings():
    ok, why = NvmlMeter().available()
    assert not ok and "nvidia-ml-py" in why
    with pytest.raises(UnavailableError, match="nvidia-ml-py"):
        make_meter("nvml", "cuda")


@pytest.mark.gpu
def test_nvml_energy_on_a_real_gpu():
    """Runs only where an NVIDIA driver and nvidia-ml-py are present; never faked."""
    pytest.importorskip("pynvml", reason="nvidia-ml-py not installed (no NVIDIA GPU on this machine)")
    meter = NvmlMeter(interval_s=0.05)
    ok, why = meter.available()
    if not ok:
        pytest.skip(f"NVML unusable here: {why}")
    meter.start()
    time.sleep(0.3)
    trace = meter.stop()
    assert trace.samples >= 2
    assert trace.joules is None or trace.joules >= 0


def test_auto_on_cuda_tries_nvml_then_rapl():
    meter, why = select_meter("auto", "cuda")
    assert meter.name == "none"
    assert why.index("nvml:") < why.index("rapl:")
