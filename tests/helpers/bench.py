"""Helpers of the bench tests: evaluation sets and damaged copies of artifacts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

NUM_CLASSES = 10  # the shared tiny MDNET (tests/conftest.py: tiny_ckpt, tiny_onnx)


def write_eval_npz(
    path: Path, n: int = 24, classes: int = NUM_CLASSES, size: int = 32, seed: int = 0, names: bool = True
) -> Path:
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


def make_tflite(onnx_path: Path, folder: Path) -> Path:
    """The TFLite twin of a test model via the TFLite converter (the session fixture calls it once).

    Skips until the TFLite runner and ``compile --target tflite`` exist.
    """
    import importlib.util

    import pytest
    from click.testing import CliRunner

    from mdnet_deploy.cli import main

    if importlib.util.find_spec("mdnet_deploy.runtimes.tflite") is None:
        pytest.skip("mdnet_deploy.runtimes.tflite (the TFLite runner) is not written yet")
    out = folder / "model.tflite"
    res = CliRunner().invoke(
        main, ["compile", "--target", "tflite", "--precision", "fp32", str(onnx_path), "-o", str(out)]
    )
    if res.exit_code != 0 or not out.exists():
        last = (res.output.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"the TFLite converter is not usable yet (compile --target tflite: {last})")
    return out


def corrupt_model(path: Path, payload: bytes) -> Path:
    """Replace an artifact's bytes and re-stamp its sidecar, so only the runtime (not the hash check) sees the damage."""
    from mdnet_deploy.artifact import read_meta, write_meta

    meta = read_meta(path)
    path.write_bytes(payload)
    assert meta is not None
    write_meta(path, meta)
    return path


def rewrite_meta(path: Path, meta) -> Path:  # noqa: ANN001 - ArtifactMeta
    """Change an ONNX artifact's metadata consistently: embedded copy and sidecar (a hand edit would be refused)."""
    import onnx

    from mdnet_deploy.artifact import write_meta
    from mdnet_deploy.export.onnx_export import embed_metadata

    proto = onnx.load(str(path))
    embed_metadata(proto, meta)
    onnx.save(proto, str(path))
    write_meta(path, meta)
    return path


#: Statuses of a measured row: 'unstable' says the machine was busy or the latencies spread (bench/stats.py),
#: which these tests do not control, so they accept either.
MEASURED = ("ok", "unstable")


def outcome(row: dict) -> str:
    """'measured' or 'failed': what the tests about other things assert."""
    return "measured" if row["status"] in MEASURED else row["status"]
