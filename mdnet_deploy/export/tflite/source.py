"""What ``compile --target tflite`` converts: the checkpoint, its provenance, and quantize's choices.

The source is a checkpoint (``.pth``) or an artifact exported from one (the
float ``model.onnx`` or quantize's ``model.int8.onnx``). An artifact is only
a pointer: its metadata records the checkpoint's path and sha256, and we
convert from that checkpoint, after checking it is still the same file.

Quantize's choices (float-fallback modules, calibration images) come from
its report, or from the int8 ONNX's own metadata, so that the ONNX and the
TFLite INT8 models agree.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...artifact import ArtifactMeta, format_of, read_meta
from ...errors import ArtifactError, CheckpointError, InputError
from ...fsutil import sha256_file

CHECKPOINT_SUFFIXES = (".pth", ".pt")


@dataclass
class QuantPlan:
    """Quantize's decisions for one model, as far as the TFLite conversion needs them."""

    float_modules: list[str] = field(default_factory=list)
    unmapped_nodes: list[str] = field(default_factory=list)  # float ONNX nodes with no module path
    calibration: dict[str, Any] | None = None  # source/count/seed/sha256/method as quantize recorded them
    origin: str | None = None  # the report or artifact they were read from

    @property
    def method(self) -> str | None:
        cal = self.calibration or {}
        value = cal.get("method") or cal.get("calibration_method")
        return str(value).lower() if value else None


@dataclass
class Source:
    checkpoint: Path
    given: Path  # what the user passed (checkpoint or artifact): the parent
    meta: ArtifactMeta | None  # the artifact's metadata, when an artifact was given
    plan: QuantPlan | None


def resolve_source(
    source: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str] | None = None,
    quant_report: str | os.PathLike[str] | None = None,
) -> Source:
    """Find the checkpoint behind ``source`` and quantize's plan for it."""
    given = Path(source)
    if not given.exists():
        raise InputError(
            f"{given} does not exist; give a checkpoint (.pth) or an artifact from 'mdnet-deploy export' / 'quantize'"
        )
    if given.is_dir():
        raise InputError(f"{given} is a folder; give the checkpoint (.pth) or the model.onnx inside it")
    meta = None
    if given.suffix.lower() in CHECKPOINT_SUFFIXES:
        ckpt = given
        if checkpoint is not None and Path(checkpoint).resolve() != given.resolve():
            raise InputError(f"--checkpoint is only for artifacts; {given} is itself a checkpoint")
    else:
        kind = format_of(given)
        if kind != "onnx":
            raise InputError(
                f"{given} is a {kind} file; compile from a checkpoint (.pth) or an ONNX model from 'mdnet-deploy export'"
            )
        meta = read_meta(given)
        assert meta is not None  # required=True raises instead
        ckpt = recorded_checkpoint(given, meta, checkpoint)
    plan = read_plan(quant_report) if quant_report is not None else plan_from_meta(meta, given)
    return Source(checkpoint=ckpt, given=given, meta=meta, plan=plan)


def recorded_checkpoint(artifact: Path, meta: ArtifactMeta, override: str | os.PathLike[str] | None) -> Path:
    """The checkpoint the artifact was exported from, verified by sha256."""
    rec = meta.checkpoint or {}
    want = rec.get("sha256")
    if not want:
        raise ArtifactError(f"{artifact}'s metadata records no checkpoint; compile from the checkpoint (.pth) itself")
    path = Path(override) if override is not None else Path(str(rec.get("path", "")))
    if override is None and not path.is_file():
        raise CheckpointError(
            f"{artifact} was exported from {rec.get('path')}, which has moved or been deleted; "
            "pass the checkpoint with --checkpoint PATH (it must be the same file, sha256 checked)"
        )
    if not path.is_file():
        raise InputError(f"--checkpoint {path} does not exist; give the .pth that {artifact.name} was exported from")
    got = sha256_file(path)
    if got != want:
        where = "--checkpoint " + str(path) if override is not None else str(path)
        raise CheckpointError(
            f"{where} is not the checkpoint {artifact.name} was exported from (sha256 {got[:12]}... vs recorded {want[:12]}...): "
            "it changed since export; pass the original with --checkpoint PATH, or re-export and re-quantize from the new one"
        )
    return path


