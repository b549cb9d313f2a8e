"""``deploy``: checkpoint -> candidates per device -> bench on the device -> the chosen artifact, with reasons.

Order, and why:

1. Check every option and input that can be checked cheaply (device kinds,
   budget, objective, output folder, data specs), and write
   ``pipeline.yaml`` with the input hashes: a typo fails in a second.
2. Export once, pack the evaluation set once (``OUTDIR/build/``).
3. Per device, build its candidates (:mod:`.candidates`); artifacts that do
   not depend on the board (ONNX, TFLite) are built once per kind and
   copied; TensorRT engines are built on each Jetson.
4. Bench every candidate on its device: here with the bench harness, over
   SSH with the remote bench (the fleet in parallel), accuracy from the
   device's own kernels on the packed evaluation set.
5. Choose per device (:mod:`.select`), copy the winner to ``best.<ext>``
   (or the closest over-budget one to ``best-over-budget.<ext>``), write
   ``deploy.json``.

Library only: progress goes to a callback, failures are
:class:`~mdnet_deploy.errors.MdnetDeployError`; the caller decides the exit
status from the returned :class:`DeployResult`.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import InputError, OutputError
from ..fsutil import atomic_output, atomic_write_text, ensure_writable_dir
from ..progress import Say
from . import pipeline_file
from .candidates import BuildOptions, Built, CandidateSpec, Intermediates, build_candidate, plan_candidates
from .select import OBJECTIVES, Choice, choose, measured_from_row

Progress = Say  # see mdnet_deploy.progress
#: bench(paths, device, eval_npz, config, progress) -> rows (bench schema 1), one per path
BenchFn = Callable[[Sequence[Path], "DeviceRun", Path, "DeployConfig", Progress], list[dict[str, Any]]]

DEVICE_KINDS = ("rpi", "jetson", "host", "cuda")
REMOTE_KINDS = ("rpi", "jetson")
DEPLOY_SCHEMA = 1


@dataclass
class DeployConfig:
    checkpoint: Path
    output: Path
    device: str
    calib: str
    eval_spec: str
    host: str | None = None
    inventory: Path | None = None
    max_drop: float = 0.5
    objective: str = "latency"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    calib_size: int = 512
    eval_size: int | None = None
    candidates: tuple[str, ...] = ()
    judge: str | None = None
    warmup: str = "20"
    iterations: int = 200
    threads: int | None = None
    power_meter: str = "auto"
    trust_pickle: bool = False
    force: bool = False
    # remote
    identity: Path | None = None
    setup: bool = False
    accept_new_host_key: bool = False
    known_hosts: Path | None = None
    remote_dir: str = "~/.cache/mdnet-deploy"
    max_parallel: int = 4
    remote_timeout: float = 3600.0


@dataclass
class DeviceRun:
    label: str  # folder name under OUTDIR
    kind: str
    target: Any = None  # DeviceTarget for a remote device


@dataclass
class CandidateOutcome:
    spec: CandidateSpec
    selectable: bool
    built: Built
    row: dict[str, Any] | None = None


@dataclass
class DeviceOutcome:
    device: DeviceRun
    candidates: list[CandidateOutcome]
    choice: Choice
    best: Path | None = None  # best.<ext>
    best_over_budget: Path | None = None


@dataclass
class DeployResult:
    devices: list[DeviceOutcome]
    deploy_json: Path
    pipeline_yaml: Path
    seconds: float
    warnings: list[str] = field(default_factory=list)
    report: Path | None = None  # report.html: every candidate on the Pareto plots

    @property
    def ok(self) -> bool:
        return all(d.choice.chosen is not None for d in self.devices)


# -- checks ---------------------------------------------------------------------------
def check_config(config: DeployConfig) -> None:
    if config.device not in DEVICE_KINDS:
        raise InputError(f"--device '{config.device}' is not known; choose one of {', '.join(DEVICE_KINDS)}")
    if config.objective not in OBJECTIVES:
        raise InputError(f"--objective '{config.objective}' is not known; choose one of {', '.join(OBJECTIVES)}")
    if not (config.max_drop >= 0) or config.max_drop != config.max_drop or config.max_drop == float("inf"):
        raise InputError(
            f"--max-drop {config.max_drop} is not valid; give the largest acceptable top-1 drop in points (>= 0), e.g. 0.5"
        )
    if config.host and config.inventory:
        raise InputError("give either --host or --inventory, not both")
    if (config.host or config.inventory) and config.device in ("host", "cuda") and not config.inventory:
        raise InputError(
            f"--host deploys to a remote rpi or jetson; --device {config.device} runs here, so drop --host"
        )
    if config.device == "jetson" and not (config.host or config.inventory):
        raise InputError(
            "--device jetson builds and benches engines on the board; give --host user@jetson or --inventory"
        )
    if config.calib_size < 1:
        raise InputError(f"--calib-size {config.calib_size} is not valid; give a positive number of images")
    if config.eval_size is not None and config.eval_size < 1:
        raise InputError(
            f"--eval-size {config.eval_size} is not valid; give a positive number of images or leave it out"
        )
    if config.iterations < 1:
        raise InputError(f"--iterations {config.iterations} is not valid; give at least 1")
    if config.judge is not None and config.judge not in ("onnxruntime", "tflite"):
        raise InputError(f"--judge '{config.judge}' is not known; choose onnxruntime or tflite")
    ckpt = Path(config.checkpoint)
    if not ckpt.is_file():
        raise InputError(f"checkpoint {ckpt} does not exist; give the .pth written by training")


def resolve_devices(config: DeployConfig) -> list[DeviceRun]:
    if config.inventory:
        from ..remote import load_inventory

        default = config.device if config.device in REMOTE_KINDS else None
        targets = load_inventory(config.inventory, default_device=default)
        if not targets:
            raise InputError(f"inventory {config.inventory} lists no hosts; add hosts with mdnet_device: rpi|jetson")
        runs, seen = [], set()
        for t in targets:
            label = _folder_name(t.label)
            if label in seen:
                raise InputError(
                    f"inventory {config.inventory}: two hosts map to the folder name '{label}'; rename one"
                )
            seen.add(label)
            runs.append(DeviceRun(label, t.device, t))
        return runs
    if config.host:
        from ..remote import parse_target

        target = parse_target(config.host, config.device, identity=config.identity)
        return [DeviceRun(config.device, config.device, target)]
    return [DeviceRun(config.device, config.device, None)]


def _folder_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "device"


OWN_FILES = ("deploy.json", "pipeline.yaml", "results.json", "report.html")


def prepare_output(config: DeployConfig, devices: Sequence[DeviceRun]) -> Path:
    """OUTDIR, refusing to mix with an earlier deploy unless --force (which clears only what deploy writes)."""
    out = Path(config.output)
    if out.exists() and not out.is_dir():
        raise OutputError(f"output {out} is a file; give a folder with -o")
    ours = [out / n for n in (*OWN_FILES, "build")] + [out / d.label for d in devices]
    present = [p for p in ours if p.exists()]
    if present and not config.force:
        raise OutputError(
            f"{out} already holds a deploy ({present[0].name}); pass --force to replace it or give another -o"
        )
    ensure_writable_dir(out)
    if config.force:
        for p in present:
            if p == out / "build":
                shutil.rmtree(p)  # intermediates only: deploy made everything in it
            elif p.is_dir():
                _clear_device_dir(p)
    return out


def _clear_device_dir(folder: Path) -> None:
    """Remove what a deploy writes in a device folder, nothing else the user may have put there."""
    shutil.rmtree(folder / "candidates", ignore_errors=True)
    for f in folder.glob("best*"):
        if f.is_file() and (f.name.startswith("best.") or f.name.startswith("best-over-budget.")):
            f.unlink()


# -- bench ----------------------------------------------------------------------------
def local_bench(
    paths: Sequence[Path], device: DeviceRun, eval_npz: Path, config: DeployConfig, say: Progress
) -> list[dict[str, Any]]:
    from ..bench import bench_models

    return bench_models(
        [str(p) for p in paths],
        device=device.kind,
        runtime="auto",
        eval_spec=str(eval_npz),
        threads=config.threads,
        warmup=config.warmup,
        iterations=config.iterations,
        power_meter=config.power_meter,
        progress=say,
    )


def _bench_args(config: DeployConfig) -> list[str]:
    args = ["--warmup", str(config.warmup), "--iterations", str(config.iterations), "--power-meter", config.power_meter]
    if config.threads is not None:
        args += ["--threads", str(config.threads)]
    return args


def _remote_options(config: DeployConfig, wheel: Path | None) -> dict[str, Any]:
    known = str(Path(config.known_hosts).expanduser()) if config.known_hosts else None
    return dict(
        setup=config.setup,
        accept_new_host_key=config.accept_new_host_key,
        known_hosts=known,
        remote_root=config.remote_dir,
        timeout=config.remote_timeout,
        wheel=wheel,
    )


def remote_bench_all(
    jobs: dict[str, tuple[DeviceRun, list[Path]]],
    eval_npz: Path,
    config: DeployConfig,
    wheel: Path | None,
    say: Progress,
    extra: dict[str, Any] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Bench every remote device (in parallel, through the fleet runner) on its own candidate files."""
    from ..remote import run_fleet, run_remote_bench

    by_target = {run.target.label: paths for run, paths in jobs.values()}
    every = [p for _, paths in jobs.values() for p in paths]

    def bench_own(target: Any, _models: Any, npz: Any, args: Any, **kw: Any) -> list[dict[str, Any]]:
        return run_remote_bench(target, by_target[target.label], npz, args, **kw)

    opts = {**_remote_options(config, wheel), **(extra or {})}
    rows = run_fleet(
        [run.target for run, _ in jobs.values()],
        every,
        eval_npz,
        _bench_args(config),
        max_parallel=config.max_parallel,
        progress=say,
        bench=bench_own,
        **opts,
    )
    out: dict[str, list[dict[str, Any]]] = {label: [] for label in jobs}
    label_of = {run.target.label: label for label, (run, _) in jobs.items()}
    for row in rows:
        target = (row.get("remote") or {}).get("target")
        if target in label_of:
            out[label_of[target]].append(row)
    return out


