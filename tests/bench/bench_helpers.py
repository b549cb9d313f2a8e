"""Shared by the bench, runtime and command tests: a tiny MDNET, its ONNX export, eval sets.

The export takes seconds, so it happens once per test session (cached in a
temporary folder removed at exit) whichever test file asks first. Other
test folders import this module after putting this folder on sys.path.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np

NUM_CLASSES = 10
_cache: dict[str, Path] = {}


def tiny_models() -> dict[str, Path]:
    """{"pth": tiny.pth, "onnx": model.onnx (+ sidecar)} of a width-0.25, 10-class MDNET."""
    if not _cache:
        import torch

        from mdnet_deploy.export.onnx_export import export_onnx
        from mdnet_deploy.model.mdnet import create_model

        folder = Path(tempfile.mkdtemp(prefix="mdnet-bench-tests-"))
        atexit.register(shutil.rmtree, folder, True)
        torch.manual_seed(0)
        model = create_model(NUM_CLASSES, width=0.25).eval()
        pth = folder / "tiny.pth"
        torch.save(model.state_dict(), pth)
        # No simplification: it triples the export time and changes nothing here.
        result = export_onnx(pth, folder / "onnx", data=None, simplify=False)
        _cache.update(pth=pth, onnx=result.path, folder=folder)
    return dict(_cache)


def write_eval_npz(path: Path, n: int = 24, classes: int = NUM_CLASSES, size: int = 32, seed: int = 0,
                   names: bool = True) -> Path:
    """A uint8 evaluation set like pack-eval writes: x (N,H,W,3), y, labels."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
        "y": (np.arange(n) % classes).astype(np.int64),
    }
    if names:
        arrays["labels"] = np.array([str(i) for i in range(classes)])
    np.savez(path, **arrays)
    return path


def copy_model(src: Path, dst_dir: Path, name: str | None = None) -> Path:
    """A copy of an artifact and its sidecar (so a test may damage it)."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / (name or src.name)
    shutil.copyfile(src, dst)
    side = src.with_name(src.name + ".json")
    if side.exists():
        shutil.copyfile(side, dst.with_name(dst.name + ".json"))
    return dst
