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

Stages, one function each over a frozen, validated :class:`QuantizeConfig`:
:func:`prepare` (ORT's ``quant_pre_process``: shape inference, constant
folding; node names are kept, so torch module paths can be recovered) ->
:func:`calibrate_ranges` (one pass in batches, cached) -> :func:`rank_layers`
and :func:`sensitivity` (per-layer, only when needed: without an evaluator,
or when the all-INT8 model misses the budget) -> :func:`guard` (steps, each a
``quantize_static`` from the cached ranges, measured by the config's
``evaluate`` hook) -> :func:`write` (model, sidecar metadata and report).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, Union

import numpy as np

from ..artifact import ArtifactMeta, Preprocessing, TensorSpec, artifact_output, file_ref, read_meta
from ..data.overlap import check_overlap
from ..errors import AccuracyBudgetError, ArtifactError, ConversionError, DataError, InputError
from ..fsutil import check_output
from ..memory import peak_rss_mib
from ..metrics import drop_uncertainty, topk_accuracy
from ..prepcheck import check_onnx_preprocessing
from ..progress import Steps
from . import guard as guard_mod
from .calib_data import CALIB_BATCH, METHODS, ImageSet, calibrate, load_images, quiet
from .graph import Candidate, check_not_quantized, companions, find_candidates, match_patterns, not_quantized_summary
from .qdq import ChainIndex, QuantForm, calibration_op_types, check_form, form_for, quantize, quantized_nodes
from .report import empty_report, over_budget_path_for, report_path_for, write_report
from .sensitivity import Sensitivity, analyse, make_session, run_logits
from .speed import SpeedResult

Progress = Steps  # see mdnet_deploy.progress
LARGE_EVAL = 2000  # above this many evaluation images, suggest --eval-size (each guard step runs them all)


@dataclass(frozen=True)
class Score:
    """What evaluating one model gave: top-1 (percent), and top-5 and logits when the evaluator has them."""

    top1: float
    top5: float | None = None
    logits: np.ndarray | None = field(default=None, repr=False, compare=False)  # for top-1 agreement with float


#: The guard's measurement hook: a model file (the float parent, then each candidate INT8 model) -> its score.
#: A plain top-1 number is accepted too. The default runs ONNX Runtime on the --eval images; a caller can
#: judge on the target device instead (``quantize_model(..., evaluate=...)``).
ModelEvaluator = Callable[[Path], Union[Score, float]]


class OrtEvaluator:
    """The default hook: top-1/top-5 of a model on the evaluation images with ONNX Runtime's CPU EP."""

    def __init__(self, images: ImageSet) -> None:
        self.images = images

    def __call__(self, model_path: Path) -> Score:
        logits = run_logits(make_session(str(model_path)), self.images.x)
        acc = topk_accuracy(logits, self.images.labels)
        return Score(acc["top1"], acc["top5"], logits)


def as_score(value: Score | float) -> Score:
    return value if isinstance(value, Score) else Score(float(value))


