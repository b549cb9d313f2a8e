"""Artifact metadata: what travels with every model file.

Each artifact ``X`` (``model.onnx``, ``model.int8.tflite``, ``model.engine``)
has a sidecar ``X.json`` holding an :class:`ArtifactMeta`. ONNX artifacts
also carry the same JSON in ``metadata_props["mdnet_deploy"]``. A user can
hand any one artifact to ``bench`` and it knows how to feed it.

Tamper evidence: the sidecar's ``artifact`` block records the artifact's
sha256 and size and a sha256 of the sidecar's own content (``meta_sha256``),
and :func:`read_meta` checks all three on every read. Metadata embedded in
the file (ONNX ``metadata_props``, the TFLite metadata table) is used when
the sidecar is missing and must agree with the sidecar when both exist.

Write order (:func:`publish`): the new sidecar goes to ``X.json.next``, then
the artifact is renamed into place, then ``X.json.next`` becomes ``X.json``.
A crash before the artifact's rename leaves the old pair (``X.json`` still
matches the old ``X``); a crash after it leaves the new artifact with its
sidecar in ``X.json.next``, which :func:`read_meta` takes because its hash
matches. So a reader sees the old pair or the new pair, never a mix.

This module imports only the standard library: the device side reads it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArtifactError
from .fsutil import atomic_write_text, ensure_writable_dir, sha256_file

SCHEMA_VERSION = 1

# CIFAR-100 training statistics (MDNET.md): the authors' normalisation.
CIFAR100_MEAN = (0.5070751592371323, 0.48654887331495095, 0.4409178433670343)
CIFAR100_STD = (0.2673342858792401, 0.2564384629170883, 0.27615047132568404)

#: Where an artifact's mean/std came from (``Preprocessing.source``).
SOURCE_GIVEN = "given"  # --mean/--std on the command line
SOURCE_CHECKPOINT = "checkpoint"  # stored in the checkpoint file beside the weights
SOURCE_DEFAULT = "default: CIFAR-100"  # nobody said: the authors' statistics were assumed

#: Name of the pending sidecar during :func:`publish` (see the module docstring).
PENDING_SUFFIX = ".next"

FORMATS = {".onnx": "onnx", ".tflite": "tflite", ".engine": "engine", ".plan": "engine", ".pth": "pt", ".pt": "pt"}


@dataclass
class Preprocessing:
    """How raw RGB images become the model's float input."""

    size: tuple[int, int] = (32, 32)
    mean: tuple[float, float, float] = CIFAR100_MEAN
    std: tuple[float, float, float] = CIFAR100_STD
    scale: float = 1.0 / 255.0  # uint8 -> [0, 1] before mean/std
    # given | checkpoint | default: CIFAR-100 (None: inferred from the values below).
    source: str | None = None

    def __post_init__(self) -> None:
        if self.source is None:
            same = _close(self.mean, CIFAR100_MEAN) and _close(self.std, CIFAR100_STD)
            self.source = SOURCE_DEFAULT if same else SOURCE_GIVEN

    def describe(self) -> str:
        """``mean 0.5,0.5,0.5 std 0.5,0.5,0.5 (given)``: one phrase for command output."""
        return f"mean {_csv(self.mean)} std {_csv(self.std)} ({self.source})"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        _want(isinstance(d, dict), "preprocessing", "an object", d)
        size = d.get("size", (32, 32))
        _want(
            isinstance(size, (list, tuple)) and len(size) == 2 and all(_is_int(v) and v > 0 for v in size),
            "preprocessing.size",
            "two positive integers [H, W]",
            size,
        )
        mean = _rgb(d.get("mean", CIFAR100_MEAN), "preprocessing.mean")
        std = _rgb(d.get("std", CIFAR100_STD), "preprocessing.std")
        _want(all(v > 0 for v in std), "preprocessing.std", "three positive numbers", list(std))
        scale = d.get("scale", 1.0 / 255.0)
        _want(_is_number(scale) and scale > 0, "preprocessing.scale", "a positive finite number", scale)
        source = d.get("source")
        _want(source is None or isinstance(source, str), "preprocessing.source", "a string", source)
        return cls(size=(int(size[0]), int(size[1])), mean=mean, std=std, scale=float(scale), source=source)


def check_mean_std(mean: Any, std: Any, what: str = "--mean/--std") -> None:
    """InputError unless mean and std are 3 finite numbers each and std > 0 (NaN would poison every figure)."""
    from .errors import InputError

    for name, values in (("--mean", mean), ("--std", std)):
        vals = list(values)
        if len(vals) != 3 or not all(_is_number(v) for v in vals):
            raise InputError(
                f"{name} {_csv(vals)} is not valid; give 3 finite comma-separated numbers (R,G,B) for {what}"
            )
    if any(float(v) <= 0 for v in std):
        raise InputError(f"--std {_csv(std)} must be positive (one value per RGB channel)")


