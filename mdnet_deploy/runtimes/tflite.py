"""TFLite / LiteRT runner: ai-edge-litert's Interpreter, else tflite_runtime's.

Device side: this module imports numpy and the standard library only; the
interpreter is imported in :meth:`TfliteRunner.open`. A Raspberry Pi needs
``pip install numpy ai-edge-litert`` and this package, nothing else.

The artifact's metadata says the layout (MDNET TFLite files take NHWC) and
the I/O dtype; for int8 I/O the scale and zero point are read from the
interpreter's own tensor details, which are the source of truth (a sidecar
can be stale, the flatbuffer cannot).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
from collections import Counter
from typing import Any, Iterator

import numpy as np

from ..artifact import TensorSpec
from ..errors import ArtifactError, UnavailableError
from .base import Runner, _from_native, _to_native

INSTALL_HINT = "pip install ai-edge-litert (or mdnet-deploy[litert]); on 32-bit ARM use tflite-runtime"
#: ai-edge-litert's Interpreter (and tflite_runtime's) exposes no op profiler; the C++ benchmark tool does.
PROFILE_UNAVAILABLE = (
    "the LiteRT Python interpreter exposes no per-op timings; build LiteRT's benchmark_model tool and run "
    "benchmark_model --graph={model} --enable_op_profiling=true for them"
)


def _import_interpreter() -> tuple[Any, Any, str]:
    """(Interpreter class, OpResolverType or None, 'package version')."""
    try:
        from ai_edge_litert import interpreter as mod

        return mod.Interpreter, getattr(mod, "OpResolverType", None), f"ai-edge-litert {_version('ai-edge-litert')}"
    except ImportError as first:
        try:
            from tflite_runtime import interpreter as mod  # type: ignore[no-redef]
        except ImportError:
            raise ImportError(str(first)) from None
        return mod.Interpreter, getattr(mod, "OpResolverType", None), f"tflite-runtime {_version('tflite-runtime')}"


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


@contextlib.contextmanager
def captured_stderr_fd(sink: list[str]) -> Iterator[None]:
    """Collect what C++ code writes to file descriptor 2 (e.g. the XNNPACK banner) into ``sink``.

    The interpreter logs straight to fd 2, bypassing ``sys.stderr``; left
    alone, those lines land in the middle of our tables and one-line errors.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (embedded, some test runners)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            sink.extend(line for line in tmp.read().decode("utf-8", "replace").splitlines() if line.strip())


