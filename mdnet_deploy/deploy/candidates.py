"""Which artifacts are worth trying on each device kind, and how each is built from the existing steps.

Every candidate is made by the library functions the commands use
(``export_onnx``, ``quantize_model``, ``convert_tflite``, ``build_engine``,
``build_remote_engine``); this module only orders them and files the
results. Shared intermediates (the float ONNX, one INT8 QDQ ONNX per
quantization form) are made once under ``OUTDIR/build/``.

A candidate is built in a temporary folder beside its destination and moved
into ``candidates/`` only when it is complete (sidecar first, artifact
last), so an interrupted or failed build leaves no half-written candidate.
A failing candidate is recorded with its reason; the others go on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..artifact import read_meta, sidecar_path, write_meta
from ..errors import AccuracyBudgetError, InputError, MdnetDeployError
from ..progress import Say

Progress = Say  # see mdnet_deploy.progress

EXTENSIONS = {"onnx": "onnx", "tflite": "tflite", "engine": "engine", "pt": "pth"}


@dataclass(frozen=True)
class CandidateSpec:
    """One artifact to build and bench on a device."""

    name: str  # also the file stem: candidates/<name>.<ext>
    format: str  # onnx | tflite | engine | pt
    precision: str  # fp32 | fp16 | int8
    runtime: str  # the runtime the device runs it with
    builder: str  # copy-onnx | copy-checkpoint | tflite | trt-local | trt-remote
    quant_target: str | None = None  # quantize form of the INT8 ONNX it starts from
    reference: bool = False  # float: may serve as the device's float reference

    @property
    def filename(self) -> str:
        return f"{self.name}.{EXTENSIONS[self.format]}"


def _c(
    name: str, fmt: str, precision: str, runtime: str, builder: str, quant: str | None = None, ref: bool = False
) -> CandidateSpec:
    return CandidateSpec(name, fmt, precision, runtime, builder, quant, ref)


#: Candidates per device kind, float reference first. TensorRT has no fp32
#: build here, so on a Jetson the fp16 engine is the float reference.
PLANS: dict[str, tuple[CandidateSpec, ...]] = {
    "host": (
        _c("onnx-fp32", "onnx", "fp32", "onnxruntime", "copy-onnx", ref=True),
        _c("onnx-int8", "onnx", "int8", "onnxruntime", "copy-onnx", "ort"),
        _c("tflite-fp32", "tflite", "fp32", "tflite", "tflite", ref=True),
        _c("tflite-int8", "tflite", "int8", "tflite", "tflite", "tflite"),
    ),
    "rpi": (
        _c("tflite-fp32", "tflite", "fp32", "tflite", "tflite", ref=True),
        _c("tflite-fp16", "tflite", "fp16", "tflite", "tflite"),
        _c("tflite-int8", "tflite", "int8", "tflite", "tflite", "tflite"),
    ),
    "jetson": (
        _c("trt-fp16", "engine", "fp16", "tensorrt", "trt-remote", ref=True),
        _c("trt-int8", "engine", "int8", "tensorrt", "trt-remote", "tensorrt"),
    ),
    "cuda": (
        _c("torch-fp32", "pt", "fp32", "torch", "copy-checkpoint", ref=True),
        _c("trt-fp16", "engine", "fp16", "tensorrt", "trt-local"),
        _c("trt-int8", "engine", "int8", "tensorrt", "trt-local", "tensorrt"),
    ),
}


def plan_candidates(kind: str, only: Sequence[str] = ()) -> list[tuple[CandidateSpec, bool]]:
    """(spec, selectable) for ``kind``; with ``only``, the kind's first float reference is still built, as reference only."""
    try:
        plan = PLANS[kind]
    except KeyError:
        raise InputError(f"unknown device kind '{kind}'; choose one of {', '.join(PLANS)}") from None
    if not only:
        return [(s, True) for s in plan]
    names = {s.name for s in plan}
    unknown = [n for n in only if n not in names]
    if unknown:
        raise InputError(
            f"--candidates {','.join(unknown)} is not a {kind} candidate; choose from {', '.join(s.name for s in plan)}"
        )
    first_ref = next(s.name for s in plan if s.reference)
    return [(s, s.name in only) for s in plan if s.name in only or s.name == first_ref]