# -- the deploy -----------------------------------------------------------------------
def deploy(
    config: DeployConfig,
    progress: Progress | None = None,
    *,
    bench: BenchFn | None = None,
    quantize_extra: dict[str, Any] | None = None,
    remote_extra: dict[str, Any] | None = None,
) -> DeployResult:
    """Run the whole deploy; see the module docstring.

    ``bench`` replaces the local bench; ``remote_extra`` adds keyword arguments to the remote bench and engine
    builds (e.g. ``session_factory``); ``quantize_extra`` to ``quantize_model``. For tests and embedding.
    """
    say = progress or (lambda _m: None)
    t_start = time.perf_counter()
    check_config(config)
    devices = resolve_devices(config)
    only = tuple(config.candidates)
    plans = {d.label: plan_candidates(d.kind, only) for d in devices}
    say("hashing inputs for pipeline.yaml")
    hashes = pipeline_file.input_hashes(config)  # also proves both data specs load, before OUTDIR is touched
    out = prepare_output(config, devices)
    pipeline_yaml = pipeline_file.write_pipeline(out / "pipeline.yaml", pipeline_file.pipeline_dict(config, hashes))

    build_dir = out / "build"
    build_dir.mkdir(exist_ok=True)
    opts = BuildOptions(
        checkpoint=Path(config.checkpoint),
        calib=config.calib,
        eval_spec=config.eval_spec,
        calib_size=config.calib_size,
        eval_size=config.eval_size,
        max_drop=config.max_drop,
        mean=config.mean,
        std=config.std,
        trust_pickle=config.trust_pickle,
        judge=config.judge,
        quantize_extra=dict(quantize_extra or {}),
        # Per-conv precision by timing is only right on the CPU that was timed: every host device is this one.
        ort_speed_fallback=all(d.target is None for d in devices if d.kind == "host"),
    )
    inter = Intermediates(opts, build_dir, say)
    float_onnx = inter.float_onnx()
    eval_npz = _pack_eval(config, float_onnx, build_dir, say)

    remote = [d for d in devices if d.target is not None]
    with contextlib.ExitStack() as stack:
        wheel = None
        if remote:
            from ..remote.wheel import build_wheel

            say("building the mdnet-deploy wheel for the devices")
            wheel = build_wheel(stack.enter_context(tempfile.TemporaryDirectory(prefix="mdnet-deploy-wheel-")))
        outcomes = _build_all(devices, plans, inter, config, wheel, say, remote_extra or {})

        rows_by_device: dict[str, list[dict[str, Any]]] = {}
        local = [d for d in devices if d.target is None]
        for d in local:
            paths = [c.built.path for c in outcomes[d.label] if c.built.path is not None]
            say(f"[{d.label}] bench {len(paths)} candidate(s) on this machine")
            rows_by_device[d.label] = (
                (bench or local_bench)(paths, d, eval_npz, config, _prefixed(say, d.label)) if paths else []
            )
        jobs = {d.label: (d, [c.built.path for c in outcomes[d.label] if c.built.path is not None]) for d in remote}
        jobs = {k: v for k, v in jobs.items() if v[1]}
        if jobs:
            say(f"bench on {len(jobs)} device(s) over SSH")
            rows_by_device.update(remote_bench_all(jobs, eval_npz, config, wheel, say, remote_extra or {}))

    results = []
    for d in devices:
        by_path = {str(Path((r.get("model") or {}).get("path", ""))): r for r in rows_by_device.get(d.label, [])}
        for c in outcomes[d.label]:
            if c.built.path is not None:
                c.row = by_path.get(str(c.built.path))
        results.append(_decide(d, outcomes[d.label], config, out))

    seconds = time.perf_counter() - t_start
    deploy_json = out / "deploy.json"
    atomic_write_text(deploy_json, json.dumps(_deploy_doc(config, results, seconds), indent=2, default=str) + "\n")
    report = _write_report(out, results, say)
    return DeployResult(results, deploy_json, pipeline_yaml, seconds, report=report)


