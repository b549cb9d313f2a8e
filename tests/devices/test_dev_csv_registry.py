"""External CSV meter, the meter registry, device profiles and import hygiene."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from mdnet_deploy.devices import (
    KINDS,
    CsvMeter,
    NoneMeter,
    doctor_meters,
    energy_summary,
    get_profile,
    make_meter,
    select_meter,
)
from mdnet_deploy.devices.csvmeter import parse_power_csv
from mdnet_deploy.errors import InputError, UnavailableError
from tests.helpers.devices import write


def ramp_csv(tmp_path, header: bool = True):
    # P = 2 (t - 100) W, one reading a second from t = 100 to 110.
    lines = ["timestamp,watts"] if header else []
    lines += [f"{100 + i},{2.0 * i}" for i in range(11)]
    return write(tmp_path / "meter.csv", "\n".join(lines) + "\n")


def test_parse_with_and_without_header(tmp_path):
    for header in (True, False):
        times, watts, bad = parse_power_csv(ramp_csv(tmp_path, header).read_text())
        assert times[0] == 100.0 and watts[-1] == 20.0 and len(times) == 11 and bad == 0
    times, watts, bad = parse_power_csv("t,w\n# comment\n3,1.5\n\noops\n1,0.5;x\n")
    assert times == [1.0, 3.0] and watts == [0.5, 1.5] and bad == 1


def test_samples_are_clipped_to_the_window_and_edges_interpolated(tmp_path):
    meter = CsvMeter(ramp_csv(tmp_path))
    trace = meter.trace_for(102.5, 107.5)
    # Integral of 2 (t - 100) from 102.5 to 107.5 = 7.5^2 - 2.5^2
    assert trace.joules == pytest.approx(50.0, rel=1e-12)
    # Readings 103..107 inside, 102 and 108 bracket the edges.
    assert trace.samples == 7
    assert trace.warnings == []


def test_partial_coverage_warns_and_no_coverage_fails(tmp_path):
    meter = CsvMeter(ramp_csv(tmp_path))
    trace = meter.trace_for(108.0, 112.0)
    assert any("covers only part" in w for w in trace.warnings)
    # 108..110 ramp (16 -> 20 W: 36 J) then 20 W held for 2 s.
    assert trace.joules == pytest.approx(36.0 + 40.0)
    with pytest.raises(UnavailableError, match="no samples near the window"):
        meter.trace_for(200.0, 210.0)


def test_start_stop_uses_epoch_time(tmp_path):
    now = time.time()
    path = write(tmp_path / "wall.csv", "".join(f"{now - 50 + i * 0.5:.3f},7.0\n" for i in range(400)))
    meter = make_meter(f"csv:{path}", "rpi")
    meter.start()
    time.sleep(0.05)
    trace = meter.stop()
    assert trace.avg_power_w == pytest.approx(7.0)
    block = energy_summary(trace, images=10)
    assert block["meter"] == "csv" and block["joules_per_inference"] == pytest.approx(7.0 * trace.window_s / 10)


def test_csv_errors(tmp_path):
    with pytest.raises(UnavailableError, match="does not exist"):
        make_meter(f"csv:{tmp_path / 'missing.csv'}", "host")
    with pytest.raises(InputError, match="csv:FILE"):
        make_meter("csv", "host")


def test_registry_errors():
    with pytest.raises(InputError, match="unknown power meter"):
        make_meter("joulescope", "host")
    with pytest.raises(InputError, match="unknown device kind"):
        make_meter("auto", "phone")
    with pytest.raises(InputError, match="takes no argument"):
        make_meter("rapl:0", "host")


def test_none_meter_yields_no_energy():
    meter, why = select_meter("none", "host")
    assert isinstance(meter, NoneMeter) and why
    ok, _ = meter.available()
    assert ok
    meter.start()
    assert energy_summary(meter.stop(), images=10) is None


@pytest.mark.parametrize("kind", KINDS)
def test_auto_falls_back_to_none_with_a_reason(kind):
    meter = make_meter("auto", kind)
    assert isinstance(meter, NoneMeter)
    assert meter.reason.startswith(f"no power meter works on this {kind} device")
    for name in get_profile(kind).meters:
        assert f"{name}:" in meter.reason


@pytest.mark.parametrize("spec", ["ina3221", "tegrastats", "pmic", "rapl", "nvml"])
def test_explicit_unavailable_meter_raises(spec):
    with pytest.raises(UnavailableError) as err:
        make_meter(spec, "host")
    message = str(err.value)
    assert message.startswith(f"power meter '{spec}' is unavailable:") and "\n" not in message
    assert err.value.exit_code == 6


def test_profiles():
    assert KINDS == ("jetson", "rpi", "host", "cuda")
    assert get_profile("jetson").meters == ("ina3221", "tegrastats")
    assert get_profile("jetson").runtimes == ("tensorrt", "onnxruntime")
    assert get_profile("rpi").meters == ("pmic",)
    assert get_profile("rpi").runtimes == ("tflite", "onnxruntime")
    assert get_profile("host").meters == ("rapl",)
    assert get_profile("host").runtimes == ("onnxruntime", "tflite", "torch")
    cuda = get_profile("cuda")
    assert cuda.meters == ("nvml", "rapl")
    assert cuda.runtimes == ("tensorrt", "onnxruntime", "torch")
    assert cuda.runtime_options["onnxruntime"]["providers"][0] == "CUDAExecutionProvider"


def test_doctor_lists_every_meter():
    rows = doctor_meters()
    assert [r["name"] for r in rows] == ["ina3221", "tegrastats", "pmic", "rapl", "nvml", "csv", "none"]
    for row in rows:
        assert set(row) >= {"name", "ok", "reason"} and row["reason"]
    assert {r["name"] for r in rows if r["ok"]} == {"csv", "none"}
    rows = doctor_meters("cuda")
    assert [r["name"] for r in rows][:2] == ["nvml", "rapl"] and rows[0]["preferred"]


def test_devices_import_without_heavy_packages():
    code = (
        "import sys, mdnet_deploy.devices as d; "
        "d.doctor_meters(); "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx', 'onnxruntime', 'pynvml', 'tensorrt')); "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_doctor_command_reports_meters():
    from click.testing import CliRunner

    from mdnet_deploy.cli import main

    result = CliRunner().invoke(main, ["doctor", "--device", "rpi", "--json"])
    assert result.exit_code == 0, result.output
    meters = json.loads(result.output)["power_meters"]
    assert meters["kind"] == "rpi" and meters["auto"] == "none" and "pmic:" in meters["auto_reason"]
    assert [m["name"] for m in meters["meters"]][0] == "pmic"
    table = CliRunner().invoke(main, ["doctor", "--device", "cuda"])
    assert table.exit_code == 0, table.output
    # Reasons are printed literally (rich markup escaped): the extra's brackets survive.
    assert "[nvml]" in table.output and "auto -> none" in table.output
