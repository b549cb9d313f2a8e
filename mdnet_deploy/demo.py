"""The built-in end-to-end demo: digits -> checkpoint -> ONNX -> INT8 -> TFLite -> bench.

Everything runs on scikit-learn's bundled digits (no download). The trained
checkpoint is cached, so only the first run pays for training. Each step is
a library call the CLI commands also use; this module only strings them
together and collects one row per artifact.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

DEMO_DATA = "digits"
DEMO_WIDTH = 1.0  # the real network: its INT8 wins are the ones users get (10 training epochs: 2 min 39 s on 2 cores)
DEMO_EPOCHS = 10
DEMO_BATCH = 32  # 1.4k images: small batches give enough optimizer steps per epoch
DEMO_LR = 2e-3
DEMO_CALIB_SIZE = 256
BENCH_WARMUP = "20"
BENCH_ITERATIONS = 200


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
    results_json: Path | None = None  # the bench rows, for `mdnet-deploy compare`
    report: Path | None = None  # report.html beside the artifacts


def demo_checkpoint(
    cache_dir: Path,
    width: float,
    epochs: int,
    progress: Callable[[str], None],
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[Path, bool]:
    """The cached digits checkpoint, training it first if needed."""
    from .model.train import TrainConfig, train_checkpoint

    path = cache_dir / f"demo-digits-w{width:g}-e{epochs}-b{DEMO_BATCH}-lr{DEMO_LR:g}.pth"
    if path.exists():
        return path, False
    progress(
        f"training a width-{width:g} MDNET on digits for {epochs} epochs (first run only; cached in {path.parent})"
    )
    cfg = TrainConfig(epochs=epochs, width=width, batch_size=DEMO_BATCH, lr=DEMO_LR, hflip=False)

    def on_epoch(s: Any) -> None:
        progress(
            f"  epoch {s.epoch}/{epochs}: loss {s.loss:.3f}, held-out top-1 {s.val_top1:.2f} % ({s.seconds:.0f} s)"
        )

    train_checkpoint(DEMO_DATA, path, cfg, val_data=f"{DEMO_DATA}:test", on_step=on_step, on_epoch=on_epoch)
    return path, True


def run_demo(
    workdir: str | os.PathLike[str] = "out/demo",
    cache_dir: str | os.PathLike[str] | None = None,
    width: float = DEMO_WIDTH,
    epochs: int = DEMO_EPOCHS,
    progress: Callable[[str], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> DemoResult:
    from .artifact import Preprocessing
    from .bench import bench_models
    from .data import load_dataset, preprocess
    from .export.onnx_export import export_onnx
    from .fsutil import ensure_writable_dir
    from .metrics import compare_logits, topk_accuracy
    from .model.checkpoint import load_checkpoint
    from .model.meta import checkpoint_meta
    from .runtimes.onnxruntime import OnnxRuntimeRunner
    from .runtimes.torch_runner import TorchRunner

    say = progress or (lambda _m: None)
    workdir = ensure_writable_dir(workdir)
    cache = ensure_writable_dir(Path(cache_dir) if cache_dir else default_cache_dir())
    t_all = time.perf_counter()
    ckpt_path, trained = demo_checkpoint(cache, width, epochs, say, on_step)
    result = DemoResult(workdir, ckpt_path, trained)
    result.seconds["checkpoint_s"] = time.perf_counter() - t_all

    test = load_dataset(f"{DEMO_DATA}:test")
    x = preprocess(test.images, Preprocessing())
    y = test.labels

    # PyTorch reference: the logits every converted artifact is compared with.
    ckpt = load_checkpoint(ckpt_path)
    reference = TorchRunner.for_model(ckpt.model, checkpoint_meta(ckpt, format="pt"))
    with reference:
        ref = reference.logits(x)
    result.rows.append(
        DemoRow(
            "train",
            str(ckpt_path),
            _mb(ckpt_path),
            "fp32",
            topk_accuracy(ref, y)["top1"],
            100.0,
            note="PyTorch eager" + (", trained now" if trained else ", cached"),
        )
    )

    say("exporting to ONNX")
    t0 = time.perf_counter()
    # The demo trained with these statistics: say so, rather than leave every artifact on an assumed default.
    trained_prep = Preprocessing()
    exported = export_onnx(
        ckpt_path,
        workdir,
        data=f"{DEMO_DATA}:test",
        progress=None,
        mean=trained_prep.mean,
        std=trained_prep.std,
    )
    result.seconds["export_s"] = time.perf_counter() - t0
    with OnnxRuntimeRunner(exported.path, exported.meta) as runner:
        onnx_logits = runner.infer(x)
    result.rows.append(
        DemoRow(
            "export",
            str(exported.path),
            _mb(exported.path),
            "fp32",
            topk_accuracy(onnx_logits, y)["top1"],
            100.0 * compare_logits(ref, onnx_logits)["top1_agreement"],
            note=f"ONNX Runtime; max |diff| vs PyTorch {max(c.max_abs_diff for c in exported.checks):.1e}",
        )
    )

    t0 = time.perf_counter()
    int8_rows = _quantize_step(exported.path, workdir, say)
    result.rows.extend(int8_rows)
    result.seconds["quantize_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result.rows.extend(_tflite_step(exported.path, Path(int8_rows[0].artifact) if int8_rows else None, workdir, say))
    result.seconds["tflite_s"] = time.perf_counter() - t0

    say("benchmarking every artifact on this host (1 thread, batch 1)")
    t0 = time.perf_counter()
    # Every row, OpenVINO's included, is measured the same way.
    bench = functools.partial(
        bench_models,
        device="host",
        eval_spec=f"{DEMO_DATA}:test",
        threads=1,
        warmup=BENCH_WARMUP,
        iterations=BENCH_ITERATIONS,
        power_meter="auto",
        progress=None,
        mean=trained_prep.mean,
        std=trained_prep.std,
    )
    result.bench = bench([r.artifact for r in result.rows], profile_runs=20)
    result.bench += _openvino_rows(exported.path, say, bench)
    result.seconds["bench_s"] = time.perf_counter() - t0
    _report_step(result, workdir, say)
    by_path = {str(b.get("model", {}).get("path")): b for b in result.bench if b["runtime"]["name"] != OPENVINO_BF16}
    for row in result.rows:
        b = by_path.get(row.artifact)
        if b is not None and b.get("latency_ms"):
            row.latency_ms = b["latency_ms"]["p50"]
    result.rows += [_openvino_row(b) for b in result.bench if b["runtime"]["name"] == OPENVINO_BF16]
    result.seconds["total_s"] = time.perf_counter() - t_all
    return result


OPENVINO_BF16 = "openvino-bf16"


def _openvino_rows(
    onnx_path: Path, say: Callable[[str], None], bench: Callable[..., list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The float ONNX on OpenVINO in bf16, where OpenVINO is installed and the CPU computes bf16 natively.

    Not an artifact of its own: the same model.onnx, computed in another
    precision (issue 12 measured it as this host's fastest runtime), so it is
    benched and its accuracy measured like every other row.
    """
    from .runtimes.registry import runtime_available

    ok, why = runtime_available(OPENVINO_BF16)
    if not ok:
        say(f"OpenVINO row skipped: {why}")
        return []
    say("benchmarking model.onnx on OpenVINO in bf16 (1 thread, batch 1)")
    rows = bench([str(onnx_path)], runtime=[OPENVINO_BF16])
    kept = [r for r in rows if r.get("status") != "failed"]
    for r in rows:
        if r.get("status") == "failed":
            say(f"OpenVINO row skipped: {r.get('reason')}")
    return kept