def _write_report(out: Path, results: Sequence[DeviceOutcome], say: Progress) -> Path | None:
    """results.json (every measured candidate) and the HTML report beside deploy.json; None when nothing ran."""
    from ..bench import write_json
    from ..reporting.html import write_html
    from ..reporting.load import load_inputs

    rows = [c.row for d in results for c in d.candidates if c.row is not None]
    if not rows:
        return None
    say("writing results.json and report.html")
    results_json = write_json(rows, out / "results.json")
    quant = sorted((out / "build").glob("**/*.report.json"))  # the guard's steps and sensitivity, when quantize ran
    return write_html(load_inputs([results_json], quant), out / "report.html", "mdnet-deploy deploy")


def _prefixed(say: Progress, label: str) -> Progress:
    return lambda m: say(f"[{label}] {m}")


def _pack_eval(config: DeployConfig, float_onnx: Path, build_dir: Path, say: Progress) -> Path:
    """The evaluation set as uint8 .npz at the model's input size: the same images on every device."""
    from ..artifact import read_meta
    from ..bench.evalset import pack_eval

    meta = read_meta(float_onnx)
    assert meta is not None
    say(f"packing {config.eval_spec} for the devices")
    packed = pack_eval(
        config.eval_spec,
        build_dir / "eval.npz",
        size=(int(meta.preprocessing.size[0]), int(meta.preprocessing.size[1])),
        limit=config.eval_size,
    )
    if packed.num_classes != meta.num_classes:
        raise InputError(
            f"--eval {config.eval_spec} has {packed.num_classes} classes but the model has {meta.num_classes}; "
            "give the matching test set"
        )
    return packed.path


