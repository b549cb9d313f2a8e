"""Conversions: torch -> ONNX (+ simplify, parity), TFLite, TensorRT engines."""
