"""Artifact metadata: what travels with every model file.

Each artifact ``X`` (``model.onnx``, ``model.int8.tflite``, ``model.engine``)
has a sidecar ``X.json`` holding an :class:`ArtifactMeta`. ONNX artifacts
also carry the same JSON in ``metadata_props["mdnet_deploy"]``. A user can
hand any one artifact to ``bench`` and it knows how to feed it.

This module imports only the standard library: the device side reads it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArtifactError
from .fsutil import atomic_write_text, sha256_file

SCHEMA_VERSION = 1

# CIFAR-100 training statistics (MDNET.md): the authors' normalisation.
CIFAR100_MEAN = (0.5070751592371323, 0.48654887331495095, 0.4409178433670343)
CIFAR100_STD = (0.2673342858792401, 0.2564384629170883, 0.27615047132568404)

FORMATS = {".onnx": "onnx", ".tflite": "tflite", ".engine": "engine", ".plan": "engine", ".pth": "pt", ".pt": "pt"}


@dataclass
class Preprocessing:
    """How raw RGB images become the model's float input."""

    size: tuple[int, int] = (32, 32)
    mean: tuple[float, float, float] = CIFAR100_MEAN
    std: tuple[float, float, float] = CIFAR100_STD
    scale: float = 1.0 / 255.0  # uint8 -> [0, 1] before mean/std

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocessing":
        return cls(
            size=tuple(d.get("size", (32, 32))),  # type: ignore[arg-type]
            mean=tuple(float(v) for v in d.get("mean", CIFAR100_MEAN)),  # type: ignore[arg-type]
            std=tuple(float(v) for v in d.get("std", CIFAR100_STD)),  # type: ignore[arg-type]
            scale=float(d.get("scale", 1.0 / 255.0)),
        )


@dataclass
class TensorSpec:
    """One model input or output as the runtime sees it."""

    name: str = "input"
    shape: list[int | str] = field(default_factory=lambda: ["batch", 3, 32, 32])
    layout: str = "NCHW"  # or NHWC (TFLite)
    dtype: str = "float32"  # or int8 / uint8 with quantization below
    # For integer I/O: real = (q - zero_point) * scale.
    scale: float | None = None
    zero_point: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TensorSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class ArtifactMeta:
    """Everything a later step needs to know about an artifact."""

    format: str  # onnx | tflite | engine | pt
    precision: str = "fp32"  # fp32 | fp16 | int8
    family: str = "mdnet"
    variant: str = "mdnet"
    num_classes: int = 100
    labels: list[str] | None = None
    input: TensorSpec = field(default_factory=TensorSpec)
    output: TensorSpec = field(default_factory=lambda: TensorSpec(name="logits", shape=["batch", 100], layout="NC"))
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    # Model hyper-parameters needed to rebuild the torch module (width, heads).
    model_config: dict[str, Any] = field(default_factory=dict)
    # Provenance: the direct parent and the original checkpoint.
    parent: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    quantization: dict[str, Any] | None = None
    verification: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    target: dict[str, Any] | None = None  # e.g. TensorRT version / GPU for engines
    created_by: str = "mdnet-deploy"
    schema: int = SCHEMA_VERSION

    # -- (de)serialisation -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["preprocessing"]["size"] = list(self.preprocessing.size)
        d["preprocessing"]["mean"] = list(self.preprocessing.mean)
        d["preprocessing"]["std"] = list(self.preprocessing.std)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ArtifactMeta":
        if not isinstance(d, dict) or "format" not in d:
            raise ArtifactError("artifact metadata is not an mdnet-deploy metadata object (no 'format' field)")
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["input"] = TensorSpec.from_dict(d.get("input", {}))
        kwargs["output"] = TensorSpec.from_dict(d.get("output", {"name": "logits", "layout": "NC"}))
        kwargs["preprocessing"] = Preprocessing.from_dict(d.get("preprocessing", {}))
        return cls(**kwargs)

    def derive(self, **changes: Any) -> "ArtifactMeta":
        """A copy for a child artifact; nested objects are copied, not shared."""
        child = ArtifactMeta.from_dict(json.loads(self.to_json()))
        for k, v in changes.items():
            setattr(child, k, v)
        return child


def sidecar_path(artifact: str | os.PathLike[str]) -> Path:
    p = Path(artifact)
    return p.with_name(p.name + ".json")


def format_of(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ArtifactError(
            f"{path}: unknown artifact type '{suffix or '(none)'}'; expected one of {', '.join(sorted(FORMATS))}"
        )
    return FORMATS[suffix]


def write_meta(artifact: str | os.PathLike[str], meta: ArtifactMeta) -> Path:
    """Write the sidecar atomically (after the artifact itself is in place)."""
    return atomic_write_text(sidecar_path(artifact), meta.to_json() + "\n")


def read_meta(artifact: str | os.PathLike[str], required: bool = True) -> ArtifactMeta | None:
    """Read an artifact's metadata from its sidecar, or from ONNX metadata_props.

    Returns None when there is none and ``required`` is False.
    """
    artifact = Path(artifact)
    side = sidecar_path(artifact)
    if side.exists():
        try:
            return ArtifactMeta.from_dict(json.loads(side.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
            raise ArtifactError(f"{side}: metadata is not valid JSON ({exc}); delete it and re-export the artifact") from None
    if artifact.suffix.lower() == ".onnx" and artifact.exists():
        embedded = _onnx_embedded_meta(artifact)
        if embedded is not None:
            return embedded
    if required:
        raise ArtifactError(
            f"{artifact}: no mdnet-deploy metadata (expected {side.name} beside it); "
            "re-export it with 'mdnet-deploy export' or pass the preprocessing options (--mean/--std)"
        )
    return None


def _onnx_embedded_meta(path: Path) -> ArtifactMeta | None:
    try:
        import onnx  # heavy, optional on the device side
    except ImportError:
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not our job to diagnose here; the runner will
        return None
    for prop in model.metadata_props:
        if prop.key == "mdnet_deploy":
            try:
                return ArtifactMeta.from_dict(json.loads(prop.value))
            except (json.JSONDecodeError, ArtifactError):
                return None
    return None


def file_ref(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A provenance reference: absolute path, sha256 and size."""
    p = Path(path)
    return {"path": str(p.resolve()), "sha256": sha256_file(p), "bytes": p.stat().st_size}


def host_tag() -> dict[str, str]:
    return {"host": platform.node(), "machine": platform.machine(), "python": platform.python_version()}
