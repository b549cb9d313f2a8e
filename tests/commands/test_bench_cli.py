"""`mdnet-deploy bench` through click: table, JSON, CSV, exit codes, remote wiring."""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mdnet_deploy.bench.schema import CSV_COLUMNS, ROW_KEYS
from mdnet_deploy.cli import main
from tests.helpers.bench import MEASURED, corrupt_model, outcome

FAST = ["--device", "host", "--warmup", "2", "--iterations", "5"]


@pytest.fixture(scope="module")
def models(tiny_ckpt, tiny_onnx):
    pytest.importorskip("onnxruntime")
    return {"pth": tiny_ckpt, "onnx": tiny_onnx}


def write_eval_npz(path: Path, n: int = 24, classes: int = 10) -> Path:
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
        y=(np.arange(n) % classes).astype(np.int64),
        labels=np.array([str(i) for i in range(classes)]),
    )
    return path


def copy_model(src: Path, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, folder / name)
    shutil.copyfile(src.with_name(src.name + ".json"), folder / (name + ".json"))
    return folder / name


@pytest.fixture
def no_meter(tmp_path, monkeypatch):
    root = tmp_path / "sysfs"
    root.mkdir()
    monkeypatch.setenv("MDNET_DEPLOY_SYSFS_ROOT", str(root))


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_multi_model_table_with_one_broken_model(models, tmp_path, no_meter):
    bad = copy_model(models["onnx"], tmp_path / "broken", "broken.onnx")
    corrupt_model(bad, b"this is not an onnx file")
    ev = write_eval_npz(tmp_path / "eval.npz")
    out, table = tmp_path / "r.json", tmp_path / "r.csv"
    res = invoke(
        "bench",
        *FAST,
        "--threads",
        "1",
        "-m",
        models["onnx"],
        "-m",
        bad,
        "-m",
        models["pth"],
        "--eval",
        ev,
        "--json",
        out,
        "--csv",
        table,
    )
    assert res.exit_code == 7, res.output
    rows = json.loads(out.read_text())
    assert isinstance(rows, list) and len(rows) == 3
    assert [outcome(r) for r in rows] == ["measured", "failed", "measured"]
    assert "ONNX Runtime cannot open" in rows[1]["reason"]
    for r in rows:
        assert set(ROW_KEYS) <= set(r)
    assert rows[0]["accuracy"]["n"] == 24 and rows[2]["runtime"]["name"] == "torch"
    # The table shows every row, energy as 'unavailable' with the reason under it.
    for text in (
        "model.onnx",
        "broken.onnx",
        "tiny.pth",
        "failed",
        "ONNX Runtime cannot open",
        "unavailable",
        "energy unavailable: no power meter works",
        "1 of 3 result(s) failed",
    ):
        assert text in res.output, text
    with table.open() as f:
        assert len(list(csv.DictReader(f))) == 3


def test_json_is_a_list_and_csv_appends(models, tmp_path, no_meter):
    table = tmp_path / "all.csv"
    for i in range(2):
        # --csv appends; the second --json write replaces the first only with --force.
        res = invoke(
            "bench",
            *FAST,
            "-m",
            models["onnx"],
            "--power-meter",
            "none",
            "--csv",
            table,
            "--json",
            tmp_path / "r.json",
            *(["--force"] if i else []),
        )
        assert res.exit_code == 0, res.output
    lines = table.read_text().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS) and sum(l.startswith("created,") for l in lines) == 1
    with table.open() as f:
        records = list(csv.DictReader(f))
    assert len(records) == 2 and all(r["status"] in MEASURED and r["runtime"] == "onnxruntime" for r in records)
    assert float(records[0]["latency_p50_ms"]) > 0 and records[0]["energy_unavailable"].startswith(
        "power measurement disabled"
    )
    assert len(json.loads((tmp_path / "r.json").read_text())) == 1  # JSON is replaced, not appended


