"""Measure the figures docs/BENCHMARKS.md records for export (issue: foundation).

Usage: .venv/bin/python scripts/measure_export.py [CHECKPOINT]
Prints a Markdown block: export + simplify time, node counts, ONNX Runtime
FP32 latency (1 thread and all threads, batch 1, median of 300 runs after 50
warm-up) against PyTorch eager, and the fraction of the host's FP32 peak.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch

from mdnet_deploy.export.onnx_export import export_onnx
from mdnet_deploy.model.checkpoint import load_checkpoint
from mdnet_deploy.runtimes.onnxruntime import OnnxRuntimeRunner

MACS = 98.38e6  # per 32x32 image: conv + matmul MACs of the ONNX graph (issue 12; MDNET.md's 105.6 M is wrong)
RUNS, WARMUP = 300, 50


def median_ms(fn) -> float:
    for _ in range(WARMUP):
        fn()
    t = []
    for _ in range(RUNS):
        t0 = time.perf_counter_ns()
        fn()
        t.append(time.perf_counter_ns() - t0)
    return float(np.median(t)) / 1e6


def main() -> None:
    ckpt = sys.argv[1] if len(sys.argv) > 1 else "../shared/fixtures/mdnet_official_c100_random.pth"
    out = tempfile.mkdtemp()
    t0 = time.perf_counter()
    res = export_onnx(ckpt, out)
    total = time.perf_counter() - t0
    model = load_checkpoint(ckpt).model
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    xt = torch.from_numpy(x)
    rows = []
    cores = os.cpu_count() or 1
    for threads in sorted({1, cores}):
        torch.set_num_threads(threads)
        with torch.no_grad():
            pt = median_ms(lambda: model(xt))
        with OnnxRuntimeRunner(res.path, res.meta, threads=threads) as r:
            native = r.prepare(x)
            ort = median_ms(lambda native=native: r.run(native))
        rows.append((threads, pt, ort))
    print(
        f"machine: {platform.processor() or platform.machine()}, {cores} cores, torch {torch.__version__}, "
        f"onnxruntime {res.meta.tools.get('onnxruntime')}, onnxsim {res.meta.tools.get('onnxsim')}"
    )
    print(
        f"export+simplify+parity: {total:.1f} s (export {res.seconds['export_s']:.1f} s, "
        f"simplify {res.seconds.get('simplify_s', 0):.1f} s, parity {res.seconds['parity_s']:.1f} s)"
    )
    print(f"ONNX nodes: {res.nodes_before} before simplification, {res.nodes_after} after ({res.simplifier})")
    print("| threads | PyTorch eager p50 ms | ONNX Runtime p50 ms | speed-up | ORT GFLOP/s |")
    print("| --- | --- | --- | --- | --- |")
    for threads, pt, ort in rows:
        print(f"| {threads} | {pt:.3f} | {ort:.3f} | {pt / ort:.2f}x | {2 * MACS / (ort / 1e3) / 1e9:.1f} |")


if __name__ == "__main__":
    main()
