"""`compare`: row matching, thresholds, confidence intervals, and the exit status a CI gate relies on."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mdnet_deploy.cli import main
from mdnet_deploy.errors import InputError
from mdnet_deploy.reporting.compare import REGRESSION, SAME, WITHIN_NOISE, compare, match_rows, parse_thresholds


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text(json.dumps(rows))
    return path


def _run(base: Path, new: Path, *extra: str):
    return CliRunner().invoke(main, ["compare", str(base), str(new), *extra])


def _scaled(rows: list[dict], index: int, factor: float) -> list[dict]:
    out = copy.deepcopy(rows)
    out[index]["latency_ms"]["p50"] *= factor
    return out


def test_same_results_exit_zero(bench_rows: list[dict], tmp_path: Path) -> None:
    base = _write(tmp_path / "base.json", bench_rows)
    res = _run(base, base)
    assert res.exit_code == 0, res.output
    assert "no regression in 2 matched row(s)" in res.output


def test_slower_beyond_threshold_exits_non_zero(bench_rows: list[dict], tmp_path: Path) -> None:
    base = _write(tmp_path / "base.json", bench_rows)
    new = _write(tmp_path / "new.json", _scaled(bench_rows, 1, 1.5))
    res = _run(base, new, "--max-regression", "p50=10%,top1=0.5")
    assert res.exit_code == 8, res.output
    assert REGRESSION in res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "1 of 2 matched row(s) regressed" in errors[0] and "Traceback" not in res.output


def test_slower_within_threshold_exits_zero(bench_rows: list[dict], tmp_path: Path) -> None:
    base = _write(tmp_path / "base.json", bench_rows)
    new = _write(tmp_path / "new.json", _scaled(bench_rows, 1, 1.05))
    assert _run(base, new, "--max-regression", "p50=10%").exit_code == 0
    # An absolute limit in ms: 5 % of a sub-millisecond p50 is far below 1 ms.
    assert _run(base, new, "--max-regression", "p50=1").exit_code == 0


def _with_ci(rows: list[dict], index: int, lo: float, hi: float) -> list[dict]:
    p50 = rows[index]["latency_ms"]["p50"]
    rows[index]["latency_ms"]["p50_ci95"] = [p50 * lo, p50 * hi]
    return rows


def test_confidence_intervals_decide_what_is_noise(bench_rows: list[dict], tmp_path: Path) -> None:
    base_rows = _with_ci(copy.deepcopy(bench_rows), 1, 0.9, 1.1)
    base = _write(tmp_path / "base.json", base_rows)
    noisy = _write(tmp_path / "noisy.json", _with_ci(_scaled(base_rows, 1, 1.3), 1, 0.8, 1.3))
    res = _run(base, noisy, "--max-regression", "p50=10%")
    assert res.exit_code == 0, res.output  # +30 % but the intervals allow as little as +~0 %
    assert WITHIN_NOISE in res.output
    # The same change measured tightly is a regression.
    tight = _write(tmp_path / "tight.json", _with_ci(_scaled(base_rows, 1, 1.3), 1, 0.99, 1.01))
    assert _run(base, tight, "--max-regression", "p50=10%").exit_code == 8
    # Without intervals on one side there is nothing to discount: the threshold alone decides.
    plain = copy.deepcopy(bench_rows)
    assert _run(_write(tmp_path / "plain.json", plain), noisy, "--max-regression", "p50=10%").exit_code == 8


def _without_accuracy_ci(rows: list[dict]) -> list[dict]:
    rows = copy.deepcopy(rows)
    for r in rows:
        r["accuracy"].pop("top1_ci95", None)
    return rows


def test_accuracy_threshold_is_in_points(bench_rows: list[dict]) -> None:
    bench_rows = _without_accuracy_ci(bench_rows)
    new = copy.deepcopy(bench_rows)
    new[0]["accuracy"]["top1"] -= 1.0
    result = compare(bench_rows, new, parse_thresholds("top1=0.5"))
    assert [d.verdict for p in result.pairs for d in p.deltas] == [REGRESSION, SAME]
    new[0]["accuracy"]["top1"] += 0.7  # now 0.3 points down
    assert not compare(bench_rows, new, parse_thresholds("top1=0.5")).regressions


def test_accuracy_interval_of_a_small_eval_set_is_noise(bench_rows: list[dict]) -> None:
    if not bench_rows[0]["accuracy"].get("top1_ci95"):
        pytest.skip("this bench does not report a top-1 interval")
    new = copy.deepcopy(bench_rows)
    new[0]["accuracy"]["top1"] -= 1.0  # on 24 images the 95 % interval spans tens of points
    lo, hi = new[0]["accuracy"]["top1_ci95"]
    new[0]["accuracy"]["top1_ci95"] = [lo - 1.0, hi - 1.0]
    verdicts = [d.verdict for p in compare(bench_rows, new, parse_thresholds("top1=0.5")).pairs for d in p.deltas]
    assert verdicts == [WITHIN_NOISE, SAME]


def test_throughput_higher_is_better(bench_rows: list[dict]) -> None:
    new = copy.deepcopy(bench_rows)
    new[0]["throughput_ips"] *= 0.5
    new[1]["throughput_ips"] *= 2.0
    verdicts = [d.verdict for p in compare(bench_rows, new, parse_thresholds("ips=10%")).pairs for d in p.deltas]
    assert verdicts == [REGRESSION, "better"]


def test_a_row_that_fails_now_is_a_regression(bench_rows: list[dict], tmp_path: Path) -> None:
    new = copy.deepcopy(bench_rows)
    new[0].update(status="failed", reason="ONNX Runtime cannot open model.onnx", latency_ms=None, accuracy=None)
    res = _run(_write(tmp_path / "base.json", bench_rows), _write(tmp_path / "new.json", new))
    assert res.exit_code == 8, res.output
    assert "failed in the new results" in res.output


def test_rows_match_by_hash_then_name(bench_rows: list[dict]) -> None:
    new = copy.deepcopy(list(reversed(bench_rows)))
    new[0]["model"]["sha256"] = "0" * 64  # the INT8 model was re-made: its name and precision still match
    pairs, only_base, only_new = match_rows(bench_rows, new)
    assert not only_base and not only_new
    assert sorted(p.matched_by for p in pairs) == ["name and precision", "sha256"]
    assert all(p.base["model"]["path"] == p.new["model"]["path"] for p in pairs)


def test_other_device_or_runtime_does_not_match(bench_rows: list[dict], tmp_path: Path) -> None:
    new = copy.deepcopy(bench_rows)
    new[0]["device"]["name"] = "Raspberry Pi 5"
    new[1]["runtime"]["name"] = "tflite"
    pairs, only_base, only_new = match_rows(bench_rows, new)
    assert not pairs and len(only_base) == 2 and len(only_new) == 2
    res = _run(_write(tmp_path / "base.json", bench_rows), _write(tmp_path / "new.json", new))
    assert res.exit_code == 2 and "no row of" in res.stderr


@pytest.mark.parametrize("spec", ["p50", "speed=10%", "p50=-1%", "p50=nan", "p50=ten", ",", "size=1"])
def test_bad_thresholds_are_one_line_errors(spec: str) -> None:
    with pytest.raises(InputError, match="--max-regression"):
        parse_thresholds(spec)


def test_threshold_forms() -> None:
    ts = {t.metric.key: t for t in parse_thresholds("latency=10%, top-1=0.5,energy=5%,p99=2")}
    assert ts["p50"].relative and ts["p50"].amount == pytest.approx(0.1)
    assert not ts["top1"].relative and ts["top1"].amount == 0.5
    assert ts["mj"].amount == pytest.approx(0.05) and not ts["p99"].relative


def test_bad_files_are_one_line_errors(bench_rows: list[dict], tmp_path: Path) -> None:
    good = _write(tmp_path / "base.json", bench_rows)
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    for other, fragment in (
        (tmp_path / "missing.json", "does not exist"),
        (tmp_path / "bad.json", "not valid JSON"),
        (tmp_path / "other.json", "not a bench results file"),
        (tmp_path, "is a folder"),
    ):
        res = _run(good, other)
        assert res.exit_code == 2, res.output
        assert "Traceback" not in res.output and fragment in res.stderr
