"""The benchmark harness: warm-up, timing, energy window, accuracy, result schema, rendering.

A library: nothing here prints or exits; progress goes to a callback and
errors are :mod:`mdnet_deploy.errors` classes. Importing it needs numpy,
rich and the standard library only (runtimes are imported when chosen), so
the device side runs it without torch or onnx::

    rows = bench_models(["model.onnx", "model.int8.tflite"], device="rpi", eval_spec="eval.npz",
                        iterations=500, progress=print)
    console.print(results_table(rows))
"""

from __future__ import annotations

from .evalset import PackedEval, check_classes, evaluate, load_eval, pack_eval
from .harness import DEFAULT_DURATION_S, DEFAULT_WARMUP, bench_models
from .report import append_csv, json_text, result_notes, results_table, write_json
from .schema import CSV_COLUMNS, ROW_KEYS, SCHEMA_VERSION, flatten, is_failed
from .timing import Budget, latency_stats, parse_budget, timed_loop, warm_up

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_DURATION_S",
    "DEFAULT_WARMUP",
    "ROW_KEYS",
    "SCHEMA_VERSION",
    "Budget",
    "PackedEval",
    "append_csv",
    "bench_models",
    "check_classes",
    "evaluate",
    "flatten",
    "is_failed",
    "json_text",
    "latency_stats",
    "load_eval",
    "pack_eval",
    "parse_budget",
    "result_notes",
    "results_table",
    "timed_loop",
    "warm_up",
    "write_json",
]
