"""``quantize_model``: float ONNX -> INT8 QDQ ONNX with sensitivity analysis and an accuracy guard.

Library API: it never prints and never exits. Progress goes to
``progress(stage, done, total)``: counted stages are ``calibrate``
(batches), ``sensitivity`` (layers) and ``guard`` (layers float / cap);
with ``total == 0`` the stage is a one-line message such as
``"prepare: loading images"``, ``"evaluate: float model"``,
``"guard: step 1: 2 layers float, top-1 drop +0.12 points"`` or ``"write"``.
Warnings go to ``on_warning(text)`` and into the report. Failures raise
:class:`~mdnet_deploy.errors.MdnetDeployError` subclasses with one-line
messages, before anything is written. An unmet accuracy budget writes the
best model under ``<stem>.over-budget.onnx`` (and the report), then raises
:class:`~mdnet_deploy.errors.AccuracyBudgetError` carrying the
:class:`QuantizeResult` as ``.result``.

Steps: ORT's ``quant_pre_process`` (shape inference, constant folding;
node names are kept, so torch module paths can be recovered) -> one
calibration pass in batches -> a fully quantized model -> per-layer
sensitivity -> guard steps, each a ``quantize_static`` from the cached
ranges -> write model, sidecar metadata and report.
"""

from __future__ import annotations

import math
import resource
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..artifact import ArtifactMeta, Preprocessing, TensorSpec, file_ref, read_meta, write_meta
from ..errors import AccuracyBudgetError, ArtifactError, ConversionError, DataError, InputError
from ..fsutil import atomic_output, check_output
from ..metrics import compare_logits, topk_accuracy
from . import guard as guard_mod
from .calib_data import METHODS, calibrate, load_images, quiet
from .graph import Candidate, check_not_quantized, companions, find_candidates, match_patterns, not_quantized_summary
from .qdq import ChainIndex, check_form, calibration_op_types, form_for, quantize, quantized_nodes
from .report import empty_report, over_budget_path_for, report_path_for, write_report
from .sensitivity import analyse, make_session, run_logits

Progress = Callable[[str, int, int], None]
LARGE_EVAL = 2000  # above this many evaluation images, suggest --eval-size (each guard step runs them all)


@dataclass
class QuantizeResult:
    path: Path  # the model written: the requested output, or the over-budget name
    report_path: Path
    report: dict[str, Any]
    meta: ArtifactMeta
    met: bool | None  # None: accuracy was not checked (no eval data)
    warnings: list[str] = field(default_factory=list)


