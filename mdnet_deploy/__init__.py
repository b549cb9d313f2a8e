"""mdnet-deploy: take trained MDNET classifiers to edge devices and measure them there.

Importing the package is cheap and needs only numpy-free standard library
modules; heavy stacks (torch, onnx, TensorRT, LiteRT) are imported inside
the functions that need them, so a Raspberry Pi or a Jetson can run the
device-side ``bench`` with numpy and its runtime only.
"""

__version__ = "0.1.0"
