"""Tamper-evident metadata (issue 11): hash-checked sidecars, embedded fallback, typed fields, crash-safe writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mdnet_deploy import artifact as art
from mdnet_deploy.artifact import ArtifactMeta, Preprocessing, publish, read_meta, sidecar_path, write_meta
from mdnet_deploy.errors import ArtifactError
from tests.helpers.bench import copy_model, write_eval_npz
from tests.helpers.calib import leftovers
from tests.helpers.cli import assert_one_line_error
from tests.helpers.cli import run as run_cli

FAST = ["--device", "host", "--warmup", "1", "--iterations", "3", "--threads", "1", "--power-meter", "none"]


def _pair(folder: Path, payload: bytes = b"model-bytes", mean: float = 0.5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "m.engine"  # no embedded metadata: the sidecar alone
    path.write_bytes(payload)
    write_meta(path, ArtifactMeta(format="engine", preprocessing=Preprocessing(mean=(mean,) * 3, std=(0.5,) * 3)))
    return path


# -- the sidecar's artifact block -------------------------------------------------------------
def test_sidecar_records_sha256_size_and_its_own_digest(tmp_path: Path) -> None:
    path = _pair(tmp_path)
    rec = json.loads(sidecar_path(path).read_text())["artifact"]
    assert rec["bytes"] == len(b"model-bytes") and len(rec["sha256"]) == 64 and len(rec["meta_sha256"]) == 64
    assert read_meta(path).preprocessing.mean == (0.5, 0.5, 0.5)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda p: p.write_bytes(b"model-bytez"), "sha256 differs"),  # same size, other content
        (lambda p: p.write_bytes(b"a newer, longer model"), "bytes"),  # the model was replaced
        (lambda p: sidecar_path(p).write_text(sidecar_path(p).read_text().replace("0.5", "0.25", 1)), "edited"),
        (lambda p: sidecar_path(p).write_text('{"format": "engine"}'), "records no sha256"),
    ],
    ids=["content", "replaced", "sidecar-edited", "legacy-sidecar"],
)
def test_a_mismatched_pair_is_refused_naming_the_file_to_regenerate(tmp_path: Path, damage, expected: str) -> None:
    path = _pair(tmp_path)
    damage(path)
    with pytest.raises(ArtifactError, match=expected) as info:
        read_meta(path)
    assert "regenerate m.engine" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("preprocessing", {"mean": "a"}, "preprocessing.mean"),
        ("preprocessing", {"mean": [0.5, 0.5]}, "preprocessing.mean"),
        ("preprocessing", {"std": [0.5, 0.0, 0.5]}, "preprocessing.std"),
        ("preprocessing", "0.5", "'preprocessing' must be an object"),
        ("input", "NCHW", "'input' must be an object"),
        ("input", {"shape": "1x3x32x32"}, "input.shape"),
        ("num_classes", "100", "num_classes"),
        ("num_classes", True, "num_classes"),
        ("labels", "cat,dog", "labels"),
        ("model_config", [], "model_config"),
        ("quantization", "int8", "quantization"),
    ],
)
def test_from_dict_refuses_wrongly_typed_fields(field: str, value, fragment: str) -> None:
    with pytest.raises(ArtifactError, match="must be") as info:
        ArtifactMeta.from_dict({"format": "onnx", field: value})
    assert fragment in str(info.value)


def test_non_finite_statistics_in_a_sidecar_are_refused(tmp_path: Path) -> None:
    path = _pair(tmp_path)
    side = sidecar_path(path)
    side.write_text(side.read_text().replace("0.5,", "NaN,", 1))
    with pytest.raises(ArtifactError, match="not valid JSON|finite"):
        read_meta(path)


def test_derive_drops_the_parent_file_hash(tmp_path: Path) -> None:
    meta = read_meta(_pair(tmp_path))
    assert meta is not None and meta.artifact is not None
    assert meta.derive(precision="int8").artifact is None


# -- crash safety: the write order ------------------------------------------------------------
class _Crash(Exception):
    pass


def _replace_failing_at(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    real = os.replace
    count = {"n": 0}

    def replace(src, dst):  # noqa: ANN001
        count["n"] += 1
        if count["n"] == call:
            raise _Crash(f"simulated crash before rename {call}")
        return real(src, dst)

    monkeypatch.setattr(art.os, "replace", replace)


@pytest.mark.parametrize("call", [1, 2, 3], ids=["pending-sidecar", "artifact", "sidecar"])
def test_a_crash_between_the_writes_leaves_the_old_or_the_new_pair(tmp_path: Path, monkeypatch, call: int) -> None:
    """publish: (1) pending sidecar rename, (2) artifact rename, (3) sidecar rename; crash before each."""
    path = _pair(tmp_path, b"old model", mean=0.25)
    tmp = tmp_path / ".m.engine.new.partial"
    tmp.write_bytes(b"the new model, longer")
    new = ArtifactMeta(format="engine", preprocessing=Preprocessing(mean=(0.75,) * 3, std=(0.5,) * 3))
    _replace_failing_at(monkeypatch, call)
    with pytest.raises(_Crash):
        publish(tmp, path, new)
    monkeypatch.undo()
    meta = read_meta(path)
    assert meta is not None
    if path.read_bytes() == b"old model":
        assert meta.preprocessing.mean == (0.25,) * 3  # the old pair
        assert not list(tmp_path.glob("*.next"))  # the pending sidecar of a failed publish is removed
    else:
        assert path.read_bytes() == b"the new model, longer" and meta.preprocessing.mean == (0.75,) * 3
    assert call != 3 or meta.preprocessing.mean == (0.75,) * 3  # after the artifact's rename: the new pair


_TMPFS_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from mdnet_deploy.artifact import ArtifactMeta, Preprocessing, artifact_output, read_meta
    root = Path(sys.argv[1])
    final = root / "m.engine"
    def write(payload, mean):
        with artifact_output(final) as pending:
            pending.tmp.write_bytes(payload)
            pending.meta = ArtifactMeta(format="engine", preprocessing=Preprocessing(mean=(mean,) * 3, std=(0.5,) * 3))
    write(b"o" * 1000, 0.25)
    free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
    outcomes = set()
    for size in range(max(0, free - 12000), free + 8193, 4096):  # around "the new file just fits"
        try:
            write(b"n" * size, 0.75)
        except OSError:
            pass
        meta = read_meta(final)
        body = final.read_bytes()
        pair = "old" if body == b"o" * 1000 and meta.preprocessing.mean == (0.25,) * 3 else (
            "new" if body == b"n" * size and meta.preprocessing.mean == (0.75,) * 3 else "MIX")
        outcomes.add(pair)
        if pair == "new":
            write(b"o" * 1000, 0.25)
        left = sorted(p.name for p in root.iterdir() if p.name not in ("m.engine", "m.engine.json"))
        assert not left, left
    print(sorted(outcomes))
    """
)


