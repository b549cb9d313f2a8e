"""The full-size network (the authors' reference checkpoint, random weights): slow, run by `make test`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import numpy_helper


@pytest.mark.slow
def test_full_size_mdnet_quantizes_in_tensorrt_form(official_ckpt, tmp_path):
    from mdnet_deploy.export.onnx_export import export_onnx

    src = export_onnx(official_ckpt, tmp_path / "float").path
    out = tmp_path / "int8" / "model.int8.onnx"
    # A process of its own: the report's peak RSS is process-wide, so in the pytest process it would
    # count whatever tests ran before this one.
    cmd = [
        sys.executable,
        "-m",
        "mdnet_deploy",
        "quantize",
        str(src),
        "--calib",
        "digits:train",
        "--calib-size",
        "128",
        "--eval",
        "digits:test",
        "-o",
        str(out),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.with_name("model.int8.report.json").read_text())
    assert report["layers"]["candidates"] == 79
    assert report["form"]["check"]["all_zero_points_zero"]
    model = onnx.load(str(out))
    inits = {i.name: i for i in model.graph.initializer}
    zps = [
        numpy_helper.to_array(inits[n.input[2]])
        for n in model.graph.node
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2
    ]
    assert zps and all(not np.any(z) for z in zps)
    assert report["size"]["ratio"] < 0.35  # INT8 weights
    assert report["memory"]["peak_rss_mib"] < 4096