def delegation_summary(interpreter: Any) -> dict[str, Any]:
    """Which ops a delegate (XNNPACK) took, from the interpreter's node list.

    After ``allocate_tensors`` the node list holds the model's own ops plus
    one ``DELEGATE`` node per partition, whose inputs/outputs are the
    partition's boundary tensors. Walking back from each partition's outputs
    to its inputs finds the ops it replaced; every other op runs on the
    interpreter's built-in kernels. Nothing here depends on log parsing.
    """
    ops = interpreter._get_ops_details()  # the only per-node view the Python API offers
    delegates = [o for o in ops if o["op_name"] == "DELEGATE"]
    model_ops = [o for o in ops if o["op_name"] != "DELEGATE"]
    producer = {int(t): o["index"] for o in model_ops for t in o["outputs"] if int(t) >= 0}
    by_index = {o["index"]: o for o in model_ops}
    taken: set[int] = set()
    for d in delegates:
        boundary = {int(t) for t in d["inputs"]}
        stack = [int(t) for t in d["outputs"]]
        seen: set[int] = set()
        while stack:
            t = stack.pop()
            if t in boundary or t in seen or t not in producer:
                continue
            seen.add(t)
            node = producer[t]
            if node not in taken:
                taken.add(node)
                stack.extend(int(i) for i in by_index[node]["inputs"] if int(i) >= 0)
    rest = [o for o in model_ops if o["index"] not in taken]
    not_taken = Counter(_op_label(o) for o in rest)
    return {
        "delegate": "XNNPACK" if delegates else None,
        "partitions": len(delegates),
        "ops_total": len(model_ops),
        "ops_delegated": len(taken),
        "not_delegated": dict(sorted(not_taken.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def _op_label(op: dict[str, Any]) -> str:
    """``MAXIMUM(int8)``: the op with its first operand's type, which is what decides support."""
    types = op.get("operand_types") or op.get("result_types") or []
    dtype = getattr(types[0], "__name__", str(types[0])) if types else "?"
    return f"{op['op_name']}({dtype})"


def _spec_from_details(d: dict[str, Any], meta_spec: TensorSpec, default_layout: str) -> TensorSpec:
    """The TensorSpec this runner feeds: layout from the metadata, dtype/quantization from the file."""
    dtype = np.dtype(d["dtype"]).name
    scale, zero = d.get("quantization", (0.0, 0))
    spec = dataclasses.replace(meta_spec)
    spec.name = d.get("name") or meta_spec.name
    spec.shape = [int(v) for v in d["shape"]]
    spec.dtype = dtype
    spec.layout = meta_spec.layout if meta_spec.layout else default_layout
    if dtype in ("int8", "uint8"):
        if not scale:
            raise ArtifactError(
                f"the model's {spec.name} tensor is {dtype} without a quantization scale; re-compile it"
            )
        spec.scale, spec.zero_point = float(scale), int(zero)
    else:
        spec.scale, spec.zero_point = None, None
    return spec


class TfliteRunner(Runner):
    """Options: ``xnnpack`` (default True) to use the default XNNPACK delegate."""

    name = "tflite"
    formats = ("tflite",)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            _, _, version = _import_interpreter()
        except ImportError as exc:
            return False, f"no TFLite interpreter is importable ({exc}); install one: {INSTALL_HINT}"
        return True, version

    def open(self) -> None:
        try:
            interpreter_cls, resolver, self._version_text = _import_interpreter()
        except ImportError as exc:
            raise UnavailableError(
                f"cannot run {self.artifact.name}: no TFLite interpreter is importable ({exc}); {INSTALL_HINT}"
            ) from None
        if not self.artifact.is_file():
            raise ArtifactError(
                f"{self.artifact}: no such file; give a .tflite written by 'mdnet-deploy compile --target tflite'"
            )
        self.xnnpack = bool(self.options.get("xnnpack", True))
        kwargs: dict[str, Any] = {"model_path": str(self.artifact)}
        if self.threads:
            kwargs["num_threads"] = int(self.threads)
        if not self.xnnpack:
            if resolver is None:
                raise UnavailableError(
                    "this TFLite interpreter cannot disable XNNPACK (no OpResolverType); install ai-edge-litert"
                )
            kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.log: list[str] = []
        try:
            with captured_stderr_fd(self.log):
                self.interpreter = interpreter_cls(**kwargs)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = next((s for s in str(exc).splitlines() if s.strip()), type(exc).__name__)
            raise ArtifactError(f"the TFLite interpreter cannot open {self.artifact}: {first}") from None
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ArtifactError(
                f"{self.artifact} has {len(inputs)} inputs and {len(outputs)} outputs; an MDNET classifier has one of each"
            )
        self._in, self._out = inputs[0], outputs[0]
        self.native_input = _spec_from_details(self._in, self.meta.input, "NHWC")
        self.native_output = _spec_from_details(self._out, self.meta.output, "NC")
        self._check_layout()
        self.model_batch = int(self._in["shape"][0])
        self._batch = self.model_batch  # what the input tensor is sized for now
        self.loop_batches = False  # True once a resize failed: batches run in model-sized chunks
        self._delegation: dict[str, Any] | None = None

    def _check_layout(self) -> None:
        shape, layout = self.native_input.shape, self.native_input.layout.upper()
        if len(shape) != 4:
            return
        channels = shape[3] if layout == "NHWC" else shape[1]
        if channels != 3:
            raise ArtifactError(
                f"{self.artifact}: metadata says {layout} but the model's input is {shape}; fix or delete {self.artifact.name}.json"
            )

    @property
    def input_spec(self) -> TensorSpec:
        return self.native_input if getattr(self, "native_input", None) is not None else self.meta.input

    # -- inference ---------------------------------------------------------
    def prepare(self, x: np.ndarray) -> np.ndarray:
        return _to_native(np.asarray(x, dtype=np.float32), self.native_input)

    def run(self, native_input: Any) -> Any:
        n = int(native_input.shape[0])
        if n != self._batch and not self.loop_batches:
            self._resize(n)
        if self.loop_batches and n != self.model_batch:
            return self._run_chunks(native_input)
        return self._invoke(native_input)

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._in["index"], x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out["index"])  # a copy: safe across invokes

    def _resize(self, n: int) -> None:
        """Resize the input for batch ``n``; models with batch-fixed reshapes refuse, then we loop."""
        shape = [n, *[int(v) for v in self._in["shape"][1:]]]
        try:
            with captured_stderr_fd(self.log):
                self.interpreter.resize_tensor_input(self._in["index"], shape)
                self.interpreter.allocate_tensors()
            self._batch = n
        except (ValueError, RuntimeError):
            # The converter fixes the batch inside RESHAPE/SLICE constants; go back to the
            # compiled size and feed chunks of it (describe() says so).
            with captured_stderr_fd(self.log):
                self.interpreter.resize_tensor_input(self._in["index"], [self.model_batch, *shape[1:]])
                self.interpreter.allocate_tensors()
            self._batch = self.model_batch
            self.loop_batches = True

    def _run_chunks(self, x: np.ndarray) -> np.ndarray:
        step = self.model_batch
        outs = []
        for start in range(0, len(x), step):
            chunk = x[start : start + step]
            if len(chunk) < step:  # pad the tail with copies of its first row; drop their outputs
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], step - len(chunk), axis=0)])
            outs.append(self._invoke(chunk)[: min(step, len(x) - start)])
        return np.concatenate(outs)

    def finish(self, native_output: Any) -> np.ndarray:
        return _from_native(np.asarray(native_output), self.native_output)

    def close(self) -> None:
        self.interpreter = None
        super().close()

    # -- reporting ---------------------------------------------------------
    def profile(self, native_input: Any, runs: int) -> dict[str, Any]:
        """LiteRT's Python interpreter has no per-op timings: say so, and what does have them."""
        from ..reporting.profile import unavailable

        return unavailable("tflite", PROFILE_UNAVAILABLE.format(model=self.artifact.name))

    def delegation(self) -> dict[str, Any]:
        """XNNPACK coverage of this interpreter (computed once)."""
        if self._delegation is None:
            self._delegation = delegation_summary(self.interpreter)
        return self._delegation

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        if getattr(self, "interpreter", None) is None:
            return d
        d["version"] = self._version_text
        d["xnnpack"] = self.xnnpack
        d["delegation"] = self.delegation()
        d["input"] = {
            "dtype": self.native_input.dtype,
            "layout": self.native_input.layout,
            "shape": self.native_input.shape,
        }
        d["batching"] = f"loop of batch {self.model_batch}" if self.loop_batches else "native"
        return d


def run_tflite(
    path: str, x: np.ndarray, meta: Any, threads: int | None = None, xnnpack: bool = True
) -> tuple[np.ndarray, dict[str, Any]]:
    """Convenience: float32 NCHW in, float32 logits and the runner's description out."""
    runner = TfliteRunner(path, meta, threads=threads, xnnpack=xnnpack)
    with runner:
        step = max(runner.model_batch, 1)
        outs = [runner.infer(x[i : i + step]) for i in range(0, len(x), step)]
        info = runner.describe()
    return (np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)), info
