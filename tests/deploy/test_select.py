"""The choice on bench-result-level test doubles: latencies, energies and accuracies are given, nothing runs."""

from __future__ import annotations

import pytest

from mdnet_deploy.deploy.select import Measured, choose, measured_from_row


def m(
    name,
    top1,
    p50=1.0,
    size=1_000_000,
    status="ok",
    ref=False,
    joules=None,
    reason=None,
    selectable=True,
    precision="int8",
):
    return Measured(
        name,
        "onnx",
        precision,
        status,
        reason,
        size_bytes=size,
        top1=top1,
        p50_ms=p50,
        joules=joules,
        reference=ref,
        selectable=selectable,
        energy_unavailable=None if joules else "no meter here",
    )


def test_fastest_within_budget_wins_and_slower_ones_say_by_how_much():
    rows = [m("fp32", 98.0, p50=4.0, ref=True, precision="fp32"), m("int8", 97.8, p50=2.0), m("fp16", 98.0, p50=3.0)]
    c = choose(rows, "latency", 0.5)
    assert c.chosen == "int8" and c.reference == "fp32" and c.reference_top1 == 98.0
    assert c.verdict("fp16").outcome == "lost" and c.verdict("fp16").reason.startswith(
        "too slow: p50 3.000 ms vs p50 2.000 ms"
    )
    assert c.verdict("fp32").outcome == "lost"
    assert c.verdict("int8").drop == pytest.approx(0.2)


def test_faster_but_over_budget_loses_with_the_drop_named():
    rows = [m("fp32", 98.0, p50=4.0, ref=True), m("int8", 96.0, p50=1.0)]
    c = choose(rows, "latency", 0.5)
    assert c.chosen == "fp32"
    v = c.verdict("int8")
    assert v.outcome == "over-budget" and "2.00 points below the float 98.00 %" in v.reason


def test_size_objective_picks_the_smallest_file_within_budget():
    rows = [
        m("fp32", 98.0, p50=1.0, size=9_000_000, ref=True),
        m("fp16", 98.0, p50=1.0, size=4_700_000),
        m("int8", 97.0, p50=0.5, size=2_800_000),
    ]
    c = choose(rows, "size", 0.5)
    assert c.chosen == "fp16"  # int8 is smaller but 1 point below the float top-1
    assert c.verdict("fp32").reason.startswith("larger: 9.00 MB vs 4.70 MB")
    assert c.verdict("int8").outcome == "over-budget"


def test_ties_go_to_higher_top1_then_smaller_file():
    rows = [m("a", 98.0, p50=1.0, size=5, ref=True), m("b", 98.2, p50=1.0, size=9), m("c", 98.2, p50=1.0, size=3)]
    assert choose(rows, "latency", 0.5).chosen == "c"


def test_failed_and_unstable_rows_lose_with_their_reason():
    rows = [
        m("fp32", 98.0, p50=4.0, ref=True),
        m("int8", 98.0, p50=1.0, status="unstable", reason="cov 0.4 > 0.1"),
        m("tfl", None, status="failed", reason="runtime crashed"),
    ]
    c = choose(rows, "latency", 0.5)
    assert c.chosen == "fp32"
    assert c.verdict("int8").reason == "unstable: cov 0.4 > 0.1"
    assert c.verdict("tfl").outcome == "failed" and "runtime crashed" in c.verdict("tfl").reason


def test_only_unstable_rows_within_budget_still_give_a_winner_that_says_so():
    rows = [m("fp32", 98.0, p50=4.0, ref=True, status="unstable"), m("int8", 98.0, p50=1.0, status="unstable")]
    c = choose(rows, "latency", 0.5)
    assert c.chosen == "int8" and "unstable" in c.verdict("int8").reason


def test_energy_objective_never_guesses_an_unmeasured_figure():
    rows = [m("fp32", 98.0, ref=True), m("int8", 98.0)]
    c = choose(rows, "energy", 0.5)
    assert c.chosen is None and c.best_over_budget is None
    assert all(v.outcome == "unmeasured" and "no meter here" in v.reason for v in c.verdicts)
    rows = [m("fp32", 98.0, ref=True, joules=0.004), m("int8", 98.0, joules=0.002)]
    assert choose(rows, "energy", 0.5).chosen == "int8"


def test_no_candidate_within_budget_names_the_closest_over_budget_one():
    rows = [m("fp32", 98.0, ref=True, selectable=False), m("int8-a", 95.0, p50=1.0), m("int8-b", 96.5, p50=2.0)]
    c = choose(rows, "latency", 0.5)
    assert c.chosen is None and c.best_over_budget == "int8-b"
    assert c.verdict("fp32").outcome == "reference-only"
    assert "no candidate within --max-drop 0.5" in c.message


def test_without_a_measured_float_reference_nothing_is_judged():
    rows = [m("fp32", None, status="failed", ref=True, reason="no runtime"), m("int8", 98.0)]
    c = choose(rows, "latency", 0.5)
    assert c.chosen is None and c.reference is None
    assert "no float reference" in c.message and "no runtime" in c.message


def test_first_measured_reference_is_used_when_an_earlier_one_failed():
    rows = [
        m("onnx-fp32", None, status="failed", ref=True),
        m("tflite-fp32", 97.0, p50=2.0, ref=True),
        m("int8", 96.8, p50=1.0),
    ]
    c = choose(rows, "latency", 0.5)
    assert c.reference == "tflite-fp32" and c.chosen == "int8"


def test_bench_rows_map_to_measured_figures():
    row = {
        "status": "ok",
        "reason": None,
        "runtime": {"name": "tflite"},
        "model": {"size_mb": 2.5},
        "accuracy": {"top1": 97.5},
        "latency_ms": {"p50": 1.25},
        "energy": None,
        "energy_unavailable": "no RAPL",
    }
    got = measured_from_row("tflite-int8", row, fmt="tflite", precision="int8", reference=False)
    assert (got.status, got.runtime, got.size_bytes, got.top1, got.p50_ms, got.joules) == (
        "ok",
        "tflite",
        2_500_000,
        97.5,
        1.25,
        None,
    )
    assert got.energy_unavailable == "no RAPL"
    missing = measured_from_row("x", None, fmt="onnx", precision="fp32", reference=True)
    assert missing.status == "failed" and "no result" in missing.reason
    odd = measured_from_row("y", {"status": "weird"}, fmt="onnx", precision="fp32", reference=False)
    assert odd.status == "failed"


def test_unstable_timing_does_not_matter_for_the_size_objective():
    rows = [m("fp32", 98.0, size=9, ref=True), m("int8", 98.0, size=3, status="unstable", reason="cov 0.4")]
    c = choose(rows, "size", 0.5)
    assert c.chosen == "int8" and "unstable" not in c.verdict("int8").reason
