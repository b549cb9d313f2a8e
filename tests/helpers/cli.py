"""Running the CLI as a user does, and the house rule on failures: one `error:` line, no traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from mdnet_deploy.cli import main


def run(*args: Any) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result: Result, *fragments: str, code: int | None = None) -> str:
    """Non-zero exit, exactly one `error:` line holding every fragment, no traceback; returns the line."""
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.output
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def run_report(results_json: Path, quant_reports: dict[str, Path], out: Path, *extra: Any) -> Result:
    """`report RESULTS --quant RANKED --quant GUARDED -o OUT` over the reporting tests' fixtures."""
    return run(
        "report",
        results_json,
        "--quant",
        quant_reports["ranked"],
        "--quant",
        quant_reports["guarded"],
        "-o",
        out,
        *extra,
    )


def tree(folder: Path) -> list[str]:
    """Every path under ``folder`` (hidden ones too), relative: what a test may find left behind."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def partials(folder: Path) -> list[str]:
    return [
        p for p in tree(folder) if p.endswith(".partial") or "/." in f"/{p}" and os.path.basename(p).startswith(".")
    ]
