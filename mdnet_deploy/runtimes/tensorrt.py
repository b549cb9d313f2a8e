"""TensorRT runner: a serialized engine on the GPU (or DLA) it was built for.

An engine is bound to one TensorRT version and one GPU. Handing a foreign
engine to TensorRT gives a cryptic error at best, so :meth:`open` compares
the sidecar's ``target`` with this machine *before* deserializing and
refuses with the exact rebuild command.

Two execution APIs: the name-based one (``set_tensor_address`` +
``execute_async_v3``, TensorRT 8.5 and later, the only one left in 10.x)
and the binding-index one (``execute_async_v2``) for JetPack 4's 8.2.
Device memory and the stream come from cuda-python.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArtifactError, InputError, UnavailableError
from .base import Runner
from .engine_meta import (
    BatchSpec,
    check_engine_compat,
    collecting_logger,
    cuda_runtime_module,
    gpu_info,
    probe_target,
    rebuild_command,
)

_HOW_TO_INSTALL = (
    "install with pip install 'mdnet-deploy[tensorrt]' or on Jetson create the venv with "
    "--system-site-packages to see JetPack's bindings"
)


class _Cuda:
    """The few CUDA runtime calls the runner needs, with errors turned into one line."""

    def __init__(self) -> None:
        self.rt = cuda_runtime_module()

    def _ok(self, result: Any, what: str) -> Any:
        err, rest = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        if err != self.rt.cudaError_t.cudaSuccess:
            name = getattr(err, "name", str(err))
            raise UnavailableError(
                f"CUDA {what} failed ({name}); check that the GPU is visible (nvidia-smi or tegrastats) and not out of memory"
            )
        return rest[0] if len(rest) == 1 else None

    def malloc(self, nbytes: int) -> int:
        return int(self._ok(self.rt.cudaMalloc(max(int(nbytes), 1)), "cudaMalloc"))

    def free(self, ptr: int) -> None:
        self.rt.cudaFree(ptr)  # best effort at teardown

    def stream(self) -> Any:
        return self._ok(self.rt.cudaStreamCreate(), "cudaStreamCreate")

    def destroy(self, stream: Any) -> None:
        self.rt.cudaStreamDestroy(stream)

    def h2d(self, dst: int, src: np.ndarray, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._ok(self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream), "copy to GPU")

    def d2h(self, dst: np.ndarray, src: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._ok(self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream), "copy from GPU")

    def sync(self, stream: Any) -> None:
        self._ok(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")


def _handle(stream: Any) -> int:
    # TensorRT wants the raw cudaStream_t as an int; cuda-python's handle types convert with int().
    try:
        return int(stream)
    except TypeError:
        return int(stream.getPtr())


@dataclass
class _Tensor:
    name: str
    index: int  # binding index for the legacy API
    is_input: bool
    dtype: np.dtype
    ptr: int = 0
    capacity: int = 0  # bytes allocated at ptr


class TensorRTRunner(Runner):
    """Runs a ``.engine`` built by ``mdnet-deploy compile --target tensorrt``."""

    name = "tensorrt"
    formats = ("engine",)

    def __init__(self, artifact: str | Path, meta: Any, threads: int | None = None, **options: Any) -> None:
        super().__init__(artifact, meta, threads=threads, **options)
        self._trt: Any = None
        self._runtime: Any = None
        self._cuda: _Cuda | None = None
        self._engine: Any = None
        self._context: Any = None
        self._stream: Any = None
        self._tensors: list[_Tensor] = []
        self._v3 = True
        self._shape: tuple[int, ...] | None = None
        self._out_shapes: dict[str, tuple[int, ...]] = {}
        self._here: dict[str, Any] = {}

    # -- capability --------------------------------------------------------
    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            import tensorrt
        except Exception as exc:  # ImportError, or OSError from a broken libnvinfer
            return False, f"TensorRT Python bindings not importable: {exc}; {_HOW_TO_INSTALL}"
        try:
            cuda_runtime_module()
        except Exception as exc:
            return False, (
                f"cuda-python not importable ({exc}), the TensorRT runner needs it for GPU buffers; "
                "install with pip install 'mdnet-deploy[tensorrt]' (on JetPack 5, CUDA 11: pip install 'cuda-python<12')"
            )
        return True, str(getattr(tensorrt, "__version__", "unknown"))

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        build = (self.meta.target or {}).get("build") or {}
        out.update(gpu=self._here.get("gpu"), dla_core=build.get("dla_core"))
        return out

    # -- lifecycle ---------------------------------------------------------
    def rebuild_hint(self) -> str:
        """The exact command that rebuilds this engine from its parent ONNX, here."""
        build = (self.meta.target or {}).get("build") or {}
        onnx = (self.meta.parent or {}).get("path") or "MODEL.int8.onnx"
        batch = BatchSpec(**build["batch"]) if isinstance(build.get("batch"), dict) else None
        return rebuild_command(
            onnx, self.artifact, self.meta.precision, build.get("workspace_mib"), batch, build.get("dla_core")
        )

    def open(self) -> None:
        ok, why = self.available()
        if not ok:
            raise UnavailableError(why)
        import tensorrt as trt

        self._trt = trt
        if not self.artifact.is_file():
            raise ArtifactError(f"{self.artifact}: no such engine file; build it with: {self.rebuild_hint()}")
        # The whole point: refuse a foreign engine before TensorRT sees its bytes.
        self._here = probe_target(str(trt.__version__), gpu=gpu_info())
        check_engine_compat(self.meta.target, self._here, rebuild=self.rebuild_hint(), engine=self.artifact)

        logger = collecting_logger(trt)
        try:
            runtime = trt.Runtime(logger)  # pybind11 raises TypeError when TensorRT returns null (no GPU)
        except (TypeError, RuntimeError):
            reason = logger.errors[0] if logger.errors else "no usable GPU"
            raise UnavailableError(
                f"TensorRT {trt.__version__} cannot start ({reason}); check the GPU driver (nvidia-smi or tegrastats)"
            ) from None
        dla = ((self.meta.target or {}).get("build") or {}).get("dla_core")
        if dla is not None:
            runtime.DLA_core = int(dla)  # must be chosen before deserializing a DLA engine
        engine = runtime.deserialize_cuda_engine(self.artifact.read_bytes())
        if engine is None:
            reason = logger.errors[0] if logger.errors else "the file is not an engine TensorRT can read"
            raise ArtifactError(
                f"{self.artifact}: TensorRT {trt.__version__} cannot load it ({reason}); rebuild it here: {self.rebuild_hint()}"
            )
        self._runtime, self._engine = runtime, engine  # the runtime must outlive the engine
        self._context = engine.create_execution_context()
        self._v3 = hasattr(engine, "num_io_tensors") and hasattr(self._context, "execute_async_v3")
        self._tensors = self._discover(engine)
        self._cuda = _Cuda()
        self._stream = self._cuda.stream()

    def _discover(self, engine: Any) -> list[_Tensor]:
        trt = self._trt
        if self._v3:
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            return [
                _Tensor(
                    n,
                    i,
                    engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT,
                    np.dtype(trt.nptype(engine.get_tensor_dtype(n))),
                )
                for i, n in enumerate(names)
            ]
        return [
            _Tensor(
                engine.get_binding_name(i),
                i,
                bool(engine.binding_is_input(i)),
                np.dtype(trt.nptype(engine.get_binding_dtype(i))),
            )
            for i in range(engine.num_bindings)
        ]

    def close(self) -> None:
        if self._cuda is not None:
            for t in self._tensors:
                if t.ptr:
                    self._cuda.free(t.ptr)
                    t.ptr, t.capacity = 0, 0
            if self._stream is not None:
                self._cuda.destroy(self._stream)
        self._stream = None
        # Context before engine before runtime: each must outlive what it created.
        self._context = None
        self._engine = None
        self._runtime = None
        self._cuda = None
        super().close()

    # -- inference ---------------------------------------------------------
    def _batch_range(self, t: _Tensor) -> tuple[int, int, bool]:
        """(smallest, largest) batch the engine takes, and whether its batch is dynamic."""
        engine = self._engine
        shape = engine.get_tensor_shape(t.name) if self._v3 else engine.get_binding_shape(t.index)
        if shape[0] >= 0:
            return int(shape[0]), int(shape[0]), False
        lo, _, hi = engine.get_tensor_profile_shape(t.name, 0) if self._v3 else engine.get_profile_shape(0, t.index)
        return int(lo[0]), int(hi[0]), True

    def _set_shape(self, t: _Tensor, shape: tuple[int, ...]) -> None:
        lo, hi, dynamic = self._batch_range(t)
        if not lo <= shape[0] <= hi:
            raise InputError(
                f"batch {shape[0]} is outside what {self.artifact.name} was built for ({lo}..{hi}); "
                f"use a batch in that range or rebuild with --batch dynamic:{min(lo, shape[0])},{shape[0]},{max(hi, shape[0])}"
            )
        ok = True
        if dynamic:  # a static input has nothing to set (and 8.x may refuse the call)
            ok = (
                self._context.set_input_shape(t.name, shape)
                if self._v3
                else self._context.set_binding_shape(t.index, shape)
            )
        if ok is False:
            raise InputError(
                f"{self.artifact.name} does not accept an input of shape {list(shape)}; it expects {self.meta.input.shape}"
            )
        self._shape = shape
        self._out_shapes = {
            o.name: tuple(
                int(d)
                for d in (
                    self._context.get_tensor_shape(o.name) if self._v3 else self._context.get_binding_shape(o.index)
                )
            )
            for o in self._tensors
            if not o.is_input
        }

    def _ensure(self, t: _Tensor, nbytes: int) -> None:
        assert self._cuda is not None
        if nbytes > t.capacity:  # grow only: a dynamic-batch engine reuses its largest buffers
            if t.ptr:
                self._cuda.free(t.ptr)
            t.ptr, t.capacity = self._cuda.malloc(nbytes), nbytes

    def profile(self, native_input: Any, runs: int) -> dict[str, Any]:
        """Per-layer times from TensorRT's IProfiler (``bench --profile``; see trt_profile.py)."""
        from .trt_profile import profile_context

        if self._context is None:
            raise UnavailableError("the TensorRT runner is not open; use it as a context manager (with runner: ...)")
        return profile_context(self._trt, self._context, lambda: self.run(native_input), runs)

    def run(self, native_input: Any) -> np.ndarray:
        if self._context is None or self._cuda is None:
            raise UnavailableError("the TensorRT runner is not open; use it as a context manager (with runner: ...)")
        inputs = [t for t in self._tensors if t.is_input]
        x = np.ascontiguousarray(native_input, dtype=inputs[0].dtype)
        if self._shape != x.shape:
            self._set_shape(inputs[0], tuple(x.shape))
        self._ensure(inputs[0], x.nbytes)
        outputs: dict[str, np.ndarray] = {}
        for t in self._tensors:
            if not t.is_input:
                outputs[t.name] = np.empty(self._out_shapes[t.name], dtype=t.dtype)
                self._ensure(t, outputs[t.name].nbytes)
        stream = self._stream
        self._cuda.h2d(inputs[0].ptr, x, stream)
        if self._v3:
            for t in self._tensors:
                self._context.set_tensor_address(t.name, t.ptr)
            ok = self._context.execute_async_v3(_handle(stream))
        else:
            ok = self._context.execute_async_v2(
                [t.ptr for t in sorted(self._tensors, key=lambda t: t.index)], _handle(stream)
            )
        if ok is False:
            raise UnavailableError(
                f"TensorRT failed to run {self.artifact.name}; rerun with a batch of 1 to check the engine"
            )
        for t in self._tensors:
            if not t.is_input:
                self._cuda.d2h(outputs[t.name], t.ptr, stream)
        self._cuda.sync(stream)
        # The logits: the output the metadata names, else the first one.
        return outputs.get(self.meta.output.name, next(iter(outputs.values())))