def quantize_model(
    onnx_path: str | Path,
    out_path: str | Path,
    calib_spec: str,
    calib_size: int = 512,
    method: str = "minmax",
    eval_spec: str | None = None,
    max_drop: float = 0.5,
    exclude: Sequence[str] = (),
    target: str = "tensorrt",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    force: bool = False,
    progress: Progress | None = None,
    on_warning: Callable[[str], None] | None = None,
    *,
    eval_size: int | None = None,
    batch_size: int = 32,
    sensitivity_images: int = 32,
    max_float_layers: int | None = None,
) -> QuantizeResult:
    """Quantize ``onnx_path`` to INT8 QDQ at ``out_path``; see the module docstring."""
    import onnx
    import onnxruntime as ort

    t_start = time.perf_counter()
    timing: dict[str, Any] = {}
    warnings: list[str] = []

    def warn(text: str) -> None:
        warnings.append(text)
        if on_warning:
            on_warning(text)

    def say(stage: str, done: int = 0, total: int = 0) -> None:
        if progress:
            progress(stage, done, total)

    # -- validate everything cheap before any work ------------------------------------
    if max_drop is None or not math.isfinite(max_drop) or max_drop < 0:
        raise InputError(f"--max-drop {max_drop} is not valid; give the largest acceptable top-1 drop in percentage points (>= 0), e.g. 0.5")
    if calib_size < 1:
        raise InputError(f"--calib-size {calib_size} is not valid; give a positive number of images (512 is a good default)")
    if method not in METHODS:
        raise InputError(f"--method '{method}' is not known; use one of {', '.join(METHODS)}")
    if batch_size < 1 or sensitivity_images < 1:
        raise InputError("batch_size and sensitivity_images must be positive")
    form = form_for(target)
    src = Path(onnx_path)
    if not src.exists():
        raise InputError(f"model {src} does not exist; give the float model.onnx written by 'mdnet-deploy export'")
    if src.is_dir() or src.suffix.lower() != ".onnx":
        raise InputError(f"model {src} is not an .onnx file; give the float model.onnx written by 'mdnet-deploy export'")
    out = Path(out_path)
    if out.suffix.lower() != ".onnx":
        raise InputError(f"output {out} must end in .onnx, e.g. {src.with_name(src.stem + '.int8.onnx')}")
    if out.exists() and out.resolve() == src.resolve():
        raise InputError(f"output {out} is the input model; give a new name such as {src.stem}.int8.onnx")
    check_output(out, force=force)
    report_path = report_path_for(out)
    over_path = over_budget_path_for(out)
    try:
        model = onnx.load(str(src))
    except Exception as exc:  # protobuf errors have no useful type
        raise ArtifactError(f"{src} is not a readable ONNX model ({type(exc).__name__}); re-export it") from None
    check_not_quantized(model, str(src))
    parent = _parent_meta(src, model, mean, std)
    prep = parent.preprocessing
    inputs = [i for i in model.graph.input if i.name not in {init.name for init in model.graph.initializer}]
    if len(inputs) != 1:
        raise ArtifactError(f"{src} has {len(inputs)} inputs; MDNET models have one image input")
    input_name = inputs[0].name

    say("prepare: loading images")
    calib = load_images(calib_spec, "train", prep, calib_size, "calibration", warn)
    if eval_size is not None and eval_size < 1:
        raise InputError(f"--eval-size {eval_size} is not valid; give a positive number of images or leave it out for all")
    ev = load_images(eval_spec, "test", prep, eval_size, "evaluation", warn) if eval_spec else None
    if ev is not None and eval_size is None and len(ev) > LARGE_EVAL:
        warn(f"evaluating all {len(ev)} images of {eval_spec} at every guard step; --eval-size {LARGE_EVAL} is usually enough and much faster")
    if ev is not None and len(ev.labels) and int(ev.labels.max()) >= parent.num_classes:
        raise DataError(
            f"evaluation set {eval_spec} has labels up to {int(ev.labels.max())} but the model has {parent.num_classes} classes; "
            "give a data set with the model's classes"
        )

    ort.set_default_logger_severity(3)  # ORT's C++ warnings would interleave with our output
    try:
        with tempfile.TemporaryDirectory(prefix="mdnet-quantize-") as tmp_name:
            tmp = Path(tmp_name)
            return _run(
                src, out, over_path, report_path, model, parent, calib, ev, input_name, form, method, max_drop,
                list(exclude), batch_size, sensitivity_images, max_float_layers, tmp, say, warn, warnings, timing, t_start,
            )
    finally:
        ort.set_default_logger_severity(2)