def _build_all(
    devices: Sequence[DeviceRun],
    plans: dict[str, list[tuple[CandidateSpec, bool]]],
    inter: Intermediates,
    config: DeployConfig,
    wheel: Path | None,
    say: Progress,
    remote_extra: dict[str, Any],
) -> dict[str, list[CandidateOutcome]]:
    """Build each device's candidates; board-independent ones once per kind, then copied."""
    made: dict[tuple[str, str], Built] = {}
    outcomes: dict[str, list[CandidateOutcome]] = {}
    for d in devices:
        dest = Path(config.output) / d.label / "candidates"
        dest.mkdir(parents=True, exist_ok=True)
        rows = []
        for spec, selectable in plans[d.label]:
            key = (d.kind, spec.name)
            per_board = spec.builder == "trt-remote"
            if not per_board and key in made:
                built = _copy_built(made[key], dest)
            else:
                built = build_candidate(
                    spec,
                    dest,
                    inter,
                    target=d.target,
                    progress=_prefixed(say, d.label),
                    remote={**_remote_options(config, wheel), **remote_extra} if per_board else None,
                )
                if not per_board:
                    made[key] = built
            if built.error:
                say(f"[{d.label}] {spec.name}: failed: {built.error}")
            rows.append(CandidateOutcome(spec, selectable, built))
        outcomes[d.label] = rows
    return outcomes


