"""``compile --target tflite``: checkpoint (or an artifact's checkpoint) -> verified .tflite + sidecar.

One entry point, :func:`convert_tflite`. Cheap checks come first (options,
output path, source and checkpoint hash, calibration set), then the
conversion (see :mod:`.tflite_convert`), then verification on the host with
ai-edge-litert's interpreter through :class:`~mdnet_deploy.runtimes.tflite.TfliteRunner`.
The file is written under a temporary name and renamed only when it has
been verified; its metadata goes in the sidecar and inside the flatbuffer.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...artifact import ArtifactMeta, Preprocessing, TensorSpec, artifact_output, file_ref
from ...errors import ArtifactError, DataError, InputError, OutputError, VerificationError
from ...fsutil import check_output
from ...prepcheck import check_assumed_preprocessing, resolve_preprocessing
from ...progress import Steps
from ...runtimes.torch_runner import torch_logits

PRECISIONS = ("fp32", "fp16", "int8")
IO_TYPES = ("float", "int8")
FP32_TOLERANCE = 1e-3  # max |diff| of logits vs PyTorch; XNNPACK fp32 is typically ~1e-5
PARITY_IMAGES = 64  # real images for the parity check when there is no --eval
Progress = Steps  # see mdnet_deploy.progress


@dataclass
class TfliteResult:
    path: Path
    meta: ArtifactMeta
    checks: list[Any]  # tflite_verify.ParityCheck
    accuracy: dict[str, Any] | None
    delegation: dict[str, Any]
    size_bytes: int
    seconds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Calibration:
    x: np.ndarray
    info: dict[str, Any]


def convert_tflite(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    precision: str = "fp32",
    *,
    calib: str | None = None,
    calib_size: int | None = None,
    io: str = "float",
    eval_spec: str | None = None,
    quant_report: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    batch: int = 1,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    threads: int | None = None,
    force: bool = False,
    trust_pickle: bool = False,
    progress: Progress | None = None,
    allow_overlap: bool = False,
    graph: str | None = None,
) -> TfliteResult:
    """Convert ``source`` (checkpoint, or ONNX artifact pointing at one) to ``out`` (.tflite).

    ``calib_size``: images for int8 calibration (default: quantize's count, else 512).
    ``io``: "float" (default) or "int8" input/output tensors (int8 precision only).
    ``threads``: interpreter threads for the host verification (default 1: fastest on
    small shared machines, where a second XNNPACK thread mostly spin-waits).
    ``progress(stage, done, total)`` is called as work advances; nothing is printed.
    ``graph``: ``cpu`` (the default) converts MDNET's CPU form (:mod:`mdnet_deploy.model.cpu_graph`:
    the attention's value path, grouped convs as depthwise + slice sums, 7x7 depthwise kernels
    in row bands XNNPACK has kernels for); ``original`` the authors' form. By measurement
    (docs/BENCHMARKS.md, issue 12) the CPU form is 2.2x faster for fp32 and 2.6x for int8 on
    XNNPACK. Parity is always checked against the authors' module.
    """
    from ...model.checkpoint import load_checkpoint
    from ...model.cpu_graph import GRAPHS, XNNPACK_DWCONV_TAPS, for_graph
    from .source import check_modules, resolve_source

    say = progress or (lambda *_: None)
    precision, io, out = _check_options(precision, io, batch, calib_size, out)
    graph = graph or "cpu"
    if graph not in GRAPHS:
        raise InputError(
            f"graph {graph} is not known; use cpu (depthwise+sum, XNNPACK) or original (the authors' grouped convs)"
        )
    check_output(out, force=force)
    times: dict[str, float] = {}
    warnings: list[str] = []
    t0 = time.perf_counter()
    src = resolve_source(source, checkpoint, quant_report)
    prep = _preprocessing(src.meta, mean, std)
    if precision == "int8":
        _calib_spec(calib, src.plan)  # refuse before anything slow
    say("load", 0, 0)
    ckpt = load_checkpoint(src.checkpoint, trust_pickle=trust_pickle)
    if src.meta is not None and src.meta.num_classes != ckpt.num_classes:
        raise ArtifactError(
            f"{src.given} describes {src.meta.num_classes} classes but its checkpoint has {ckpt.num_classes}; re-export it"
        )
    plan = src.plan
    if precision == "int8" and plan is not None:
        check_modules(plan, ckpt.model)
        if plan.unmapped_nodes:
            warnings.append(
                f"{len(plan.unmapped_nodes)} float ONNX nodes name no conv/linear module (e.g. {plan.unmapped_nodes[0]}); "
                "TFLite keeps them as the converter makes them"
            )
    if precision != "int8" and (calib or quant_report):
        warnings.append(f"--calib/--quant-report are used for int8 only; ignored for {precision}")
    cal = _calibration(calib, calib_size, plan, prep, warnings) if precision == "int8" else None
    eval_ds = _eval_set(eval_spec, prep, ckpt.num_classes)
    if src.meta is None and mean is None and ckpt.preprocessing is not None:
        prep = resolve_preprocessing(None, None, ckpt.preprocessing)
    if cal is not None and eval_ds is not None:
        from ...data import preprocess
        from ...data.overlap import check_overlap

        if check_overlap(
            cal.x, preprocess(eval_ds.images, prep), str(cal.info.get("source")), eval_spec, allow_overlap
        ):
            warnings.append(
                "evaluation images are also calibration images (--allow-overlap): the accuracy is optimistic"
            )
    if eval_ds is not None:  # a default mean/std is checked against the labelled images (prepcheck)
        check_assumed_preprocessing(
            prep,
            eval_ds.images,
            eval_ds.labels,
            torch_logits(ckpt.model),
            model=str(source),
            dataset=eval_ds.description,
            num_classes=ckpt.num_classes,
        )
    times["load_s"] = time.perf_counter() - t0

    with artifact_output(out) as pending:  # the file and its sidecar appear together (artifact.publish)
        tmp = pending.tmp
        t0 = time.perf_counter()
        # The reference below stays the authors' module; XNNPACK gets depthwise kernels it has fast paths for.
        converted, rewritten = for_graph(ckpt.model, graph, max_taps=XNNPACK_DWCONV_TAPS)
        data = _convert(converted, precision, io, batch, prep, cal, plan, out, say, times)
        times["convert_s"] = time.perf_counter() - t0  # includes calibrate_s
        tmp.write_bytes(data)

        t0 = time.perf_counter()
        say("verify", 0, 0)
        meta = _base_meta(ckpt, src, prep, precision, eval_ds, graph, rewritten)
        verified = _verify(tmp, meta, ckpt.model, precision, prep, cal, eval_ds, plan, threads)
        times["verify_s"] = time.perf_counter() - t0
        meta.input, meta.output = verified.pop("input"), verified.pop("output")
        meta.calibration = cal.info if cal else None
        meta.quantization = _quantization(precision, io, plan, cal, verified.pop("module_ops"))
        meta.verification = {**verified, "parity": [c.to_dict() for c in verified["parity"]]}
        _fallback_held(meta, warnings)
        _parity_gate(precision, verified["parity"], warnings)
        data = _embed(data, meta)
        tmp.write_bytes(data)
        pending.meta = meta
    return TfliteResult(
        path=out,
        meta=meta,
        checks=verified["parity"],
        accuracy=verified.get("accuracy"),
        delegation=verified["xnnpack"],
        size_bytes=out.stat().st_size,
        seconds=times,
        warnings=warnings,
    )


# -- option and input checks -----------------------------------------------------
def _check_options(precision: str, io: str, batch: int, calib_size: int | None, out: Any) -> tuple[str, str, Path]:
    p, i, out = str(precision).lower(), str(io).lower(), Path(out)
    if p not in PRECISIONS:
        raise InputError(f"--precision {precision} is not supported for TFLite; use one of {', '.join(PRECISIONS)}")
    if i not in IO_TYPES:
        raise InputError(f"--io {io} is not known; use float or int8")
    if i == "int8" and p != "int8":
        raise InputError(f"--io int8 needs --precision int8 (a {p} model computes in float); drop --io or quantize")
    if int(batch) < 1:
        raise InputError(
            f"--batch {batch} must be a positive integer (TFLite files from litert-torch have a fixed batch)"
        )
    if calib_size is not None and int(calib_size) < 1:
        raise InputError(f"--calib-size {calib_size} must be a positive number of images")
    if out.suffix.lower() != ".tflite":
        raise OutputError(f"-o {out}: name the output NAME.tflite")
    return p, i, out


def _preprocessing(
    meta: ArtifactMeta | None, mean: Sequence[float] | None, std: Sequence[float] | None
) -> Preprocessing:
    if meta is not None:
        if mean is not None or std is not None:
            raise InputError(
                "--mean/--std are fixed by the artifact's metadata; drop them (or compile from the checkpoint)"
            )
        return meta.preprocessing
    return resolve_preprocessing(mean, std)


def _rgb(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) != 3:
        raise InputError(f"--mean/--std need 3 values (R,G,B), got {len(values)}")
    return float(values[0]), float(values[1]), float(values[2])


def _calibration(
    calib: str | None, calib_size: int | None, plan: Any, prep: Preprocessing, warnings: list[str]
) -> _Calibration:
    """The calibration images: quantize's (same source, count, seed; hash checked) unless --calib overrides."""
    from ...data import load_dataset, preprocess, select_subset

    recorded = (plan.calibration if plan is not None else None) or {}
    spec = _calib_spec(calib, plan)
    count = int(calib_size or recorded.get("count") or recorded.get("size") or 512)
    seed = int(recorded.get("seed", 0) or 0)
    split = str(recorded.get("split") or "train")
    ds = load_dataset(str(spec), split=split, size=prep.size)
    if len(ds) < count:
        warnings.append(f"calibration set {spec} has {len(ds)} images, fewer than {count}; using all {len(ds)}")
    subset = select_subset(ds, count, seed=seed, balanced=True)
    x = preprocess(subset.images, prep)
    digest = subset.digest()
    info = {
        "source": str(spec),
        "description": subset.description,
        "count": len(subset),
        "seed": seed,
        "split": split,
        "sha256": digest,
        "balanced": True,
    }
    want = recorded.get("sha256")
    if want:
        info["quantize_sha256"] = want
        info["matches_quantize"] = want == digest
        if want != digest and not calib:
            raise DataError(
                f"calibration set {spec} no longer gives the images quantize used (sha256 differs); "
                "restore it, or pass --calib SPEC to calibrate on it anyway"
            )
        if want != digest:
            warnings.append(
                f"--calib {spec} differs from quantize's calibration images; ONNX and TFLite int8 may disagree"
            )
    return _Calibration(x=x, info=info)