def _close(a: Any, b: Any) -> bool:
    try:
        return len(a) == len(b) and all(abs(float(x) - float(y)) <= 1e-9 for x, y in zip(a, b))
    except (TypeError, ValueError):
        return False


def _csv(values: Any) -> str:
    return ",".join(f"{float(v):g}" if _is_number(v) or isinstance(v, float) else str(v) for v in values)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _want(ok: bool, field_name: str, expected: str, got: Any) -> None:
    """ArtifactError naming the field when a metadata value has the wrong type."""
    if not ok:
        shown = json.dumps(got, default=str)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ArtifactError(f"metadata field '{field_name}' must be {expected}, not {shown}")


def _rgb(values: Any, field_name: str) -> tuple[float, float, float]:
    ok = isinstance(values, (list, tuple)) and len(values) == 3 and all(_is_number(v) for v in values)
    _want(ok, field_name, "three finite numbers", values)
    return (float(values[0]), float(values[1]), float(values[2]))


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
    def from_dict(cls, d: dict[str, Any], where: str = "input") -> TensorSpec:
        _want(isinstance(d, dict), where, "an object", d)
        for key in ("name", "layout", "dtype"):
            if key in d:
                _want(isinstance(d[key], str), f"{where}.{key}", "a string", d[key])
        if "shape" in d:
            shape = d["shape"]
            _want(
                isinstance(shape, list) and all(_is_int(v) or isinstance(v, str) for v in shape),
                f"{where}.shape",
                "a list of integers and names",
                shape,
            )
        if d.get("scale") is not None:
            _want(_is_number(d["scale"]), f"{where}.scale", "a finite number or null", d["scale"])
        if d.get("zero_point") is not None:
            _want(_is_int(d["zero_point"]), f"{where}.zero_point", "an integer or null", d["zero_point"])
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
    # Sidecar only (an embedded copy cannot hash its own file): {"sha256", "bytes", "meta_sha256"}.
    artifact: dict[str, Any] | None = None

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
    def from_dict(cls, d: dict[str, Any]) -> ArtifactMeta:
        """Build from JSON; a missing field takes its default, a wrongly typed one raises ArtifactError."""
        if not isinstance(d, dict) or "format" not in d:
            raise ArtifactError("artifact metadata is not an mdnet-deploy metadata object (no 'format' field)")
        for name, kind in _FIELD_TYPES.items():
            if name in d and d[name] is not None or name in d and name not in _NULLABLE:
                _check_type(name, d[name], kind)
        labels = d.get("labels")
        if labels is not None:
            _want(
                isinstance(labels, list) and all(isinstance(v, str) for v in labels),
                "labels",
                "a list of strings",
                labels,
            )
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["input"] = TensorSpec.from_dict(d.get("input", {}), "input")
        kwargs["output"] = TensorSpec.from_dict(d.get("output", {"name": "logits", "layout": "NC"}), "output")
        kwargs["preprocessing"] = Preprocessing.from_dict(d.get("preprocessing", {}))
        return cls(**kwargs)

    def derive(self, **changes: Any) -> ArtifactMeta:
        """A copy for a child artifact; nested objects are copied, not shared."""
        child = ArtifactMeta.from_dict(json.loads(self.to_json()))
        child.artifact = None  # the parent's file hash never describes the child
        for k, v in changes.items():
            setattr(child, k, v)
        return child


_FIELD_TYPES: dict[str, str] = {
    "format": "str",
    "precision": "str",
    "family": "str",
    "variant": "str",
    "num_classes": "count",
    "model_config": "dict",
    "parent": "dict",
    "checkpoint": "dict",
    "calibration": "dict",
    "quantization": "dict",
    "verification": "dict",
    "tools": "dict",
    "target": "dict",
    "created_by": "str",
    "schema": "count",
    "artifact": "dict",
}
_NULLABLE = {"parent", "checkpoint", "calibration", "quantization", "target", "artifact"}
_EXPECTED = {"str": "a string", "dict": "an object", "count": "a non-negative integer"}


def _check_type(name: str, value: Any, kind: str) -> None:
    ok = {
        "str": isinstance(value, str),
        "dict": isinstance(value, dict),
        "count": _is_int(value) and value >= 0,
    }[kind]
    _want(ok, name, _EXPECTED[kind] + (" or null" if name in _NULLABLE else ""), value)


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


