"""Helpers shared by the quantization tests; the CLI runner and the one-line-error check are in tests.helpers.cli."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.cli import run as run_cli

#: Small but real settings: 64 calibration images, 8 images for the per-layer sweep.
QUICK = {"calib_size": "64", "sens": "8"}


def quick_quantize(model: object, out: object, *extra: object):
    """`quantize MODEL --calib digits:train` with the QUICK sizes, ``extra`` options, ``-o OUT``."""
    return run_cli(
        "quantize",
        model,
        "--calib",
        "digits:train",
        "--calib-size",
        QUICK["calib_size"],
        "--sensitivity-images",
        QUICK["sens"],
        *extra,
        "-o",
        out,
    )


def leftovers(folder: Path) -> list[str]:
    """Files in ``folder`` (none when it does not exist), partial temporaries included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []
