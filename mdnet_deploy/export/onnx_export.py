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

from ..artifact import ArtifactMeta, TensorSpec, artifact_output
from ..errors import ConversionError, InputError, VerificationError
from ..fsutil import ensure_writable_dir
from ..prepcheck import check_assumed_preprocessing, resolve_preprocessing
from ..runtimes.torch_runner import torch_logits
from .parity import ParityCheck

__all__ = ["ExportResult", "ParityCheck", "export_onnx", "embed_metadata", "tool_versions"]

PARITY_TOLERANCE = 1e-4
REAL_PARITY_IMAGES = 256  # enough for a top-1 agreement figure; torch eager is the slow side
META_KEY = "mdnet_deploy"


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
    graph: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export ``checkpoint`` to ``out_dir/filename``; ``batch=None`` means dynamic batch.

    ``graph``: ``cpu`` (default) writes MDNET's CPU form (:mod:`mdnet_deploy.model.cpu_graph`:
    the attention as its value path, grouped convolutions as depthwise convs plus slice sums),
    the same function in kernels ONNX Runtime's CPU EP runs fast (docs/BENCHMARKS.md, issue 12);
    ``original`` keeps the authors' grouped convolutions (TensorRT's form).

    Nothing is written unless the parity check passes: the ONNX file is built
    under a temporary name, verified, and only then renamed into place.
    """
    import onnx
    import torch

    from ..data import load_dataset, preprocess
    from ..model.checkpoint import load_checkpoint
    from ..model.cpu_graph import GRAPHS, for_graph
    from ..model.meta import checkpoint_meta
    from ..runtimes.torch_runner import TorchRunner

    say = progress or (lambda _m: None)
    if graph not in GRAPHS:
        raise InputError(f"--graph {graph} is not known; use cpu (ONNX Runtime, TFLite) or original (TensorRT)")
    out_dir = ensure_writable_dir(out_dir)
    if batch is not None and batch < 1:
        raise InputError(f"--batch {batch} is not valid; give 'dynamic' or a positive integer")
    if opset < 13:
        raise InputError(f"--opset {opset} is too old for MDNET's ops; use 13 or newer (17 recommended)")
    prep = resolve_preprocessing(mean, std)  # refuses NaN/Inf/std <= 0 before anything slow

    times: dict[str, float] = {}
    t0 = time.perf_counter()
    ckpt = load_checkpoint(checkpoint, num_classes=num_classes, trust_pickle=trust_pickle)
    if labels is not None and len(labels) != ckpt.num_classes:
        raise InputError(
            f"the labels file has {len(labels)} names but the checkpoint has {ckpt.num_classes} classes; give one name per class"
        )
    prep = resolve_preprocessing(mean, std, ckpt.preprocessing)
    model, rewritten = for_graph(ckpt.model, graph)
    times["load_s"] = time.perf_counter() - t0

    eval_ds = load_dataset(data, split="test", size=prep.size) if data else None
    if eval_ds is not None and labels is None and eval_ds.num_classes == ckpt.num_classes:
        labels = eval_ds.class_names
    prep_check = None
    if eval_ds is not None:  # no --mean/--std: is the CIFAR-100 default right for these images?
        say(f"checking the preprocessing ({prep.source}) on {eval_ds.description}")
        prep_check = check_assumed_preprocessing(
            prep,
            eval_ds.images,
            eval_ds.labels,
            torch_logits(ckpt.model),
            model=str(checkpoint),
            dataset=eval_ds.description,
            num_classes=ckpt.num_classes,
        )

    final = out_dir / filename
    with artifact_output(final) as pending:  # the file and its sidecar appear together (artifact.publish)
        tmp = pending.tmp
        say("exporting to ONNX")
        t0 = time.perf_counter()
        example = torch.zeros(batch or 1, 3, *prep.size)
        dynamic = None if batch else {"input": {0: "batch"}, "logits": {0: "batch"}}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(
                    model,
                    (example,),
                    str(tmp),
                    input_names=["input"],
                    output_names=["logits"],
                    opset_version=opset,
                    dynamo=False,
                    dynamic_axes=dynamic,
                    do_constant_folding=True,
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

        meta = checkpoint_meta(
            ckpt,
            format="onnx",
            preprocessing=prep,
            labels=labels,
            graph=graph,
            rewritten=rewritten,
            input=TensorSpec(name="input", shape=[batch or "batch", 3, *prep.size], layout="NCHW", dtype="float32"),
            output=TensorSpec(name="logits", shape=[batch or "batch", ckpt.num_classes], layout="NC", dtype="float32"),
        )
        meta.tools = tool_versions("torch", "onnx", "onnxruntime", "onnxsim", "onnxslim", "mdnet-deploy")
        meta.parent = dict(meta.checkpoint or {})
        meta.verification = {
            "opset": opset,
            "nodes_before_simplify": nodes_before,
            "nodes": nodes_after,
            "simplifier": simplifier,
        }
        if prep_check is not None:
            meta.verification["preprocessing_check"] = prep_check.to_dict()
        onnx.save(proto, str(tmp))

        say("checking parity against PyTorch")
        t0 = time.perf_counter()
        # The reference is the authors' module as loaded, not the rewritten one: the gate
        # checks the graph rewrite and the export together.
        checks = []
        rng = np.random.default_rng(0)
        random_x = rng.standard_normal((8 if batch is None else batch, 3, *prep.size)).astype(np.float32)
        reference = TorchRunner.for_model(ckpt.model, meta, channels_last=True)
        with reference:
            checks.append(_parity("random", reference, str(tmp), random_x, None, batch))
            if eval_ds is not None:
                real = eval_ds.take(np.arange(min(len(eval_ds), REAL_PARITY_IMAGES)))
                y = real.labels if eval_ds.num_classes == ckpt.num_classes else None
                checks.append(_parity(real.description, reference, str(tmp), preprocess(real.images, prep), y, batch))
        times["parity_s"] = time.perf_counter() - t0
        worst = max(c.max_abs_diff for c in checks)
        meta.verification["parity"] = [c.to_dict() for c in checks]
        meta.verification["parity_tolerance"] = tolerance
        meta.verification["passed"] = worst <= tolerance
        if worst > tolerance:
            raise VerificationError(
                f"ONNX output differs from PyTorch by {worst:.3g} (> {tolerance:g}); nothing was written. Retry with "
                # The CPU graph sums in another order, which a model that amplifies rounding can feel.
                + ("--graph original, " if graph == "cpu" else "")
                + "--no-simplify or another --opset, and report the model if it persists"
            )
        embed_metadata(proto, meta)
        onnx.save(proto, str(tmp))
        pending.meta = meta
    return ExportResult(final, meta, checks, nodes_before, nodes_after, simplifier, times)


def _parity(
    name: str, reference: Any, onnx_path: str, x: np.ndarray, labels: np.ndarray | None, batch: int | None
) -> ParityCheck:
    from ..runtimes.onnxruntime import run_onnx

    step = batch or 64
    ref = reference.logits(x, batch=step)
    got = run_onnx(onnx_path, x, batch=step)
    return ParityCheck.of(name, ref, got, labels)
