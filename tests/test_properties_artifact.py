"""Property-based (hypothesis) suite over sidecar metadata (read_meta, what bench reads per model).

Random bytes, truncated JSON and type-confused fields give ArtifactError (one line), nothing else.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from mdnet_deploy.artifact import read_meta, sidecar_path
from tests.helpers.fuzz import FUZZ, json_values, only_our_errors, sandbox, snapshot, truncations

GOOD = {
    "schema": 1,
    "format": "onnx",
    "precision": "fp32",
    "variant": "mdnet",
    "num_classes": 10,
    "input": {"name": "input", "shape": ["batch", 3, 32, 32], "layout": "NCHW", "dtype": "float32"},
    "preprocessing": {"size": [32, 32], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
}


def _check(text: bytes) -> None:
    with sandbox() as folder:
        model = folder / "m.onnx"
        model.write_bytes(b"not really onnx")
        sidecar_path(model).write_bytes(text)
        before = snapshot(folder)
        only_our_errors(lambda: read_meta(model, required=True))
        assert snapshot(folder) == before


@FUZZ
@given(st.binary(max_size=200) | truncations(json.dumps(GOOD).encode()))
def test_sidecar_bytes(data):
    _check(data)


@FUZZ
@given(
    st.sampled_from(sorted(GOOD) + ["input.shape", "preprocessing.mean", "preprocessing.size", "input.name"]),
    json_values,
)
def test_sidecar_type_confused_field(field, value):
    meta = json.loads(json.dumps(GOOD))
    head, _, tail = field.partition(".")
    if tail:
        meta[head][tail] = value
    else:
        meta[head] = value
    _check(json.dumps(meta, allow_nan=True).encode())
