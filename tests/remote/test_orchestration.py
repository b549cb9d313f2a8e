"""run_remote_bench / run_fleet against a LocalSession: copies, results, clean-up."""

import tempfile
from pathlib import Path

import pytest

from mdnet_deploy.errors import BenchFailedError, InputError, UnavailableError
from mdnet_deploy.remote import parse_target, run_fleet, run_remote_bench
from mdnet_deploy.remote.session import quote_command

from .conftest import LocalSession


@pytest.fixture
def models(tmp_path):
    folder = tmp_path / "my models; x"
    folder.mkdir()
    a = folder / "m a.tflite"
    a.write_bytes(b"\0" * 100)
    (folder / "m a.tflite.json").write_text('{"format": "tflite"}')
    b = tmp_path / "m a.tflite"  # same file name as a: must not collide remotely
    b.write_bytes(b"\1" * 10)
    ev = tmp_path / "eval.npz"
    ev.write_bytes(b"PK")
    return [a, b], ev


@pytest.fixture(autouse=True)
def private_tmp(tmp_path, monkeypatch):
    # Own temp root: lets the tests check that no local temporary is left.
    local_tmp = tmp_path / "local-tmp"
    local_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(local_tmp))
    return local_tmp


def run(local_device, wheel, models, **kw):
    paths, ev = models
    return run_remote_bench(
        local_device["target"],
        paths,
        ev,
        kw.pop("bench_args", ["--threads", "2"]),
        remote_root=local_device["root"],
        wheel=wheel,
        session_factory=LocalSession,
        **kw,
    )


def leftovers(root):
    return sorted(p.name for p in Path(root).iterdir() if p.name.startswith("mdnet-run-"))


def test_bench_round_trip(local_device, wheel, models, private_tmp):
    lines = []
    rows = run(local_device, wheel, models, progress=lines.append)
    paths, _ = models
    assert [r["model"]["path"] for r in rows] == [str(p) for p in paths]  # mapped back to local paths
    assert rows[0]["remote"]["target"] == "pi@127.0.0.1:2222"
    argv = rows[0]["argv"]
    assert argv[argv.index("--device") + 1] == "rpi" and argv[-2:] == ["--threads", "2"]
    remote_models = [argv[i + 1] for i, a in enumerate(argv) if a == "--model"]
    assert len(set(remote_models)) == 2  # same name, two folders
    assert "progress: 1/1" in lines  # remote stderr streamed
    assert leftovers(local_device["root"]) == []  # remote work folder removed
    assert list(private_tmp.iterdir()) == []  # local temporaries removed
    assert (Path(local_device["root"]) / "mdnet-venv-rpi").is_dir()  # the venv is kept


def test_remote_crash_is_one_line_and_cleans_up(local_device, wheel, models, private_tmp):
    with pytest.raises(BenchFailedError) as info:
        run(local_device, wheel, models, bench_args=["--crash"])
    assert "exit 1" in str(info.value) and "boom" in str(info.value)
    assert leftovers(local_device["root"]) == [] and list(private_tmp.iterdir()) == []


def test_keep_remote_keeps_the_work_folder(local_device, wheel, models):
    run(local_device, wheel, models, keep_remote=True)
    assert len(leftovers(local_device["root"])) == 1


def test_interrupted_transfer_cleans_up_over_a_new_connection(local_device, wheel, models, private_tmp):
    LocalSession.fail_put_after = 2
    with pytest.raises(UnavailableError, match="transfer interrupted"):
        run(local_device, wheel, models)
    assert len(LocalSession.instances) == 2  # the reconnect for clean-up
    assert any("rm -rf" in c for c in LocalSession.instances[1].commands)
    assert leftovers(local_device["root"]) == [] and list(private_tmp.iterdir()) == []


def test_no_venv_without_setup(local_device, wheel, models):
    import shutil

    shutil.rmtree(Path(local_device["root"]) / "mdnet-venv-rpi")
    with pytest.raises(InputError, match="re-run with --setup"):
        run(local_device, wheel, models)
    assert sorted(p.name for p in Path(local_device["root"]).iterdir()) == ["mdnet-venv-jetson"]  # untouched


def test_no_python(local_device, wheel, models):
    with pytest.raises(UnavailableError, match="no /nonexistent/python3 on the device"):
        run(local_device, wheel, models, remote_python="/nonexistent/python3")


def test_full_disk_is_detected_before_copying(local_device, wheel, models, monkeypatch):
    from mdnet_deploy.remote import workspace

    monkeypatch.setattr(workspace, "PROBE", workspace.PROBE.replace("shutil.disk_usage(work).free", "1000"))
    with pytest.raises(UnavailableError, match="not enough disk space"):
        run(local_device, wheel, models)
    assert leftovers(local_device["root"]) == []


def test_missing_model_is_input_error(local_device, wheel, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        run_remote_bench(
            local_device["target"], [tmp_path / "nope.tflite"], None, wheel=wheel, session_factory=LocalSession
        )
    assert LocalSession.instances == []  # refused before any connection


def test_fleet_merges_rows_and_reports_failures(local_device, wheel, models):
    paths, ev = models
    good = local_device["target"]
    bad = parse_target("pi@127.0.0.1:1", name="broken")

    def bench(t, *a, **kw):
        if t is bad:
            raise UnavailableError("broken: cannot connect to 127.0.0.1:1 (connection refused)")
        return run_remote_bench(t, *a, **kw)

    lines = []
    rows = run_fleet(
        [bad, good],
        paths,
        ev,
        [],
        bench=bench,
        progress=lines.append,
        max_parallel=2,
        remote_root=local_device["root"],
        wheel=wheel,
        session_factory=LocalSession,
    )
    assert [(r["remote"]["target"], r["status"]) for r in rows] == [
        ("broken", "failed"),
        ("broken", "failed"),
        (good.label, "ok"),
        (good.label, "ok"),
    ]
    assert "connection refused" in rows[0]["reason"]
    assert any(l.startswith("[broken] failed:") for l in lines)


def test_every_command_sent_was_quoted(local_device, wheel, models):
    run(local_device, wheel, models)
    import shlex

    for line in LocalSession.instances[0].commands:
        assert quote_command(shlex.split(line)) == line


def test_engine_is_built_on_the_device_and_fetched(local_device, wheel, tmp_path, private_tmp):
    from mdnet_deploy.remote import build_remote_engine

    onnx = tmp_path / "m.int8.onnx"
    onnx.write_bytes(b"onnx")
    out = tmp_path / "out" / "m.int8.engine"
    out.parent.mkdir()
    jetson = local_device["target"].with_(device="jetson")
    got = build_remote_engine(
        jetson, onnx, out, ["--int8"], remote_root=local_device["root"], wheel=wheel, session_factory=LocalSession
    )
    assert got == out and out.read_bytes() == b"ENGINE"
    assert (tmp_path / "out" / "m.int8.engine.json").read_text() == '{"format": "engine"}'
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.int8.engine", "m.int8.engine.json"]
    assert leftovers(local_device["root"]) == [] and list(private_tmp.iterdir()) == []
    with pytest.raises(InputError, match="built on a Jetson"):
        build_remote_engine(local_device["target"], onnx, out, wheel=wheel, session_factory=LocalSession)