def test_explicit_missing_meter_is_an_error_before_running(models, tmp_path, no_meter):
    out = tmp_path / "r.json"
    res = invoke("bench", *FAST, "-m", models["onnx"], "--power-meter", "rapl", "--json", out)
    assert res.exit_code == 6
    assert "power meter 'rapl' is unavailable" in res.output and "opening" not in res.output
    assert not out.exists()


def test_auto_meter_none_reports_why(models, tmp_path, no_meter):
    out = tmp_path / "r.json"
    res = invoke("bench", *FAST, "-m", models["onnx"], "--json", out)
    assert res.exit_code == 0, res.output
    row = json.loads(out.read_text())[0]
    assert row["energy"] is None and "rapl" in row["energy_unavailable"]


def test_csv_meter_energy_and_short_window_warning(models, tmp_path):
    now = time.time()
    power = tmp_path / "power.csv"
    power.write_text("".join(f"{now - 20 + i * 0.05:.3f},4.0\n" for i in range(2400)))
    out = tmp_path / "r.json"
    res = invoke(
        "bench",
        "--device",
        "host",
        "-m",
        models["onnx"],
        "--warmup",
        "2",
        "--duration",
        "0.3",
        "--power-meter",
        f"csv:{power}",
        "--json",
        out,
    )
    assert res.exit_code == 0, res.output
    row = json.loads(out.read_text())[0]
    images = row["iterations"] * row["batch"]
    assert row["energy"]["joules_per_inference"] == pytest.approx(4.0 * row["duration_s"] / images, rel=1e-3)
    assert "under 10 s" in res.output and "warning" in res.output
    assert "unavailable" not in res.output


def test_eval_class_mismatch_is_a_clear_error(models, tmp_path):
    ev = write_eval_npz(tmp_path / "e.npz", classes=100, n=120)
    res = invoke("bench", *FAST, "-m", models["onnx"], "--eval", ev, "--power-meter", "none")
    assert res.exit_code == 2
    assert "labels 0..99" in res.output and "has 10 classes" in res.output and "timing" not in res.output


def test_bad_options(models, tmp_path):
    res = invoke("bench", *FAST, "-m", models["onnx"], "--duration", "3")
    assert res.exit_code == 2 and "either --iterations or --duration" in res.output
    res = invoke("bench", "-m", models["onnx"], "--warmup", "soon")
    assert res.exit_code == 2 and "--warmup 'soon'" in res.output
    res = invoke("bench", "-m", tmp_path / "missing.onnx")
    assert res.exit_code == 2 and "does not exist" in res.output
    (tmp_path / "adir").mkdir()
    res = invoke("bench", *FAST, "-m", models["onnx"], "--json", tmp_path / "adir")
    assert res.exit_code == 2 and "is a folder" in res.output


def test_csv_with_foreign_columns_is_refused(models, tmp_path):
    table = tmp_path / "other.csv"
    table.write_text("a,b\n1,2\n")
    res = invoke("bench", *FAST, "-m", models["onnx"], "--power-meter", "none", "--csv", table)
    assert res.exit_code == 2 and "other columns" in res.output
    assert table.read_text() == "a,b\n1,2\n"


# -- remote wiring ---------------------------------------------------------------------
def image_folder(root):
    """Two classes of two PNGs: an --eval spec that is not an .npz."""
    Image = pytest.importorskip("PIL.Image", reason="image folders need Pillow")

    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((40, 40, 3), 60 * i, np.uint8)).save(root / c / f"{i}.png")
    return root


def fake_rows(models):
    ok = {
        "schema": 1,
        "status": "ok",
        "reason": None,
        "device": {"kind": "rpi", "name": "Raspberry Pi 5"},
        "runtime": {"name": "tflite"},
        "model": {"path": str(models[0]), "format": "tflite"},
        "latency_ms": {"p50": 4.2, "p99": 5.0},
        "throughput_ips": 230.0,
        "energy": None,
        "energy_unavailable": "no PMIC",
        "accuracy": None,
        "remote": {"target": "pi@10.0.0.2"},
    }
    bad = {
        "schema": 1,
        "status": "failed",
        "reason": "cannot connect",
        "device": {"kind": "rpi", "name": "gone"},
        "model": {"path": str(models[0])},
        "remote": {"target": "gone"},
    }
    return [ok, bad]


