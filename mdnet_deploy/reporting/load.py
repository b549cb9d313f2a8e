"""Read what ``report`` and ``compare`` are given: bench results JSON and quantize reports.

A results file is what ``bench --json`` writes (a JSON list of rows); a
single row object is accepted too. A quantize report
(``model.int8.report.json``) is recognised by its keys, so it may be given
among the results. Anything else is one ``error:`` line that names the file
and says what was expected. Only JSON is read: no file is ever executed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError


@dataclass
class Inputs:
    rows: list[dict[str, Any]] = field(default_factory=list)
    quant: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def read_json(path: str | os.PathLike[str], what: str) -> Any:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p} does not exist; check the path")
    if p.is_dir():
        raise InputError(f"{what} {p} is a folder; give the JSON file")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{what} {p} is not a text file; give the JSON written by mdnet-deploy") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{what} {p} is not valid JSON ({exc.msg}, line {exc.lineno}); give the file written by mdnet-deploy"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {p}: {exc.strerror or exc}") from None


def is_quant_report(obj: Any) -> bool:
    return isinstance(obj, dict) and "sensitivity" in obj and ("guard" in obj or "float_fallback" in obj)


def is_result_row(obj: Any) -> bool:
    return isinstance(obj, dict) and ("latency_ms" in obj or "status" in obj) and "model" in obj


def results_from(obj: Any, path: Path) -> list[dict[str, Any]]:
    rows = [obj] if isinstance(obj, dict) else obj
    if isinstance(obj, dict) and isinstance(obj.get("results"), list):
        rows = obj["results"]
    if not isinstance(rows, list) or not rows or not all(is_result_row(r) for r in rows):
        raise InputError(
            f"{path} is not a bench results file (expected the JSON list that 'mdnet-deploy bench --json' writes)"
        )
    out = []
    for r in rows:
        r = dict(r)
        r["_source"] = path.name  # which file a row came from (shown in the report, never written back)
        out.append(r)
    return out


def load_inputs(results: Sequence[str | os.PathLike[str]], quant: Sequence[str | os.PathLike[str]] = ()) -> Inputs:
    """Every results file's rows, and every quantize report (given with --quant or among the results)."""
    inputs = Inputs()
    for path in results:
        obj = read_json(path, "results file")
        if is_quant_report(obj):
            inputs.quant.append(_quant(obj, Path(path)))
        else:
            inputs.rows += results_from(obj, Path(path))
        inputs.sources.append(str(path))
    for path in quant:
        obj = read_json(path, "quantize report")
        if not is_quant_report(obj):
            raise InputError(
                f"{path} is not a quantize report (expected the model.int8.report.json that 'mdnet-deploy quantize' writes)"
            )
        inputs.quant.append(_quant(obj, Path(path)))
        inputs.sources.append(str(path))
    return inputs


def load_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    return results_from(read_json(path, "results file"), Path(path))


def _quant(obj: dict[str, Any], path: Path) -> dict[str, Any]:
    obj = dict(obj)
    obj["_source"] = str(path)  # as given: reports of several models are all called model.int8.report.json
    return obj