def _calib_spec(calib: str | None, plan: Any) -> str:
    recorded = (plan.calibration if plan is not None else None) or {}
    spec = calib or recorded.get("source") or recorded.get("spec")
    if not spec:
        raise InputError(
            "int8 needs calibration images: pass --calib SPEC (the set given to 'mdnet-deploy quantize', e.g. digits:train) "
            "or --quant-report with quantize's report; no random or default data is used"
        )
    return str(spec)


def _eval_set(spec: str | None, prep: Preprocessing, num_classes: int) -> Any:
    if spec is None:
        return None
    from ...data import load_dataset

    ds = load_dataset(spec, split="test", size=prep.size)
    if ds.num_classes != num_classes:
        raise DataError(
            f"--eval {spec} has {ds.num_classes} classes but the model has {num_classes}; give the matching test set"
        )
    return ds


# -- conversion -------------------------------------------------------------------
def _convert(
    model: Any,
    precision: str,
    io: str,
    batch: int,
    prep: Preprocessing,
    cal: _Calibration | None,
    plan: Any,
    out: Path,
    say: Progress,
    times: dict[str, float],
) -> bytes:
    from . import convert as tc

    log = out.with_name(out.name + ".log")
    if log.exists():  # the user's file (or an earlier failure's log): never replaced, never deleted
        log = out.with_name(f"{out.name}.{os.getpid()}.log")
    say("convert", 0, 0)
    if precision == "int8":
        assert cal is not None
        observer = "minmax" if plan is not None and plan.method == "minmax" else "histogram"
        cal.info["observer"] = observer
        floats = plan.float_modules if plan is not None else []
        with tc.conversion_log(log):
            prepared, quantizer = tc.prepare_int8(model, prep.size, floats, observer)
        t0 = time.perf_counter()
        tc.calibrate(prepared, cal.x, progress=say)  # outside the log: progress is shown live
        times["calibrate_s"] = time.perf_counter() - t0
        say("convert", 0, 0)
        with tc.conversion_log(log):
            data = tc.finish_int8(prepared, quantizer, batch, prep.size)
    else:
        with tc.conversion_log(log):
            data = tc.convert_float(model, batch, prep.size)
            if precision == "fp16":
                data = tc.to_fp16(data)
    return _set_io(data, io) if precision == "int8" else data