def _copy_built(first: Built, dest_dir: Path) -> Built:
    if first.path is None:
        return Built(first.spec, None, 0.0, first.error, list(first.notes))
    target = dest_dir / first.path.name
    with tempfile.TemporaryDirectory(prefix=f".{first.spec.name}.", suffix=".partial", dir=dest_dir) as tmp:
        from .candidates import _copy_with_sidecar, _publish

        staged = Path(tmp) / first.path.name
        _copy_with_sidecar(first.path, staged)
        _publish(staged, target)
    return Built(first.spec, target, 0.0, None, [*first.notes, f"same file as {first.path}"])


def _decide(d: DeviceRun, cands: list[CandidateOutcome], config: DeployConfig, out: Path) -> DeviceOutcome:
    measured = []
    for c in cands:
        size = c.built.path.stat().st_size if c.built.path is not None else None
        if c.built.path is None:
            m = measured_from_row(
                c.spec.name,
                None,
                fmt=c.spec.format,
                precision=c.spec.precision,
                reference=c.spec.reference,
                selectable=c.selectable,
            )
            m.reason = f"build failed: {c.built.error}"
        else:
            m = measured_from_row(
                c.spec.name,
                c.row,
                fmt=c.spec.format,
                precision=c.spec.precision,
                reference=c.spec.reference,
                selectable=c.selectable,
                size_bytes=size,
            )
        measured.append(m)
    choice = choose(measured, config.objective, config.max_drop)
    outcome = DeviceOutcome(d, cands, choice)
    by_name = {c.spec.name: c for c in cands}
    folder = out / d.label
    if choice.chosen:
        outcome.best = _keep(by_name[choice.chosen], folder, "best")
    elif choice.best_over_budget:
        outcome.best_over_budget = _keep(by_name[choice.best_over_budget], folder, "best-over-budget")
    return outcome


def _keep(c: CandidateOutcome, folder: Path, stem: str) -> Path:
    """Copy the candidate (and its sidecar) to ``<stem>.<ext>``: sidecar first, the artifact last, each atomic."""
    from ..artifact import sidecar_path

    assert c.built.path is not None
    dest = folder / f"{stem}{c.built.path.suffix}"
    side = sidecar_path(c.built.path)
    if side.is_file():
        with atomic_output(sidecar_path(dest)) as tmp:
            shutil.copyfile(side, tmp)
    with atomic_output(dest) as tmp:
        shutil.copyfile(c.built.path, tmp)
    return dest


def _deploy_doc(config: DeployConfig, results: Sequence[DeviceOutcome], seconds: float) -> dict[str, Any]:
    from .. import __version__

    devices = []
    for r in results:
        rows = []
        for c in r.candidates:
            v = r.choice.verdict(c.spec.name)
            rows.append(
                {
                    "name": c.spec.name,
                    "file": str(c.built.path) if c.built.path else None,
                    "format": c.spec.format,
                    "precision": c.spec.precision,
                    "runtime": c.spec.runtime,
                    "reference": c.spec.reference,
                    "selectable": c.selectable,
                    "build": {
                        "ok": c.built.error is None,
                        "seconds": round(c.built.seconds, 3),
                        "error": c.built.error,
                        "notes": c.built.notes,
                    },
                    "outcome": v.outcome,
                    "reason": v.reason,
                    "drop": v.drop,
                    "bench": c.row,
                }
            )
        devices.append(
            {
                "device": r.device.label,
                "kind": r.device.kind,
                "target": r.device.target.label if r.device.target is not None else "this machine",
                "objective": r.choice.objective,
                "max_drop": r.choice.max_drop,
                "reference": r.choice.reference,
                "reference_top1": r.choice.reference_top1,
                "chosen": r.choice.chosen,
                "best": str(r.best) if r.best else None,
                "best_over_budget": str(r.best_over_budget) if r.best_over_budget else None,
                "message": r.choice.message,
                "candidates": rows,
            }
        )
    return {
        "schema": DEPLOY_SCHEMA,
        "mdnet_deploy": __version__,
        "checkpoint": str(Path(config.checkpoint).resolve()),
        "objective": config.objective,
        "max_drop": config.max_drop,
        "seconds": round(seconds, 1),
        "devices": devices,
    }