@dataclass
class QuantizeResult:
    path: Path  # the model written: the requested output, or the over-budget name
    report_path: Path
    report: dict[str, Any]
    meta: ArtifactMeta
    met: bool | None  # None: accuracy was not checked (no eval data)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QuantizeConfig:
    """Every option of one quantize run, validated once on construction (cheap checks only; nothing is read)."""

    src: Path
    out: Path
    calib_spec: str
    calib_size: int = 512
    method: str = "minmax"
    eval_spec: str | None = None
    max_drop: float = 0.5
    exclude: tuple[str, ...] = ()
    target: str = "tensorrt"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    force: bool = False
    eval_size: int | None = None
    batch_size: int = CALIB_BATCH
    sensitivity_images: int = 32
    max_float_layers: int | None = None
    evaluate: ModelEvaluator | None = None  # None: OrtEvaluator on --eval images
    allow_overlap: bool = False  # evaluation images may also be calibration images (optimistic accuracy)
    always_rank: bool = False  # rank the layers even when all-INT8 meets the budget (for the report's chart)
    speed_fallback: bool = False  # keep float the convs ONNX Runtime runs faster in float here (calibration.speed)

    def __post_init__(self) -> None:
        object.__setattr__(self, "src", Path(self.src))
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "exclude", tuple(self.exclude))
        for name in ("mean", "std"):
            value = getattr(self, name)
            object.__setattr__(self, name, None if value is None else tuple(float(v) for v in value))
        if self.max_drop is None or not math.isfinite(self.max_drop) or self.max_drop < 0:
            raise InputError(
                f"--max-drop {self.max_drop} is not valid; give the largest acceptable top-1 drop in percentage points (>= 0), e.g. 0.5"
            )
        if self.calib_size < 1:
            raise InputError(
                f"--calib-size {self.calib_size} is not valid; give a positive number of images (512 is a good default)"
            )
        if self.method not in METHODS:
            raise InputError(f"--method '{self.method}' is not known; use one of {', '.join(METHODS)}")
        if self.batch_size < 1 or self.sensitivity_images < 1:
            raise InputError("batch_size and sensitivity_images must be positive")
        form_for(self.target)  # refuses an unknown target
        if self.speed_fallback and self.target != "ort":
            raise InputError(
                f"--speed-fallback times ONNX Runtime's CPU kernels, which run only the ort form; add --target ort (not {self.target})"
            )
        src, out = self.src, self.out
        if not src.exists():
            raise InputError(f"model {src} does not exist; give the float model.onnx written by 'mdnet-deploy export'")
        if src.is_dir() or src.suffix.lower() != ".onnx":
            raise InputError(
                f"model {src} is not an .onnx file; give the float model.onnx written by 'mdnet-deploy export'"
            )
        if out.suffix.lower() != ".onnx":
            raise InputError(f"output {out} must end in .onnx, e.g. {src.with_name(src.stem + '.int8.onnx')}")
        if out.exists() and out.resolve() == src.resolve():
            raise InputError(f"output {out} is the input model; give a new name such as {src.stem}.int8.onnx")
        check_output(out, force=self.force)
        if self.eval_size is not None and self.eval_size < 1:
            raise InputError(
                f"--eval-size {self.eval_size} is not valid; give a positive number of images or leave it out for all"
            )

    @property
    def form(self) -> QuantForm:
        return form_for(self.target)

    @property
    def report_path(self) -> Path:
        return report_path_for(self.out)

    @property
    def over_path(self) -> Path:
        return over_budget_path_for(self.out)

    @property
    def checks_accuracy(self) -> bool:
        return self.eval_spec is not None or self.evaluate is not None


@dataclass
class Context:
    """What every stage shares: the work folder, progress and warning sinks, timings."""

    tmp: Path
    progress: Progress | None = None
    on_warning: Callable[[str], None] | None = None
    warnings: list[str] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    preprocessing_check: dict[str, Any] | None = None
    t_start: float = field(default_factory=time.perf_counter)

    def say(self, stage: str, done: int = 0, total: int = 0) -> None:
        if self.progress:
            self.progress(stage, done, total)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        if self.on_warning:
            self.on_warning(text)

    def mark(self, stage: str) -> None:
        """Peak RSS so far, after ``stage``: shows which stage sets the run's peak."""
        self.memory[f"after_{stage}_mib"] = peak_rss_mib()


@dataclass
class Prepared:
    """The float model after ORT's pre-processing, its metadata, the images, and what can be quantized."""

    pre: Path  # pre-processed float model on disk
    model: Any  # its ModelProto
    parent: ArtifactMeta
    input_name: str
    calib: ImageSet
    ev: ImageSet | None
    candidates: list[Candidate]
    excluded: list[Candidate]
    followers: dict[str, str]
    active: list[Candidate]
    slow: list[Candidate] = field(default_factory=list)  # kept float because float runs faster here (--speed-fallback)
    speed: SpeedResult | None = None


class Builder:
    """Quantized variants of the prepared model from the cached ranges (no recalibration), each built once."""

    def __init__(self, cfg: QuantizeConfig, prep: Prepared, cache: Path, tmp: Path) -> None:
        self.cfg, self.prep, self.cache, self.tmp = cfg, prep, cache, tmp
        self.times: list[float] = []
        self._built: dict[frozenset[str], tuple[Path, Any]] = {}  # keyed by the layers quantized
        self._layers = [c.name for c in prep.candidates] + list(prep.followers)

    def nodes_for(self, layers: Iterable[str]) -> list[str]:
        keep = set(layers)
        return list(keep) + [f for f, owner in self.prep.followers.items() if owner in keep]

    def build(self, float_extra: Sequence[str], name: str) -> tuple[Path, Any]:
        """Everything active quantized except ``float_extra``; returns (path, ModelProto).

        The cache is keyed by the layers quantized, not by ``float_extra``, so a
        change of ``prep.active`` (``speed_fallback``) can never return a stale build.
        """
        skip = set(float_extra)
        quantized = frozenset(c.name for c in self.prep.active if c.name not in skip)
        if quantized not in self._built:
            t = time.perf_counter()
            path = self.tmp / name
            nodes = self.nodes_for(quantized)
            proto = quantize(
                self.prep.pre,
                path,
                form=self.cfg.form,
                method=self.cfg.method,
                cache=self.cache,
                nodes=nodes,
                layers=self._layers,
            )
            self.times.append(time.perf_counter() - t)
            self._built[quantized] = (path, proto)
        return self._built[quantized]