def _set_io(data: bytes, io: str) -> bytes:
    """Make the int8 model's I/O what was asked; litert-torch gives float or int8 depending on its mode."""
    from .flatbuffer import add_float_io, int8_io, io_types

    want = (0, 0) if io == "float" else (9, 9)  # TensorType FLOAT32 / INT8
    if io_types(data) != want:
        try:
            data = add_float_io(data) if io == "float" else int8_io(data)
        except ValueError:
            data = b""
    if not data or io_types(data) != want:
        raise InputError(
            f"--io {io} is not possible for this model: the float-fallback set keeps its first or last layer in float; use --io float"
        )
    return data


# -- verification and metadata -----------------------------------------------------
def _base_meta(
    ckpt: Any, src: Any, prep: Preprocessing, precision: str, eval_ds: Any, graph: str, rewritten: Sequence[str]
) -> ArtifactMeta:
    from ...model.meta import checkpoint_meta
    from ..onnx_export import tool_versions

    labels = src.meta.labels if src.meta is not None else None
    if labels is None and eval_ds is not None:
        labels = list(eval_ds.class_names)
    meta = checkpoint_meta(
        ckpt,
        format="tflite",
        precision=precision,
        preprocessing=prep,
        labels=labels,
        graph=graph,
        rewritten=rewritten,
        input=TensorSpec(name="input", shape=[1, *prep.size, 3], layout="NHWC"),
        output=TensorSpec(name="logits", shape=[1, ckpt.num_classes], layout="NC"),
    )
    meta.parent = file_ref(src.given)
    meta.tools = tool_versions(
        "torch", "litert-torch", "torchao", "ai-edge-litert", "ai-edge-quantizer", "mdnet-deploy"
    )
    meta.target = {"runtime": "tflite", "delegate": "xnnpack (default CPU delegate)"}
    if src.meta is not None and src.meta.model_config:
        # The parent's config, but this file's own graph form.
        meta.model_config = {
            **{k: v for k, v in src.meta.model_config.items() if k not in ("graph", "rewritten_modules")},
            **meta.model_config,
        }
    return meta


