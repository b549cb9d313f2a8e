"""Raspberry Pi 5 PMIC meter against the verbatim ``vcgencmd pmic_read_adc`` output."""

from __future__ import annotations

import time

import pytest

from mdnet_deploy.devices import PmicMeter, make_meter, select_meter
from mdnet_deploy.devices.pmic import parse_pmic_adc
from mdnet_deploy.errors import UnavailableError
from tests.helpers.devices import executable, fixture_path

# By hand from rpi5_pmic_read_adc.txt: current (A) x voltage (V) of every rail
# that has both; EXT5V_V and BATT_V have no current and do not count.
EXPECTED = {
    "3V7_WL_SW": 0.05855580 * 3.61069200,
    "3V3_SYS": 0.06148359 * 3.29982600,
    "1V8_SYS": 0.13272650 * 1.81684800,
    "DDR_VDD2": 0.13955800 * 1.10109800,
    "DDR_VDDQ": 0.00980400 * 0.60366240,
    "1V1_SYS": 0.19811380 * 1.10292900,
    "0V8_SW": 0.34157550 * 0.80292960,
    "VDD_CORE": 5.03652000 * 0.89369880,
    "3V3_DAC": 0.00006105 * 3.29944700,
    "3V3_ADC": 0.00054945 * 3.30402600,
    "0V8_AON": 0.00531135 * 0.79618980,
    "HDMI": 0.02161170 * 4.92450000,
}
TOTAL_W = 5.9216122  # the sum of the above, rounded


def fake_vcgencmd(tmp_path, monkeypatch, pmic_text: str | None = None, exit_code: int = 0):
    """vcgencmd that knows pmic_read_adc (fixture) and get_throttled."""
    pmic = pmic_text if pmic_text is not None else fixture_path("rpi5_pmic_read_adc.txt").read_text()
    body = f"""
import sys
cmd = sys.argv[1] if len(sys.argv) > 1 else ""
if cmd == "pmic_read_adc":
    sys.stdout.write({pmic!r})
    sys.exit({exit_code})
if cmd == "get_throttled":
    print("throttled=0x50005")
    sys.exit(0)
print('error=1 error_msg="Command not registered"')
sys.exit(255)
"""
    exe = executable(tmp_path / "bin" / "vcgencmd", body)
    monkeypatch.setenv("MDNET_DEPLOY_VCGENCMD", str(exe))
    return exe


def test_parse_fixture_by_hand():
    rails = parse_pmic_adc(fixture_path("rpi5_pmic_read_adc.txt").read_text())
    assert rails.keys() == EXPECTED.keys()
    for name, watts in EXPECTED.items():
        assert rails[name] == pytest.approx(watts, rel=1e-12)
    assert sum(rails.values()) == pytest.approx(TOTAL_W, abs=1e-6)


def test_meter_polls_the_pmic(tmp_path, monkeypatch):
    fake_vcgencmd(tmp_path, monkeypatch)
    meter = make_meter("pmic", "rpi")
    assert meter.scope.startswith("PMIC estimate (excludes conversion losses)")
    meter.start()
    time.sleep(0.3)
    trace = meter.stop()
    assert trace.meter == "pmic" and trace.partial is True
    assert trace.samples >= 2
    assert trace.sample_rate_hz is not None and trace.sample_rate_hz > 0
    assert trace.avg_power_w == pytest.approx(TOTAL_W, abs=1e-6)
    assert trace.rails["VDD_CORE"] == pytest.approx(EXPECTED["VDD_CORE"])
    assert any("conversion losses" in w for w in trace.warnings)


def test_constructor_argument_overrides_environment(tmp_path, monkeypatch):
    exe = fake_vcgencmd(tmp_path, monkeypatch)
    monkeypatch.setenv("MDNET_DEPLOY_VCGENCMD", str(tmp_path / "nowhere"))
    assert not PmicMeter().available()[0]
    assert PmicMeter(command=str(exe)).available()[0]


def test_pi_without_pmic_suggests_csv(tmp_path, monkeypatch):
    # A Pi 4's vcgencmd answers, but not with PMIC rails.
    fake_vcgencmd(tmp_path, monkeypatch, pmic_text='error=1 error_msg="Command not registered"\n', exit_code=255)
    ok, why = PmicMeter().available()
    assert not ok
    assert "not supported" in why and "--power-meter csv:FILE" in why
    meter, reason = select_meter("auto", "rpi")
    assert meter.name == "none" and "csv:FILE" in reason


def test_missing_vcgencmd_suggests_csv():
    ok, why = PmicMeter().available()
    assert not ok and "not found" in why and "--power-meter csv:FILE" in why
    with pytest.raises(UnavailableError, match="csv:FILE"):
        make_meter("pmic", "rpi")
