"""The CLI as a user meets it: one line per bad input, non-zero exit, no traceback, nothing left."""

import numpy as np
import pytest
from click.testing import CliRunner

from mdnet_deploy.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, result.output
    for f in fragments:
        assert f in lines[0], lines[0]


def test_export_happy_path_prints_parity(tiny_ckpt, tmp_path):
    out = tmp_path / "out"
    result = run("export", tiny_ckpt, "-o", out, "--batch", "2", "--opset", "17")
    assert result.exit_code == 0, result.output
    assert "passed" in result.stdout and "max |diff|" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "model.onnx.json"]


@pytest.mark.parametrize(
    "make_args,fragments",
    [
        (lambda t, c: [t / "missing.pth"], ["does not exist"]),
        (lambda t, c: [_bytes(t / "rand.pth", np.random.default_rng(0).bytes(4096))], ["not a PyTorch checkpoint"]),
        (lambda t, c: [_bytes(t / "text.pth", b"hello world\n")], ["not a PyTorch checkpoint"]),
        (lambda t, c: [c, "--num-classes", "100"], ["--num-classes 100 contradicts", "10 classes"]),
        (lambda t, c: [c, "--labels", _bytes(t / "l.txt", b"a\nb\n")], ["labels file has 2 names", "10 classes"]),
        (lambda t, c: [c, "--mean", "0.5,0.5"], ["--mean '0.5,0.5' has 2 numbers"]),
        (lambda t, c: [c, "--std", "a,b,c"], ["--std 'a,b,c' is not a list of numbers"]),
        (lambda t, c: [c, "--batch", "zero"], ["--batch 'zero' is not valid"]),
    ],
)
def test_export_bad_input(tiny_ckpt, tmp_path, make_args, fragments):
    out = tmp_path / "out"
    result = run("export", *make_args(tmp_path, tiny_ckpt), "-o", out)
    assert_one_line_error(result, *fragments)
    assert not (out / "model.onnx").exists() and not (out / "model.onnx.json").exists()


def test_export_other_architecture(tmp_path):
    import torch

    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}, path)
    assert_one_line_error(run("export", path, "-o", tmp_path / "o"), "not an MDNET checkpoint")


def test_export_unwritable_output(tiny_ckpt, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(run("export", tiny_ckpt, "-o", blocker / "sub"), "cannot create output folder")


def test_export_pickled_module_needs_flag(tmp_path):
    import torch

    from mdnet_deploy.model.mdnet import create_model

    path = tmp_path / "whole.pth"
    torch.save(create_model(10, width=0.25), path)
    assert_one_line_error(run("export", path, "-o", tmp_path / "o"), "--trust-pickle")
    assert run("export", path, "-o", tmp_path / "o", "--trust-pickle").exit_code == 0


def test_train_writes_an_authors_format_checkpoint(tmp_path):
    import torch

    from mdnet_deploy.data import load_dataset

    # A small .npz keeps this fast; the recipe is the same on any data set.
    small = load_dataset("digits:train")
    np.savez(tmp_path / "small.npz", x=small.images[:48], y=small.labels[:48])
    out = tmp_path / "c.pth"
    result = run(
        "train",
        "--data",
        tmp_path / "small.npz",
        "--val",
        tmp_path / "small.npz",
        "-o",
        out,
        "--epochs",
        "1",
        "--width",
        "0.25",
        "--batch-size",
        "16",
        "--no-hflip",
    )
    assert result.exit_code == 0, result.output
    assert "epoch 1/1" in result.stderr and "val top-1" in result.stderr
    state = torch.load(out, weights_only=True)
    assert isinstance(state, dict) and "conv2.weight" in state and state["conv2.weight"].shape[0] == 10
    assert_one_line_error(run("train", "--data", "digits", "-o", out, "--epochs", "1"), "already exists", "--force")


def test_train_bad_data(tmp_path):
    assert_one_line_error(run("train", "--data", tmp_path / "none", "-o", tmp_path / "c.pth"), "does not exist")
    assert not (tmp_path / "c.pth").exists()


def _bytes(path, data):
    path.write_bytes(data)
    return path