@dataclass
class Ranking:
    """Layers ORT really quantized, and their sensitivity ranking (None when it was not needed)."""

    layers: list[Candidate]
    skipped_by_ort: list[Candidate]
    x_sens: np.ndarray
    sens: Sensitivity | None = None

    @property
    def ranked(self) -> list[str]:
        return [s.node for s in self.sens.layers] if self.sens else [c.name for c in self.layers]

    @property
    def noise(self) -> list[float]:
        return [s.noise for s in self.sens.layers] if self.sens else [0.0] * len(self.layers)

    def cap(self, max_float_layers: int | None) -> int:
        default_cap = int(guard_mod.DEFAULT_MAX_FLOAT_FRACTION * len(self.layers))
        cap = default_cap if max_float_layers is None else int(max_float_layers)
        return max(0, min(cap, len(self.layers) - 1))  # at least one layer stays INT8


@dataclass
class GuardResult:
    best_path: Path
    k_final: int
    status: str  # ok | over-budget | unchecked
    accuracy: dict[str, Any] | None = None
    report: dict[str, Any] | None = None


# -- the entry point ------------------------------------------------------------------------
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
    batch_size: int = CALIB_BATCH,
    sensitivity_images: int = 32,
    max_float_layers: int | None = None,
    evaluate: ModelEvaluator | None = None,
    allow_overlap: bool = False,
    always_rank: bool = False,
    speed_fallback: bool = False,
) -> QuantizeResult:
    """Quantize ``onnx_path`` to INT8 QDQ at ``out_path``; see the module docstring.

    ``evaluate``: the guard's measurement hook (:data:`ModelEvaluator`); by default
    ONNX Runtime on the ``eval_spec`` images. Given without ``eval_spec``, it alone
    judges accuracy.
    """
    cfg = QuantizeConfig(
        src=Path(onnx_path),
        out=Path(out_path),
        calib_spec=calib_spec,
        calib_size=calib_size,
        method=method,
        eval_spec=eval_spec,
        max_drop=max_drop,
        exclude=tuple(exclude),
        target=target,
        mean=tuple(mean) if mean is not None else None,
        std=tuple(std) if std is not None else None,
        force=force,
        eval_size=eval_size,
        batch_size=batch_size,
        sensitivity_images=sensitivity_images,
        max_float_layers=max_float_layers,
        evaluate=evaluate,
        allow_overlap=allow_overlap,
        always_rank=always_rank,
        speed_fallback=speed_fallback,
    )
    return run(cfg, progress=progress, on_warning=on_warning)


def run(
    cfg: QuantizeConfig, progress: Progress | None = None, on_warning: Callable[[str], None] | None = None
) -> QuantizeResult:
    """All stages in order, in a temporary work folder."""
    import onnxruntime as ort

    t_start = time.perf_counter()
    # ORT's C++ warnings would interleave with our output; the previous level is restored after.
    ort.set_default_logger_severity(3)
    try:
        with tempfile.TemporaryDirectory(prefix="mdnet-quantize-") as tmp_name:
            ctx = Context(Path(tmp_name), progress, on_warning, t_start=t_start)
            prep = prepare(cfg, ctx)
            cache = calibrate_ranges(cfg, prep, ctx)
            builder = Builder(cfg, prep, cache, ctx.tmp)
            if cfg.speed_fallback:
                speed_fallback(prep, builder, ctx)
            ranking = rank_layers(cfg, prep, builder, ctx)
            outcome = guard(cfg, prep, builder, ranking, ctx)
            return write(cfg, prep, builder, ranking, outcome, ctx)
    finally:
        ort.set_default_logger_severity(2)