def _run(
    src: Path, out: Path, over_path: Path, report_path: Path, model: Any, parent: ArtifactMeta, calib: Any, ev: Any,
    input_name: str, form: Any, method: str, max_drop: float, exclude: list[str], batch_size: int,
    sensitivity_images: int, max_float_layers: int | None, tmp: Path, say: Callable[..., None],
    warn: Callable[[str], None], warnings: list[str], timing: dict[str, Any], t_start: float,
) -> QuantizeResult:
    import onnx
    from onnxruntime.quantization.calibrate import save_tensors_data
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # -- prepare: ORT's pre-processing keeps node names (checked: only Constants fold away)
    t0 = time.perf_counter()
    say("prepare: shape inference and graph clean-up")
    pre = tmp / "float.onnx"
    try:
        with quiet():
            quant_pre_process(model, str(pre))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(f"ONNX Runtime's quantization pre-processing failed on {src} ({first}); re-export the model") from None
    fm = onnx.load(str(pre))
    candidates = find_candidates(fm)
    if not candidates:
        raise ArtifactError(f"{src} has no Conv/MatMul/Gemm layers to quantize")
    excluded = match_patterns(candidates, exclude) if exclude else []
    excluded_names = {c.name for c in excluded}
    followers = companions(fm, candidates) if form.quantize_outputs else {}
    active = [c for c in candidates if c.name not in excluded_names]
    if not active:
        raise InputError("--exclude leaves nothing to quantize; exclude fewer layers")
    timing["prepare_s"] = time.perf_counter() - t0

    # -- calibrate once -----------------------------------------------------------------
    t0 = time.perf_counter()
    ranges = calibrate(
        pre, calib.x, method=method, op_types=calibration_op_types(form), symmetric=form.activation_symmetric,
        workdir=tmp, input_name=input_name, batch_size=batch_size, progress=say,
    )
    cache = tmp / "calibration.json"
    save_tensors_data(ranges, cache)
    del ranges
    (tmp / "augmented.onnx").unlink(missing_ok=True)
    timing["calibration_s"] = time.perf_counter() - t0

    def nodes_for(layers: Sequence[str]) -> list[str]:
        keep = set(layers)
        return list(keep) + [f for f, owner in followers.items() if owner in keep]

    quantize_times: list[float] = []
    built: dict[frozenset[str], tuple[Path, Any]] = {}

    def build(float_extra: Sequence[str], name: str) -> tuple[Path, Any]:
        """Quantize everything active except ``float_extra`` from the cached ranges (no recalibration)."""
        skip = frozenset(float_extra)
        if skip not in built:  # the guard's first step is the fully quantized model made for the sweep
            t = time.perf_counter()
            path = tmp / name
            proto = quantize(pre, path, form=form, method=method, cache=cache, nodes=nodes_for([c.name for c in active if c.name not in skip]))
            quantize_times.append(time.perf_counter() - t)
            built[skip] = (path, proto)
        return built[skip]

    # -- sensitivity --------------------------------------------------------------------
    t0 = time.perf_counter()
    _, full = build([], "full.onnx")
    really = quantized_nodes(full, [c.name for c in active])
    layers = [c for c in active if c.name in really]
    skipped_by_ort = [c for c in active if c.name not in really]
    if not layers:
        raise ConversionError("ONNX Runtime's quantizer quantized no layer of this model; report the model")
    index = ChainIndex(fm, full, [c.name for c in candidates], followers)
    pick = np.unique(np.linspace(0, len(calib.x) - 1, min(sensitivity_images, len(calib.x))).round().astype(int))
    x_sens = calib.x[pick]
    sens = analyse(index, layers, x_sens, progress=say)
    ranked = [s.node for s in sens.layers]
    noise = [s.noise for s in sens.layers]
    timing["sensitivity_s"] = time.perf_counter() - t0

    default_cap = int(guard_mod.DEFAULT_MAX_FLOAT_FRACTION * len(ranked))
    cap = default_cap if max_float_layers is None else int(max_float_layers)
    cap = max(0, min(cap, len(ranked) - 1))  # at least one layer stays INT8

    # -- guard (or the default rule) ------------------------------------------------------
    by_layer = {c.name: c for c in candidates}
    accuracy: dict[str, Any] | None = None
    guard_report: dict[str, Any] | None = None
    if ev is not None:
        t0 = time.perf_counter()
        say("evaluate: float model")
        float_logits = run_logits(make_session(str(src)), ev.x)
        float_acc = topk_accuracy(float_logits, ev.labels)
        timing["float_eval_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        last = {"k": 0}

        def evaluate(k: int) -> guard_mod.StepResult:
            ts = time.perf_counter()
            say("guard", k, cap)
            path, _ = build(ranked[:k], f"step-{k}.onnx")
            logits = run_logits(make_session(str(path)), ev.x)
            acc = topk_accuracy(logits, ev.labels)
            prev = last["k"]
            last["k"] = k
            drop = float_acc["top1"] - acc["top1"]
            return guard_mod.StepResult(
                step=0, phase="", float_layers=k,
                added=ranked[prev:k] if k > prev else [], requantized=ranked[k:prev] if k < prev else [],
                top1=acc["top1"], top5=acc["top5"], drop=drop,
                top1_agreement=float((logits.argmax(1) == float_logits.argmax(1)).mean()),
                met=drop <= max_drop + 1e-9, seconds=time.perf_counter() - ts, model_path=str(path),
            )

        outcome = guard_mod.run_guard(evaluate, noise, max_drop, cap, progress=lambda m: say(f"guard: {m}"))
        best = outcome.best
        best_path = Path(best.model_path)
        k_final = best.float_layers
        status = "ok" if outcome.met else "over-budget"
        timing["guard_s"] = time.perf_counter() - t0
        accuracy = {
            "float": {"top1": float_acc["top1"], "top5": float_acc["top5"]},
            "int8": {"top1": best.top1, "top5": best.top5},
            "drop_top1": best.drop,
            "top1_agreement": best.top1_agreement,
            "max_drop": max_drop,
            "met": outcome.met,
            "n": len(ev),
        }
        guard_report = {
            "steps": [s.to_dict() for s in outcome.steps],
            "best_step": best.step,
            "cap": cap,
            "rule": "grow the float set by the fewest top-ranked layers holding half the remaining estimated noise "
                    "(at least one, at most doubling), then bisect between the last failing and first passing size",
        }
    else:
        k_final = guard_mod.default_float_count(noise, cap)
        t0 = time.perf_counter()
        best_path, _ = build(ranked[:k_final], "unchecked.onnx")
        timing["guard_s"] = time.perf_counter() - t0
        status = "unchecked"
        est = guard_mod.estimated_sqnr_db(noise, k_final)
        warn(
            f"accuracy was not checked (no --eval): kept the {k_final} most sensitive layers float so the estimated logits SQNR "
            f"is {min(est, 999.0):.1f} dB (target {guard_mod.DEFAULT_TARGET_SQNR_DB:g} dB); pass --eval DATA to measure and guard top-1"
        )

    # -- what stayed float, and why ------------------------------------------------------
    float_rows = []
    sens_by_node = {s.node: s for s in sens.layers}
    for c in excluded:
        float_rows.append(_float_row(c, "exclude", None, f"excluded by --exclude {' '.join(exclude)}"))
    for name in ranked[:k_final]:
        s = sens_by_node[name]
        float_rows.append(_float_row(by_layer[name], "guard" if ev is not None else "default", s.output_sqnr_db, s.reason))
    for c in skipped_by_ort:
        float_rows.append(_float_row(c, "onnxruntime", None, "ONNX Runtime's quantizer does not quantize this node"))
    float_names = [r["node"] for r in float_rows]
    float_modules = _unique(r["module"] or r["node"] for r in float_rows)
    float_blocks = _unique(r["block"] for r in float_rows)

    # -- verify and write -----------------------------------------------------------------
    t0 = time.perf_counter()
    say("write")
    final = onnx.load(str(best_path))
    form_check = check_form(final, form)
    ref = run_logits(make_session(str(pre)), x_sens)
    got = run_logits(make_session(str(best_path)), x_sens)
    verification = compare_logits(ref, got)
    dest = out if status != "over-budget" else over_path
    if dest != out and out.exists():
        warn(f"an older {out.name} from a previous run is still there; it is not the result of this run")
    meta = _child_meta(parent, src, dest, calib, method, batch_size, form, float_names, float_modules, report_path,
                       status, accuracy, verification)
    from ..export.onnx_export import embed_metadata

    embed_metadata(final, meta)
    with atomic_output(dest) as tmp_out:
        onnx.save(final, str(tmp_out))
    timing["write_s"] = time.perf_counter() - t0
    timing["quantize_s_per_step"] = [round(t, 3) for t in quantize_times]
    timing["total_s"] = time.perf_counter() - t_start

    report = empty_report()
    float_bytes, int8_bytes = src.stat().st_size, dest.stat().st_size
    report.update(
        status=status,
        message=_message(status, accuracy, len(float_names), dest, out),
        input=file_ref(src),
        output=file_ref(dest),
        report=str(report_path.resolve()),
        form={**form.to_dict(), "check": form_check},
        calibration={**calib.describe(), "method": method, "batch_size": batch_size,
                     "seconds": round(timing["calibration_s"], 3), "reused_across_steps": True},
        evaluation=(dict(ev.describe(), count=len(ev)) if ev is not None else None),
        accuracy=accuracy,
        guard=guard_report,
        float_fallback={"nodes": float_names, "modules": float_modules, "blocks": float_blocks, "layers": float_rows},
        not_quantized_by_policy=not_quantized_summary(fm, candidates),
        layers={"candidates": len(candidates), "quantized": len(candidates) - len(float_names), "float": len(float_names)},
        sensitivity=_sens_dict(sens, set(float_names)),
        verification=verification,
        size={"float_bytes": float_bytes, "int8_bytes": int8_bytes, "ratio": round(int8_bytes / float_bytes, 4)},
        timing={k: (round(v, 3) if isinstance(v, float) else v) for k, v in timing.items()},
        memory={"peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)},
        warnings=list(warnings),
        tools=meta.tools,
    )
    if report["evaluation"] is not None:
        for key in ("requested", "seed", "balanced", "available"):
            report["evaluation"].pop(key, None)
    write_report(report_path, report)
    write_meta(dest, meta)
    result = QuantizeResult(dest, report_path, report, meta, None if ev is None else status == "ok", list(warnings))
    if status == "over-budget":
        err = AccuracyBudgetError(
            f"INT8 top-1 dropped {accuracy['drop_top1']:.2f} points (> --max-drop {max_drop:g}) even with {len(float_names)} layers "
            f"in float; the best model is kept as {dest} (not {out.name}), see {report_path.name}"
        )
        err.result = result  # type: ignore[attr-defined]
        raise err
    return result


def _float_row(c: Candidate, by: str, sqnr: float | None, reason: str) -> dict[str, Any]:
    return {**c.to_dict(), "by": by, "output_sqnr_db": None if sqnr is None else _finite(sqnr), "reason": reason}


def _finite(v: float) -> float:
    return v if math.isfinite(v) else (999.0 if v > 0 else -999.0)


def _unique(items: Any) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _sens_dict(sens: Any, float_names: set[str]) -> dict[str, Any]:
    d = sens.to_dict()
    for row in d["layers"]:
        row["float"] = row["node"] in float_names
    return d


def _message(status: str, accuracy: dict[str, Any] | None, n_float: int, dest: Path, out: Path) -> str:
    if status == "unchecked":
        return f"wrote {dest.name} with {n_float} layers in float; accuracy not checked (no evaluation data)"
    assert accuracy is not None
    drop = accuracy["drop_top1"]
    if status == "ok":
        return f"INT8 top-1 {accuracy['int8']['top1']:.2f} % vs float {accuracy['float']['top1']:.2f} % (drop {drop:.2f} points) with {n_float} layers in float"
    return f"budget not met: best drop {drop:.2f} points > {accuracy['max_drop']:g}; best model kept as {dest.name}, {out.name} not written"


def _parent_meta(src: Path, model: Any, mean: Sequence[float] | None, std: Sequence[float] | None) -> ArtifactMeta:
    """The float model's metadata; without any, build it from the graph and --mean/--std."""
    meta = read_meta(src, required=False)
    if meta is not None:
        for given, have, name in ((mean, meta.preprocessing.mean, "--mean"), (std, meta.preprocessing.std, "--std")):
            if given is not None and not np.allclose(np.asarray(given, float), np.asarray(have, float), rtol=0, atol=1e-6):
                raise InputError(
                    f"{name} {','.join(f'{v:g}' for v in given)} contradicts the model's metadata "
                    f"({','.join(f'{v:g}' for v in have)}); drop {name}: preprocessing comes from the metadata"
                )
        return meta
    if mean is None or std is None:
        raise ArtifactError(
            f"{src} carries no mdnet-deploy metadata, so its preprocessing is unknown; pass --mean R,G,B and --std R,G,B "
            "(the normalisation it was trained with) or re-export it with 'mdnet-deploy export'"
        )
    if any(s <= 0 for s in std):
        raise InputError(f"--std {','.join(map(str, std))} must be positive")
    inits = {i.name for i in model.graph.initializer}
    inp = next(i for i in model.graph.input if i.name not in inits)
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "batch") for d in inp.type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1] != 3:
        raise ArtifactError(f"{src}: input {inp.name} has shape {dims}; expected N x 3 x H x W")
    size = (int(dims[2]), int(dims[3])) if isinstance(dims[2], int) and isinstance(dims[3], int) and dims[2] > 0 else (32, 32)
    out = model.graph.output[0]
    odims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "batch") for d in out.type.tensor_type.shape.dim]
    classes = int(odims[-1]) if odims and isinstance(odims[-1], int) and odims[-1] > 0 else 0
    return ArtifactMeta(
        format="onnx",
        variant="unknown",
        num_classes=classes,
        input=TensorSpec(name=inp.name, shape=dims, layout="NCHW", dtype="float32"),
        output=TensorSpec(name=out.name, shape=odims, layout="NC", dtype="float32"),
        preprocessing=Preprocessing(size=size, mean=tuple(mean), std=tuple(std)),  # type: ignore[arg-type]
    )


def _child_meta(
    parent: ArtifactMeta, src: Path, dest: Path, calib: Any, method: str, batch_size: int, form: Any,
    float_names: list[str], float_modules: list[str], report_path: Path, status: str,
    accuracy: dict[str, Any] | None, verification: dict[str, Any],
) -> ArtifactMeta:
    from ..export.onnx_export import tool_versions

    tools = dict(parent.tools)
    tools.update(tool_versions("onnx", "onnxruntime", "mdnet-deploy"))
    return parent.derive(
        precision="int8",
        parent=file_ref(src),
        calibration={**calib.describe(), "method": method, "batch_size": batch_size},
        quantization={
            "status": status,
            "target": form.target,
            "form": form.name,
            "method": method,
            "activation_type": form.activation_type,
            "activation_symmetric": form.activation_symmetric,
            "weight_type": form.weight_type,
            "weight_symmetric": form.weight_symmetric,
            "per_channel": form.per_channel,
            "quantize_bias": form.quantize_bias,
            "float_nodes": float_names,
            "float_modules": float_modules,
            "report": str(report_path.resolve()),
            "accuracy": accuracy,
        },
        verification={"reference": "float parent, ONNX Runtime CPU", **verification},
        tools=tools,
    )