def plan_from_meta(meta: ArtifactMeta | None, given: Path) -> QuantPlan | None:
    """Quantize's plan when the artifact is its int8 ONNX (metadata ``quantization`` / sibling report)."""
    if meta is None:
        return None
    if meta.quantization:
        return _plan(meta.quantization, meta.calibration, str(given))
    report = given.with_name(given.name[: -len(given.suffix)] + ".report.json")
    if meta.precision == "int8" and report.is_file():
        return read_plan(report)
    return None


def read_plan(path: str | os.PathLike[str]) -> QuantPlan:
    """Read quantize's report (or any JSON holding ``quantization`` / ``float_modules``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"--quant-report {path} does not exist; give the model.int8.report.json that 'mdnet-deploy quantize' wrote"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            f"--quant-report {path} is not readable JSON ({exc}); give the report 'mdnet-deploy quantize' wrote"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"--quant-report {path} is not a quantize report (expected a JSON object)")
    quant = _fallback_section(data)
    calibration = data.get("calibration") if isinstance(data.get("calibration"), dict) else quant.get("calibration")
    if quant is data and "float_modules" not in data and "float_nodes" not in data:
        raise InputError(
            f"--quant-report {path} lists no float_modules or float_nodes; give the report 'mdnet-deploy quantize' wrote"
        )
    return _plan(quant, calibration, str(path))


def _fallback_section(data: dict[str, Any]) -> dict[str, Any]:
    """Where the float-fallback lists live: quantize's report keeps them under ``float_fallback``
    (``modules``/``nodes``), an artifact's metadata under ``quantization`` (``float_modules``/``float_nodes``)."""
    fallback = data.get("float_fallback")
    if isinstance(fallback, dict):
        return {
            "float_modules": fallback.get("modules") or [],
            "float_nodes": fallback.get("nodes") or [],
            "method": (data.get("calibration") or {}).get("method"),
        }
    if isinstance(data.get("quantization"), dict):
        return data["quantization"]
    return data


def _plan(quant: dict[str, Any], calibration: dict[str, Any] | None, origin: str) -> QuantPlan:
    modules = [str(m) for m in quant.get("float_modules") or [] if str(m)]
    unmapped = []
    if not modules:  # module paths are the better source; nodes only when there are none
        for node in quant.get("float_nodes") or []:
            name = str(node.get("node") if isinstance(node, dict) else node)
            path = onnx_node_module(name)
            # Only a Conv/Gemm node names its own (leaf) module; a MatMul or Mul inside
            # transform.attn would otherwise send the whole block to float.
            op = name.rstrip("/").rsplit("/", 1)[-1]
            if path and op.split("_")[0] in ("Conv", "Gemm", "ConvTranspose"):
                modules.append(path)
            else:
                unmapped.append(name)
    cal = dict(calibration) if calibration else None
    if cal is not None and "method" not in cal and quant.get("method"):
        cal["method"] = quant["method"]
    return QuantPlan(sorted(set(modules)), unmapped, cal, origin)


def onnx_node_module(node_name: str) -> str:
    """Torch module path of a TorchScript-exported ONNX node (``/stage2/stage2.1/residual/residual.0/Conv``)."""
    scopes = [s for s in node_name.split("/") if s]
    parts: list[str] = []
    for scope in scopes[:-1]:  # the last part is the op's own name
        # A Sequential child is scoped "<parent attribute>.<index>".
        if parts and scope.startswith(parts[-1] + "."):
            parts.append(scope[len(parts[-1]) + 1 :])
        else:
            parts.append(scope)
    return ".".join(parts)


def check_modules(plan: QuantPlan, model: Any) -> None:
    """Every float module must exist in the model; a typo would silently quantize it."""
    names = {name for name, _ in model.named_modules()}
    unknown = [m for m in plan.float_modules if m not in names]
    if unknown:
        raise InputError(
            f"float-fallback modules {', '.join(unknown[:3])} (from {plan.origin}) are not in this model; "
            "was the report written for another checkpoint?"
        )