# -- stages -----------------------------------------------------------------------------------
def prepare(cfg: QuantizeConfig, ctx: Context) -> Prepared:
    """Read the float model and its metadata, load the images, run ORT's pre-processing, find the layers."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = cfg.src
    try:
        model = onnx.load(str(src))
    except Exception as exc:  # protobuf errors have no useful type
        raise ArtifactError(f"{src} is not a readable ONNX model ({type(exc).__name__}); re-export it") from None
    check_not_quantized(model, str(src))
    parent = _parent_meta(src, model, cfg.mean, cfg.std)
    inputs = [i for i in model.graph.input if i.name not in {init.name for init in model.graph.initializer}]
    if len(inputs) != 1:
        raise ArtifactError(f"{src} has {len(inputs)} inputs; MDNET models have one image input")

    ctx.say("prepare: loading images")
    t_load = time.perf_counter()
    calib = load_images(cfg.calib_spec, "train", parent.preprocessing, cfg.calib_size, "calibration", ctx.warn)
    ev = (
        load_images(cfg.eval_spec, "test", parent.preprocessing, cfg.eval_size, "evaluation", ctx.warn)
        if cfg.eval_spec
        else None
    )
    if ev is not None and cfg.eval_size is None and len(ev) > LARGE_EVAL:
        ctx.warn(
            f"evaluating all {len(ev)} images of {cfg.eval_spec} at every guard step; --eval-size {LARGE_EVAL} is usually enough and much faster"
        )
    if ev is not None and len(ev.labels) and int(ev.labels.max()) >= parent.num_classes:
        raise DataError(
            f"evaluation set {cfg.eval_spec} has labels up to {int(ev.labels.max())} but the model has {parent.num_classes} classes; "
            "give a data set with the model's classes"
        )
    if ev is not None:
        if check_overlap(calib.x, ev.x, cfg.calib_spec, cfg.eval_spec, cfg.allow_overlap):
            ctx.warn("evaluation images are also calibration images (--allow-overlap): the accuracy is optimistic")
        checked = check_onnx_preprocessing(parent, src, str(cfg.eval_spec), "test")  # a default mean/std, checked
        ctx.preprocessing_check = checked.to_dict() if checked is not None else None

    ctx.timing["load_s"] = time.perf_counter() - t_load
    ctx.mark("load")

    # ORT's pre-processing keeps node names (checked: only Constants fold away).
    t0 = time.perf_counter()
    ctx.say("prepare: shape inference and graph clean-up")
    pre = ctx.tmp / "float.onnx"
    try:
        with quiet():
            # No symbolic shape inference: MDNET's shapes are static (ONNX's own inference covers them),
            # and ORT's symbolic pass imports torch (~280 MiB of the process's peak, measured).
            # The path, not the ModelProto: from a proto ORT moves initializers out and then cannot read
            # the Reshape shapes it needs (onnxruntime 1.32).
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConversionError(
            f"ONNX Runtime's quantization pre-processing failed on {src} ({first}); re-export the model"
        ) from None
    del model
    fm = onnx.load(str(pre))
    candidates = find_candidates(fm, activation_matmuls=cfg.form.quantize_activation_matmuls)
    if not candidates:
        raise ArtifactError(f"{src} has no Conv/MatMul/Gemm layers to quantize")
    excluded = match_patterns(candidates, cfg.exclude) if cfg.exclude else []
    excluded_names = {c.name for c in excluded}
    followers = companions(fm, candidates) if cfg.form.quantize_outputs else {}
    active = [c for c in candidates if c.name not in excluded_names]
    if not active:
        raise InputError("--exclude leaves nothing to quantize; exclude fewer layers")
    ctx.timing["prepare_s"] = time.perf_counter() - t0
    ctx.mark("prepare")
    return Prepared(pre, fm, parent, inputs[0].name, calib, ev, candidates, excluded, followers, active)


def calibrate_ranges(cfg: QuantizeConfig, prep: Prepared, ctx: Context) -> Path:
    """One calibration pass in batches; the ranges go to ORT's calibration cache (returned) for every later build."""
    from onnxruntime.quantization.calibrate import save_tensors_data

    t0 = time.perf_counter()
    ranges = calibrate(
        prep.pre,
        prep.calib.x,
        method=cfg.method,
        op_types=calibration_op_types(cfg.form),
        symmetric=cfg.form.activation_symmetric,
        workdir=ctx.tmp,
        input_name=prep.input_name,
        batch_size=cfg.batch_size,
        progress=ctx.say,
    )
    cache = ctx.tmp / "calibration.json"
    save_tensors_data(ranges, cache)
    del ranges
    (ctx.tmp / "augmented.onnx").unlink(missing_ok=True)
    ctx.timing["calibration_s"] = time.perf_counter() - t0
    ctx.mark("calibration")
    return cache


