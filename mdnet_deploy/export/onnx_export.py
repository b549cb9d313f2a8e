"""Checkpoint -> ONNX (-> simplified ONNX), verified against PyTorch in ONNX Runtime.

The model is exported with the TorchScript-based exporter (``dynamo=False``):
it needs no onnxscript install and produces plain opset-17 graphs that
onnxsim, ONNX Runtime's quantizer and TensorRT's parser all take.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..artifact import ArtifactMeta, Preprocessing, TensorSpec, file_ref, write_meta
from ..errors import ConversionError, InputError, VerificationError
from ..fsutil import atomic_output, ensure_writable_dir
from ..metrics import compare_logits, topk_accuracy

PARITY_TOLERANCE = 1e-4
REAL_PARITY_IMAGES = 256  # enough for a top-1 agreement figure; torch eager is the slow side
META_KEY = "mdnet_deploy"


@dataclass
class ParityCheck:
    name: str  # "random" or the data set description
    n: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float
    accuracy: dict[str, float] | None = None  # torch and onnx top-1/top-5 when labels fit


@dataclass
class ExportResult:
    path: Path
    meta: ArtifactMeta
    checks: list[ParityCheck]
    nodes_before: int
    nodes_after: int
    simplifier: str | None
    seconds: dict[str, float] = field(default_factory=dict)


def tool_versions(*names: str) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _simplify(model: Any) -> tuple[Any, str | None]:
    """onnxsim where it is installed, else onnxslim; returns (model, which)."""
    try:
        import onnxsim
    except ImportError:
        onnxsim = None
    if onnxsim is not None:
        try:
            simplified, ok = onnxsim.simplify(model)
        except Exception as exc:  # onnxsim raises bare RuntimeErrors from C++
            raise ConversionError(f"onnxsim failed to simplify the model ({exc}); retry with --no-simplify") from None
        if not ok:
            raise ConversionError("onnxsim could not validate the simplified model; retry with --no-simplify")
        return simplified, "onnxsim"
    try:
        import onnxslim
    except ImportError:
        return model, None
    try:
        return onnxslim.slim(model), "onnxslim"
    except Exception as exc:
        raise ConversionError(f"onnxslim failed to simplify the model ({exc}); retry with --no-simplify") from None


def embed_metadata(model: Any, meta: ArtifactMeta) -> None:
    """Store the metadata JSON in ONNX metadata_props too, so the file alone is enough."""
    for prop in list(model.metadata_props):
        if prop.key == META_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = META_KEY, meta.to_json()


def export_onnx(
    checkpoint: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    opset: int = 17,
    batch: int | None = None,
    simplify: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
    num_classes: int | None = None,
    data: str | None = None,
    trust_pickle: bool = False,
    tolerance: float = PARITY_TOLERANCE,
    filename: str = "model.onnx",
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export ``checkpoint`` to ``out_dir/filename``; ``batch=None`` means dynamic batch.

    Nothing is written unless the parity check passes: the ONNX file is built
    under a temporary name, verified, and only then renamed into place.
    """
    import onnx
    import torch

    from ..data import load_dataset, preprocess
    from ..model.checkpoint import load_checkpoint

    say = progress or (lambda _m: None)
    out_dir = ensure_writable_dir(out_dir)
    if batch is not None and batch < 1:
        raise InputError(f"--batch {batch} is not valid; give 'dynamic' or a positive integer")
    if opset < 13:
        raise InputError(f"--opset {opset} is too old for MDNET's ops; use 13 or newer (17 recommended)")
    prep = Preprocessing(mean=tuple(mean) if mean else Preprocessing().mean, std=tuple(std) if std else Preprocessing().std)
    if any(s <= 0 for s in prep.std):
        raise InputError(f"--std {','.join(map(str, prep.std))} must be positive")

    times: dict[str, float] = {}
    t0 = time.perf_counter()
    ckpt = load_checkpoint(checkpoint, num_classes=num_classes, trust_pickle=trust_pickle)
    if labels is not None and len(labels) != ckpt.num_classes:
        raise InputError(
            f"the labels file has {len(labels)} names but the checkpoint has {ckpt.num_classes} classes; give one name per class"
        )
    model = ckpt.model
    times["load_s"] = time.perf_counter() - t0

    eval_ds = load_dataset(data, split="test", size=prep.size) if data else None
    if eval_ds is not None and labels is None and eval_ds.num_classes == ckpt.num_classes:
        labels = eval_ds.class_names

    final = out_dir / filename
    with atomic_output(final) as tmp:
        say("exporting to ONNX")
        t0 = time.perf_counter()
        example = torch.zeros(batch or 1, 3, *prep.size)
        dynamic = None if batch else {"input": {0: "batch"}, "logits": {0: "batch"}}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(
                    model, (example,), str(tmp), input_names=["input"], output_names=["logits"],
                    opset_version=opset, dynamo=False, dynamic_axes=dynamic, do_constant_folding=True,
                )
            except Exception as exc:
                raise ConversionError(f"torch.onnx.export failed: {str(exc).splitlines()[0]}") from None
        times["export_s"] = time.perf_counter() - t0
        proto = onnx.load(str(tmp))
        nodes_before = len(proto.graph.node)
        simplifier = None
        if simplify:
            say("simplifying")
            t0 = time.perf_counter()
            proto, simplifier = _simplify(proto)
            times["simplify_s"] = time.perf_counter() - t0
        nodes_after = len(proto.graph.node)

        meta = ArtifactMeta(
            format="onnx",
            precision="fp32",
            variant="mdnet" if ckpt.width == 1.0 else f"mdnet-w{ckpt.width:g}",
            num_classes=ckpt.num_classes,
            labels=list(labels) if labels is not None else None,
            input=TensorSpec(name="input", shape=[batch or "batch", 3, *prep.size], layout="NCHW", dtype="float32"),
            output=TensorSpec(name="logits", shape=[batch or "batch", ckpt.num_classes], layout="NC", dtype="float32"),
            preprocessing=prep,
            model_config={"num_classes": ckpt.num_classes, "width": ckpt.width, "heads": ckpt.heads},
            checkpoint=file_ref(ckpt.path),
            tools=tool_versions("torch", "onnx", "onnxruntime", "onnxsim", "onnxslim", "mdnet-deploy"),
        )
        meta.checkpoint["wrapper"] = ckpt.wrapper
        meta.parent = dict(meta.checkpoint)
        meta.verification = {"opset": opset, "nodes_before_simplify": nodes_before, "nodes": nodes_after, "simplifier": simplifier}
        onnx.save(proto, str(tmp))

        say("checking parity against PyTorch")
        t0 = time.perf_counter()
        checks = []
        rng = np.random.default_rng(0)
        random_x = rng.standard_normal((8 if batch is None else batch, 3, *prep.size)).astype(np.float32)
        checks.append(_parity("random", model, str(tmp), random_x, None, batch))
        if eval_ds is not None:
            real = eval_ds.take(np.arange(min(len(eval_ds), REAL_PARITY_IMAGES)))
            y = real.labels if eval_ds.num_classes == ckpt.num_classes else None
            checks.append(_parity(real.description, model, str(tmp), preprocess(real.images, prep), y, batch))
        times["parity_s"] = time.perf_counter() - t0
        worst = max(c.max_abs_diff for c in checks)
        meta.verification["parity"] = [c.__dict__ for c in checks]
        meta.verification["parity_tolerance"] = tolerance
        meta.verification["passed"] = worst <= tolerance
        if worst > tolerance:
            raise VerificationError(
                f"ONNX output differs from PyTorch by {worst:.3g} (> {tolerance:g}); nothing was written. "
                "Retry with --no-simplify or another --opset, and report the model if it persists"
            )
        embed_metadata(proto, meta)
        onnx.save(proto, str(tmp))
    write_meta(final, meta)
    return ExportResult(final, meta, checks, nodes_before, nodes_after, simplifier, times)


def _parity(name: str, model: Any, onnx_path: str, x: np.ndarray, labels: np.ndarray | None, batch: int | None) -> ParityCheck:
    import torch

    from ..runtimes.onnxruntime import run_onnx

    step = batch or 64
    with torch.no_grad():
        ref = np.concatenate([model(torch.from_numpy(x[i : i + step])).numpy() for i in range(0, len(x), step)])
    got = run_onnx(onnx_path, x, batch=step)
    cmp = compare_logits(ref, got)
    acc = None
    if labels is not None:
        acc = {"torch_top1": topk_accuracy(ref, labels)["top1"], "onnx_top1": topk_accuracy(got, labels)["top1"]}
    return ParityCheck(name, cmp["n"], cmp["max_abs_diff"], cmp["mean_abs_diff"], cmp["top1_agreement"], acc)
