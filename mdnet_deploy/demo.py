"""The built-in end-to-end demo: digits -> checkpoint -> ONNX -> INT8 -> TFLite -> bench.

Everything runs on scikit-learn's bundled digits (no download). The trained
checkpoint is cached, so only the first run pays for training. Each step is
a library call the CLI commands also use; this module only strings them
together and collects one row per artifact.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

DEMO_DATA = "digits"
DEMO_WIDTH = 0.5  # half width keeps a cold start (training included) under 5 minutes on 2 cores
DEMO_EPOCHS = 10
DEMO_BATCH = 32  # 1.4k images: small batches give enough optimizer steps per epoch
DEMO_LR = 2e-3


def default_cache_dir() -> Path:
    return Path(os.environ.get("MDNET_DEPLOY_CACHE", Path.home() / ".cache" / "mdnet-deploy"))


@dataclass
class DemoRow:
    step: str
    artifact: str
    size_mb: float | None = None
    precision: str | None = None
    top1: float | None = None
    agreement: float | None = None  # top-1 agreement with PyTorch, percent
    latency_ms: float | None = None  # median, batch 1
    note: str = ""


@dataclass
class DemoResult:
    workdir: Path
    checkpoint: Path
    trained: bool
    rows: list[DemoRow] = field(default_factory=list)
    bench: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def demo_checkpoint(cache_dir: Path, width: float, epochs: int, progress: Callable[[str], None]) -> tuple[Path, bool]:
    """The cached digits checkpoint, training it first if needed."""
    from .model.train import TrainConfig, train_checkpoint

    path = cache_dir / f"demo-digits-w{width:g}-e{epochs}-b{DEMO_BATCH}-lr{DEMO_LR:g}.pth"
    if path.exists():
        return path, False
    progress(f"training a width-{width:g} MDNET on digits for {epochs} epochs (first run only; cached in {path.parent})")
    cfg = TrainConfig(epochs=epochs, width=width, batch_size=DEMO_BATCH, lr=DEMO_LR, hflip=False)

    def on_epoch(s: Any) -> None:
        progress(f"  epoch {s.epoch}/{epochs}: loss {s.loss:.3f}, held-out top-1 {s.val_top1:.2f} % ({s.seconds:.0f} s)")

    train_checkpoint(DEMO_DATA, path, cfg, val_data=f"{DEMO_DATA}:test", on_epoch=on_epoch)
    return path, True


def median_latency_ms(fn: Callable[[], Any], warmup: int = 10, runs: int = 50) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return float(np.median(times) / 1e6)


def run_demo(
    workdir: str | os.PathLike[str] = "out/demo",
    cache_dir: str | os.PathLike[str] | None = None,
    width: float = DEMO_WIDTH,
    epochs: int = DEMO_EPOCHS,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    import torch

    from .artifact import Preprocessing
    from .data import load_dataset, preprocess
    from .export.onnx_export import export_onnx
    from .fsutil import ensure_writable_dir
    from .metrics import compare_logits, topk_accuracy
    from .model.checkpoint import load_checkpoint
    from .runtimes.onnxruntime import OnnxRuntimeRunner

    say = progress or (lambda _m: None)
    workdir = ensure_writable_dir(workdir)
    cache = ensure_writable_dir(Path(cache_dir) if cache_dir else default_cache_dir())
    t_all = time.perf_counter()
    ckpt_path, trained = demo_checkpoint(cache, width, epochs, say)
    result = DemoResult(workdir, ckpt_path, trained)
    result.seconds["checkpoint_s"] = time.perf_counter() - t_all

    test = load_dataset(f"{DEMO_DATA}:test")
    x = preprocess(test.images, Preprocessing())
    y = test.labels

    # PyTorch reference row.
    model = load_checkpoint(ckpt_path).model
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
        one = torch.from_numpy(x[:1])
        torch.set_num_threads(1)
        try:
            torch_ms = median_latency_ms(lambda: model(one))
        finally:
            torch.set_num_threads(os.cpu_count() or 1)
    result.rows.append(DemoRow("train", str(ckpt_path), _mb(ckpt_path), "fp32", topk_accuracy(ref, y)["top1"], 100.0,
                               torch_ms, "PyTorch eager (1 thread)" + (", trained now" if trained else ", cached")))

    say("exporting to ONNX")
    t0 = time.perf_counter()
    exported = export_onnx(ckpt_path, workdir, data=f"{DEMO_DATA}:test", progress=None)
    result.seconds["export_s"] = time.perf_counter() - t0
    with OnnxRuntimeRunner(exported.path, exported.meta, threads=1) as runner:
        onnx_logits = runner.infer(x)
        native = runner.prepare(x[:1])
        ort_ms = median_latency_ms(lambda: runner.run(native))
    result.rows.append(DemoRow(
        "export", str(exported.path), _mb(exported.path), "fp32", topk_accuracy(onnx_logits, y)["top1"],
        100.0 * compare_logits(ref, onnx_logits)["top1_agreement"], ort_ms,
        f"ONNX Runtime (1 thread); max |diff| vs PyTorch {max(c.max_abs_diff for c in exported.checks):.1e}",
    ))
    result.seconds["total_s"] = time.perf_counter() - t_all
    return result


def _mb(path: Path) -> float:
    return path.stat().st_size / 1e6
