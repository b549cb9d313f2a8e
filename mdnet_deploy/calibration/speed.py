"""Which layers run faster in float than in INT8 on this host: ONNX Runtime's profiler decides.

An INT8 kernel is not always the faster one. ONNX Runtime's u8 depthwise
QLinearConv builds an indirection buffer of one pointer per kernel tap and
output pixel on every call, whatever the channel count, so a 5x5 or 7x7
depthwise conv over a 34x34 map with few channels (MDNET's transform block
below full width) costs about twice its float NCHWc kernel (profiles in
docs/BENCHMARKS.md, issue 12). TensorRT settles this per layer by timing
both precisions; ``quantize --target ort --speed-fallback`` does the same
with ONNX Runtime on the machine that runs it:

1. profile the all-INT8 model and the float model (1 thread, the bench default);
2. a conv stays float when its float kernel is at least :data:`SPEED_MARGIN`
   times faster than its INT8 one (the margin keeps noise from flipping layers);
3. the model with those layers float is timed against the all-INT8 one,
   interleaved, and kept only if it is faster as a whole (float islands add
   Quantize/Dequantize at their borders, which no per-layer time shows).

The choice is this host's: another CPU may want other layers, so the report
says what was measured where.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

SPEED_MARGIN = 1.2  # float must beat INT8 by this factor per layer to stay float
# ...and by this much: the profiler counts whole microseconds, and a float island pays a Dequantize and a
# Quantize at its borders (2-4 us each at 34x34 here), so smaller gains are noise or losses.
MIN_GAIN_US = 5.0
PROFILE_RUNS = 40
TIMING_ROUNDS = 7  # interleaved rounds of the whole-model comparison
TIMING_CALLS = 30  # calls per round; the round's median is its figure
THREADS = 1

_INT8_CONVS = ("QLinearConv", "NhwcQLinearConv", "ConvInteger")
_FLOAT_CONVS = ("Conv", "FusedConv", "NchwcConv", "NhwcFusedConv")
# Ops ONNX Runtime fuses into the conv before them; the fused node then carries their output name.
_FUSED_AFTER_CONV = ("Relu", "Clip", "Add", "Sum", "LeakyRelu", "Sigmoid", "HardSigmoid")
_TOKEN = re.compile(r"_token_\d+$")


@dataclass
class LayerSpeed:
    node: str  # the float model's Conv node
    module: str
    int8_us: float
    float_us: float

    @property
    def float_faster(self) -> bool:
        return self.float_us * SPEED_MARGIN < self.int8_us and self.int8_us - self.float_us >= MIN_GAIN_US

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "module": self.module,
            "int8_us": round(self.int8_us, 2),
            "float_us": round(self.float_us, 2),
            "float_faster": self.float_faster,
        }


@dataclass
class SpeedResult:
    layers: list[LayerSpeed]
    kept_float: list[str] = field(default_factory=list)  # node names finally kept float for speed
    p50_ms: dict[str, float] = field(default_factory=dict)  # all_int8 / with_float_layers
    chosen: str = "all_int8"
    host: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtime": _runtime(),
            "threads": THREADS,
            "host": self.host,
            "rule": (
                f"float when float_us x {SPEED_MARGIN:g} < int8_us and int8_us - float_us >= {MIN_GAIN_US:g}; "
                "kept only if the whole model is then faster"
            ),
            "layers": [layer.to_dict() for layer in self.layers],
            "candidates": [layer.node for layer in self.layers if layer.float_faster],
            "p50_ms": {k: round(v, 4) for k, v in self.p50_ms.items()},
            "chosen": self.chosen,
            "kept_float": list(self.kept_float),
        }


def layer_speeds(
    float_model: Path, int8_model: Path, graph: Any, convs: Mapping[str, str], x: np.ndarray
) -> list[LayerSpeed]:
    """Per-conv INT8 and float kernel times (us per call) for the Conv nodes ``convs`` (node -> module)."""
    int8 = _conv_times(int8_model, graph, x, _INT8_CONVS)
    flt = _conv_times(float_model, graph, x, _FLOAT_CONVS)
    return [
        LayerSpeed(node, module, int8[node], flt[node])
        for node, module in convs.items()
        if node in int8 and node in flt
    ]


def faster_model(paths: Sequence[Path], x: np.ndarray) -> list[float]:
    """Median latency (ms, batch of ``x``) of each model, timed in interleaved rounds on one thread.

    Each round is the bench's own timed loop (:func:`mdnet_deploy.bench.timing.timed_loop`)
    over the runner's prepared input; a model's figure is the median of its rounds' medians.
    """
    from ..bench.timing import Budget, timed_loop

    runners = [_runner(p) for p in paths]
    try:
        natives = [r.prepare(x) for r in runners]
        for r, native in zip(runners, natives):
            timed_loop(r.run, native, Budget(count=5))  # warm-up
        rounds: list[list[float]] = [[] for _ in runners]
        for _ in range(TIMING_ROUNDS):
            for i, (r, native) in enumerate(zip(runners, natives)):
                latencies, _ = timed_loop(r.run, native, Budget(count=TIMING_CALLS))
                rounds[i].append(statistics.median(latencies) / 1e6)
        return [statistics.median(v) for v in rounds]
    finally:
        for r in runners:
            r.close()


def _runner(path: Path) -> Any:
    from ..artifact import ArtifactMeta
    from ..runtimes.onnxruntime import OnnxRuntimeRunner

    runner = OnnxRuntimeRunner(path, ArtifactMeta(format="onnx"), threads=THREADS)
    runner.open()
    return runner


def _conv_times(path: Path, graph: Any, x: np.ndarray, ops: Sequence[str]) -> dict[str, float]:
    """Kernel time per call (us) of every conv ``ops`` node in ``path``'s profile, keyed by the float Conv node."""
    runner = _runner(path)
    try:
        profile = runner.profile(x, PROFILE_RUNS)
    finally:
        runner.close()
    resolve = _Resolver(graph)
    out: dict[str, float] = {}
    for layer in profile.get("layers") or []:
        if layer.get("op") not in ops:
            continue
        node = resolve(str(layer["name"]))
        if node is not None:
            out[node] = out.get(node, 0.0) + float(layer["ms"]) * 1000.0
    return out


class _Resolver:
    """A profiled node's name -> the float model's Conv node it computes.

    ONNX Runtime names a QDQ-fused QLinearConv ``<conv node>_token_N``, and a
    float conv fused with what follows it (activation, residual add) after that
    op's output tensor, with ``_nchwc`` when its NCHWc layout pass ran.
    """

    def __init__(self, graph: Any) -> None:
        self.nodes = {n.name: n for n in graph.node}
        self.producer = {o: n for n in graph.node for o in n.output}

    def __call__(self, name: str) -> str | None:
        base = _TOKEN.sub("", name)
        if base.endswith("_nchwc"):
            base = base[: -len("_nchwc")]
        node = self.nodes.get(base) or self.producer.get(base)
        for _ in range(3):  # conv -> [add] -> [activation]
            if node is None:
                return None
            if node.op_type == "Conv":
                return str(node.name)
            if node.op_type not in _FUSED_AFTER_CONV:
                return None
            feeding = [self.producer.get(i) for i in node.input]
            convs = [p for p in feeding if p is not None and p.op_type == "Conv"]
            node = convs[0] if convs else next((p for p in feeding if p is not None), None)
        return None


def _runtime() -> str:
    import onnxruntime as ort

    return f"onnxruntime {ort.__version__} CPUExecutionProvider"
