"""tegrastats parsing against verbatim device output, and the meter against a stand-in command."""

from __future__ import annotations

import pytest

from mdnet_deploy.devices import NoneMeter, TegrastatsMeter, make_meter, select_meter
from mdnet_deploy.devices.tegrastats import parse_tegrastats_line, rails_watts
from mdnet_deploy.errors import UnavailableError
from tests.helpers.devices import executable, fixture_path

FAKE = """
import sys, time
open({log!r}, "w").write(" ".join(sys.argv[1:]))
interval = int(sys.argv[sys.argv.index("--interval") + 1]) / 1000.0
lines = open({fixture!r}).read().splitlines()
while True:
    for line in lines:
        print(line, flush=True)
        time.sleep(interval)
"""


def fake_tegrastats(tmp_path, monkeypatch, fixture):
    log = tmp_path / "tegrastats.args"
    exe = executable(tmp_path / "bin" / "tegrastats", FAKE.format(log=str(log), fixture=str(fixture)))
    monkeypatch.setenv("MDNET_DEPLOY_TEGRASTATS", str(exe))
    return log


def test_parse_nano_jetpack4_line():
    line = fixture_path("tegrastats_nano_jp4.txt").read_text().splitlines()[0]
    # By hand from the fixture: "POM_5V_IN 4520/4680 POM_5V_GPU 0/0 POM_5V_CPU 1078/1205";
    # "RAM 1180/3965MB", "NVENC 716" and "EMC_FREQ 10%@1600" are not rails.
    assert parse_tegrastats_line(line) == {
        "POM_5V_IN": (4520.0, 4680.0),
        "POM_5V_GPU": (0.0, 0.0),
        "POM_5V_CPU": (1078.0, 1205.0),
    }


def test_parse_orin_nano_jetpack6_line_with_date_prefix():
    line = fixture_path("tegrastats_orin_nano_jp6.txt").read_text().splitlines()[0]
    assert parse_tegrastats_line(line) == {
        "VDD_IN": (4824.0, 4824.0),
        "VDD_CPU_GPU_CV": (518.0, 518.0),
        "VDD_SOC": (1475.0, 1475.0),
    }


def test_parse_skips_nc_and_keeps_every_rail():
    line = "RAM 1/2MB GPU 0/0 CPU 307/307 SOC 1229/1229 CV 0/0 VDDRQ 153/153 SYS5V 1510/1510 NC 5/5"
    assert rails_watts(line) == {"GPU": 0.0, "CPU": 0.307, "SOC": 1.229, "CV": 0.0, "VDDRQ": 0.153, "SYS5V": 1.51}


def test_meter_on_nano_output(tmp_path, monkeypatch):
    log = fake_tegrastats(tmp_path, monkeypatch, fixture_path("tegrastats_nano_jp4.txt"))
    meter = make_meter("tegrastats", "jetson")
    meter.start()
    # Wait for readings rather than sleeping a fixed time: a loaded machine may start the stand-in late.
    assert meter._wait_for(3, timeout=60.0)
    trace = meter.stop()
    assert log.read_text() == "--interval 100"
    assert trace.scope == "POM_5V_IN (module input rail)" and not trace.partial
    assert trace.samples >= 2
    assert set(trace.values) == {4.52}
    assert trace.joules == pytest.approx(4.52 * trace.window_s)
    assert trace.rails == pytest.approx({"POM_5V_IN": 4.52, "POM_5V_GPU": 0.0, "POM_5V_CPU": 1.078})
    # The helper process is gone.
    assert meter._proc is None


def test_meter_on_orin_output_at_a_set_interval(tmp_path, monkeypatch):
    log = fake_tegrastats(tmp_path, monkeypatch, fixture_path("tegrastats_orin_nano_jp6.txt"))
    meter = TegrastatsMeter(interval_ms=20)
    meter.start()
    assert meter._wait_for(2, timeout=60.0)
    trace = meter.stop()
    assert log.read_text() == "--interval 20"
    assert trace.scope.startswith("VDD_IN")
    assert trace.avg_power_w == pytest.approx(4.824)


def test_output_without_rails_is_unavailable(tmp_path, monkeypatch):
    no_rails = tmp_path / "no_rails.txt"
    no_rails.write_text("RAM 1180/3965MB (lfb 1x2MB) CPU [30%@1036] GR3D_FREQ 0%@76\n")
    fake_tegrastats(tmp_path, monkeypatch, no_rails)
    meter = TegrastatsMeter(interval_ms=20)
    with pytest.raises(UnavailableError, match="no power rails"):
        meter.start()
    assert meter._proc is None


def test_missing_tegrastats():
    ok, why = TegrastatsMeter().available()
    assert not ok and "MDNET_DEPLOY_TEGRASTATS" in why
    with pytest.raises(UnavailableError):
        make_meter("tegrastats", "jetson")


def test_auto_on_jetson_falls_back_to_tegrastats_then_none(tmp_path, monkeypatch):
    meter, why = select_meter("auto", "jetson")
    assert isinstance(meter, NoneMeter) and why == meter.reason
    assert "ina3221" in why and "tegrastats" in why
    fake_tegrastats(tmp_path, monkeypatch, fixture_path("tegrastats_nano_jp4.txt"))
    meter, why = select_meter("auto", "jetson")
    assert isinstance(meter, TegrastatsMeter) and why is None