def _canonical(d: dict[str, Any]) -> str:
    body = {k: v for k, v in d.items() if k != "artifact"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _meta_digest(d: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(d).encode("utf-8")).hexdigest()


def stamped(artifact: str | os.PathLike[str], meta: ArtifactMeta) -> ArtifactMeta:
    """A copy of ``meta`` whose ``artifact`` block records ``artifact``'s sha256 and size and its own digest."""
    copy = ArtifactMeta.from_dict(json.loads(meta.to_json()))
    p = Path(artifact)
    copy.artifact = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    copy.artifact["meta_sha256"] = _meta_digest(json.loads(copy.to_json()))
    return copy


def _sidecar_text(artifact: str | os.PathLike[str], meta: ArtifactMeta) -> str:
    try:
        return json.dumps(stamped(artifact, meta).to_dict(), indent=2, allow_nan=False) + "\n"
    except ValueError:  # allow_nan=False: a NaN/Inf slipped into the metadata
        raise ArtifactError(
            f"{artifact}: the metadata holds NaN or infinity; nothing was written (report this)"
        ) from None


def write_meta(artifact: str | os.PathLike[str], meta: ArtifactMeta) -> Path:
    """Write the sidecar atomically, stamped with the (already written) artifact's sha256 and size.

    Prefer :func:`publish` for a new artifact: it orders the two renames so a
    crash never leaves a new artifact beside an old sidecar.
    """
    return atomic_write_text(sidecar_path(artifact), _sidecar_text(artifact, meta))


def publish(tmp: str | os.PathLike[str], artifact: str | os.PathLike[str], meta: ArtifactMeta) -> Path:
    """Move the finished file ``tmp`` to ``artifact`` with its sidecar, crash-safely (module docstring).

    ``tmp`` must be in ``artifact``'s folder (a rename, not a copy).
    """
    from .fsutil import check_stop, output_mode

    artifact = Path(artifact)
    side = sidecar_path(artifact)
    pending = side.with_name(side.name + PENDING_SUFFIX)
    check_stop()  # interrupted while writing (even if a library swallowed it): publish nothing
    os.chmod(tmp, output_mode(artifact if artifact.exists() else None))  # the umask's mode, not mkstemp's 0600
    atomic_write_text(pending, _sidecar_text(tmp, meta))  # 1. the new sidecar, under its pending name
    try:
        os.replace(tmp, artifact)  # 2. the artifact: from here on the pending sidecar is the true one
    except BaseException:
        with contextlib.suppress(OSError):
            pending.unlink()
        raise
    os.replace(pending, side)  # 3. the sidecar
    return artifact


@dataclass
class PendingArtifact:
    """What :func:`artifact_output` yields: write the file to ``tmp``, set ``meta``."""

    tmp: Path
    meta: ArtifactMeta | None = None


@contextlib.contextmanager
def artifact_output(path: str | os.PathLike[str]) -> Iterator[PendingArtifact]:
    """Like :func:`fsutil.atomic_output`, but publishes the file together with its sidecar.

    On success the file and ``pending.meta`` are put in place by :func:`publish`;
    on any exception the temporary file is removed and the old pair is untouched.
    """
    from .fsutil import signals_deferred

    path = Path(path)
    ensure_writable_dir(path.parent if str(path.parent) else Path("."))
    with signals_deferred():  # a signal between mkstemp and the try below would orphan the file
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent or ".")
        os.close(fd)
        pending = PendingArtifact(Path(tmp_name))
    try:
        yield pending
        if pending.meta is None:
            raise RuntimeError("artifact_output: set .meta before the block ends")
        publish(pending.tmp, path, pending.meta)
    except BaseException:
        with contextlib.suppress(OSError):
            pending.tmp.unlink()
        raise


def read_meta(artifact: str | os.PathLike[str], required: bool = True) -> ArtifactMeta | None:
    """Read and check an artifact's metadata: the sidecar (hash-checked), else the embedded copy.

    Returns None when there is none and ``required`` is False. A sidecar that
    does not match the artifact, or that disagrees with the embedded copy, is
    refused (ArtifactError) whatever ``required`` says.
    """
    artifact = Path(artifact)
    side = sidecar_path(artifact)
    embedded = _embedded_meta(artifact) if artifact.is_file() else None
    if side.exists():
        meta, raw = _read_sidecar(artifact, side)
        if embedded is not None:
            emb_raw, emb_meta = embedded
            if _canonical(json.loads(emb_meta.to_json())) != _canonical(json.loads(meta.to_json())):
                diff = _first_difference(emb_raw, raw)
                raise ArtifactError(
                    f"{side.name} disagrees with the metadata embedded in {artifact.name} ({diff}); "
                    f"one of them was edited: regenerate {artifact.name} with the command that wrote it"
                )
        return meta
    if embedded is not None:
        return embedded[1]
    if required:
        raise ArtifactError(
            f"{artifact}: no mdnet-deploy metadata (expected {side.name} beside it); "
            "re-export it with 'mdnet-deploy export' or pass the preprocessing options (--mean/--std)"
        )
    return None


