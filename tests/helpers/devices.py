"""Helpers for the device tests: fixture paths, files and stand-in commands."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

# Verbatim device output, copied here from the project's shared fixtures so the
# tests need nothing outside the repository.
FIXTURES = Path(__file__).resolve().parents[1] / "devices" / "fixtures"


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"device fixture {name} not found under {FIXTURES}")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def executable(path: Path, body: str) -> Path:
    """A script run through this interpreter (the tests need nothing else on PATH)."""
    write(path, f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