def speed_fallback(prep: Prepared, builder: Builder, ctx: Context) -> None:
    """Move the convs ONNX Runtime runs faster in float on this host from ``prep.active`` to ``prep.slow``.

    See :mod:`mdnet_deploy.calibration.speed`.
    """
    from platform import machine, node

    from .speed import faster_model, layer_speeds

    t0 = time.perf_counter()
    ctx.say("speed: timing each conv in INT8 and in float (ONNX Runtime profile, 1 thread)")
    full, _ = builder.build([], "speed-all.onnx")
    x = prep.calib.x[:1]
    convs = {c.name: c.module for c in prep.active if c.op_type == "Conv"}
    layers = layer_speeds(prep.pre, full, prep.model.graph, convs, x)
    result = SpeedResult(layers, host=f"{node()} ({machine()})")
    prep.speed = result
    slow = [layer.node for layer in layers if layer.float_faster]
    if slow:
        mixed, _ = builder.build(slow, "speed-mixed.onnx")
        all_ms, mixed_ms = faster_model([full, mixed], x)
        result.p50_ms = {"all_int8": all_ms, "with_float_layers": mixed_ms}
        if mixed_ms < all_ms:
            result.chosen, result.kept_float = "with_float_layers", slow
    ctx.timing["speed_s"] = time.perf_counter() - t0
    keep = set(result.kept_float)
    prep.slow = [c for c in prep.active if c.name in keep]
    prep.active = [c for c in prep.active if c.name not in keep]


def rank_layers(cfg: QuantizeConfig, prep: Prepared, builder: Builder, ctx: Context) -> Ranking:
    """Build the all-INT8 model and learn which layers ORT really quantized; rank them only without accuracy data.

    With an evaluator the ranking waits for :func:`guard`: it is needed only if
    the all-INT8 model misses the budget.
    """
    t0 = time.perf_counter()
    _, full = builder.build([], "full.onnx")
    really = quantized_nodes(full, [c.name for c in prep.active])
    layers = [c for c in prep.active if c.name in really]
    skipped = [c for c in prep.active if c.name not in really]
    if not layers:
        raise ConversionError("ONNX Runtime's quantizer quantized no layer of this model; report the model")
    x = prep.calib.x
    pick = np.unique(np.linspace(0, len(x) - 1, min(cfg.sensitivity_images, len(x))).round().astype(int))
    ranking = Ranking(layers, skipped, x[pick])
    ctx.timing["build_full_s"] = time.perf_counter() - t0
    if not cfg.checks_accuracy or cfg.always_rank:
        sensitivity(prep, builder, ranking, ctx)
    return ranking


def sensitivity(prep: Prepared, builder: Builder, ranking: Ranking, ctx: Context) -> Sensitivity:
    """Per-layer sensitivity of the all-INT8 model's layers on a few calibration images (fills ``ranking.sens``)."""
    t0 = time.perf_counter()
    _, full = builder.build([], "full.onnx")
    index = ChainIndex(prep.model, full, [c.name for c in prep.candidates], prep.followers)
    ranking.sens = analyse(index, ranking.layers, ranking.x_sens, progress=ctx.say)
    ctx.timing["sensitivity_s"] = time.perf_counter() - t0
    ctx.mark("sensitivity")
    return ranking.sens


