"""Load MDNET checkpoints as users hold them, safely.

Accepted: a plain state_dict (the authors' format), ``module.``-prefixed keys
(DataParallel), and dicts wrapping the state_dict under ``state_dict``,
``model`` or ``net`` beside epoch/optimizer entries. Loading always uses
``torch.load(weights_only=True)``; a pickled whole module needs
``trust_pickle=True`` because unpickling runs code from the file.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import CheckpointError, InputError, one_line

WRAPPER_KEYS = ("state_dict", "model", "net", "model_state_dict")


@dataclass
class LoadedCheckpoint:
    model: Any  # MDNet
    path: Path
    num_classes: int
    width: float
    heads: int
    wrapper: str | None  # which key held the state_dict, if any
    # (mean, std) when the file stores them beside the weights (keys "mean" and "std"), else None.
    preprocessing: tuple[tuple[float, ...], tuple[float, ...]] | None = None


def _read(path: Path, trust_pickle: bool) -> Any:
    import torch

    from ..data.pickles import pickles_trusted

    # --trust-pickle given to a command covers its checkpoints as well as its data.
    trust_pickle = trust_pickle or pickles_trusted()
    if not path.exists():
        raise InputError(f"checkpoint {path} does not exist; check the path")
    if path.is_dir():
        raise InputError(f"checkpoint {path} is a folder; give the .pth file")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise InputError(f"cannot read checkpoint {path}: {exc.strerror or exc}; check its permissions") from None
    # torch.save writes a zip archive (PK..) or, in the legacy format, a pickle
    # stream (0x80 protocol byte). Anything else is not a checkpoint at all.
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (unknown file format); give a .pth saved with torch.save"
        )
    try:
        return torch.load(str(path), map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported global" in text or "GLOBAL" in text:
            raise CheckpointError(
                f"{path} contains pickled Python objects (e.g. a whole model), not just tensors; "
                "loading it would run code from the file: if you trust its source, pass --trust-pickle"
            ) from None
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint (corrupt pickle data); give a .pth saved with torch.save"
        ) from None
    except Exception as exc:  # torch raises many types on corrupt files; all mean the same to the user
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}); the file may be truncated or corrupt"
        ) from None


def extract_state_dict(obj: Any, path: Path) -> tuple[dict[str, Any], str | None]:
    """Find the tensor dict inside whatever was saved; strip DataParallel prefixes."""
    import torch

    wrapper = None
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    elif isinstance(obj, Mapping) and not _is_tensor_dict(obj):
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, torch.nn.Module):
                inner = inner.state_dict()
            if isinstance(inner, Mapping) and _is_tensor_dict(inner):
                obj, wrapper = inner, key
                break
    if not isinstance(obj, Mapping) or not _is_tensor_dict(obj):
        raise CheckpointError(
            f"{path} holds no state_dict (expected tensors at the top level or under "
            f"{', '.join(repr(k) for k in WRAPPER_KEYS[:3])}); save it with torch.save(net.state_dict(), ...)"
        )
    state = {}
    for key, value in obj.items():
        state[key[len("module.") :] if key.startswith("module.") else key] = value
    return state, wrapper


def _is_tensor_dict(d: Mapping[Any, Any]) -> bool:
    import torch

    return len(d) > 0 and all(isinstance(k, str) for k in d) and all(isinstance(v, torch.Tensor) for v in d.values())


def infer_config(state: Mapping[str, Any], path: Path) -> tuple[int, float, int]:
    """(num_classes, width, heads) from tensor shapes; the checkpoint is the truth."""
    required = ("conv2.weight", "pre.0.weight")
    missing = [k for k in required if k not in state]
    if missing:
        some = ", ".join(sorted(state)[:3])
        raise CheckpointError(
            f"{path} is not an MDNET checkpoint: missing {', '.join(missing)} (it has e.g. {some}); "
            "give a checkpoint from the MDNET training code"
        )
    shapes = {k: tuple(state[k].shape) for k in required}
    if any(len(s) == 0 or s[0] < 1 for s in shapes.values()):
        raise CheckpointError(
            f"{path}: tensors {', '.join(required)} have shapes {list(shapes.values())}, not an MDNET's; "
            "give a checkpoint from the MDNET training code"
        )
    num_classes = int(shapes["conv2.weight"][0])
    stem = int(shapes["pre.0.weight"][0])
    # Without the attention block (e.g. a plain MobileNetV2) fall back to the
    # default head count so the strict load below can name what is missing.
    temperature = state.get("transform.attn.temperature")
    heads = int(temperature.shape[0]) // 2 if temperature is not None and temperature.dim() > 0 else stem
    return num_classes, stem / 32.0, heads


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    num_classes: int | None = None,
    trust_pickle: bool = False,
) -> LoadedCheckpoint:
    """Build an MDNet in eval mode and load ``path`` into it with strict=True."""
    from .mdnet import create_model

    path = Path(path)
    raw = _read(path, trust_pickle)
    state, wrapper = extract_state_dict(raw, path)
    check_finite(state, path)
    classes, width, heads = infer_config(state, path)
    if num_classes is not None and num_classes != classes:
        raise CheckpointError(
            f"--num-classes {num_classes} contradicts the checkpoint, whose classifier has {classes} classes; "
            f"drop --num-classes or pass {classes}"
        )
    try:
        model = create_model(classes, width=width, heads=heads if heads != int(round(32 * width)) else None)
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:
        raise CheckpointError(f"{path}: shapes do not describe an MDNET ({one_line(exc)})") from None
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        # torch lists every mismatching tensor over many lines: name the first.
        detail = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), one_line(exc))
        raise CheckpointError(
            f"{path} does not fit the MDNET its shapes describe: {detail.rstrip('.')}; "
            "give an unmodified checkpoint from the MDNET training code"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"{len(result.missing_keys)} missing keys (e.g. {', '.join(result.missing_keys[:3])})")
        if result.unexpected_keys:
            parts.append(
                f"{len(result.unexpected_keys)} unexpected keys (e.g. {', '.join(result.unexpected_keys[:3])})"
            )
        raise CheckpointError(f"{path} is not an MDNET checkpoint of the authors' architecture: {'; '.join(parts)}")
    model.eval()
    return LoadedCheckpoint(
        model=model,
        path=path,
        num_classes=classes,
        width=width,
        heads=heads,
        wrapper=wrapper,
        preprocessing=stored_preprocessing(raw, path),
    )


def check_finite(state: Mapping[str, Any], path: Path) -> None:
    """Refuse NaN/Inf weights: every output of such a model is meaningless, yet parity checks can 'pass'."""
    import torch

    bad = [k for k, v in state.items() if torch.is_floating_point(v) and not bool(torch.isfinite(v).all())]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise CheckpointError(
            f"{path} holds NaN or infinite weights ({bad[0]}{more}); use a checkpoint from before training diverged"
        )


def stored_preprocessing(obj: Any, path: Path) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``mean``/``std`` saved beside the state_dict (a dict checkpoint), checked; None when absent."""
    import math

    import torch

    if not isinstance(obj, Mapping) or "mean" not in obj or "std" not in obj:
        return None
    out = []
    for key in ("mean", "std"):
        value = obj[key]
        if isinstance(value, torch.Tensor):
            value = value.flatten().tolist()
        try:
            nums = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            nums = ()
        if len(nums) != 3 or not all(math.isfinite(v) for v in nums) or (key == "std" and min(nums) <= 0):
            raise CheckpointError(
                f"{path} stores '{key}' as {value!r}; it must be 3 finite numbers (std > 0), one per RGB channel"
            )
        out.append(nums)
    return out[0], out[1]


def save_checkpoint(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save in the authors' format (a plain state_dict), atomically."""
    import torch

    from ..fsutil import atomic_output

    with atomic_output(path) as tmp:
        torch.save(model.state_dict(), str(tmp))
    return Path(path)