def _verify(
    path: Path,
    meta: ArtifactMeta,
    model: Any,
    precision: str,
    prep: Preprocessing,
    cal: _Calibration | None,
    eval_ds: Any,
    plan: Any,
    threads: int | None,
) -> dict[str, Any]:
    from ...data import preprocess
    from . import verify as tv

    runner = tv.open_runner(path, meta, threads or 1)
    try:
        checks = []
        if precision != "int8":  # random inputs are outside int8's calibrated ranges: meaningless there
            x = np.random.default_rng(0).standard_normal((8, 3, *prep.size)).astype(np.float32)
            checks.append(tv.parity("random", tv.torch_logits(model, x), tv.tflite_logits(runner, x)))
        acc = None
        if eval_ds is not None:
            x = preprocess(eval_ds.images, prep)
            ref, got = tv.torch_logits(model, x), tv.tflite_logits(runner, x)
            checks.append(tv.parity(eval_ds.description, ref, got))
            acc = tv.accuracy(ref, got, eval_ds.labels, eval_ds.description)
        elif cal is not None:
            x = cal.x[:PARITY_IMAGES]
            checks.append(
                tv.parity(f"calibration images ({len(x)})", tv.torch_logits(model, x), tv.tflite_logits(runner, x))
            )
        floats = plan.float_modules if (plan is not None and precision == "int8") else []
        result: dict[str, Any] = {
            "parity": checks,
            "xnnpack": runner.delegation(),
            "module_ops": tv.module_ops(runner, floats),
            "input": runner.native_input,
            "output": runner.native_output,
            "threads": runner.threads,
            "interpreter": runner.describe()["version"],
        }
        if acc is not None:
            result["accuracy"] = acc
        return result
    finally:
        runner.close()


