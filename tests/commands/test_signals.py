"""Issue 10 (interrupts): SIGINT, SIGTERM and SIGHUP while a command writes leave nothing behind.

Reproduction before the fix: `timeout 5 mdnet-deploy export c.pth -o out` (SIGTERM) left
`out/.model.onnx.*.partial`; quantize left `/tmp/mdnet-quantize-*`; compile its `.log`.
Each test starts the real CLI in a subprocess, waits until the in-progress file exists,
sends the signal, and checks the exit status, the one `error:` line and that nothing is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.helpers.datasets import npz

ROOT = Path(__file__).resolve().parents[2]
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


def interrupt_when(
    argv: list[str], ready: Callable[[], bool], sig: int, tmpdir: Path, timeout: float = 240.0
) -> subprocess.CompletedProcess:
    """Run the CLI; once ``ready()`` holds, send ``sig``; return the finished process."""
    env = {**os.environ, "TMPDIR": str(tmpdir), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdnet_deploy", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmpdir.parent,
    )
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(
                    f"the command ended (exit {proc.returncode}) before the signal could be sent:\n{err[-2000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail("the in-progress file never appeared")
            time.sleep(0.002)
        # A moment inside the step, as a real signal would land (not in the microseconds
        # between a temporary folder's mkdir and the `with` that owns it).
        time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def check_clean_exit(res: subprocess.CompletedProcess, sig: int) -> None:
    assert res.returncode == 128 + sig, res.stderr[-2000:]
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert errors == ["error: interrupted; no partial outputs were kept"], res.stderr[-2000:]


def leftovers(*folders: Path) -> list[str]:
    """Our traces: mdnet-* work folders, .partial files, logs and artifacts (other libraries' files in $TMPDIR are theirs)."""
    return sorted(
        str(p)
        for f in folders
        for p in f.rglob("*")
        if "mdnet" in p.name or p.suffix in (".partial", ".log", ".onnx", ".tflite", ".json")
    )


@pytest.fixture
def dirs(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    return tmp_path, tmpdir


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_export_interrupted_while_writing(sig, tiny_ckpt, dirs):
    """`export tiny.pth -o out`, signalled while out/.model.onnx.*.partial exists: nothing left in out/ or $TMPDIR."""
    tmp_path, tmpdir = dirs
    out = tmp_path / "out"
    res = interrupt_when(["export", tiny_ckpt, "-o", out], lambda: any(out.glob(".model.onnx.*.partial")), sig, tmpdir)
    check_clean_exit(res, sig)
    assert leftovers(out, tmpdir) == []


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_quantize_interrupted_while_working(sig, tiny_onnx, dirs):
    """`quantize m.onnx --calib c.npz`, signalled while $TMPDIR/mdnet-quantize-* exists: it is removed, no output written."""
    tmp_path, tmpdir = dirs
    calib = npz(tmp_path / "c.npz", n=8)
    out = tmp_path / "q.onnx"
    res = interrupt_when(
        ["quantize", tiny_onnx, "--calib", calib, "--calib-size", "8", "-o", out],
        lambda: any(tmpdir.glob("mdnet-quantize-*")),
        sig,
        tmpdir,
    )
    check_clean_exit(res, sig)
    assert leftovers(tmpdir) == [] and not out.exists() and not any(tmp_path.glob(".q.onnx*"))


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_compile_interrupted_while_converting(sig, tiny_ckpt, dirs):
    """`compile tiny.pth --target tflite -o m.tflite`, signalled while m.tflite.log is being written: no log, no .partial."""
    pytest.importorskip("litert_torch")
    tmp_path, tmpdir = dirs
    out = tmp_path / "o" / "m.tflite"
    out.parent.mkdir()
    res = interrupt_when(
        ["compile", tiny_ckpt, "--target", "tflite", "--precision", "fp32", "-o", out],
        lambda: any(out.parent.glob("*.log")) or any(out.parent.glob("*.partial")),
        sig,
        tmpdir,
    )
    check_clean_exit(res, sig)
    assert leftovers(out.parent, tmpdir) == []
