"""Issue 10 (security): a data set must never run code. CIFAR pickles go through a restricted unpickler.

Reproduction before the fix: a CIFAR-100 folder whose ``meta`` pickles an object with a
``__reduce__`` (here ``os.mkdir(canary)``) ran it through pack-eval, quantize --calib,
bench --eval, export --data and train --data.
"""

from __future__ import annotations

import pytest

from tests.helpers.cli import assert_one_line_error, run
from tests.helpers.datasets import Payload, cifar10, cifar100


def _commands(tmp_path, tiny_ckpt, tiny_onnx, spec):
    return {
        "pack-eval": ["pack-eval", spec, "-o", tmp_path / "e.npz"],
        "export --data": ["export", tiny_ckpt, "--data", spec, "-o", tmp_path / "out"],
        "train --data": ["train", "--data", spec, "-o", tmp_path / "t.pth", "--epochs", "1", "--width", "0.25"],
        "bench --eval": [
            "bench",
            "--device",
            "host",
            "-m",
            tiny_ckpt,
            "--eval",
            spec,
            "--iterations",
            "2",
            "--warmup",
            "1",
            "--power-meter",
            "none",
        ],
        "quantize --calib": ["quantize", tiny_onnx, "--calib", spec, "-o", tmp_path / "q.onnx"],
    }


@pytest.mark.parametrize("command", ["pack-eval", "export --data", "train --data", "bench --eval", "quantize --calib"])
def test_malicious_cifar_meta_runs_no_code_in_any_command(command, tmp_path, tiny_ckpt, tiny_onnx):
    """`<command> cifar/` where cifar/meta pickles os.mkdir(canary): refused, naming --trust-pickle; canary absent."""
    canary = tmp_path / "PWNED"
    spec = str(cifar100(tmp_path / "cifar", meta_extra=Payload(canary)))
    line = assert_one_line_error(
        run(*_commands(tmp_path, tiny_ckpt, tiny_onnx, spec)[command]), "--trust-pickle", "meta"
    )
    assert "posix.mkdir" in line or "os.mkdir" in line
    assert not canary.exists()


def test_malicious_cifar10_batch_runs_no_code(tmp_path):
    """`pack-eval cifar10/` where test_batch pickles os.mkdir(canary): refused; canary absent; no output."""
    canary = tmp_path / "PWNED"
    spec = cifar10(tmp_path / "c10", batch_extra=Payload(canary))
    assert_one_line_error(run("pack-eval", spec, "-o", tmp_path / "e.npz"), "test_batch", "--trust-pickle")
    assert not canary.exists() and not (tmp_path / "e.npz").exists()


def test_trust_pickle_loads_what_the_user_vouches_for(tmp_path):
    """`pack-eval cifar/ --trust-pickle` with an extra pickled object: loaded (the user trusts the source)."""
    canary = tmp_path / "TRUSTED"
    spec = cifar100(tmp_path / "cifar", meta_extra=Payload(canary))
    res = run("pack-eval", spec, "-o", tmp_path / "e.npz", "--trust-pickle")
    assert res.exit_code == 0, res.output
    assert canary.exists()  # plain pickle ran it: that is what --trust-pickle means


def test_real_cifar_files_load_without_trust(tmp_path):
    """Honest CIFAR-10 and CIFAR-100 folders (dicts, lists, bytes, numpy arrays) need no flag."""
    for spec in (cifar10(tmp_path / "c10"), cifar100(tmp_path / "c100")):
        res = run("pack-eval", spec, "-o", tmp_path / f"{spec.name}.npz")
        assert res.exit_code == 0, res.output
