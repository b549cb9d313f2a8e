"""`mdnet-deploy pack-eval`: a uint8 .npz that load_dataset reads back unchanged, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mdnet_deploy.bench.evalset import load_eval, pack_eval
from mdnet_deploy.cli import main
from mdnet_deploy.data import load_dataset
from mdnet_deploy.errors import DataError, InputError


def source_npz(path: Path, n: int = 30, classes: int = 3, size: int = 32) -> Path:
    rng = np.random.default_rng(5)
    np.savez(
        path,
        x=rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
        y=np.arange(n) % classes,
        labels=np.array(["ant", "bee", "cow"][:classes]),
    )
    return path


def test_round_trip(tmp_path):
    src = load_dataset(str(source_npz(tmp_path / "src.npz")))
    packed = pack_eval(str(tmp_path / "src.npz"), tmp_path / "eval.npz")
    assert (packed.n, packed.size, packed.num_classes) == (30, (32, 32), 3)
    with np.load(packed.path, allow_pickle=False) as f:
        assert f["x"].dtype == np.uint8 and f["x"].shape == (30, 32, 32, 3)
        assert f["y"].dtype == np.int64 and list(f["labels"]) == ["ant", "bee", "cow"]
    back = load_dataset(str(packed.path))
    np.testing.assert_array_equal(back.images, src.images)
    np.testing.assert_array_equal(back.labels, src.labels)
    assert back.class_names == src.class_names
    # The bench names the real source, not just the file.
    assert load_eval(str(packed.path)).description.startswith("npz:src.npz")
    assert list(tmp_path.glob("*.partial")) == []


def test_limit_is_deterministic_and_balanced(tmp_path):
    src = source_npz(tmp_path / "src.npz")
    a = pack_eval(str(src), tmp_path / "a.npz", limit=9)
    b = pack_eval(str(src), tmp_path / "b.npz", limit=9)
    ya, yb = load_dataset(str(a.path)).labels, load_dataset(str(b.path)).labels
    assert a.n == 9 and list(ya) == list(yb) and np.bincount(ya).tolist() == [3, 3, 3]


def test_resize(tmp_path):
    pytest.importorskip("PIL", reason="resizing needs Pillow")
    packed = pack_eval(str(source_npz(tmp_path / "src.npz")), tmp_path / "small.npz", size=16)
    assert load_dataset(str(packed.path)).images.shape == (30, 16, 16, 3)


def test_errors_leave_nothing_behind(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        pack_eval(str(tmp_path / "nope"), tmp_path / "e.npz")
    with pytest.raises(InputError, match="must end in .npz"):
        pack_eval(str(source_npz(tmp_path / "s.npz")), tmp_path / "e.bin")
    with pytest.raises(InputError, match="--limit"):
        pack_eval(str(tmp_path / "s.npz"), tmp_path / "e.npz", limit=0)
    floats = tmp_path / "f.npz"
    np.savez(floats, x=np.zeros((2, 3, 32, 32), np.float32), y=np.zeros(2, np.int64))
    with pytest.raises(DataError, match="float model input"):
        pack_eval(str(floats), tmp_path / "e.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npz", "s.npz"]


def test_cli(tmp_path):
    src = source_npz(tmp_path / "src.npz")
    out = tmp_path / "eval.npz"
    res = CliRunner().invoke(main, ["pack-eval", str(src), "-o", str(out), "--limit", "6", "--size", "32x32"])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "6 images 32x32, 3 classes" in res.output
    assert load_dataset(str(out)).images.shape == (6, 32, 32, 3)
    res = CliRunner().invoke(main, ["pack-eval", str(src), "-o", str(out), "--size", "big"])
    assert res.exit_code == 2 and "--size 'big'" in res.output
