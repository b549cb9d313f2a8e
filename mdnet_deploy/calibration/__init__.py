"""INT8 quantization of MDNET ONNX models: calibration, QDQ forms, sensitivity and the accuracy guard.

Entry point: :func:`quantize_model`, or :func:`~.pipeline.run` on a :class:`QuantizeConfig`
(see :mod:`.pipeline`; ``evaluate`` is the guard's measurement hook); the report schema
is documented in :mod:`.report`. Workstation-side only (needs onnx and
onnxruntime's quantization tools).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ModelEvaluator", "QuantizeConfig", "QuantizeResult", "Score", "quantize_model"]


def __getattr__(name: str) -> Any:
    # Lazy: the CLI reads the method and target names from calib_data / qdq without paying for onnx here.
    if name in __all__:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
