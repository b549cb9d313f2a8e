"""fsutil: the atomic write keeps nothing once a stop signal arrived, follows links, uses the umask."""

from __future__ import annotations

import os
import signal
import stat

import pytest

from mdnet_deploy.errors import Interrupted
from mdnet_deploy.fsutil import atomic_output, atomic_write_text, request_stop


def test_no_commit_after_a_swallowed_interrupt(tmp_path):
    """A library that catches the KeyboardInterrupt a SIGTERM became must not let the output be committed."""
    request_stop(signal.SIGTERM)
    try:
        with pytest.raises(Interrupted) as info:
            with atomic_output(tmp_path / "m.onnx") as tmp:
                tmp.write_bytes(b"complete, but the user asked to stop")
    finally:
        request_stop(None)
    assert info.value.exit_code == 128 + signal.SIGTERM
    assert os.listdir(tmp_path) == []


def test_symlink_target_is_replaced_and_the_link_kept(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_replacing_keeps_the_existing_mode(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("[]")
    path.chmod(0o640)
    atomic_write_text(path, "[1]")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
