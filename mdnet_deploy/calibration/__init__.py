"""INT8 quantization of MDNET ONNX models: calibration, QDQ forms, sensitivity and the accuracy guard.

Entry point: :func:`quantize_model`, or :func:`~.pipeline.run` on a :class:`QuantizeConfig`
(see :mod:`.pipeline`; ``evaluate`` is the guard's measurement hook); the report schema
is documented in :mod:`.report`. Workstation-side only (needs onnx and
onnxruntime's quantization tools).
"""

from .pipeline import ModelEvaluator, QuantizeConfig, QuantizeResult, Score, quantize_model

__all__ = ["ModelEvaluator", "QuantizeConfig", "QuantizeResult", "Score", "quantize_model"]
