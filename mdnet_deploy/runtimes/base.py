"""The Runner protocol shared by every backend.

Canonical input everywhere in the library is a float32 NCHW batch that has
already been preprocessed (``/255``, mean/std) as the artifact's metadata
says. A runner converts that to what its artifact wants (NHWC, int8 with a
scale/zero point) in :meth:`prepare`, runs it in :meth:`run` (the only part
that is timed; it returns after device synchronisation) and turns the raw
output back into float32 logits in :meth:`finish`.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

import numpy as np

from ..artifact import ArtifactMeta, TensorSpec


class Runner(abc.ABC):
    """Base class of all runners; use as a context manager."""

    #: short backend name used in results: onnxruntime | tflite | tensorrt | torch
    name: str = "runner"
    #: artifact formats this runner opens
    formats: tuple[str, ...] = ()

    def __init__(self, artifact: str | Path, meta: ArtifactMeta, threads: int | None = None, **options: Any) -> None:
        self.artifact = Path(artifact)
        self.meta = meta
        self.threads = threads
        self.options = options
        self._open = False

    # -- capability --------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def available(cls) -> tuple[bool, str]:
        """(True, version) when the backend can be imported here, else (False, why + how to fix)."""

    @classmethod
    def version(cls) -> str:
        ok, text = cls.available()
        return text if ok else "unavailable"

    # -- lifecycle ---------------------------------------------------------
    @abc.abstractmethod
    def open(self) -> None:
        """Load the artifact; raise ArtifactError/UnavailableError with one clear line."""

    def close(self) -> None:
        self._open = False

    def __enter__(self) -> Runner:
        self.open()
        self._open = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inference ---------------------------------------------------------
    @property
    def input_spec(self) -> TensorSpec:
        return self.meta.input

    def prepare(self, x: np.ndarray) -> Any:
        """Canonical float32 NCHW -> the backend's native input (layout, dtype)."""
        return _to_native(np.asarray(x, dtype=np.float32), self.meta.input)

    @abc.abstractmethod
    def run(self, native_input: Any) -> Any:
        """Run once on a prepared input; returns after the device is synchronised."""

    def finish(self, native_output: Any) -> np.ndarray:
        """The backend's raw output -> float32 logits (N, classes)."""
        return _from_native(np.asarray(native_output), self.meta.output)

    def infer(self, x: np.ndarray) -> np.ndarray:
        return self.finish(self.run(self.prepare(x)))

    def describe(self) -> dict[str, Any]:
        """The result's ``runtime`` block: name, version, threads, extras."""
        return {"name": self.name, "version": self.version(), "threads": self.threads}


def _to_native(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.layout.upper() == "NHWC" and x.ndim == 4:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    if spec.dtype in ("int8", "uint8"):
        info = np.iinfo(spec.dtype)
        scale = float(spec.scale or 1.0)
        zp = int(spec.zero_point or 0)
        q = np.round(x / scale) + zp
        return np.clip(q, info.min, info.max).astype(spec.dtype)
    return x.astype(spec.dtype, copy=False)


def _from_native(y: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.dtype in ("int8", "uint8"):
        return (y.astype(np.float32) - int(spec.zero_point or 0)) * float(spec.scale or 1.0)
    return y.astype(np.float32, copy=False)