@dataclass
class BuildOptions:
    checkpoint: Path
    calib: str
    eval_spec: str
    calib_size: int = 512
    eval_size: int | None = None
    max_drop: float = 0.5
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    trust_pickle: bool = False
    #: runtime that judges the fallback search of the TFLite-form INT8 ONNX (None: ONNX Runtime, quantize's default)
    judge: str | None = None
    #: extra keyword arguments for quantize_model
    quantize_extra: dict[str, Any] = field(default_factory=dict)
    #: the ort-form INT8 ONNX runs only on this machine: time its convs here (quantize --speed-fallback)
    ort_speed_fallback: bool = False


@dataclass
class Built:
    """What building one candidate gave: the file, or why there is none."""

    spec: CandidateSpec
    path: Path | None
    seconds: float
    error: str | None = None
    notes: list[str] = field(default_factory=list)


class Intermediates:
    """The float ONNX and the INT8 ONNX per quantization form, made once under ``build_dir``."""

    def __init__(self, options: BuildOptions, build_dir: Path, progress: Progress) -> None:
        self.options = options
        self.dir = build_dir
        self.say = progress
        self._float: Path | None = None
        self._int8: dict[str, tuple[Path | None, str | None, list[str]]] = {}

    def float_onnx(self) -> Path:
        """Export once; a failure here is the checkpoint's or the options' fault and stops the deploy."""
        if self._float is None:
            from ..export.onnx_export import export_onnx

            o = self.options
            self.say("export: checkpoint -> ONNX (parity checked against PyTorch)")
            result = export_onnx(
                o.checkpoint,
                self.dir,
                mean=o.mean,
                std=o.std,
                data=o.eval_spec,
                trust_pickle=o.trust_pickle,
                filename="model.onnx",
            )
            self._float = result.path
        return self._float

    def int8_onnx(self, target: str) -> tuple[Path, list[str]]:
        """quantize_model for one form; over budget on the host still gives a model (the device judges it)."""
        if target not in self._int8:
            from ..calibration import quantize_model

            o = self.options
            out = self.dir / f"model.int8-{target}.onnx"
            notes: list[str] = []
            judge_name = o.judge if (o.judge and target == "tflite") else None
            judge = None
            self.say(
                f"quantize: INT8 QDQ for {target} (accuracy guard judged by {judge_name or 'onnxruntime'} on this machine)"
            )
            try:
                extra = dict(o.quantize_extra)
                if target == "ort" and o.ort_speed_fallback:
                    extra.setdefault("speed_fallback", True)
                    notes.append("convs timed in INT8 and float on this machine; the faster precision kept per conv")
                if judge_name:
                    from ..calibration.judge import make_judge

                    judge = make_judge(
                        judge_name,
                        self.float_onnx(),
                        o.calib,
                        o.eval_spec,
                        calib_size=o.calib_size,
                        eval_size=o.eval_size,
                        trust_pickle=o.trust_pickle,
                    )
                    extra["evaluate"] = judge
                result = quantize_model(
                    self.float_onnx(),
                    out,
                    o.calib,
                    calib_size=o.calib_size,
                    eval_spec=o.eval_spec,
                    eval_size=o.eval_size,
                    max_drop=o.max_drop,
                    target=target,
                    force=True,
                    **extra,
                )
                self._int8[target] = (result.path, None, notes)
            except AccuracyBudgetError as exc:
                kept = getattr(exc, "result", None)
                if kept is None:
                    self._int8[target] = (None, str(exc), notes)
                else:
                    notes.append(f"quantize's host guard missed the budget ({exc}); the device measures it anyway")
                    self._int8[target] = (kept.path, None, notes)
            except MdnetDeployError as exc:
                self._int8[target] = (None, f"quantize failed: {exc}", notes)
            finally:
                if judge is not None and hasattr(judge, "close"):
                    judge.close()
        path, error, notes = self._int8[target]
        if path is None:
            raise _StepFailed(error or "quantize failed")
        return path, list(notes)


class _StepFailed(Exception):
    """A shared step this candidate needs failed earlier; its message is the reason."""


