"""``bench`` and ``compile --target tensorrt`` run on a device over SSH.

Device-side contract: ``<venv>/bin/python -m mdnet_deploy bench --device K
--model M [--model M ...] [--eval E.npz] --json OUT [pass-through ...]``
writes a JSON list of result rows and exits 0, or 7 when some row failed
(the JSON still written). Its stderr is progress and is streamed here.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..artifact import sidecar_path
from ..errors import BenchFailedError, InputError, UnavailableError
from ..fsutil import atomic_output, atomic_write_bytes
from .session import Progress, Session
from .target import DeviceTarget
from .wheel import build_wheel
from .workspace import DEFAULT_REMOTE_ROOT, Workspace, open_workspace, reject_reserved

BENCH_RESERVED = ("--model", "-m", "--eval", "--json", "--device", "--host", "--inventory", "--identity", "--setup")
COMPILE_RESERVED = ("--target", "-o", "--output")

SessionFactory = Callable[..., Session]


@dataclass(frozen=True)
class RemoteOptions:
    """How to reach a device and run a job there: one set for bench, engine builds and checks.

    The functions below take ``options=RemoteOptions(...)`` and/or the same
    fields as keywords (keywords win), so a caller names only what it changes.
    """

    setup: bool = False
    identity: str | os.PathLike[str] | None = None
    accept_new_host_key: bool = False
    keep_remote: bool = False
    timeout: float = 3600.0
    known_hosts: str | os.PathLike[str] | None = None
    remote_root: str = DEFAULT_REMOTE_ROOT
    remote_python: str = "python3"
    extra_packages: Sequence[str] = ()
    connect_timeout: float = 15.0
    io_timeout: float = 60.0
    setup_timeout: float = 1800.0
    wheel: str | os.PathLike[str] | None = None
    session_factory: SessionFactory = Session

    @classmethod
    def of(cls, options: RemoteOptions | None = None, **overrides: Any) -> RemoteOptions:
        base = options or cls()
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"unknown remote option(s): {', '.join(unknown)}")
        return replace(base, **overrides)


def _noop(_: str) -> None:
    pass


def _check_files(paths: Sequence[str | os.PathLike[str]], what: str) -> list[Path]:
    out = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise InputError(f"{what} {path} does not exist or is not a file; check the path")
        out.append(path)
    return out


def _device_cli(python: str, wheel: str, *args: str) -> list[str]:
    """``mdnet-deploy ARGS`` on the device as an argument list (quoted as a whole later).

    ``env`` puts the uploaded wheel first on the path, so the device runs the
    workstation's code even when the venv holds an older install.
    """
    return ["env", f"PYTHONPATH={wheel}", "PYTHONUNBUFFERED=1", python, "-m", "mdnet_deploy", *args]


def bench_argv(
    python: str,
    wheel: str,
    device: str,
    models: Sequence[str],
    eval_npz: str | None,
    json_out: str,
    extra: Sequence[str],
) -> list[str]:
    """The device-side bench command (:func:`_device_cli`)."""
    argv = _device_cli(python, wheel, "bench", "--device", device)
    for m in models:
        argv += ["--model", m]
    if eval_npz is not None:
        argv += ["--eval", eval_npz]
    return argv + ["--json", json_out, *extra]


def compile_argv(python: str, wheel: str, onnx: str, engine: str, extra: Sequence[str]) -> list[str]:
    """The device-side TensorRT engine build (:func:`_device_cli`)."""
    return _device_cli(python, wheel, "compile", "--target", "tensorrt", onnx, "-o", engine, *extra)


class _Run:
    """Shared steps of a remote job: wheel, connection, work folder, venv."""

    def __init__(self, target: DeviceTarget, options: RemoteOptions, progress: Progress | None) -> None:
        if options.identity:
            target = target.with_(identity=str(Path(options.identity).expanduser()))
        self.target = target
        self.options = options
        self.progress = progress or _noop
        self._make = lambda: options.session_factory(
            target,
            accept_new_host_key=options.accept_new_host_key,
            known_hosts=options.known_hosts,
            connect_timeout=options.connect_timeout,
            io_timeout=options.io_timeout,
        ).connect()

    def connect(self) -> Session:
        self.progress(f"connecting to {self.target.address}")
        return self._make()

    def prepare(self, ws: Workspace, wheel: Path, payload: Sequence[Path], extra_packages: Sequence[str]) -> str:
        o = self.options
        ws.check_space([wheel, *payload])
        wheel_remote = ws.upload(wheel, wheel.name)
        if o.setup:
            ws.setup_venv(self.target.device, o.remote_python, wheel_remote, extra_packages, o.setup_timeout)
        elif not ws.info.get("venv_exists"):
            raise InputError(
                f"{self.target.label}: no mdnet-deploy venv on the device ({ws.info['venv']}); re-run with --setup once"
            )
        return wheel_remote


def run_remote_bench(
    target: DeviceTarget,
    models: Sequence[str | os.PathLike[str]],
    eval_npz: str | os.PathLike[str] | None = None,
    bench_args: Sequence[str] = (),
    options: RemoteOptions | None = None,
    *,
    progress: Progress | None = None,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """Bench ``models`` on one device; return its result rows (bench schema).

    Rows whose ``model.path`` named a remote copy are mapped back to the
    local path; each row gains ``remote`` (target, machine, emulated). When
    the device bench exits 7 the rows (some failed) are returned as they are;
    any other failure raises one of the :mod:`mdnet_deploy.errors` classes
    after the remote work folder and local temporary files are removed.
    """
    if not models:
        raise InputError("give at least one --model to bench on the device")
    model_paths = _check_files(models, "model")
    eval_path = _check_files([eval_npz], "evaluation set")[0] if eval_npz is not None else None
    if eval_path is not None and eval_path.suffix.lower() != ".npz":
        raise InputError(f"evaluation set {eval_path} must be a packed .npz (make one with mdnet-deploy pack-eval)")
    extra = reject_reserved(bench_args, BENCH_RESERVED, "bench options")
    opts = RemoteOptions.of(options, **overrides)
    job = _Run(target, opts, progress)
    sidecars = [sidecar_path(m) for m in model_paths if sidecar_path(m).is_file()]
    payload = [*model_paths, *sidecars, *([eval_path] if eval_path else [])]
    with _device_workspace(job, f"mdnet-venv-{job.target.device}") as (tmp, wheel_path, session, ws):
        wheel_remote = job.prepare(ws, wheel_path, payload, opts.extra_packages)
        remote_models: list[str] = []
        for i, m in enumerate(model_paths):
            # One folder per model: two artifacts may share a file name.
            ws.mkdir(f"m{i}")
            remote_models.append(ws.upload(m, f"m{i}", m.name))
            if sidecar_path(m).is_file():
                ws.upload(sidecar_path(m), f"m{i}", sidecar_path(m).name)
        remote_eval = ws.upload(eval_path, eval_path.name) if eval_path else None
        json_remote = ws.remote_path("results.json")
        argv = bench_argv(
            ws.venv_python, wheel_remote, job.target.device, remote_models, remote_eval, json_remote, extra
        )
        job.progress(f"running bench on {job.target.label}")
        # In its own process group: Ctrl-C, SIGTERM or the time-out stop the device-side bench too.
        res = session.run(
            argv, timeout=opts.timeout, on_stderr=job.progress, what="the remote bench", group=opts.remote_python
        )
        if res.exit_status not in (0, BenchFailedError.exit_code):
            raise BenchFailedError(
                f"{job.target.label}: bench on the device failed (exit {res.exit_status}): {_hint(res.last_error)}"
            )
        local_json = tmp / "results.json"
        try:
            ws.download(json_remote, local_json)
            rows = json.loads(local_json.read_text(encoding="utf-8"))
        except (UnavailableError, ValueError) as exc:
            raise BenchFailedError(
                f"{job.target.label}: the device bench exited {res.exit_status} without a readable JSON ({exc}); "
                "re-run with --keep-remote to inspect the work folder"
            ) from None
        if not isinstance(rows, list):
            raise BenchFailedError(
                f"{job.target.label}: the device bench wrote {type(rows).__name__}, not a list of rows"
            )
        back = {remote: str(local) for remote, local in zip(remote_models, model_paths)}
        return [_annotate(row, back, job.target, ws.info) for row in rows]


def _hint(message: str) -> str:
    if "No module named" in message:
        return f"{message} (the device venv lacks a dependency: re-run with --setup)"
    return message


def _annotate(row: Any, back: dict[str, str], target: DeviceTarget, info: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(row, dict):
        return {"status": "failed", "reason": f"device returned a non-object row: {row!r}"}
    model = row.get("model")
    if isinstance(model, dict) and model.get("path") in back:
        model["path"] = back[model["path"]]
    row["remote"] = {
        "target": target.label,
        "address": target.address,
        "machine": info.get("machine"),
        "python": ".".join(map(str, info.get("python", []))),
        "emulated": bool(info.get("emulated")),
    }
    device = row.get("device")
    if info.get("emulated") and isinstance(device, dict):
        # Timings under qemu mean nothing: say so wherever the row is shown.
        device["emulated"] = True
        name = str(device.get("name") or target.label)
        if "emulated" not in name:
            device["name"] = f"{name} (emulated)"
    return row


def build_remote_engine(
    target: DeviceTarget,
    onnx: str | os.PathLike[str],
    output: str | os.PathLike[str],
    compile_args: Sequence[str] = (),
    options: RemoteOptions | None = None,
    *,
    progress: Progress | None = None,
    **overrides: Any,
) -> Path:
    """Build a TensorRT engine from ``onnx`` on a Jetson; fetch it to ``output``.

    Engines are specific to the GPU and TensorRT version, so they are built
    where they will run. The engine and its sidecar metadata are written
    atomically: a failed build leaves no ``output`` behind.
    """
    if target.device != "jetson":
        raise InputError(
            f"{target.label}: TensorRT engines are built on a Jetson; set --device jetson (or mdnet_device)"
        )
    onnx_path = _check_files([onnx], "ONNX model")[0]
    output = Path(output)
    extra = reject_reserved(compile_args, COMPILE_RESERVED, "compile options")
    opts = RemoteOptions.of(options, **overrides)
    job = _Run(target, opts, progress)
    side = sidecar_path(onnx_path)
    payload = [onnx_path, *([side] if side.is_file() else [])]
    with _device_workspace(job, "mdnet-venv-jetson") as (tmp, wheel_path, session, ws):
        wheel_remote = job.prepare(ws, wheel_path, payload, ())
        remote_onnx = ws.upload(onnx_path, onnx_path.name)
        if side.is_file():
            ws.upload(side, side.name)
        remote_engine = ws.remote_path(output.name)
        argv = compile_argv(ws.venv_python, wheel_remote, remote_onnx, remote_engine, extra)
        job.progress(f"building the TensorRT engine on {job.target.label}")
        res = session.run(
            argv, timeout=opts.timeout, on_stderr=job.progress, what="the remote engine build", group=opts.remote_python
        )
        if res.exit_status != 0:
            raise UnavailableError(
                f"{job.target.label}: the TensorRT engine build failed on the device (exit {res.exit_status}): "
                f"{_hint(res.last_error)}"
            )
        # The sidecar first (into our temp folder): the engine is renamed
        # into place only once everything it needs has arrived.
        side_tmp: Path | None = tmp / "engine.json"
        try:
            ws.download(remote_engine + ".json", tmp / "engine.json")
        except UnavailableError:
            side_tmp = None  # the device compile wrote no metadata
        with atomic_output(output) as engine_tmp:
            ws.download(remote_engine, engine_tmp)
        if side_tmp is not None:
            atomic_write_bytes(sidecar_path(output), side_tmp.read_bytes())
        return output


# Imports each device needs, to check a venv without running a bench.
RUNTIME_IMPORTS = {"rpi": "ai_edge_litert.interpreter", "jetson": "tensorrt"}


def check_remote_device(
    target: DeviceTarget,
    options: RemoteOptions | None = None,
    *,
    progress: Progress | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Connect, optionally ``--setup``, and report what the device side has.

    Returns ``{"machine", "python", "emulated", "venv", "version",
    "runtime": {"module", "ok", "reason"}}``; for ``doctor --host`` and tests.
    """
    opts = RemoteOptions.of(options, **overrides)
    # A check leaves nothing behind on the device, whatever keep_remote says.
    opts = replace(opts, keep_remote=False)
    job = _Run(target, opts, progress)
    with _device_workspace(job, f"mdnet-venv-{job.target.device}") as (_, wheel_path, session, ws):
        wheel_remote = job.prepare(ws, wheel_path, [], opts.extra_packages)
        env = ["env", f"PYTHONPATH={wheel_remote}"]
        res = session.run(
            [*env, ws.venv_python, "-m", "mdnet_deploy", "--version"],
            timeout=opts.io_timeout,
            what="mdnet-deploy --version",
        )
        if res.exit_status != 0:
            raise UnavailableError(
                f"{job.target.label}: mdnet-deploy does not start on the device: {_hint(res.last_error)}"
            )
        module = RUNTIME_IMPORTS[job.target.device]
        rt = session.run(
            [*env, ws.venv_python, "-c", f"import {module}"], timeout=opts.io_timeout, what="runtime check"
        )
        return {
            "machine": ws.info.get("machine"),
            "python": ".".join(map(str, ws.info.get("python", []))),
            "emulated": bool(ws.info.get("emulated")),
            "venv": ws.info.get("venv"),
            "version": (res.stdout.strip().splitlines() or [""])[-1],
            "runtime": {
                "module": module,
                "ok": rt.exit_status == 0,
                "reason": None if rt.exit_status == 0 else rt.last_error,
            },
        }


@contextlib.contextmanager
def _device_workspace(job: _Run, venv_name: str) -> Iterator[tuple[Path, Path, Session, Workspace]]:
    """Local temp folder, the package wheel (built unless given), the SSH session and the remote work folder.

    Everything is removed on the way out, on both sides, whatever happens inside.
    """
    o = job.options
    with tempfile.TemporaryDirectory(prefix="mdnet-remote-") as tmp:
        wheel_path = Path(o.wheel) if o.wheel else build_wheel(tmp)
        with job.connect() as session, open_workspace(
            session,
            python=o.remote_python,
            root=o.remote_root,
            venv_name=venv_name,
            keep_remote=o.keep_remote,
            timeout=o.io_timeout,
            progress=job.progress,
            reconnect=job._make,
        ) as ws:
            yield Path(tmp), wheel_path, session, ws