def _quantization(
    precision: str, io: str, plan: Any, cal: _Calibration | None, module_ops: dict[str, Any]
) -> dict[str, Any] | None:
    if precision == "fp16":
        return {
            "scheme": "float16 weights (conv/depthwise/FC), float32 compute",
            "tool": "ai-edge-quantizer FLOAT_CASTING",
        }
    if precision != "int8":
        return None
    return {
        "scheme": "full-integer post-training quantization (litert-torch PT2E, STATIC)",
        "weights": "int8 symmetric per-channel",
        "activations": f"int8 per-tensor asymmetric, TFLite's scheme ({cal.info.get('observer') if cal else '?'} observer)",
        "io": io,
        "float_modules": list(plan.float_modules) if plan is not None else [],
        "float_modules_from": plan.origin if plan is not None else None,
        "float_module_ops": module_ops,
    }


def _fallback_held(meta: ArtifactMeta, warnings: list[str]) -> None:
    """Every float module must still hold a float conv/FC; say which did not."""
    from .verify import weighted_op_dtypes

    q = meta.quantization or {}
    bad = [m for m, ops in (q.get("float_module_ops") or {}).items() if "int8" in weighted_op_dtypes(ops)]
    missing = [m for m, ops in (q.get("float_module_ops") or {}).items() if not ops]
    if bad:
        raise VerificationError(
            f"float-fallback modules {', '.join(bad[:3])} were quantized anyway; nothing was written (report this)"
        )
    if missing:
        warnings.append(
            f"no TFLite ops could be traced to float modules {', '.join(missing[:3])} (renamed or fused by the converter)"
        )


def _parity_gate(precision: str, checks: list[Any], warnings: list[str]) -> None:
    worst = max((c.max_abs_diff for c in checks), default=0.0)
    if precision == "fp32" and worst > FP32_TOLERANCE:
        raise VerificationError(
            f"TFLite fp32 output differs from PyTorch by {worst:.3g} (> {FP32_TOLERANCE:g}); nothing was written; report the model"
        )
    low = [c for c in checks if c.name != "random" and c.top1_agreement < 0.9]
    if low:
        warnings.append(
            f"TFLite {precision} agrees with PyTorch on only {100 * low[0].top1_agreement:.1f} % of top-1 on {low[0].name}"
        )


def _embed(data: bytes, meta: ArtifactMeta) -> bytes:
    from .flatbuffer import embed_metadata

    return embed_metadata(data, meta.to_json())
