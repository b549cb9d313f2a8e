"""The benchmark: every model x runtime through warm-up, a timed (and metered) loop and accuracy.

Order of a run, and why:

1. Check everything that can be checked without running a model (options,
   the power meter, files, the evaluation set against each model's
   classes): a typo or a missing meter fails in a second, not after an
   hour of other models.
2. Idle power (``idle`` seconds, before any model is loaded), once.
3. Per row: open, prepare the input, warm up, then the meter is started
   right before the timed loop and stopped right after it (the energy
   window is exactly the timed window), then accuracy.

A row that fails (the runtime cannot open the model, a crash inside it) is
recorded with its reason and the others go on; the caller decides the exit
status. Library only: no printing, progress goes to a callback.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..artifact import SOURCE_DEFAULT, ArtifactMeta, format_of, read_meta
from ..data.dataset import Dataset
from ..devices import capture_environment, energy_summary, get_profile, measure_idle, read_temperatures, select_meter
from ..devices.meter import PowerMeter
from ..devices.trace import Trace
from ..errors import InputError, MdnetDeployError, one_line
from ..fsutil import sha256_file
from ..progress import Say
from ..reporting.profile import unavailable
from ..reporting.traces import kept_trace
from ..runtimes import registry
from . import conditions, schema, stats
from .evalset import check_classes, evaluate, load_eval, model_input, static_batch
from .timing import Budget, Clock, latency_stats, parse_budget, timed_loop, warm_up

Progress = Say  # see mdnet_deploy.progress

DEFAULT_WARMUP = "50"
DEFAULT_DURATION_S = 60.0
#: Below this many timed calls p99 is just the maximum of a few samples.
MIN_ITERATIONS_FOR_P99 = 100


@dataclass
class _Job:
    """One planned row: a model and the runtime to run it with (or why there is none)."""

    path: Path
    given: str  # the path as the user gave it: results name it that way (remote maps it back)
    fmt: str
    meta: ArtifactMeta | None
    runtime: str | None
    error: str | None = None


def _noop(_: str) -> None:
    pass


def _runtimes(runtime: str | Sequence[str]) -> list[str]:
    names = [runtime] if isinstance(runtime, str) else list(runtime)
    names = [str(n).strip().lower() for n in names if str(n).strip()] or ["auto"]
    for n in names:
        if n != "auto" and n not in registry.RUNTIMES:
            raise InputError(f"unknown runtime '{n}'; choose auto or one of {', '.join(registry.NAMES)}")
    return list(dict.fromkeys(names))


def _model_meta(path: Path, fmt: str) -> ArtifactMeta:
    meta = read_meta(path, required=fmt != "pt")
    if meta is None:  # a bare .pth: its shapes are the metadata (needs torch, as running it does)
        ok, why = registry.runtime_available("torch")
        if not ok:
            raise MdnetDeployError(why)
        from ..runtimes.torch_runner import checkpoint_meta

        meta = checkpoint_meta(path)
    return meta


def plan(models: Sequence[str | Path], kind: str, runtimes: list[str]) -> list[_Job]:
    """One job per model x runtime; jobs that cannot run carry their reason."""
    jobs: list[_Job] = []
    for m in models:
        path = Path(m)
        if not path.exists():
            raise InputError(f"model {path} does not exist; check the path")
        if path.is_dir():
            raise InputError(f"model {path} is a folder; give the artifact file (.onnx, .tflite, .engine, .pth)")
        fmt = format_of(path)  # an unknown suffix is a typo: refuse before anything runs
        try:
            meta: ArtifactMeta | None = _model_meta(path, fmt)
        except MdnetDeployError as exc:
            jobs.append(_Job(path, str(m), fmt, None, runtimes[0] if runtimes != ["auto"] else None, str(exc)))
            continue
        several = len(runtimes) > 1
        chosen = 0
        planned: set[str] = set()
        for rt in runtimes:
            if several and rt != "auto" and not registry.opens(rt, fmt, meta):
                continue  # with several runtimes named, each model runs on those that open it
            chosen += 1
            try:
                name = registry.choose_runtime(fmt, kind, rt, meta)
                if name in planned:
                    continue  # "auto" picked a runtime that was also named: one row is enough
                planned.add(name)
                jobs.append(_Job(path, str(m), fmt, meta, name))
            except MdnetDeployError as exc:
                jobs.append(_Job(path, str(m), fmt, meta, None if rt == "auto" else rt, str(exc)))
        if not chosen:
            jobs.append(
                _Job(
                    path, str(m), fmt, meta, None, f"none of the runtimes {', '.join(runtimes)} opens a .{fmt} artifact"
                )
            )
    return jobs


def _device_block(kind: str, env: dict[str, Any]) -> dict[str, Any]:
    name = env.get("device_model") or env.get("cpu_model") or env.get("hostname") or kind
    return {"kind": kind, "name": str(name), "env": env, "temperatures_c": None}


def _model_block(job: _Job) -> dict[str, Any]:
    meta = job.meta
    block: dict[str, Any] = {
        "path": job.given,
        "name": job.path.name,
        "format": job.fmt,
        "precision": meta.precision if meta else None,
        "variant": meta.variant if meta else None,
        "num_classes": meta.num_classes if meta else None,
        "size_mb": job.path.stat().st_size / 1e6,
        "sha256": sha256_file(job.path),
    }
    computes = registry.RUNTIMES[job.runtime].computes if job.runtime in registry.RUNTIMES else None
    if computes:  # a runtime that computes the file in another precision (openvino-bf16): the row is that precision
        block.update(precision=computes, stored_precision=block["precision"])
    if job.runtime == "torch" and job.fmt != "pt" and meta and meta.checkpoint:
        # The PyTorch baseline of an exported artifact runs its checkpoint: say so.
        ckpt = meta.checkpoint
        block.update(
            format="pt",
            precision="fp32",
            baseline_of=job.given,
            checkpoint=ckpt.get("path"),
            sha256=ckpt.get("sha256"),
            size_mb=(ckpt.get("bytes") or 0) / 1e6 or None,
        )
    return block


def _runtime_block(job: _Job, threads: int | None) -> dict[str, Any]:
    version = None
    if job.runtime:
        ok, text = registry.runtime_available(job.runtime)
        version = text if ok else None
    return {"name": job.runtime, "version": version, "threads": threads}


def _timing_input(meta: ArtifactMeta, batch: int, ds: Dataset | None) -> np.ndarray:
    """Canonical input for the timed loop: real images when there is a set, else fixed random ones."""
    if ds is not None and len(ds):
        idx = np.arange(batch) % len(ds)
        return model_input(ds.images[idx], meta)
    h, w = (int(s) for s in meta.preprocessing.size)
    images = np.random.default_rng(0).integers(0, 256, (batch, h, w, 3), dtype=np.uint8)
    return model_input(images, meta)


def _prefixed(say: Progress, label: str) -> Progress:
    def emit(message: str) -> None:
        say(f"{label}: {message}")

    return emit


# The one wording of an exception for a failed row (mdnet_deploy.errors.one_line).
_one_line = one_line


def bench_models(
    models: Sequence[str | Path],
    device: str = "host",
    runtime: str | Sequence[str] = "auto",
    eval_spec: str | None = None,
    batch: int = 1,
    threads: int | None = None,
    warmup: str | int | Budget | None = DEFAULT_WARMUP,
    iterations: int | None = None,
    duration: float | None = None,
    power_meter: str = "auto",
    idle: float = 0.0,
    progress: Progress | None = None,
    *,
    runner_options: dict[str, Any] | None = None,
    clock: Clock = time.perf_counter_ns,
    meter: PowerMeter | None = None,
    profile_runs: int = 0,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    repeat: int = 1,
) -> list[dict[str, Any]]:
    """Bench every model (x runtime) on this ``device`` kind; return one result row each (schema 1).

    ``warmup`` is a count or seconds ("50", "5s"); the timed loop runs
    ``iterations`` calls or for ``duration`` seconds (60 s when neither is
    given). Raises before running anything for bad options, a missing or
    unknown model file, an explicitly requested power meter that does not
    work here, or an evaluation set that does not fit a model; failures of
    one model become a failed row. ``meter`` replaces ``power_meter`` (tests).
    ``profile_runs`` > 0 adds each row's per-layer profile (``bench --profile``)
    from that many extra calls after everything else was measured.
    ``mean``/``std``: the preprocessing of ``.pth`` checkpoints (which carry
    none); without them a checkpoint gets the CIFAR-100 default, which is
    checked against ``eval_spec`` and refused when clearly wrong (prepcheck).
    ``repeat``: the warm-up and timed loop run that many times per row; the
    result's ``repeats`` block has the median p50 and its 95 % CI.
    """
    say = progress or _noop
    get_profile(device)  # unknown kind -> InputError
    if not models:
        raise InputError("give at least one --model to bench")
    if batch < 1:
        raise InputError(f"--batch {batch} is not valid; give a positive batch size")
    if threads is not None and threads < 1:
        raise InputError(f"--threads {threads} is not valid; give a positive number of threads")
    if iterations is not None and duration is not None:
        raise InputError("give either --iterations or --duration, not both")
    if iterations is not None and iterations < 1:
        raise InputError(f"--iterations {iterations} is not valid; give at least 1")
    if duration is not None and not duration > 0:
        raise InputError(f"--duration {duration} is not valid; give a positive number of seconds")
    if idle < 0:
        raise InputError(f"--idle {idle} is not valid; give 0 (no idle measurement) or a number of seconds")
    if repeat < 1:
        raise InputError(f"--repeat {repeat} is not valid; give 1 or more (5 gives a useful confidence interval)")
    given_prep = None
    if mean is not None or std is not None:
        from ..prepcheck import resolve_preprocessing  # numpy only

        given_prep = resolve_preprocessing(mean, std)
    warm = parse_budget(warmup if warmup is not None else 0, "--warmup", allow_zero=True)
    assert warm is not None
    loop = Budget(count=iterations) if iterations is not None else Budget(seconds=duration or DEFAULT_DURATION_S)
    runtimes = _runtimes(runtime)

    # An explicitly named meter that cannot work here raises now, before any model runs.
    if meter is not None:
        energy_why: str | None = None
    else:
        meter, energy_why = select_meter(power_meter, device)
    try:
        ds = load_eval(eval_spec) if eval_spec else None
        jobs = plan(models, device, runtimes)
        _apply_preprocessing(jobs, given_prep)
        if ds is not None:
            for job in jobs:
                if job.meta is not None and job.error is None:
                    check_classes(ds, job.meta, job.given)
            _check_checkpoint_preprocessing(jobs, ds, device, say)

        say(f"capturing the {device} environment")
        device_block = _device_block(device, capture_environment(device))
        idle_trace = None
        if idle > 0 and meter.name != "none":
            say(f"measuring idle power for {idle:g} s ({meter.name}); keep the device otherwise unloaded")
            idle_trace = measure_idle(meter, idle)

        measurement = Measurement(
            device, batch, threads, warm, loop, repeat, profile_runs, dict(runner_options or {}), clock
        )
        metering = Metering(meter, energy_why, idle_trace)
        rows = []
        for i, job in enumerate(jobs, 1):
            label = f"[{i}/{len(jobs)}] {job.path.name} ({job.runtime or 'no runtime'})"
            row = schema.new_row(dict(device_block), _model_block(job), _runtime_block(job, threads), batch)
            if job.error is not None:
                schema.mark_failed(row, job.error)
                say(f"{label}: failed: {row['reason']}")
            else:
                try:
                    _run_job(job, row, measurement, ds, metering, _prefixed(say, label))
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:  # one model's crash must not sink the others
                    schema.mark_failed(row, _one_line(exc))
                    say(f"{label}: failed: {row['reason']}")
            rows.append(row)
        return rows
    finally:
        meter.close()


def _apply_preprocessing(jobs: list[_Job], given: Any) -> None:
    """``--mean/--std`` set a checkpoint's preprocessing; for an artifact they must agree with its metadata."""
    if given is None:
        return
    for job in jobs:
        if job.meta is None:
            continue
        if job.fmt == "pt":
            job.meta.preprocessing = given
            continue
        have = job.meta.preprocessing
        if not all(abs(a - b) <= 1e-6 for a, b in zip((*have.mean, *have.std), (*given.mean, *given.std))):
            raise InputError(
                f"--mean/--std {given.describe()} contradict {job.given}'s metadata ({have.describe()}); "
                "they apply to .pth checkpoints: drop them or bench the artifacts in a separate run"
            )


