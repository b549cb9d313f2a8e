"""``deploy --device host`` for real on this machine: tiny width-0.25 MDNET, small digits subsets.

Accuracy of the untrained test model is not asserted (it holds by nothing);
the choice is checked against the rows the run itself wrote. Where a test
needs given latencies or accuracies, a bench-result-level double wraps the
real local bench and changes only those figures.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mdnet_deploy.deploy import core
from mdnet_deploy.deploy.core import deploy
from tests.helpers.cli import assert_one_line_error
from tests.helpers.cli import run as run_cli
from tests.helpers.deploy import config, quick_args

QUICK = quick_args()

pytestmark = pytest.mark.timeout(900)


def no_partials(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if "partial" in p.name)


@pytest.fixture(scope="module")
def full(tiny_ckpt: Path, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("deploy") / "out"
    return out, run_cli("deploy", tiny_ckpt, "--device", "host", *QUICK, "-o", out)


def test_host_deploy_builds_benches_and_keeps_the_fastest_within_budget(full):
    out, result = full
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "deploy.json").read_text())
    (dev,) = doc["devices"]
    names = [c["name"] for c in dev["candidates"]]
    assert names == ["onnx-fp32", "onnx-int8", "tflite-fp32", "tflite-int8"]
    for c in dev["candidates"]:
        assert c["build"]["ok"], c
        assert Path(c["file"]).is_file() and Path(c["file"] + ".json").is_file()
        assert c["bench"]["device"]["kind"] == "host" and c["bench"]["accuracy"]["n"] == 40
        assert c["reason"], c  # every row says why it won or lost
    assert dev["reference"] == "onnx-fp32"
    # The winner is the lowest p50 among the rows within budget, by the run's own figures.
    # Rows whose timing is unstable (a loaded machine) win only when no stable one is within budget.
    within = [c for c in dev["candidates"] if c["outcome"] in ("chosen", "lost")]
    pool = [c for c in within if c["bench"]["status"] == "ok"] or within
    fastest = min(pool, key=lambda c: (c["bench"]["latency_ms"]["p50"], -c["bench"]["accuracy"]["top1"]))
    assert dev["chosen"] == fastest["name"]
    best = out / "host" / ("best" + Path(fastest["file"]).suffix)
    assert best.read_bytes() == Path(fastest["file"]).read_bytes()
    assert json.loads(Path(str(best) + ".json").read_text()) == json.loads(Path(fastest["file"] + ".json").read_text())
    assert not list((out / "host").glob("best-over-budget*"))
    # One table with the winner marked, and where things were written.
    assert "★ chosen" in result.stdout and "wrote" in result.stdout
    assert no_partials(out) == []


def test_pipeline_yaml_records_options_hashes_and_tools(full, tiny_ckpt):
    import yaml

    out, _ = full
    data = yaml.safe_load((out / "pipeline.yaml").read_text())
    assert data["pipeline"] == 1 and data["command"] == "deploy"
    assert data["options"]["device"] == "host" and data["options"]["eval"] == "digits:test"
    assert data["options"]["eval_size"] == 40 and data["options"]["mean"] == [0.5, 0.5, 0.5]
    assert "accept_new_host_key" not in data["options"] and "force" not in data["options"]
    from mdnet_deploy.fsutil import sha256_file

    assert data["inputs"]["checkpoint"]["sha256"] == sha256_file(tiny_ckpt)
    assert set(data["inputs"]) == {"checkpoint", "calib", "eval"}
    assert {"mdnet-deploy", "onnxruntime", "python"} <= set(data["tools"])


def test_run_says_which_inputs_changed(full, tiny_ckpt, tmp_path):
    import torch
    import yaml

    out, _ = full
    ckpt = tmp_path / "ckpt.pth"
    shutil.copyfile(tiny_ckpt, ckpt)
    data = yaml.safe_load((out / "pipeline.yaml").read_text())
    data["checkpoint"] = str(ckpt)
    pipe = tmp_path / "pipeline.yaml"
    pipe.write_text(yaml.safe_dump(data))
    same = run_cli("run", pipe, "--check")
    assert same.exit_code == 0, same.output
    assert "0 of 3 input(s) changed" in same.stdout
    state = torch.load(ckpt, weights_only=True)
    key = next(iter(state))
    state[key] = state[key] + 1.0
    torch.save(state, ckpt)
    changed = run_cli("run", pipe, "--check")
    assert changed.exit_code == 0, changed.output
    assert "input checkpoint: CHANGED" in changed.stdout and "input eval: unchanged" in changed.stdout
    assert "1 of 3 input(s) changed" in changed.stdout


def test_run_repeats_a_deploy_into_a_new_folder(tiny_ckpt, tmp_path):
    first = tmp_path / "first"
    r = run_cli(
        "deploy", tiny_ckpt, "--device", "host", *QUICK, "--candidates", "onnx-int8", "--objective", "size", "-o", first
    )
    assert r.exit_code == 0, r.output
    again = run_cli("run", first / "pipeline.yaml")
    assert_one_line_error(again, "already holds a deploy", "--force")
    second = tmp_path / "second"
    r2 = run_cli("run", first / "pipeline.yaml", "-o", second)
    assert r2.exit_code == 0, r2.output
    assert "0 of 3 input(s) changed" in r2.stdout
    a, b = (json.loads((d / "deploy.json").read_text())["devices"][0] for d in (first, second))
    assert [c["name"] for c in a["candidates"]] == [c["name"] for c in b["candidates"]] == ["onnx-fp32", "onnx-int8"]
    assert a["objective"] == b["objective"] == "size"


def test_size_objective_keeps_the_smallest_file_within_budget(tiny_ckpt, tmp_path):
    result = deploy(config(tiny_ckpt, tmp_path / "o", objective="size", candidates=("onnx-fp32", "onnx-int8")))
    (d,) = result.devices
    within = [c for c in d.candidates if d.choice.verdict(c.spec.name).outcome in ("chosen", "lost")]
    smallest = min(within, key=lambda c: c.built.path.stat().st_size)
    assert d.choice.chosen == smallest.spec.name and d.best is not None
    for c in within:
        if c is not smallest:
            assert d.choice.verdict(c.spec.name).reason.startswith("larger:")


def _double(changes: dict[str, dict]):
    """A bench-result-level double: the real local bench, then the given figures replace the measured ones."""

    real = core.local_bench

    def bench(paths, device, eval_npz, cfg, say):
        rows = real(paths, device, eval_npz, cfg, say)
        for row in rows:
            name = Path(row["model"]["path"]).stem
            for key, value in changes.get(name, {}).items():
                if key == "top1_delta":
                    row["accuracy"]["top1"] += value
                else:
                    row["latency_ms"][key] = value
            if name in changes and row["status"] == "unstable":
                # The given figures are the measurement: this machine's load must not make them "unstable".
                row["status"], row["reason"] = "ok", None
        return rows

    return bench


def test_given_latencies_decide_the_winner(tiny_ckpt, tmp_path):
    bench = _double({"onnx-fp32": {"p50": 5.0}, "onnx-int8": {"p50": 1.0}})
    result = deploy(config(tiny_ckpt, tmp_path / "o", candidates=("onnx-fp32", "onnx-int8")), bench=bench)
    (d,) = result.devices
    top1 = {c.spec.name: c.row["accuracy"]["top1"] for c in d.candidates}
    if top1["onnx-fp32"] - top1["onnx-int8"] <= 0.5:  # int8 within the budget (the usual case)
        assert d.choice.chosen == "onnx-int8"
        assert d.choice.verdict("onnx-fp32").reason.startswith("too slow: p50 5.000 ms vs p50 1.000 ms")
    bench = _double({"onnx-fp32": {"p50": 1.0}, "onnx-int8": {"p50": 5.0}})
    result = deploy(config(tiny_ckpt, tmp_path / "o", candidates=("onnx-fp32", "onnx-int8"), force=True), bench=bench)
    assert result.devices[0].choice.chosen == "onnx-fp32"


def test_no_candidate_within_budget_exits_non_zero_and_keeps_best_over_budget(tiny_ckpt, tmp_path, monkeypatch):
    monkeypatch.setattr(core, "local_bench", _double({"onnx-int8": {"top1_delta": -5.0}}))
    out = tmp_path / "o"
    r = run_cli("deploy", tiny_ckpt, "--device", "host", *QUICK, "--candidates", "onnx-int8", "-o", out)
    assert_one_line_error(r, "no candidate within --max-drop 0.5", "best-over-budget.onnx")
    assert r.exit_code == 4
    assert (out / "host" / "best-over-budget.onnx").is_file() and (
        out / "host" / "best-over-budget.onnx.json"
    ).is_file()
    assert not list((out / "host").glob("best.*"))
    dev = json.loads((out / "deploy.json").read_text())["devices"][0]
    assert dev["chosen"] is None and dev["best_over_budget"].endswith("best-over-budget.onnx")
    rows = {c["name"]: c for c in dev["candidates"]}
    assert rows["onnx-int8"]["outcome"] == "over-budget" and "over budget" in rows["onnx-int8"]["reason"]
    assert rows["onnx-fp32"]["outcome"] == "reference-only"
    assert "over budget" in r.stdout


def test_a_failing_candidate_gets_a_failed_row_while_the_others_finish(tiny_ckpt, tmp_path, monkeypatch):
    from mdnet_deploy.errors import ConversionError
    from mdnet_deploy.export.tflite import compile as tflite_compile

    real = tflite_compile.convert_tflite

    def broken(source, out, precision="fp32", **kw):
        if precision == "int8":
            raise ConversionError("litert-torch failed on this model (injected)")
        return real(source, out, precision, **kw)

    monkeypatch.setattr(tflite_compile, "convert_tflite", broken)
    out = tmp_path / "o"
    r = run_cli(
        "deploy", tiny_ckpt, "--device", "host", *QUICK, "--candidates", "onnx-fp32,onnx-int8,tflite-int8", "-o", out
    )
    assert r.exit_code == 0, r.output
    rows = {c["name"]: c for c in json.loads((out / "deploy.json").read_text())["devices"][0]["candidates"]}
    assert rows["tflite-int8"]["outcome"] == "failed" and "injected" in rows["tflite-int8"]["reason"]
    assert rows["tflite-int8"]["file"] is None and not (out / "host" / "candidates" / "tflite-int8.tflite").exists()
    assert rows["onnx-int8"]["bench"]["status"] in ("ok", "unstable")  # measured (unstable: a loaded machine)
    assert list((out / "host").glob("best.*"))
    assert no_partials(out) == []


def test_an_interrupted_deploy_leaves_no_half_written_candidate(tiny_ckpt, tmp_path):
    out = tmp_path / "o"

    def progress(line: str) -> None:
        if line.endswith("tflite-fp32: verify"):  # the .tflite bytes exist, not yet verified
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        deploy(config(tiny_ckpt, out, candidates=("tflite-fp32",)), progress=progress)
    cands = out / "host" / "candidates"
    assert sorted(p.name for p in cands.iterdir()) == ["onnx-fp32.onnx", "onnx-fp32.onnx.json"]
    assert no_partials(out) == []
    assert not (out / "deploy.json").exists() and not list((out / "host").glob("best*"))


def test_bad_inputs_are_one_line_errors(tiny_ckpt, tmp_path, full):
    out, _ = full
    r = run_cli("deploy", tiny_ckpt, "--device", "host", *QUICK, "-o", out)
    assert_one_line_error(r, "already holds a deploy", "--force")
    r = run_cli("deploy", tiny_ckpt, "--device", "jetson", *QUICK, "-o", tmp_path / "j")
    assert_one_line_error(r, "--host")
    r = run_cli("deploy", tiny_ckpt, "--device", "host", "--host", "pi@example", *QUICK, "-o", tmp_path / "h")
    assert_one_line_error(r, "drop --host")
    r = run_cli("deploy", tiny_ckpt, "--device", "host", *QUICK, "--candidates", "trt-int8", "-o", tmp_path / "c")
    assert_one_line_error(r, "trt-int8", "onnx-fp32")
    r = run_cli("deploy", tiny_ckpt, "--device", "host", *QUICK, "--max-drop", "-1", "-o", tmp_path / "m")
    assert_one_line_error(r, "--max-drop")
    r = run_cli("deploy", tmp_path / "missing.pth", "--device", "host", *QUICK, "-o", tmp_path / "x")
    assert_one_line_error(r, "missing.pth")
    for folder in ("j", "h", "c", "m", "x"):
        assert not (tmp_path / folder).exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline: 1\ncommand: deploy\ncheckpoint: !!python/object/apply:os.system ['echo pwned']\n")
    assert_one_line_error(run_cli("run", bad), "not valid YAML")
    bad.write_text(
        "pipeline: 1\ncommand: deploy\ncheckpoint: a.pth\noutput: o\noptions: {device: host, calib: digits, eval: digits, shell: x}\n"
    )
    assert_one_line_error(run_cli("run", bad), "unknown option 'shell'")
    assert_one_line_error(run_cli("run", tmp_path / "nope.yaml"), "does not exist")


def test_judge_tflite_scores_the_tflite_fallback_search_on_litert(tiny_ckpt, tmp_path):
    out = tmp_path / "o"
    result = deploy(config(tiny_ckpt, out, candidates=("tflite-int8",), judge="tflite", max_drop=100.0))
    report = json.loads((out / "build" / "model.int8-tflite.report.json").read_text())
    assert report["accuracy"]["evaluator"] == "tflite"
    (d,) = result.devices
    assert d.choice.verdict("tflite-int8").outcome != "failed", d.choice.verdict("tflite-int8").reason
    r = run_cli("deploy", tiny_ckpt, "--device", "host", *QUICK, "--judge", "tpu", "-o", tmp_path / "j")
    assert r.exit_code != 0 and "tpu" in r.output


def test_a_bad_data_spec_fails_before_outdir_is_touched(tiny_ckpt, tmp_path):
    r = run_cli("deploy", tiny_ckpt, "--device", "host", *QUICK[:2], "--eval", tmp_path / "nope", "-o", tmp_path / "o")
    assert_one_line_error(r, "nope")
    assert not (tmp_path / "o").exists()