def _parse_sidecar(side: Path) -> tuple[ArtifactMeta, dict[str, Any]]:
    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not allowed")

    try:
        raw = json.loads(side.read_text(encoding="utf-8"), parse_constant=reject_constant)
    except (ValueError, UnicodeDecodeError, OSError, RecursionError) as exc:
        raise ArtifactError(
            f"{side}: metadata is not valid JSON ({exc}); delete it and regenerate the artifact"
        ) from None
    try:
        return ArtifactMeta.from_dict(raw), raw
    except ArtifactError as exc:
        raise ArtifactError(f"{side}: {exc}; regenerate the artifact with the command that wrote it") from None
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{side}: metadata does not fit the schema ({exc}); regenerate the artifact") from None


def _matches(artifact: Path, meta: ArtifactMeta, raw: dict[str, Any]) -> str | None:
    """None when the sidecar describes ``artifact`` and is unedited, else what is wrong."""
    rec = meta.artifact
    if not rec or not isinstance(rec.get("sha256"), str) or not _is_int(rec.get("bytes")):
        return "it records no sha256 and size of the model (written by hand or by an older mdnet-deploy)"
    if rec.get("meta_sha256") != _meta_digest(raw):
        return "it was edited after it was written"
    size = artifact.stat().st_size
    if size != rec["bytes"]:
        return f"the model has {size} bytes, the metadata says {rec['bytes']}: the model or the metadata is stale"
    if sha256_file(artifact) != rec["sha256"]:
        return "the model's sha256 differs from the one recorded: the model or the metadata is stale"
    return None


def _read_sidecar(artifact: Path, side: Path) -> tuple[ArtifactMeta, dict[str, Any]]:
    meta, raw = _parse_sidecar(side)
    if not artifact.is_file():
        return meta, raw  # the caller reports the missing model
    wrong = _matches(artifact, meta, raw)
    if wrong is None:
        return meta, raw
    pending = side.with_name(side.name + PENDING_SUFFIX)
    if pending.is_file():  # a publish() interrupted between its renames: the pending sidecar is the new one
        with contextlib.suppress(ArtifactError):
            p_meta, p_raw = _parse_sidecar(pending)
            if _matches(artifact, p_meta, p_raw) is None:
                return p_meta, p_raw
    raise ArtifactError(
        f"{side.name} does not describe {artifact.name}: {wrong}; regenerate {artifact.name} and its metadata "
        "with the command that wrote them (export, quantize or compile)"
    )


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key == "artifact" and not path:
                continue
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        return path or "content"
    return f"'{path}'" if path else "content"


def _embedded_meta(path: Path) -> tuple[dict[str, Any], ArtifactMeta] | None:
    """(raw JSON, metadata) embedded in an ONNX or TFLite file, or None when there is none or no reader."""
    suffix = path.suffix.lower()
    text = (
        _onnx_embedded_text(path) if suffix == ".onnx" else _tflite_embedded_text(path) if suffix == ".tflite" else None
    )
    if text is None:
        return None
    try:
        raw = json.loads(text)
        return raw, ArtifactMeta.from_dict(raw)
    except (ValueError, TypeError):
        raise ArtifactError(
            f"{path}: its embedded metadata is not valid JSON; regenerate it with the command that wrote it"
        ) from None
    except ArtifactError as exc:
        raise ArtifactError(f"{path}: embedded {exc}; regenerate it with the command that wrote it") from None


def _onnx_embedded_text(path: Path) -> str | None:
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
            return str(prop.value)
    return None


def _tflite_embedded_text(path: Path) -> str | None:
    """The ``mdnet_deploy`` entry of the TFLite metadata table, read without unpacking the model."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        return None
    try:
        data = path.read_bytes()
        model = schema.Model.GetRootAsModel(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            name = entry.Name()
            if (name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)) != "mdnet_deploy":
                continue
            buf = model.Buffers(entry.Buffer())
            return bytes(buf.DataAsNumpy().tobytes()).decode("utf-8")
    except Exception:  # a damaged flatbuffer: the runner will say so
        return None
    return None


def file_ref(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A provenance reference: absolute path, sha256 and size."""
    p = Path(path)
    return {"path": str(p.resolve()), "sha256": sha256_file(p), "bytes": p.stat().st_size}


def host_tag() -> dict[str, str]:
    return {"host": platform.node(), "machine": platform.machine(), "python": platform.python_version()}
