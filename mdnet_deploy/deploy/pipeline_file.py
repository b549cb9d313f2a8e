"""``pipeline.yaml``: the deploy that ran (options, input hashes, tool versions), to repeat it with ``mdnet-deploy run``.

The format is small on purpose (README, "Deploy")::

    pipeline: 1                   # format version
    command: deploy
    checkpoint: /abs/ckpt.pth
    output: /abs/outdir
    options: {device: host, calib: digits:train, eval: digits:test, max_drop: 0.5, objective: latency, ...}
    inputs:                       # sha256 of what each input gave when the pipeline ran
      checkpoint: {ref: /abs/ckpt.pth, sha256: ...}      # the file's bytes
      calib: {ref: digits:train, sha256: ...}            # the images and labels the spec loads
      eval: {ref: digits:test, sha256: ...}
      inventory: {ref: /abs/devices.yaml, sha256: ...}   # only with --inventory
    tools: {mdnet-deploy: ..., torch: ..., onnxruntime: ..., ...}
    created: 2026-01-01T00:00:00+00:00

It is read with ``yaml.safe_load`` and checked key by key: a pipeline file
is data, never code. Options that are security decisions
(``--accept-new-host-key``) and ``--force`` are not recorded: a repeat asks
for them again.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..fsutil import atomic_write_text, sha256_file

FORMAT_VERSION = 1
TOOLS = (
    "mdnet-deploy",
    "numpy",
    "torch",
    "onnx",
    "onnxruntime",
    "onnxsim",
    "litert-torch",
    "ai-edge-litert",
    "tensorrt",
    "paramiko",
)
#: DeployConfig fields a pipeline records (and a repeat may set)
RECORDED = (
    "device",
    "host",
    "inventory",
    "calib",
    "calib_size",
    "eval_spec",
    "eval_size",
    "max_drop",
    "objective",
    "mean",
    "std",
    "candidates",
    "judge",
    "warmup",
    "iterations",
    "threads",
    "power_meter",
    "trust_pickle",
    "identity",
    "setup",
    "known_hosts",
    "remote_dir",
    "max_parallel",
    "remote_timeout",
)
_YAML_NAMES = {"eval_spec": "eval"}  # the CLI's name where it differs from the field


def tool_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in TOOLS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def data_sha256(spec: str, split: str) -> str:
    """sha256 over the images and labels ``spec`` loads: works alike for digits, CIFAR folders, image folders, .npz."""
    from ..data import load_dataset

    return load_dataset(spec, split=split).digest()


def input_hashes(config: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {
        "checkpoint": {"ref": str(Path(config.checkpoint).resolve()), "sha256": sha256_file(config.checkpoint)},
        "calib": {"ref": config.calib, "sha256": data_sha256(config.calib, "train")},
        "eval": {"ref": config.eval_spec, "sha256": data_sha256(config.eval_spec, "test")},
    }
    if config.inventory:
        out["inventory"] = {"ref": str(Path(config.inventory).resolve()), "sha256": sha256_file(config.inventory)}
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def pipeline_dict(config: Any, hashes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    options = {_YAML_NAMES.get(k, k): _plain(getattr(config, k)) for k in RECORDED}
    for key in ("inventory", "identity", "known_hosts"):
        if options.get(key):
            options[key] = str(Path(options[key]).expanduser().resolve())
    return {
        "pipeline": FORMAT_VERSION,
        "command": "deploy",
        "checkpoint": str(Path(config.checkpoint).resolve()),
        "output": str(Path(config.output).resolve()),
        "options": options,
        "inputs": hashes,
        "tools": tool_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_pipeline(path: str | os.PathLike[str], data: dict[str, Any]) -> Path:
    import yaml

    header = "# mdnet-deploy pipeline: `mdnet-deploy run pipeline.yaml` repeats this deploy (README, Deploy)\n"
    return atomic_write_text(path, header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


@dataclass
class LoadedPipeline:
    path: Path
    checkpoint: Path
    output: Path
    options: dict[str, Any]  # DeployConfig field -> value
    inputs: dict[str, dict[str, Any]]
    tools: dict[str, str]


def read_pipeline(path: str | os.PathLike[str]) -> LoadedPipeline:
    """Parse and check a pipeline file; InputError names the first thing wrong and how to fix it."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"pipeline {p} does not exist; give the pipeline.yaml that 'mdnet-deploy deploy' wrote")
    try:
        data = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"pipeline {p} is not valid YAML ({first}); give the pipeline.yaml that 'mdnet-deploy deploy' wrote"
        ) from None
    if not isinstance(data, dict) or "pipeline" not in data:
        raise InputError(f"{p} is not an mdnet-deploy pipeline (no 'pipeline:' version key)")
    if data.get("pipeline") != FORMAT_VERSION:
        raise InputError(
            f"{p} has pipeline format {data.get('pipeline')!r}; this mdnet-deploy reads format {FORMAT_VERSION}"
        )
    if data.get("command") != "deploy":
        raise InputError(f"{p}: command {data.get('command')!r} is not supported; only 'deploy' pipelines can be run")
    for key in ("checkpoint", "output"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise InputError(f"{p}: '{key}' must be a path")
    options = data.get("options")
    if not isinstance(options, dict):
        raise InputError(f"{p}: 'options' must be a mapping of deploy options")
    reverse = {v: k for k, v in _YAML_NAMES.items()}
    known = set(RECORDED)
    parsed: dict[str, Any] = {}
    for key, value in options.items():
        field_name = reverse.get(key, key)
        if field_name not in known:
            raise InputError(
                f"{p}: unknown option '{key}'; allowed: {', '.join(_YAML_NAMES.get(k, k) for k in RECORDED)}"
            )
        if isinstance(value, (dict,)):
            raise InputError(f"{p}: option '{key}' must be a plain value or list, not a mapping")
        parsed[field_name] = tuple(value) if isinstance(value, list) else value
    for required in ("device", "calib", "eval_spec"):
        if not parsed.get(required):
            raise InputError(f"{p}: option '{_YAML_NAMES.get(required, required)}' is missing")
    inputs = data.get("inputs") or {}
    tools = data.get("tools") or {}
    if not isinstance(inputs, dict) or not all(isinstance(v, dict) for v in inputs.values()):
        raise InputError(f"{p}: 'inputs' must map names to {{ref, sha256}}")
    if not isinstance(tools, dict):
        raise InputError(f"{p}: 'tools' must map tool names to versions")
    return LoadedPipeline(
        p, Path(data["checkpoint"]), Path(data["output"]), parsed, inputs, {str(k): str(v) for k, v in tools.items()}
    )


def compare_inputs(recorded: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]) -> list[str]:
    """One line per input: unchanged, changed (old -> new sha256), new or no longer given."""
    lines = []
    for name in list(dict.fromkeys([*recorded, *current])):
        old, new = recorded.get(name), current.get(name)
        if old is None:
            lines.append(f"{name}: new input {new['ref']} (not in the pipeline)")  # type: ignore[index]
        elif new is None:
            lines.append(f"{name}: no longer given (was {old.get('ref')})")
        elif old.get("sha256") == new.get("sha256"):
            lines.append(f"{name}: unchanged ({new['ref']})")
        else:
            lines.append(
                f"{name}: CHANGED ({new['ref']}: sha256 {str(old.get('sha256'))[:12]}… -> {str(new['sha256'])[:12]}…)"
            )
    return lines


def compare_tools(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    return [
        f"{name}: {recorded.get(name, '-')} -> {current.get(name, '-')}"
        for name in sorted(set(recorded) | set(current))
        if recorded.get(name) != current.get(name)
    ]


def config_fields(cls: Any) -> set[str]:
    return {f.name for f in fields(cls)}