def test_a_full_disk_on_a_small_tmpfs_leaves_the_old_or_the_new_pair(tmp_path: Path) -> None:
    if shutil.which("unshare") is None or sys.platform != "linux":
        pytest.skip("needs util-linux unshare (Linux) to mount a private tmpfs")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "fill.py"
    script.write_text(_TMPFS_SCRIPT)
    probe = subprocess.run(
        ["unshare", "-r", "-m", "sh", "-c", f"mount -t tmpfs -o size=256k tmpfs {mnt}"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({probe.stderr.strip() or probe.returncode})")
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run(
        [
            "unshare",
            "-r",
            "-m",
            "sh",
            "-c",
            f'mount -t tmpfs -o size=256k tmpfs "{mnt}" && "{sys.executable}" "{script}" "{mnt}"',
        ],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "MIX" not in res.stdout and "old" in res.stdout  # the disk did fill up, and never left a mix


# -- through the CLI: a bad model's row fails, the good ones print ---------------------------
@pytest.fixture(scope="module")
def onnx_model(tiny_onnx: Path) -> Path:
    pytest.importorskip("onnxruntime")
    return tiny_onnx


def _with_mean(path: Path, mean: float) -> None:
    """A valid, freshly stamped sidecar whose content differs from the metadata embedded in the model."""
    meta = read_meta(path)
    assert meta is not None
    meta.preprocessing = Preprocessing(mean=(mean,) * 3, std=meta.preprocessing.std)
    write_meta(path, meta)


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda p: p.write_bytes(p.read_bytes() + b"\0"), "does not describe"),
        (
            lambda p: sidecar_path(p).write_text(
                sidecar_path(p).read_text().replace('"precision": "fp32"', '"precision": "int8"')
            ),
            "edited",
        ),
        (lambda p: _with_mean(p, 0.1), "disagrees with the metadata embedded"),
    ],
    ids=["model-changed", "sidecar-edited", "sidecar-vs-embedded"],
)
def test_bench_fails_the_tampered_row_and_prints_the_good_one(
    onnx_model: Path, tmp_path: Path, damage, expected: str
) -> None:
    bad = copy_model(onnx_model, tmp_path / "bad", "bad.onnx")
    damage(bad)
    out = tmp_path / "r.json"
    res = run_cli("bench", *FAST, "-m", onnx_model, "-m", bad, "--json", out)
    assert res.exit_code == 7, res.output
    rows = json.loads(out.read_text())
    assert rows[0]["status"] in ("ok", "unstable") and rows[0]["latency_ms"]["p50"] > 0
    assert rows[1]["status"] == "failed" and expected in rows[1]["reason"]


def test_embedded_metadata_is_used_when_the_sidecar_is_missing(onnx_model: Path, tmp_path: Path) -> None:
    alone = copy_model(onnx_model, tmp_path / "alone", "alone.onnx")
    sidecar_path(alone).unlink()
    meta = read_meta(alone)
    assert meta is not None and meta.num_classes == 10 and meta.artifact is None
    res = run_cli("bench", *FAST, "-m", alone, "--json", tmp_path / "r.json")
    assert res.exit_code == 0, res.output


def test_quantize_refuses_a_stale_sidecar_and_writes_nothing(onnx_model: Path, tmp_path: Path) -> None:
    import onnx

    src = copy_model(onnx_model, tmp_path / "q", "model.onnx")
    proto = onnx.load(str(src))
    proto.doc_string = "edited by hand"  # still a valid model, no longer the one the sidecar describes
    onnx.save(proto, str(src))
    before = leftovers(tmp_path / "q")
    ev = write_eval_npz(tmp_path / "ev.npz")
    res = run_cli("quantize", src, "--calib", ev, "-o", tmp_path / "q" / "model.int8.onnx")
    assert_one_line_error(res, "model.onnx.json does not describe model.onnx", "regenerate")
    assert leftovers(tmp_path / "q") == before