def _check_checkpoint_preprocessing(jobs: list[_Job], ds: Dataset, kind: str, say: Progress) -> None:
    """A checkpoint benched with the assumed CIFAR-100 default: refuse if the evaluation set says it is wrong."""
    from ..artifact import SOURCE_DEFAULT
    from ..prepcheck import check_assumed_preprocessing

    done: set[Path] = set()
    for job in jobs:
        meta = job.meta
        if meta is None or job.error is not None or job.fmt != "pt" or meta.preprocessing.source != SOURCE_DEFAULT:
            continue
        if job.path.resolve() in done or ds.images.dtype != np.uint8:
            continue
        done.add(job.path.resolve())
        say(f"{job.path.name}: no --mean/--std, checking the CIFAR-100 default on {ds.description}")
        runner = registry.make_runner("torch", job.path, meta, kind)
        with runner:
            check_assumed_preprocessing(
                meta.preprocessing,
                ds.images,
                ds.labels,
                runner.logits,  # type: ignore[attr-defined]  # the torch runner's batch forward
                model=str(job.given),
                dataset=ds.description,
                num_classes=meta.num_classes,
            )


def _layer_profile(runner: Any, native: Any, runs: int) -> dict[str, Any]:
    """The runner's per-layer profile (reporting/profile.py shape); a failure is recorded, not raised."""
    hook = getattr(runner, "profile", None)
    if hook is None:
        return unavailable(runner.name, f"the {runner.name} runner has no per-layer profiler")
    try:
        return hook(native, runs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # a profiler problem must not fail a measured row
        return unavailable(runner.name, f"profiling failed: {_one_line(exc)}")


def _describe(row: dict[str, Any], runner: Any, threads: int | None) -> None:
    described = runner.describe()
    row["runtime"] = {**row["runtime"], **described, "threads": described.get("threads", threads)}


@dataclass(frozen=True)
class Measurement:
    """How every row of one bench is measured: validated and resolved once, shared by every job."""

    kind: str  # the device kind, already checked against the profiles
    batch: int
    threads: int | None
    warm: Budget
    loop: Budget
    repeat: int = 1
    profile_runs: int = 0
    runner_options: dict[str, Any] = field(default_factory=dict)
    clock: Clock = time.perf_counter_ns


@dataclass(frozen=True)
class Metering:
    """The power meter of one bench, why it may record nothing, and the idle trace (when measured)."""

    meter: PowerMeter
    why: str | None = None
    idle: Trace | None = None


def _run_job(
    job: _Job, row: dict[str, Any], m: Measurement, ds: Dataset | None, metering: Metering, say: Progress
) -> None:
    assert job.meta is not None and job.runtime is not None
    kind, batch, threads, warm, loop, clock = m.kind, m.batch, m.threads, m.warm, m.loop, m.clock
    repeat, profile_runs, options = m.repeat, m.profile_runs, m.runner_options
    meter, energy_why, idle_trace = metering.meter, metering.why, metering.idle
    runner = registry.make_runner(job.runtime, job.path, job.meta, kind, threads=threads, **options)
    say("opening")
    with runner:
        meta = runner.meta  # the torch runner refines a bare checkpoint's metadata
        _describe(row, runner, threads)
        x = _timing_input(meta, batch, ds)
        native = runner.prepare(x)  # layout/dtype conversion stays outside the timed region
        try:
            logits = runner.finish(runner.run(native))
        except Exception as exc:
            fixed = static_batch(meta)
            if fixed is not None and fixed != batch:
                raise InputError(
                    f"{_one_line(exc)} ({job.path.name} takes batch {fixed} only: use --batch {fixed} "
                    "or export it with a dynamic batch)"
                ) from None
            raise
        if logits.shape != (batch, meta.num_classes):
            raise InputError(
                f"{job.path.name} returned shape {list(logits.shape)}, expected [{batch}, {meta.num_classes}] "
                "from its metadata; re-export the artifact"
            )

        say(f"warm-up {warm.describe()}")
        row["warmup"], row["warmup_s"] = warm_up(runner.run, native, warm, clock)

        say(f"timing {loop.describe()}" + (f" with power meter '{meter.name}'" if meter.name != "none" else ""))
        row["device"]["temperatures_c"] = {"before": read_temperatures(), "after": None}
        before = conditions.snapshot(kind)
        trace, meter_error = None, None
        try:
            meter.start()
        except MdnetDeployError as exc:
            meter_error = f"power meter '{meter.name}' failed to start: {exc}"
        try:
            latencies, window_ns = timed_loop(runner.run, native, loop, clock)
        except BaseException:
            meter.close()
            raise
        if meter_error is None:
            try:
                trace = meter.stop()
            except MdnetDeployError as exc:
                meter_error = f"power meter '{meter.name}' failed: {exc}"
        metered_images = len(latencies) * batch  # the meter covered the first repeat only
        p50s: list[float] = [latency_stats(latencies)["p50"] or 0.0]
        for r in range(2, repeat + 1):  # --repeat: the whole measurement again, unmetered
            say(f"repeat {r}/{repeat}: warm-up {warm.describe()}, timing {loop.describe()}")
            warm_up(runner.run, native, warm, clock)
            more, more_ns = timed_loop(runner.run, native, loop, clock)
            latencies = latencies + more
            window_ns += more_ns
            p50s.append(latency_stats(more)["p50"] or 0.0)
        row["device"]["temperatures_c"]["after"] = read_temperatures()
        row["conditions"] = conditions.conditions_block(kind, before, conditions.snapshot(kind))
        if repeat > 1:
            row["repeats"] = stats.repeats_summary(p50s)

        _describe(row, runner, threads)  # again: some runners learn more while running (TFLite batching)

        n = len(latencies)
        images = n * batch
        window_s = window_ns / 1e9
        row.update(
            iterations=n,
            duration_s=window_s,
            latency_ms=latency_stats(latencies),
            throughput_ips=images / window_s if window_s > 0 else None,
        )
        if n < MIN_ITERATIONS_FOR_P99:
            row["warnings"].append(
                f"only {n} timed calls: p99 is not meaningful; run longer (--iterations or --duration)"
            )
        if trace is not None:
            row["energy"] = energy_summary(trace, metered_images, idle_trace)
            if row["energy"] is not None:  # the report draws it (sampling meters only)
                row["energy"]["trace"] = kept_trace(trace, row["energy"].get("idle_power_w"))
        if row["energy"] is None:
            row["energy_unavailable"] = meter_error or energy_why or f"power meter '{meter.name}' recorded no energy"
        if row["device"].get("env", {}).get("emulated"):
            row["warnings"].append("the device is emulated: latency and energy figures mean nothing")

        if ds is not None:
            say(f"accuracy on {len(ds)} images")
            row["accuracy"] = evaluate(runner, ds, batch)
        if profile_runs > 0:  # last: the profiler's overhead never touches the figures above
            say(f"per-layer profile over {profile_runs} calls")
            row["profile"] = _layer_profile(runner, native, profile_runs)
    if meta.preprocessing.source == SOURCE_DEFAULT:
        row["warnings"].append(
            f"no recorded preprocessing: assumed {meta.preprocessing.describe()}; "
            "pass --mean/--std if the model was trained otherwise"
        )
    unstable = stats.unstable_reasons(row["latency_ms"], row["iterations"], row["conditions"], row["repeats"])
    row.update(status=schema.STATUS_UNSTABLE if unstable else schema.STATUS_OK, reason="; ".join(unstable) or None)
    p50 = row["latency_ms"]["p50"]
    say(
        f"{row['status']}"
        + (f" ({row['reason']})" if unstable else "")
        + f": p50 {p50:.3f} ms, CoV {100 * (row['latency_ms'].get('cov') or 0):.1f} %, {row['throughput_ips']:.1f} images/s"
    )
