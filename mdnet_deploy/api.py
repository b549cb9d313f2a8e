"""The Python API: the four steps of the command line, for notebooks and scripts.

    import mdnet_deploy as md
    onnx = md.export_onnx("mdnet.pth", "out")                  # checkpoint -> out/model.onnx
    int8 = md.quantize(onnx.path, "out/model.int8.onnx", calib="digits:train", eval="digits")
    tfl = md.compile_model(int8.path, "out/model.int8.tflite", target="tflite", precision="int8")
    rows = md.benchmark([onnx.path, int8.path, tfl.path], eval="digits", iterations=100)

Each function does what the command of the same name does, with the same
checks and outputs, and returns the library's result object instead of
printing it. Errors raise :class:`mdnet_deploy.errors.MdnetDeployError`
subclasses (``InputError``, ``UnavailableError``, ...). Nothing here prints.

Importing this module is cheap: torch, onnx and the runtimes are imported
by the call that needs them, so a device with the base install can use
:func:`benchmark` alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Union

from .progress import Say, Steps

if TYPE_CHECKING:  # the result types live with the heavy modules that make them
    from .calibration.pipeline import QuantizeResult
    from .export.onnx_export import ExportResult
    from .export.tflite.compile import TfliteResult

PathLike = Union[str, "os.PathLike[str]"]

Progress = Say  # news lines; quantize reports counted stages (Steps)

__all__ = ["benchmark", "compile_model", "export_onnx", "quantize"]


def export_onnx(
    checkpoint: PathLike,
    out_dir: PathLike = "out",
    *,
    data: Optional[str] = None,
    batch: Optional[int] = None,
    opset: int = 17,
    simplify: bool = True,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    labels: Optional[Sequence[str]] = None,
    num_classes: Optional[int] = None,
    trust_pickle: bool = False,
    progress: Optional[Progress] = None,
) -> ExportResult:
    """Export an MDNET checkpoint to ``out_dir/model.onnx`` and check it against PyTorch.

    ``data``: a data-set spec (``digits``, a CIFAR folder, an image folder,
    an ``.npz``) for a parity check on real images, as ``export --eval``.
    ``batch=None`` exports a dynamic batch. The result has ``path``,
    ``meta`` (the sidecar metadata) and ``checks`` (parity per input set).
    Needs the ``export`` extra.
    """
    from .export.onnx_export import export_onnx as _export

    return _export(
        checkpoint,
        out_dir,
        opset=opset,
        batch=batch,
        simplify=simplify,
        mean=mean,
        std=std,
        labels=labels,
        num_classes=num_classes,
        data=data,
        trust_pickle=trust_pickle,
        progress=progress,
    )


def quantize(
    onnx: PathLike,
    output: PathLike,
    *,
    calib: str,
    eval: Optional[str] = None,  # noqa: A002 - the CLI's name for it
    calib_size: int = 512,
    eval_size: Optional[int] = None,
    method: str = "minmax",
    max_drop: float = 0.5,
    target: str = "tensorrt",
    exclude: Sequence[str] = (),
    force: bool = False,
    progress: Optional[Steps] = None,
    on_warning: Optional[Callable[[str], None]] = None,
) -> QuantizeResult:
    """Calibrate and quantize an ONNX model to INT8 (QDQ), keeping sensitive layers in float.

    With ``eval`` the top-1 drop is held within ``max_drop`` points; the
    result's ``met`` says whether it was (``None``: not checked) and
    ``path`` is the model written (``*.over-budget.onnx`` when not met).
    Needs the ``export`` extra.
    """
    from .calibration.pipeline import quantize_model

    return quantize_model(
        Path(onnx),
        Path(output),
        calib,
        calib_size=calib_size,
        method=method,
        eval_spec=eval,
        max_drop=max_drop,
        exclude=exclude,
        target=target,
        force=force,
        progress=progress,
        on_warning=on_warning,
        eval_size=eval_size,
    )


def compile_model(
    source: PathLike,
    output: PathLike,
    *,
    target: str,
    precision: str,
    calib: Optional[str] = None,
    eval: Optional[str] = None,  # noqa: A002 - the CLI's name for it
    batch: Optional[Union[int, str]] = None,
    host: Optional[str] = None,
    force: bool = False,
    **options: Any,
) -> Union[TfliteResult, Path]:
    """Compile for a device: ``target="tflite"`` (LiteRT) or ``"tensorrt"`` (an engine).

    tflite returns the conversion result (``path``, ``checks``, ``accuracy``);
    extra ``options`` are :func:`mdnet_deploy.export.tflite.compile.convert_tflite`'s.
    tensorrt returns the engine's path; with ``host`` (``user@jetson`` or an
    ``~/.ssh/config`` alias) the engine is built on that device over SSH
    (``options`` then go to :func:`mdnet_deploy.remote.build_remote_engine`).
    """
    from .errors import InputError

    kind = str(target).lower()
    if kind == "tflite":
        from .export.tflite.compile import convert_tflite

        return convert_tflite(
            source, output, precision, calib=calib, eval_spec=eval, batch=int(batch or 1), force=force, **options
        )
    if kind != "tensorrt":
        raise InputError(f"target '{target}' is not known; use tflite or tensorrt")
    if host is not None:
        from .remote import build_remote_engine, parse_target

        extra = ["--precision", precision] + (["--batch", str(batch)] if batch is not None else [])
        return build_remote_engine(parse_target(host, "jetson"), source, output, extra, **options)
    from .export.tensorrt.build import build_engine

    build_engine(source, output, precision=precision, batch=batch or 1, force=force, **options)
    return Path(output)


def benchmark(
    models: Union[PathLike, Sequence[PathLike]],
    *,
    eval: Optional[str] = None,  # noqa: A002 - the CLI's name for it
    device: Optional[str] = None,
    runtime: Union[str, Sequence[str]] = "auto",
    iterations: Optional[int] = None,
    duration: Optional[float] = None,
    warmup: Union[int, str] = 50,
    batch: int = 1,
    threads: Optional[int] = None,
    power_meter: str = "auto",
    host: Optional[str] = None,
    progress: Optional[Progress] = None,
) -> List[Dict[str, Any]]:
    """Measure latency, throughput, accuracy (with ``eval``) and energy; one result row per model x runtime.

    Rows follow the JSON schema of ``bench --json`` (``status``,
    ``latency_ms``, ``throughput_ips``, ``accuracy``, ``energy``, ...); a
    failed row has ``status == "failed"`` and a ``reason`` instead of
    raising. ``device`` defaults to the detected kind. With ``host`` the
    models run on that device over SSH (``eval`` is packed into an ``.npz``
    for the device unless it is one already). :func:`mdnet_deploy.bench.results_table` renders rows.
    """
    paths = [models] if isinstance(models, (str, os.PathLike)) else list(models)
    if host is not None:
        from .remote.dispatch import bench_remote

        extra = ["--warmup", str(warmup), "--batch", str(batch), "--power-meter", power_meter]
        extra += ["--iterations", str(iterations)] if iterations is not None else []
        extra += ["--duration", str(duration)] if duration is not None else []
        return bench_remote(paths, eval, extra, host=host, device=device, progress=progress)
    from .bench import bench_models
    from .devices import detect_kind

    return bench_models(
        [Path(p) for p in paths],
        device=device or detect_kind(),
        runtime=runtime,
        eval_spec=eval,
        batch=batch,
        threads=threads,
        warmup=str(warmup),
        iterations=iterations,
        duration=duration,
        power_meter=power_meter,
        progress=progress,
    )