def test_host_passes_only_given_options_and_packs_the_eval_set(tmp_path, monkeypatch):
    from mdnet_deploy import remote
    from mdnet_deploy.remote import dispatch  # noqa: F401  (the module the CLI calls through)

    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    calls = {}

    def fake_bench(target, models, npz, extra, **kw):
        calls.update(target=target, models=models, npz=npz, extra=extra, kw=kw)
        assert npz is not None and Path(npz).is_file()  # packed before the call, removed after
        calls["npz_keys"] = sorted(np.load(npz).files)
        kw["progress"]("running bench on the device")
        return fake_rows(models)[:1]

    monkeypatch.setattr(remote.dispatch, "run_remote_bench", fake_bench)
    folder = image_folder(tmp_path / "images")
    res = invoke(
        "bench",
        "--host",
        "pi@10.0.0.2:2200",
        "-m",
        model,
        "--threads",
        "2",
        "--warmup",
        "5s",
        "--eval",
        folder,
        "--identity",
        tmp_path / "key",
        "--setup",
        "--remote-dir",
        "/srv/mdnet",
        "--json",
        tmp_path / "r.json",
    )
    assert res.exit_code == 0, res.output
    t = calls["target"]
    assert (t.host, t.user, t.port, t.device) == ("10.0.0.2", "pi", 2200, "rpi")
    assert calls["extra"] == ["--threads", "2", "--warmup", "5s"]
    assert calls["npz_keys"] == ["description", "labels", "x", "y"] and not Path(calls["npz"]).exists()
    kw = calls["kw"]
    assert kw["setup"] is True and kw["remote_root"] == "/srv/mdnet" and kw["identity"] == tmp_path / "key"
    assert kw["timeout"] == 3600 and kw["keep_remote"] is False and kw["accept_new_host_key"] is False
    assert kw["known_hosts"].endswith(".ssh/known_hosts") and "~" not in kw["known_hosts"]
    assert "running bench on the device" in res.output and "Raspberry Pi 5" in res.output
    assert json.loads((tmp_path / "r.json").read_text())[0]["remote"]["target"] == "pi@10.0.0.2"


def test_inventory_runs_the_fleet_and_fails_with_7(tmp_path, monkeypatch):
    from mdnet_deploy import remote
    from mdnet_deploy.remote import dispatch  # noqa: F401  (the module the CLI calls through)

    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    inv = tmp_path / "devices.yaml"
    inv.write_text("all:\n  hosts:\n    pi1:\n      ansible_host: 10.0.0.2\n")
    seen = {}

    def fake_fleet(targets, models, npz, extra, **kw):
        seen.update(targets=targets, npz=npz, extra=extra, kw=kw)
        return fake_rows(models)

    monkeypatch.setattr(remote.dispatch, "run_fleet", fake_fleet)
    ev = write_eval_npz(tmp_path / "e.npz")
    res = invoke(
        "bench",
        "--inventory",
        inv,
        "--device",
        "jetson",
        "-m",
        model,
        "--eval",
        ev,
        "--max-parallel",
        "2",
        "--iterations",
        "10",
        "--csv",
        tmp_path / "r.csv",
    )
    assert res.exit_code == 7
    assert [t.device for t in seen["targets"]] == ["jetson"] and seen["npz"] == str(ev)
    assert seen["extra"] == ["--iterations", "10"] and seen["kw"]["max_parallel"] == 2
    assert "identity" not in seen["kw"]
    assert "cannot connect" in res.output and "gone" in res.output
    assert len(list(csv.DictReader((tmp_path / "r.csv").open()))) == 2


def test_remote_refuses_a_local_kind(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    res = invoke("bench", "--host", "pi@10.0.0.2", "--device", "host", "-m", model)
    assert res.exit_code == 2 and "not a remote device kind" in res.output
