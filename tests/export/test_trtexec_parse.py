"""trtexec's performance summary -> the bench result's timing fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdnet_deploy.errors import InputError
from mdnet_deploy.export.tensorrt.trtexec import decode_version_code, parse_device_info, parse_trtexec_summary

FIXTURES = Path("/work/shared/fixtures/devices")
TRT82 = FIXTURES / "trtexec_summary_trt82.txt"

# A TensorRT 10 style log, written for this test: timestamps on every line,
# the banner with a six-digit version code, device information, percentiles
# 90/95/99 and no End-to-End line (the numbers are made up).
TRT10_LOG = (
    "\n".join(
        f"[11/03/2025-14:02:{s:02d}] {line}" if not line.startswith("&&&&") else line
        for s, line in enumerate(
            [
                "&&&& RUNNING TensorRT.trtexec [TensorRT v100300] [b17] # trtexec --loadEngine=model.engine",
                "[I] === Device Information ===",
                "[I] Available Devices:",
                '[I]   Device 0: "Orin" UUID: GPU-00000000-1111-2222-3333-444444444444',
                "[I] Selected Device: Orin",
                "[I] Selected Device ID: 0",
                "[I] Compute Capability: 8.7",
                "[I] SMs: 8",
                "[I] ",
                "[I] TensorRT version: 10.3.0",
                "[I] Starting inference",
                "[I] Warmup completed 812 queries over 200 ms",
                "[I] Timing trace has 12170 queries over 3.00041 s",
                "[I] ",
                "[I] === Trace details ===",
                "[I] Average on 10 runs - GPU latency: 0.2101 ms - Host latency: 0.2377 ms (enqueue 0.0612 ms)",
                "[I] ",
                "[I] === Performance summary ===",
                "[I] Throughput: 4056.25 qps",
                "[I] Latency: min = 0.2215 ms, max = 0.9803 ms, mean = 0.2431 ms, median = 0.2398 ms, "
                "percentile(90%) = 0.2517 ms, percentile(95%) = 0.2604 ms, percentile(99%) = 0.3322 ms",
                "[I] Enqueue Time: min = 0.0488 ms, max = 0.2109 ms, mean = 0.0607 ms, median = 0.0591 ms, "
                "percentile(90%) = 0.0676 ms, percentile(95%) = 0.0712 ms, percentile(99%) = 0.0910 ms",
                "[I] H2D Latency: min = 0.0101 ms, max = 0.0501 ms, mean = 0.0119 ms, median = 0.0115 ms, "
                "percentile(90%) = 0.0127 ms, percentile(95%) = 0.0133 ms, percentile(99%) = 0.0180 ms",
                "[I] GPU Compute Time: min = 0.2011 ms, max = 0.9411 ms, mean = 0.2198 ms, median = 0.2170 ms, "
                "percentile(90%) = 0.2281 ms, percentile(95%) = 0.2359 ms, percentile(99%) = 0.3055 ms",
                "[I] D2H Latency: min = 0.0089 ms, max = 0.0302 ms, mean = 0.0114 ms, median = 0.0111 ms, "
                "percentile(90%) = 0.0121 ms, percentile(95%) = 0.0127 ms, percentile(99%) = 0.0151 ms",
                "[I] Total Host Walltime: 3.00041 s",
                "[I] Total GPU Compute Time: 2.67497 s",
                "[W] * GPU compute time is unstable, with coefficient of variance = 9.81%.",
                "[I] Explanations of the performance metrics are printed in the verbose logs.",
                "[I] ",
            ]
        )
    )
    + "\n&&&& PASSED TensorRT.trtexec [TensorRT v100300] [b17] # trtexec --loadEngine=model.engine\n"
)


def test_trt82_fixture_numbers() -> None:
    r = parse_trtexec_summary(TRT82.read_text())
    # "Latency:" is host latency in 8.x: H2D + GPU compute + D2H.
    assert r["latency_ms"] == {
        "mean": 15.07,
        "std": None,
        "min": 14.8578,
        "p50": 15.0422,
        "p90": None,
        "p99": 15.7443,
        "max": 15.8344,
    }
    assert r["latency_field"] == "host_latency_ms"
    assert "host latency" in r["latency_source"]
    assert r["throughput_ips"] == pytest.approx(73.4985)
    assert r["gpu_compute_ms"] == {"min": 13.3386, "max": 14.3186, "mean": 13.5448, "p50": 13.5178, "p99": 14.2151}
    assert r["end_to_end_host_latency_ms"]["mean"] == 26.672
    assert r["enqueue_ms"]["max"] == 1.47144
    assert r["h2d_ms"]["mean"] == 1.51225
    assert r["d2h_ms"]["p99"] == 0.0166016
    assert r["total_host_walltime_s"] == 3.04768
    assert r["total_gpu_compute_s"] == 3.03404
    assert r["tensorrt_version"] is None  # the fixture is the summary only


def test_trt82_fixture_gpu_compute_preferred() -> None:
    r = parse_trtexec_summary(TRT82.read_text(), prefer="gpu")
    assert r["latency_field"] == "gpu_compute_ms"
    assert r["latency_ms"]["mean"] == 13.5448 and r["latency_ms"]["p99"] == 14.2151
    assert "GPU compute" in r["latency_source"]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("trtexec_summary_*.txt")), ids=lambda p: p.name)
def test_every_summary_fixture_parses(path: Path) -> None:
    r = parse_trtexec_summary(path.read_text())
    lat = r["latency_ms"]
    assert lat["min"] <= lat["p50"] <= lat["max"] and lat["min"] <= lat["mean"] <= lat["max"]
    assert r["throughput_ips"] > 0


def test_trt10_format() -> None:
    r = parse_trtexec_summary(TRT10_LOG)
    assert r["latency_ms"] == {
        "mean": 0.2431,
        "std": None,
        "min": 0.2215,
        "p50": 0.2398,
        "p90": 0.2517,
        "p99": 0.3322,
        "max": 0.9803,
    }
    assert r["host_latency_ms"]["p95"] == 0.2604
    assert r["gpu_compute_ms"]["p90"] == 0.2281
    assert "end_to_end_host_latency_ms" not in r
    assert r["throughput_ips"] == pytest.approx(4056.25)
    assert r["tensorrt_version"] == "10.3.0"
    assert r["gpu"] == "Orin" and r["compute_capability"] == "8.7"
    assert r["iterations"] == 12170 and r["duration_s"] == pytest.approx(3.00041)
    assert r["total_gpu_compute_s"] == pytest.approx(2.67497)


def test_throughput_counts_images_per_batch() -> None:
    r = parse_trtexec_summary(TRT10_LOG, batch=8)
    assert r["throughput_ips"] == pytest.approx(4056.25 * 8)
    assert r["batch"] == 8


def test_last_summary_wins() -> None:
    first = TRT82.read_text().replace("Throughput: 73.4985 qps", "Throughput: 1.0 qps")
    r = parse_trtexec_summary(first + "\n" + TRT82.read_text())
    assert r["throughput_ips"] == pytest.approx(73.4985)


def test_no_summary_is_one_clear_line() -> None:
    with pytest.raises(InputError, match="no trtexec performance summary") as info:
        parse_trtexec_summary("&&&& FAILED TensorRT.trtexec [TensorRT v8502]\n[E] Error[4]: something\n")
    assert "\n" not in str(info.value)
    with pytest.raises(InputError):
        parse_trtexec_summary(TRT82.read_text(), prefer="wall")


@pytest.mark.parametrize(
    ("code", "version"),
    [(8201, "8.2.1"), (8502, "8.5.2"), (8601, "8.6.1"), (100300, "10.3.0"), (101600, "10.16.0")],
)
def test_version_codes(code: int, version: str) -> None:
    assert decode_version_code(code) == version


def test_device_info_from_banner_only() -> None:
    info = parse_device_info("&&&& RUNNING TensorRT.trtexec [TensorRT v8502] # trtexec --onnx=a.onnx\n")
    assert info == {"tensorrt": "8.5.2"}


# -- NVIDIA's published output (tests/export/fixtures/README.md says where each comes from) ---------
OURS = Path(__file__).parent / "fixtures"


def test_verbatim_trt10_3_log_from_nvidia() -> None:
    r = parse_trtexec_summary((OURS / "trtexec_trt10.3_build_and_run.txt").read_text())
    assert r["tensorrt_version"] == "10.3.0"
    assert r["gpu"] == "NVIDIA RTX A5000" and r["compute_capability"] == "8.6"
    assert r["throughput_ips"] == pytest.approx(873.17)
    assert r["latency_ms"] == {
        "mean": 1.20476,
        "std": None,
        "min": 1.18591,
        "p50": 1.2041,
        "p90": 1.21265,
        "p99": 1.22229,
        "max": 1.36273,
    }
    assert r["host_latency_ms"]["p95"] == 1.21558
    assert r["gpu_compute_ms"]["mean"] == 1.14253
    assert r["iterations"] == 2622 and r["duration_s"] == pytest.approx(3.00285)
    assert r["total_gpu_compute_s"] == pytest.approx(2.99571)
    assert "end_to_end_host_latency_ms" not in r  # 10.x dropped that line


def test_verbatim_trt8_2_int8_log_from_nvidia() -> None:
    text = (OURS / "trtexec_trt8.2_int8_build_and_run.txt").read_text()
    r = parse_trtexec_summary(text)
    assert r["tensorrt_version"] == "8.2.5"
    assert r["throughput_ips"] == pytest.approx(324.544)
    assert r["latency_ms"]["p90"] is None and r["latency_ms"]["p99"] == 4.86353  # 8.x: percentile(99%) only
    assert r["end_to_end_host_latency_ms"]["mean"] == 4.71364


def test_trt11_format_from_the_source() -> None:
    r = parse_trtexec_summary((OURS / "trtexec_trt11_format_from_source.txt").read_text(), batch=4)
    assert r["tensorrt_version"] == "11.4.0"  # "TensorRT version: 11.4.0" and the v110400 banner agree
    assert r["latency_ms"]["p90"] == 0.3352 and r["gpu_compute_ms"]["p99"] == 0.3512
    assert r["throughput_ips"] == pytest.approx(3039.67 * 4)
    assert r["iterations"] == 9120


@pytest.mark.parametrize(("code", "version"), [(110000, "11.0.0"), (110401, "11.4.1")])
def test_trt11_version_codes(code: int, version: str) -> None:
    assert decode_version_code(code) == version
    assert parse_device_info(f"&&&& RUNNING TensorRT.trtexec [TensorRT v{code}] [b106] # trtexec\n") == {
        "tensorrt": version
    }


def test_gpu_fallback_layers_from_both_log_styles() -> None:
    from mdnet_deploy.export.tensorrt.trtexec import parse_gpu_fallback

    log = "\n".join(
        [
            "[W] [TRT] Layer '/model.24/Constant_1_output_0' (CONSTANT): Unsupported on DLA. Switching this layer's device type to GPU.",
            "[W] [TRT] Default DLA is enabled but layer Softmax in likelihood calculation is not supported on DLA, falling back to GPU.",
            "[W] [TRT] Layer '/model.24/Constant_1_output_0' (CONSTANT): Unsupported on DLA. Switching this layer's device type to GPU.",
        ]
    )
    assert parse_gpu_fallback(log) == ["/model.24/Constant_1_output_0", "Softmax in likelihood calculation"]