def guard(cfg: QuantizeConfig, prep: Prepared, builder: Builder, ranking: Ranking, ctx: Context) -> GuardResult:
    """Measured guard steps (with an evaluator), else the default SQNR rule; picks the model to write."""
    if not cfg.checks_accuracy:
        return _default_rule(cfg, builder, ranking, ctx)
    evaluator: ModelEvaluator = cfg.evaluate or OrtEvaluator(_require(prep.ev))
    t0 = time.perf_counter()
    ctx.say("evaluate: float model")
    float_score = as_score(evaluator(cfg.src))
    ctx.timing["float_eval_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    measured: dict[int, guard_mod.StepResult] = {}
    last = {"k": 0}

    def evaluate(k: int) -> guard_mod.StepResult:
        if k in measured:
            return measured[k]
        ts = time.perf_counter()
        cap = ranking.cap(cfg.max_float_layers)
        ctx.say("guard", k, cap)
        ranked = ranking.ranked
        path, _ = builder.build(ranked[:k], f"step-{k}.onnx")
        score = as_score(evaluator(path))
        prev = last["k"]
        last["k"] = k
        drop = float_score.top1 - score.top1
        agreement = None
        if score.logits is not None and float_score.logits is not None:
            agreement = float((score.logits.argmax(1) == float_score.logits.argmax(1)).mean())
        measured[k] = guard_mod.StepResult(
            step=0,
            phase="",
            float_layers=k,
            added=ranked[prev:k] if k > prev else [],
            requantized=ranked[k:prev] if k < prev else [],
            top1=score.top1,
            top5=score.top5,
            drop=drop,
            top1_agreement=agreement,
            met=drop <= cfg.max_drop + 1e-9,
            seconds=time.perf_counter() - ts,
            model_path=str(path),
        )
        return measured[k]

    # Lean: the all-INT8 model first; the per-layer ranking is worth its cost only if that misses the budget.
    first = evaluate(0)
    if first.met:
        first.step, first.phase = 0, "start"
        ctx.say(f"guard: step 0: 0 layers float, top-1 drop {first.drop:+.2f} points")
        outcome = guard_mod.GuardOutcome([first], first, True, 0)
    else:
        if ranking.sens is None:
            sensitivity(prep, builder, ranking, ctx)
        cap = ranking.cap(cfg.max_float_layers)
        outcome = guard_mod.run_guard(
            evaluate, ranking.noise, cfg.max_drop, cap, progress=lambda m: ctx.say(f"guard: {m}")
        )
    best = outcome.best
    ctx.timing["guard_s"] = time.perf_counter() - t0 - ctx.timing.get("sensitivity_s", 0.0)
    ctx.mark("guard")
    n = len(prep.ev) if prep.ev is not None else None
    accuracy: dict[str, Any] = {
        "float": {"top1": float_score.top1, "top5": float_score.top5},
        "int8": {"top1": best.top1, "top5": best.top5},
        "drop_top1": best.drop,
        "top1_agreement": best.top1_agreement,
        "max_drop": cfg.max_drop,
        "met": outcome.met,
        "n": n,
        "evaluator": "onnxruntime-cpu"
        if cfg.evaluate is None
        else getattr(cfg.evaluate, "name", type(cfg.evaluate).__name__),
    }
    if n:  # how sure the drop is (metrics.drop_uncertainty)
        # An evaluator without logits gives no agreement: |drop| is the least disagreement it implies.
        disagree = 1.0 - best.top1_agreement if best.top1_agreement is not None else abs(best.drop) / 100.0
        accuracy["uncertainty"] = drop_uncertainty(n, cfg.max_drop, best.drop, disagree)
        if not accuracy["uncertainty"]["resolvable"]:
            ctx.warn(
                f"{n} evaluation images cannot resolve --max-drop {cfg.max_drop:g}: one image is "
                f"{100.0 / n:.2g} points, more than half the budget; evaluate on "
                + (f"at least {math.ceil(200 / cfg.max_drop)} images" if cfg.max_drop > 0 else "more images")
            )
    report = {
        "steps": [s.to_dict() for s in outcome.steps],
        "best_step": best.step,
        "cap": outcome.cap,
        "rule": "all layers INT8 first; if that misses the budget, rank the layers by sensitivity and grow the float set "
        "by the fewest top-ranked layers holding half the remaining estimated noise (at least one, at most doubling), "
        "then bisect between the last failing and first passing size",
    }
    status = "ok" if outcome.met else "over-budget"
    return GuardResult(Path(best.model_path), best.float_layers, status, accuracy, report)


def _default_rule(cfg: QuantizeConfig, builder: Builder, ranking: Ranking, ctx: Context) -> GuardResult:
    cap = ranking.cap(cfg.max_float_layers)
    k = guard_mod.default_float_count(ranking.noise, cap)
    t0 = time.perf_counter()
    path, _ = builder.build(ranking.ranked[:k], "unchecked.onnx")
    ctx.timing["guard_s"] = time.perf_counter() - t0
    est = guard_mod.estimated_sqnr_db(ranking.noise, k)
    ctx.warn(
        f"accuracy was not checked (no --eval): kept the {k} most sensitive layers float so the estimated logits SQNR "
        f"is {min(est, 999.0):.1f} dB (target {guard_mod.DEFAULT_TARGET_SQNR_DB:g} dB); pass --eval DATA to measure and guard top-1"
    )
    return GuardResult(path, k, "unchecked")


def write(
    cfg: QuantizeConfig, prep: Prepared, builder: Builder, ranking: Ranking, outcome: GuardResult, ctx: Context
) -> QuantizeResult:
    """Verify the chosen model against the float one, then write it, its metadata and the report."""
    import onnx

    from ..export.parity import ParityCheck

    src, out, ev = cfg.src, cfg.out, prep.ev
    float_rows = _float_rows(cfg, prep, ranking, outcome)
    float_names = [r["node"] for r in float_rows]
    float_modules = _unique(r["module"] or r["node"] for r in float_rows)
    float_blocks = _unique(r["block"] for r in float_rows)

    t0 = time.perf_counter()
    ctx.say("write")
    final = onnx.load(str(outcome.best_path))
    form_check = check_form(final, cfg.form)
    ref = run_logits(make_session(str(prep.pre)), ranking.x_sens)
    got = run_logits(make_session(str(outcome.best_path)), ranking.x_sens)
    verification = ParityCheck.of(f"calibration images ({len(ref)})", ref, got).summary()
    dest = out if outcome.status != "over-budget" else cfg.over_path
    if dest != out and out.exists():
        ctx.warn(f"an older {out.name} from a previous run is still there; it is not the result of this run")
    meta = _child_meta(
        prep.parent,
        src,
        dest,
        prep.calib,
        cfg.method,
        cfg.batch_size,
        cfg.form,
        float_names,
        float_modules,
        cfg.report_path,
        outcome.status,
        outcome.accuracy,
        verification,
    )
    from ..export.onnx_export import embed_metadata

    embed_metadata(final, meta)
    with artifact_output(dest) as pending:  # the model and its sidecar appear together (artifact.publish)
        onnx.save(final, str(pending.tmp))
        pending.meta = meta
    timing = ctx.timing
    timing["write_s"] = time.perf_counter() - t0
    timing["quantize_s_per_step"] = [round(t, 3) for t in builder.times]
    timing["total_s"] = time.perf_counter() - ctx.t_start
    ctx.mark("write")

    report = empty_report()
    float_bytes, int8_bytes = src.stat().st_size, dest.stat().st_size
    report.update(
        status=outcome.status,
        message=_message(outcome.status, outcome.accuracy, len(float_names), dest, out),
        input=file_ref(src),
        output=file_ref(dest),
        report=str(cfg.report_path.resolve()),
        form={**cfg.form.to_dict(), "check": form_check, "integer_kernels": _integer_kernels(dest, cfg.form)},
        calibration={
            **prep.calib.describe(),
            "method": cfg.method,
            "batch_size": cfg.batch_size,
            "seconds": round(timing["calibration_s"], 3),
            "reused_across_steps": True,
        },
        evaluation=(dict(ev.describe(), count=len(ev)) if ev is not None else None),
        accuracy=outcome.accuracy,
        guard=outcome.report,
        speed=prep.speed.to_dict() if prep.speed else None,
        float_fallback={"nodes": float_names, "modules": float_modules, "blocks": float_blocks, "layers": float_rows},
        not_quantized_by_policy=not_quantized_summary(prep.model, prep.candidates),
        layers={
            "candidates": len(prep.candidates),
            "quantized": len(prep.candidates) - len(float_names),
            "float": len(float_names),
        },
        sensitivity=_sens_dict(ranking.sens, set(float_names)),
        verification=verification,
        size={"float_bytes": float_bytes, "int8_bytes": int8_bytes, "ratio": round(int8_bytes / float_bytes, 4)},
        timing={k: (round(v, 3) if isinstance(v, float) else v) for k, v in timing.items()},
        memory={"peak_rss_mib": peak_rss_mib(), **ctx.memory},
        warnings=list(ctx.warnings),
        tools=meta.tools,
    )
    if ctx.preprocessing_check is not None:
        report["preprocessing_check"] = ctx.preprocessing_check
    if report["evaluation"] is not None:
        for key in ("requested", "seed", "balanced", "available"):
            report["evaluation"].pop(key, None)
    write_report(cfg.report_path, report)
    result = QuantizeResult(
        dest,
        cfg.report_path,
        report,
        meta,
        None if outcome.accuracy is None else outcome.status == "ok",
        list(ctx.warnings),
    )
    if outcome.status == "over-budget":
        acc = _require(outcome.accuracy)
        raise AccuracyBudgetError(
            f"INT8 top-1 dropped {acc['drop_top1']:.2f} points (> --max-drop {cfg.max_drop:g}) even with {len(float_names)} layers "
            f"in float; the best model is kept as {dest} (not {out.name}), see {cfg.report_path.name}",
            result=result,
        )
    return result


def _require(value: Any) -> Any:
    assert value is not None  # guarded by the config: a stage that needs it only runs when it exists
    return value


def _float_rows(cfg: QuantizeConfig, prep: Prepared, ranking: Ranking, outcome: GuardResult) -> list[dict[str, Any]]:
    """What stayed float, and why."""
    by_layer = {c.name: c for c in prep.candidates}
    sens_by_node = {s.node: s for s in ranking.sens.layers} if ranking.sens else {}
    rows = [_float_row(c, "exclude", None, f"excluded by --exclude {' '.join(cfg.exclude)}") for c in prep.excluded]
    speeds = {s.node: s for s in prep.speed.layers} if prep.speed else {}
    rows += [
        _float_row(
            c,
            "speed",
            None,
            f"faster in float on this host: {speeds[c.name].float_us:.0f} us vs {speeds[c.name].int8_us:.0f} us in INT8 (ONNX Runtime profile)",
        )
        for c in prep.slow
    ]
    for name in ranking.ranked[: outcome.k_final]:
        s = sens_by_node[name]
        rows.append(
            _float_row(
                by_layer[name], "guard" if outcome.accuracy is not None else "default", s.output_sqnr_db, s.reason
            )
        )
    rows += [
        _float_row(c, "onnxruntime", None, "ONNX Runtime's quantizer does not quantize this node")
        for c in ranking.skipped_by_ort
    ]
    return rows


def _integer_kernels(path: Path, form: QuantForm) -> dict[str, Any]:
    """How ONNX Runtime's CPU EP runs the model: convolutions as integer kernels vs float, read back from its optimized graph."""
    import collections

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="mdnet-ortopt-") as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.optimized_model_filepath = str(optimized)
        ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        counts = collections.Counter(n.op_type for n in onnx.load(str(optimized)).graph.node)
    integer = sum(counts[t] for t in ("QLinearConv", "ConvInteger", "NhwcQLinearConv"))
    floating = sum(counts[t] for t in ("Conv", "FusedConv", "NchwcConv", "NhwcFusedConv"))
    return {
        "runtime": f"onnxruntime {ort.__version__} CPUExecutionProvider, all optimizations",
        "integer_convs": integer,
        "float_convs": floating,
        "integer_ops": {
            k: v
            for k, v in sorted(counts.items())
            if k.startswith(("QLinear", "QGemm", "MatMulInteger", "ConvInteger"))
        },
        "quantize_dequantize": counts["QuantizeLinear"] + counts["DequantizeLinear"],
        "note": None
        if form.target == "ort"
        else f"the {form.target} form is made for {form.target}'s own fusions (conv+activation before Q); ONNX Runtime runs most of it in float",
    }


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


