"""One Runner per backend (Polygraphy-style): ONNX Runtime, TFLite, TensorRT, PyTorch.

Importing this package imports no backend; each runner imports its library
inside ``open()`` so the device side needs only numpy and its own runtime.
"""
