"""The bench table fits the terminal: 80, 100 and 200 columns, numbers never split."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from mdnet_deploy.bench.report import result_notes, results_table
from mdnet_deploy.bench.schema import STATUS_OK, mark_failed, new_row

DEVICE = {"kind": "host", "name": "host"}


def row(
    model: str,
    precision: str,
    runtime: str,
    top1: float,
    p50: float,
    p99: float,
    ips: float,
    energy: dict | None = None,
) -> dict:
    r = new_row(
        DEVICE,
        {"path": f"out/{model}", "format": model.rsplit(".", 1)[-1], "precision": precision, "size_mb": 2.71},
        {"name": runtime},
        1,
    )
    r.update(
        status=STATUS_OK,
        reason=None,
        latency_ms={"p50": p50, "p99": p99},
        throughput_ips=ips,
        accuracy={"top1": top1, "top5": 99.9, "n": 2000, "dataset": "cifar"},
        energy=energy,
        energy_unavailable=None if energy else "no power meter works here (RAPL: permission denied)",
    )
    return r


ROWS = [
    row("mdnet-200-best.pth", "fp32", "torch", 98.49, 3.2251, 4.8812, 310.1),
    row("model.onnx", "fp32", "onnxruntime", 98.49, 1.0412, 1.9321, 960.5),
    row("model.int8.onnx", "int8", "onnxruntime", 97.93, 0.8123, 1.2207, 1231.9),
    row("model.int8.tflite", "int8", "tflite", 97.82, 0.6012, 0.9911, 1663.3),
    mark_failed(row("model.engine", "int8", "tensorrt", 0, 0, 0, 0), "TensorRT is not installed here; see README"),
]
NUMBERS = ["98.49", "97.93", "3.225", "4.881", "1.041", "310.1", "960.5", "1231.9", "1663.3", "0.601"]


def render(width: int, wide: bool = False, rows=ROWS) -> str:
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(results_table(rows, width=width, wide=wide))
    return console.export_text()


@pytest.mark.parametrize("width", [80, 100, 200])
def test_fits_and_never_splits_a_number(width):
    text = render(width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width, text
    shown = re.findall(r"\d+\.\d+", text)
    for number in shown:  # every figure printed whole: digits on both sides of the point
        assert len(number.split(".")[1]) in (1, 2, 3), (number, text)
    for line in lines:
        assert not re.search(r"\d\.\s*$", line), f"a number split across lines:\n{text}"
    # model, top-1, p50, img/s and status always fit, and every row is one line or a folded name
    for number in ("98.49", "3.225", "310.1", "1663.3"):
        assert number in text, text
    assert "failed" in text


def test_default_columns_at_100_and_200():
    for width in (100, 200):
        header = next(line for line in render(width).splitlines() if "model" in line)
        for name in ("model", "prec", "runtime", "top-1", "p50", "p99", "img/s", "mJ/img", "status"):
            assert name in header, (width, header)
        for name in ("format", "size", "top-5", "avg W"):
            assert name not in header


def test_narrow_terminal_says_what_it_dropped():
    text = render(60)
    assert max(len(line) for line in text.splitlines()) <= 60, text
    assert "--wide" in text and "not shown at 60 columns" in text


def test_wide_keeps_every_column_and_the_reason():
    text = render(400, wide=True)
    for name in ("format", "size", "top-5", "avg W", "p99"):
        assert name in text
    assert "TensorRT is not installed here" in text


def test_unavailable_energy_is_said_once():
    notes = result_notes(ROWS)
    energy = [n for n in notes if "unavailable" in n]
    assert energy == ["energy unavailable: no power meter works here (RAPL: permission denied)"]
    assert any(n.startswith("model.engine (tensorrt): failed: TensorRT is not installed") for n in notes)
    assert "unavailable" not in render(200)  # the cell says n/a; the reason is under the table


def test_measured_energy_is_a_number():
    e = {
        "meter": "rapl",
        "scope": "cpu package",
        "samples": 9,
        "avg_power_w": 12.5,
        "idle_power_w": None,
        "joules_per_inference": 0.0101,
        "dynamic_joules_per_inference": None,
    }
    rows = [row("model.onnx", "fp32", "onnxruntime", 98.0, 1.0, 2.0, 900.0, energy=e)]
    assert "10.100" in render(100, rows=rows)
    assert result_notes(rows) == ["energy from 'rapl' (cpu package)"]


def test_other_statuses_are_rendered_with_their_reason():
    r = row("model.onnx", "fp32", "onnxruntime", 98.0, 1.0, 2.0, 900.0)
    r.update(status="unstable", reason="CoV 31 % over 5 runs")
    assert "unstable" in render(100, rows=[r])
    assert "model.onnx (onnxruntime): unstable: CoV 31 % over 5 runs" in result_notes([r])