def _sens_dict(sens: Sensitivity | None, float_names: set[str]) -> dict[str, Any]:
    if sens is None:
        return {
            "skipped": "all layers INT8 met the accuracy budget, so no layer needed ranking",
            "layers": [],
            "blocks": [],
            "images": 0,
            "full_output_sqnr_db": None,
            "full_top1_agreement": None,
            "seconds": 0.0,
        }
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
            if given is not None and not np.allclose(
                np.asarray(given, float), np.asarray(have, float), rtol=0, atol=1e-6
            ):
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
    dims = [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "batch") for d in inp.type.tensor_type.shape.dim
    ]
    if len(dims) != 4 or dims[1] != 3:
        raise ArtifactError(f"{src}: input {inp.name} has shape {dims}; expected N x 3 x H x W")
    size = (
        (int(dims[2]), int(dims[3]))
        if isinstance(dims[2], int) and isinstance(dims[3], int) and dims[2] > 0
        else (32, 32)
    )
    out = model.graph.output[0]
    odims = [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "batch") for d in out.type.tensor_type.shape.dim
    ]
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
    parent: ArtifactMeta,
    src: Path,
    dest: Path,
    calib: Any,
    method: str,
    batch_size: int,
    form: Any,
    float_names: list[str],
    float_modules: list[str],
    report_path: Path,
    status: str,
    accuracy: dict[str, Any] | None,
    verification: dict[str, Any],
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
