"""Issue 10 (outputs): one overwrite rule, no command writes over its own inputs, umask modes, links kept.

The rule: a file the user named as output is replaced only with --force (--csv appends);
a file the command reads is never replaced, --force or not.
"""

from __future__ import annotations

import os
import stat

import pytest

from tests.helpers.bench import copy_model
from tests.helpers.cli import assert_one_line_error, run, tree
from tests.helpers.datasets import npz

FAST = ["--device", "host", "--warmup", "1", "--iterations", "3", "--power-meter", "none", "--threads", "1"]


@pytest.fixture
def onnx_copy(tiny_onnx, tmp_path):
    pytest.importorskip("onnxruntime")
    return copy_model(tiny_onnx, tmp_path / "m")


def test_export_needs_force_to_overwrite(tiny_ckpt, tmp_path):
    """`export c.pth -o out` twice: the second replaced out/model.onnx silently; now it needs --force."""
    out = tmp_path / "out"
    assert run("export", tiny_ckpt, "-o", out, "--no-simplify").exit_code == 0
    before = (out / "model.onnx").read_bytes()
    assert_one_line_error(run("export", tiny_ckpt, "-o", out, "--no-simplify"), "model.onnx already exists", "--force")
    assert (out / "model.onnx").read_bytes() == before
    assert run("export", tiny_ckpt, "-o", out, "--no-simplify", "--force").exit_code == 0


def test_pack_eval_needs_force_to_overwrite(tmp_path):
    """`pack-eval s.npz -o e.npz` twice: the second replaced e.npz silently."""
    spec = npz(tmp_path / "s.npz")
    assert run("pack-eval", spec, "-o", tmp_path / "e.npz").exit_code == 0
    assert_one_line_error(run("pack-eval", spec, "-o", tmp_path / "e.npz"), "already exists", "--force")
    assert run("pack-eval", spec, "-o", tmp_path / "e.npz", "--force").exit_code == 0


def test_pack_eval_never_writes_over_its_input(tmp_path):
    """`pack-eval s.npz -o s.npz --force`: the source set would be replaced by its own pack."""
    spec = npz(tmp_path / "s.npz")
    before = spec.read_bytes()
    assert_one_line_error(run("pack-eval", spec, "-o", spec, "--force"), "is also an input")
    assert spec.read_bytes() == before


def test_bench_json_needs_force(onnx_copy, tmp_path):
    """`bench -m m.onnx --json r.json` with r.json present: was silently replaced."""
    (tmp_path / "r.json").write_text("[]")
    assert_one_line_error(run("bench", *FAST, "-m", onnx_copy, "--json", tmp_path / "r.json"), "--json", "--force")
    assert (tmp_path / "r.json").read_text() == "[]"


@pytest.mark.parametrize("target", ["model", "sidecar"])
def test_bench_json_never_replaces_the_model_or_its_sidecar(onnx_copy, tmp_path, target):
    """`bench -m m.onnx --json m.onnx` (or m.onnx.json): the model was replaced by the results and the exit was 0."""
    path = onnx_copy if target == "model" else onnx_copy.with_name(onnx_copy.name + ".json")
    before = path.read_bytes()
    assert_one_line_error(run("bench", *FAST, "-m", onnx_copy, "--json", path, "--force"), "is also an input")
    assert path.read_bytes() == before


def test_quantize_never_writes_over_its_model(tmp_path, tiny_onnx):
    """`quantize m.onnx -o m.onnx --force`: the float model would be replaced by its INT8 version."""
    model = copy_model(tiny_onnx, tmp_path / "m")
    before = model.read_bytes()
    res = run("quantize", model, "--calib", npz(tmp_path / "c.npz"), "-o", model, "--force")
    assert_one_line_error(res, "is also an input")
    assert model.read_bytes() == before


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_outputs_get_the_umask_mode(tmp_path, mask, mode):
    """`umask 022; pack-eval s.npz -o e.npz`: e.npz was 0600 whatever the umask (mkstemp's mode, renamed)."""
    spec = npz(tmp_path / "s.npz")
    old = os.umask(mask)
    try:
        assert run("pack-eval", spec, "-o", tmp_path / "e.npz").exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "e.npz").stat().st_mode) == mode


def test_artifact_and_sidecar_get_the_umask_mode(tiny_ckpt, tmp_path):
    """`umask 022; export c.pth -o out`: model.onnx (published with its sidecar by artifact.publish) was 0600."""
    old = os.umask(0o022)
    try:
        assert run("export", tiny_ckpt, "-o", tmp_path / "out", "--no-simplify").exit_code == 0
    finally:
        os.umask(old)
    for name in ("model.onnx", "model.onnx.json"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o644, name


def test_csv_symlink_stays_a_link(onnx_copy, tmp_path):
    """`bench --csv link.csv` where link.csv -> real.csv: the link was replaced by a private regular file."""
    real = tmp_path / "real.csv"
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    res = run("bench", *FAST, "-m", onnx_copy, "--csv", link)
    assert res.exit_code == 0, res.output
    assert link.is_symlink() and real.is_file() and len(real.read_text().splitlines()) == 2


def test_csv_with_other_columns_is_refused_before_the_bench(tmp_path):
    """`bench -m missing.onnx --csv other.csv`: a foreign CSV was rejected only after the whole bench."""
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    # The model does not even exist: the CSV is refused first, before anything would run.
    assert_one_line_error(run("bench", *FAST, "-m", tmp_path / "missing.onnx", "--csv", other), "other columns")
    assert other.read_text() == "a,b\n1,2\n"


@pytest.mark.parametrize("command", ["pack-eval", "export"])
def test_output_path_with_brackets(tmp_path, tiny_ckpt, command):
    """`pack-eval s.npz -o 'r[/i]x.npz'` (or export -o 'o[/b]'): rich read the path as markup and crashed after writing, exit 1."""
    if command == "pack-eval":
        out = tmp_path / "r[" / "i]x.npz"
        res = run("pack-eval", npz(tmp_path / "s.npz"), "-o", out)
        written = out
    else:
        out = tmp_path / "o[" / "b]"
        res = run("export", tiny_ckpt, "-o", out, "--no-simplify")
        written = out / "model.onnx"
    assert res.exit_code == 0, res.output
    assert written.is_file() and str(written) in res.stdout.replace("\n", "")


def test_compile_keeps_an_existing_log(tmp_path, tiny_ckpt, monkeypatch):
    """`compile c.pth --target tflite -o m.tflite` with the user's m.tflite.log present: it was overwritten, then deleted."""
    litert_torch = pytest.importorskip("litert_torch")

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt  # what Ctrl-C (and now SIGTERM/SIGHUP) looks like inside the converter

    monkeypatch.setattr(litert_torch, "convert", interrupted)
    (tmp_path / "m.tflite.log").write_text("my notes\n")
    res = run("compile", tiny_ckpt, "--target", "tflite", "--precision", "fp32", "-o", tmp_path / "m.tflite")
    assert res.exit_code == 130, res.output
    assert (tmp_path / "m.tflite.log").read_text() == "my notes\n"
    assert tree(tmp_path) == ["m.tflite.log"]
