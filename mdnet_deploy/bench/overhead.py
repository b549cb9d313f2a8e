"""How much the harness itself adds to a measured latency (workstation tool, needs onnx).

Three figures, in microseconds per call:

* ``timer_us``: what a call that does nothing measures (two
  ``perf_counter_ns`` readings): the harness's share *inside* each latency;
* ``loop_us``: the loop's bookkeeping *between* calls (list append, loop
  test), which lowers throughput but not latency;
* ``trivial_p50_us``: the median latency of a one-node ONNX graph (Flatten)
  through the whole bench path (runner, ONNX Runtime's session.run): the
  floor any model measured this way sits on.

Compare them with MDNET's median latency; the target is under 2 %::

    python -m mdnet_deploy.bench.overhead --mdnet out/model.onnx --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from ..artifact import ArtifactMeta, Preprocessing, TensorSpec, write_meta
from .harness import bench_models
from .timing import Budget, timed_loop


def write_trivial_onnx(path: str | Path) -> Path:
    """A one-node graph (Flatten of a N,3,1,1 input into N,3 "logits") with its sidecar."""
    import onnx
    from onnx import TensorProto, helper

    path = Path(path)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 1, 1])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph([helper.make_node("Flatten", ["input"], ["logits"], axis=1)], "trivial", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every ONNX Runtime we support
    onnx.save(model, str(path))
    meta = ArtifactMeta(
        format="onnx",
        variant="trivial-flatten",
        num_classes=3,
        input=TensorSpec(name="input", shape=["batch", 3, 1, 1]),
        output=TensorSpec(name="logits", shape=["batch", 3], layout="NC"),
        preprocessing=Preprocessing(size=(1, 1)),
    )
    write_meta(path, meta)
    return path


def measure_overhead(iterations: int = 5000, threads: int | None = 1, mdnet: str | None = None) -> dict[str, Any]:
    """The figures above; with ``mdnet`` (an .onnx) also its p50 and the overheads as a share of it."""
    lat, window = timed_loop(lambda _x: None, None, Budget(count=iterations))
    timer_us = statistics.median(lat) / 1e3
    loop_us = (window - sum(lat)) / iterations / 1e3
    with tempfile.TemporaryDirectory(prefix="mdnet-overhead-") as tmp:
        trivial = write_trivial_onnx(Path(tmp) / "trivial.onnx")
        row = bench_models(
            [trivial],
            device="host",
            runtime="onnxruntime",
            threads=threads,
            warmup="200",
            iterations=iterations,
            power_meter="none",
        )[0]
    out: dict[str, Any] = {
        "iterations": iterations,
        "threads": threads,
        "timer_us": timer_us,
        "loop_us": loop_us,
        "trivial_p50_us": row["latency_ms"]["p50"] * 1e3 if row["latency_ms"] else None,
        "trivial_runtime": row["runtime"],
    }
    if mdnet:
        m = bench_models(
            [mdnet],
            device="host",
            runtime="onnxruntime",
            threads=threads,
            warmup="50",
            iterations=max(100, iterations // 20),
            power_meter="none",
        )[0]
        if m["latency_ms"]:
            p50_us = m["latency_ms"]["p50"] * 1e3
            out.update(
                mdnet_p50_us=p50_us,
                timer_share_pct=100.0 * timer_us / p50_us,
                loop_share_pct=100.0 * loop_us / p50_us,
                trivial_share_pct=100.0 * out["trivial_p50_us"] / p50_us if out["trivial_p50_us"] else None,
            )
        else:
            out["mdnet_error"] = m["reason"]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mdnet", help="an MDNET .onnx to compare with")
    args = parser.parse_args(argv)
    # A `python -m` entry point, not library code: its output is the JSON.
    print(json.dumps(measure_overhead(args.iterations, args.threads, args.mdnet), indent=2, default=str))  # noqa: T201


if __name__ == "__main__":  # pragma: no cover
    main()
