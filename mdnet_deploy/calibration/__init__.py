"""INT8 quantization of MDNET ONNX models: calibration, QDQ forms, sensitivity and the accuracy guard.

Entry point: :func:`quantize_model` (see :mod:`.pipeline`); the report schema
is documented in :mod:`.report`. Workstation-side only (needs onnx and
onnxruntime's quantization tools).
"""

from .pipeline import QuantizeResult, quantize_model

__all__ = ["QuantizeResult", "quantize_model"]