def _openvino_row(bench_row: dict[str, Any]) -> DemoRow:
    model = bench_row["model"]
    return DemoRow(
        "bench",
        str(model["path"]),
        model.get("size_mb"),
        model.get("precision"),
        (bench_row.get("accuracy") or {}).get("top1"),
        None,  # agreement with PyTorch is measured at export/compile time, not by bench
        (bench_row.get("latency_ms") or {}).get("p50"),
        note="OpenVINO, the same model.onnx computed in bf16 (the CPU's native bf16); accuracy measured on the held-out digits",
    )


def _report_step(result: DemoResult, workdir: Path, say: Callable[[str], None]) -> None:
    """results.json and the self-contained report.html (Pareto plots, profiles, INT8 sensitivity) beside the artifacts."""
    from .bench import write_json
    from .reporting.html import write_html
    from .reporting.load import load_inputs

    say("writing results.json and report.html")
    result.results_json = write_json(result.bench, workdir / "results.json")
    quant = sorted(workdir.glob("model.int8*.report.json"))  # every INT8 form the quantize step wrote
    inputs = load_inputs([result.results_json], quant)
    result.report = write_html(inputs, workdir / "report.html", "mdnet-deploy demo: MDNET on the digits data")


def _mb(path: Path) -> float:
    return path.stat().st_size / 1e6


