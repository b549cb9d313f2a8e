"""Issue 10: every failure the CLI meets is one `error:` line; bad sidecars fail their own row only."""

from __future__ import annotations

import json

import pytest

from tests.helpers.bench import copy_model
from tests.helpers.cli import assert_one_line_error, run

FAST = ["--device", "host", "--warmup", "1", "--iterations", "3", "--power-meter", "none", "--threads", "1"]


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["export", "c.pth", "--opset", "x"], "'x' is not a valid integer"),
        (["bench", "-m", "m.onnx", "--batch", "two"], "'two' is not a valid integer"),
        (["bench", "-m", "m.onnx", "--runtime", "tensorflow"], "'tensorflow' is not one of"),
        (["export"], "Missing argument 'CHECKPOINT'"),
        (["exprot"], "No such command 'exprot'"),
        (["export", "c.pth", "--no-such-flag"], "--no-such-flag"),
    ],
)
def test_click_usage_errors_are_one_line(args, fragment):
    """`export c.pth --opset x`: click printed Usage, Try, a blank line and `Error: ...` (four lines)."""
    res = run(*args)
    line = assert_one_line_error(res, fragment, "--help", code=2)
    assert res.stderr.strip() == line  # nothing else: no Usage: block


def test_bench_duration_inf_fails_before_running(tmp_path):
    """`bench -m m.onnx --duration inf`: OverflowError late, after loading everything."""
    assert_one_line_error(
        run("bench", "-m", tmp_path / "missing.onnx", "--duration", "inf"), "--duration inf", "finite"
    )
    assert_one_line_error(run("bench", "-m", tmp_path / "missing.onnx", "--duration", "nan"), "--duration nan")


def test_json_hint_names_json_not_o(tmp_path):
    """`bench --json /unwritable/r.json`: the hint said "choose a writable location with -o", which bench does not have."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = assert_one_line_error(run("bench", "-m", tmp_path / "m.onnx", "--json", blocker / "r.json"))
    assert "--json" in line and " -o" not in line


def test_bench_has_the_trust_pickle_it_names(tmp_path):
    """The --trust-pickle hint for a .pth or CIFAR --eval in bench named an option bench did not have."""
    res = run("bench", "--help")
    assert "--trust-pickle" in res.output and "--force" in res.output


def test_unexpected_exception_is_one_line(monkeypatch, tmp_path):
    """A bug inside a command (any non-mdnet exception) printed a traceback; now one line that says how to get it."""
    import mdnet_deploy.bench.evalset as evalset

    def boom(*_a, **_k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(evalset, "pack_eval", boom)
    line = assert_one_line_error(
        run("pack-eval", "digits", "-o", tmp_path / "e.npz"),
        "internal error",
        "ZeroDivisionError",
        "MDNET_DEPLOY_DEBUG=1",
    )
    assert "\n" not in line


@pytest.mark.parametrize(
    "sidecar",
    [
        {"preprocessing": {"mean": "a"}},
        {"preprocessing": "not a dict"},
        {"input": ["a", "list"]},
        {"num_classes": "ten"},
    ],
)
def test_bad_sidecar_fails_its_own_row_only(tiny_onnx, tmp_path, sidecar):
    """`bench -m good.onnx -m bad.onnx` where bad.onnx.json has a wrongly typed field: no table at all was printed."""
    pytest.importorskip("onnxruntime")
    good = copy_model(tiny_onnx, tmp_path / "good")
    bad = copy_model(tiny_onnx, tmp_path / "bad")
    side = bad.with_name(bad.name + ".json")
    meta = json.loads(side.read_text())
    for key, value in sidecar.items():
        meta[key] = {**meta[key], **value} if isinstance(value, dict) and isinstance(meta.get(key), dict) else value
    side.write_text(json.dumps(meta))
    res = run("bench", *FAST, "-m", good, "-m", bad, "--json", tmp_path / "r.json")
    assert res.exit_code == 7, res.output
    assert "Traceback" not in res.output
    rows = json.loads((tmp_path / "r.json").read_text())
    assert len(rows) == 2 and rows[0]["status"] != "failed" and rows[1]["status"] == "failed"
    assert str(side) in rows[1]["reason"] and "\n" not in rows[1]["reason"]
