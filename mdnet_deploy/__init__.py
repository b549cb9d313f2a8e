"""mdnet-deploy: take trained MDNET classifiers to edge devices and measure them there.

Importing the package is cheap and needs only numpy-free standard library
modules; heavy stacks (torch, onnx, TensorRT, LiteRT) are imported inside
the functions that need them, so a Raspberry Pi or a Jetson can run the
device-side ``bench`` with numpy and its runtime only.

The Python API (``mdnet_deploy.api``, re-exported here): :func:`export_onnx`,
:func:`quantize`, :func:`compile_model`, :func:`benchmark`.
"""

__version__ = "0.1.0"

# Cheap: api.py imports each heavy stack inside the function that needs it.
from .api import benchmark, compile_model, export_onnx, quantize  # noqa: E402

__all__ = ["__version__", "benchmark", "compile_model", "export_onnx", "quantize"]
