"""Helpers shared by the quantization tests."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

#: Small but real settings: 64 calibration images, 8 images for the per-layer sweep.
QUICK = {"calib_size": "64", "sens": "8"}


def run_cli(*args: object):
    from mdnet_deploy.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


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


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def leftovers(folder: Path) -> list[str]:
    """Files in ``folder`` (none when it does not exist), partial temporaries included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []
