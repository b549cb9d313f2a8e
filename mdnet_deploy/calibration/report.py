"""The quantization report: ``<output stem>.report.json`` beside the INT8 model.

Schema (``"schema": 1``); every key is always present, ``null`` where it
does not apply::

    {
      "schema": 1,
      "status": "ok" | "over-budget" | "unchecked",   # unchecked: no --eval given
      "message": "one line for humans",
      "input":  {"path", "sha256", "bytes"},           # the float ONNX (the parent)
      "output": {"path", "sha256", "bytes"},           # the INT8 model actually written
      "report": "/abs/path/model.int8.report.json",    # this file
      "form": {"target", "name", "activation_type", "activation_symmetric", "weight_type",
               "weight_symmetric", "per_channel", "quantize_bias", "quantize_outputs",
               "description", "extra_options", "check": {"qdq_pairs", "zero_point_dtypes",
               "all_zero_points_zero"}},
      "calibration": {"source", "description", "count", "requested", "available", "sha256",
                      "seed", "balanced", "skipped_files", "method", "batch_size", "seconds",
                      "reused_across_steps": true},
      "evaluation": {"source", "description", "count", "sha256", "skipped_files"} | null,
      "accuracy": {"float": {"top1", "top5"}, "int8": {"top1", "top5"}, "drop_top1",
                   "top1_agreement", "max_drop", "met"} | null,
      "guard": {"steps": [{"step", "phase", "float_layers", "added", "requantized", "top1",
                           "top5", "drop", "top1_agreement", "met", "seconds"}],
                "best_step", "cap", "rule"},
      "float_fallback": {
          "nodes":   ["/transform/attn/qkv/Conv", ...],      # ONNX node names kept float
          "modules": ["transform.attn.qkv", ...],            # the same as torch module paths
          "blocks":  ["transform.attn", ...],
          "layers":  [{"node", "module", "block", "op", "by": "exclude"|"guard"|"default",
                       "output_sqnr_db", "reason"}]},
      "not_quantized_by_policy": {"op_types": {"ReduceMean": 4, ...}, "modules": [...]},
      "layers": {"candidates", "quantized", "float"},
      "sensitivity": {"images", "metric", "full_output_sqnr_db", "full_top1_agreement",
                      "layers": [{"rank", "node", "op", "module", "block", "output_sqnr_db",
                                  "noise", "top1_agreement", "input_sqnr_db", "input_range", "input_outlier_ratio",
                                  "weight_sqnr_db", "cumulative_sqnr_db", "reason",
                                  "float": bool}],
                      "blocks": [{"block", "output_sqnr_db", "layers", "worst_layer"}],
                      "seconds"},
      "verification": {"n", "max_abs_diff", "mean_abs_diff", "top1_agreement"},  # INT8 vs float, calibration images
      "size": {"float_bytes", "int8_bytes", "ratio"},
      "timing": {"total_s", "prepare_s", "calibration_s", "sensitivity_s", "float_eval_s",
                 "guard_s", "write_s", "quantize_s_per_step"},
      "memory": {"peak_rss_mib"},
      "warnings": ["..."],
      "tools": {"onnxruntime": "...", "onnx": "...", ...}
    }

SQNR values are dB (higher is better); +/-999 stands for infinity.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text

SCHEMA = 1


def report_path_for(output: Path) -> Path:
    """``model.int8.onnx`` -> ``model.int8.report.json``."""
    stem = output.name[:-5] if output.name.lower().endswith(".onnx") else output.name
    return output.with_name(stem + ".report.json")


def over_budget_path_for(output: Path) -> Path:
    """``model.int8.onnx`` -> ``model.int8.over-budget.onnx``: clearly not the requested model."""
    stem = output.name[:-5] if output.name.lower().endswith(".onnx") else output.name
    return output.with_name(stem + ".over-budget.onnx")


def write_report(path: Path, report: dict[str, Any]) -> Path:
    return atomic_write_text(path, json.dumps(report, indent=2, allow_nan=False) + "\n")


def empty_report() -> dict[str, Any]:
    keys = [
        "status",
        "message",
        "input",
        "output",
        "report",
        "form",
        "calibration",
        "evaluation",
        "accuracy",
        "guard",
        "speed",
        "float_fallback",
        "not_quantized_by_policy",
        "layers",
        "sensitivity",
        "verification",
        "size",
        "timing",
        "memory",
        "warnings",
        "tools",
    ]
    report: dict[str, Any] = {"schema": SCHEMA}
    report.update({k: None for k in keys})
    report["warnings"] = []
    return report