def _quantize_step(onnx_path: Path, workdir: Path, say: Callable[[str], None]) -> list[DemoRow]:
    """INT8 QDQ ONNX with the accuracy guard, in two forms; an unmet budget still yields a row (the best model).

    The TensorRT form comes first: it is the accuracy reference (and the float-fallback
    plan the TFLite int8 step honours), not a CPU speed format -- ONNX Runtime runs most
    of it in float. The ``ort`` form is the host's INT8 artifact: integer kernels, except
    the convs this host runs clearly faster in float (``--speed-fallback``, timed here).
    """
    from .calibration import quantize_model
    from .errors import AccuracyBudgetError

    rows = []
    for target, name, role in (
        ("tensorrt", "model.int8.onnx", "TensorRT form: accuracy reference, not a CPU speed format"),
        ("ort", "model.int8-ort.onnx", "ONNX Runtime form: integer kernels on the host"),
    ):
        say(
            f"quantizing to INT8, {target} form ({DEMO_CALIB_SIZE} calibration images, accuracy guard on the held-out digits)"
        )
        try:
            res = quantize_model(
                onnx_path,
                workdir / name,
                f"{DEMO_DATA}:train",
                calib_size=DEMO_CALIB_SIZE,
                eval_spec=f"{DEMO_DATA}:test",
                max_drop=0.5,
                force=True,
                target=target,
                # The reference form's layer ranking is what the report's sensitivity chart shows.
                always_rank=target == "tensorrt",
                speed_fallback=target == "ort",
            )
        except AccuracyBudgetError as exc:
            if exc.result is None:
                raise
            res = exc.result
        acc = res.report.get("accuracy") or {}
        fallback = res.report.get("float_fallback", {}).get("modules", [])
        drop = acc.get("drop_top1")
        kernels = res.report.get("form", {}).get("integer_kernels") or {}
        by_speed = [r for r in res.report.get("float_fallback", {}).get("layers", []) if r.get("by") == "speed"]
        note = f"{role}; {len(fallback) - len(by_speed)} layers kept float for accuracy"
        if target == "ort" and kernels:
            note += f", {len(by_speed)} for speed; {kernels.get('integer_convs')} convs integer on ORT"
        if drop is not None:
            note += f"; drop {drop:.2f} pts ({'within' if acc.get('met') else 'over'} 0.5 budget)"
        rows.append(
            DemoRow(
                "quantize",
                str(res.path),
                _mb(res.path),
                "int8",
                (acc.get("int8") or {}).get("top1"),
                _pct(acc.get("top1_agreement")),
                note=note,
            )
        )
    return rows


def _tflite_step(onnx_path: Path, int8_onnx: Path | None, workdir: Path, say: Callable[[str], None]) -> list[DemoRow]:
    """fp32 and full-integer int8 TFLite from the same checkpoint, int8 honouring quantize's float fallback."""
    from .export.tflite.compile import convert_tflite

    rows = []
    jobs: list[tuple[str, Path, Path, dict[str, Any]]] = [("fp32", onnx_path, workdir / "model.fp32.tflite", {})]
    if int8_onnx is not None:
        jobs.append(
            (
                "int8",
                int8_onnx,
                workdir / "model.int8.tflite",
                {"calib": f"{DEMO_DATA}:train", "calib_size": DEMO_CALIB_SIZE},
            )
        )
    for precision, source, out, extra in jobs:
        say(f"converting to {precision} TFLite with litert-torch")
        res = convert_tflite(source, out, precision, eval_spec=f"{DEMO_DATA}:test", force=True, **extra)
        check = max(res.checks, key=lambda c: c.n) if res.checks else None
        delegated = res.delegation.get("ops_delegated") if isinstance(res.delegation, dict) else None
        total = res.delegation.get("ops_total") if isinstance(res.delegation, dict) else None
        note = "LiteRT" + (f"; XNNPACK took {delegated}/{total} ops" if delegated is not None and total else "")
        rows.append(
            DemoRow(
                "compile",
                str(res.path),
                res.size_bytes / 1e6,
                precision,
                (res.accuracy or {}).get("top1"),
                _pct(check.top1_agreement if check else None),
                note=note,
            )
        )
    return rows


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else 100.0 * fraction