def _copy_with_sidecar(src: Path, dest: Path) -> None:
    shutil.copyfile(src, dest)
    side = sidecar_path(src)
    if side.is_file():
        shutil.copyfile(side, sidecar_path(dest))


def _publish(tmp_file: Path, dest: Path) -> None:
    """Move a finished artifact (and its sidecar) into place: sidecar first, the artifact last."""
    side = sidecar_path(tmp_file)
    old_side = sidecar_path(dest)
    if side.is_file():
        os.replace(side, old_side)
    else:
        with contextlib.suppress(FileNotFoundError):
            old_side.unlink()  # an old sidecar must never describe the new file
    os.replace(tmp_file, dest)


def build_candidate(
    spec: CandidateSpec,
    dest_dir: Path,
    inter: Intermediates,
    *,
    target: Any = None,
    remote: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Built:
    """Build ``spec`` into ``dest_dir/<name>.<ext>``; never raises for a failure of this candidate alone.

    Errors of the inputs every candidate shares (the checkpoint, the export)
    propagate; KeyboardInterrupt propagates and leaves nothing half-written.
    """
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    dest = dest_dir / spec.filename
    notes: list[str] = []
    dest_dir.mkdir(parents=True, exist_ok=True)
    float_onnx = inter.float_onnx()  # shared: its failure is the deploy's
    with tempfile.TemporaryDirectory(prefix=f".{spec.name}.", suffix=".partial", dir=dest_dir) as tmp_name:
        tmp = Path(tmp_name) / spec.filename
        try:
            say(f"build {spec.name}")
            _build(spec, tmp, float_onnx, inter, notes, target, remote or {}, say)
            if not tmp.is_file():
                raise MdnetDeployError(f"the {spec.builder} step wrote no {spec.filename}")
        except _StepFailed as exc:
            return Built(spec, None, time.perf_counter() - t0, str(exc), notes)
        except MdnetDeployError as exc:
            return Built(spec, None, time.perf_counter() - t0, str(exc), notes)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a converter's crash must not sink the other candidates
            text = " ".join(str(exc).split())
            return Built(spec, None, time.perf_counter() - t0, f"{type(exc).__name__}: {text}"[:400], notes)
        _publish(tmp, dest)
    return Built(spec, dest, time.perf_counter() - t0, None, notes)


def _build(
    spec: CandidateSpec,
    out: Path,
    float_onnx: Path,
    inter: Intermediates,
    notes: list[str],
    target: Any,
    remote: dict[str, Any],
    say: Progress,
) -> None:
    o = inter.options
    source = float_onnx
    if spec.quant_target is not None:
        source, more = inter.int8_onnx(spec.quant_target)
        notes.extend(more)
    if spec.builder == "copy-onnx":
        _copy_with_sidecar(source, out)
    elif spec.builder == "copy-checkpoint":
        # The checkpoint itself, with the float ONNX's metadata so the runner feeds it the right preprocessing.
        shutil.copyfile(o.checkpoint, out)
        meta = read_meta(float_onnx)
        assert meta is not None
        write_meta(out, meta.derive(format="pt", precision="fp32"))
    elif spec.builder == "tflite":
        from ..export.tflite.compile import convert_tflite

        # fp32/fp16 from the float ONNX (its checkpoint and preprocessing); int8 from quantize's INT8 ONNX, so
        # TFLite uses the same calibration images and the guard's float-fallback layers.
        convert_tflite(
            source,
            out,
            spec.precision,
            threads=1,
            force=True,
            trust_pickle=o.trust_pickle,
            progress=lambda stage, done, total: None if total else say(f"{spec.name}: {stage}"),
        )
    elif spec.builder == "trt-local":
        from ..export.tensorrt.build import build_engine

        build_engine(source, out, precision=spec.precision, force=True)
    elif spec.builder == "trt-remote":
        from ..remote import build_remote_engine

        if target is None:
            raise InputError(f"{spec.name}: TensorRT engines are built on the Jetson; give --host or --inventory")
        build_remote_engine(target, source, out, ["--precision", spec.precision], progress=say, **remote)
    else:  # pragma: no cover - the plans above name only these
        raise AssertionError(spec.builder)
