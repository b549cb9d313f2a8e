"""The trtexec build path end to end, with a fake trtexec.

The fake writes a dummy engine and prints a real trtexec summary: this
tests our command-line plumbing, metadata and atomic writes, not TensorRT.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnx")

from mdnet_deploy.artifact import read_meta, sidecar_path  # noqa: E402
from mdnet_deploy.devices import _sys  # noqa: E402
from mdnet_deploy.errors import ConversionError, UnavailableError  # noqa: E402
from mdnet_deploy.export.tensorrt.build import build_engine  # noqa: E402
from mdnet_deploy.export.tensorrt.smoke import write_tiny_classifier  # noqa: E402
from mdnet_deploy.fsutil import sha256_file  # noqa: E402

SUMMARY = Path("/work/shared/fixtures/devices/trtexec_summary_trt82.txt")

FAKE = """#!{python}
import json, os, sys
args = sys.argv[1:]
code = os.environ.get("FAKE_TRTEXEC_CODE", "8502")
onnx = [a.split("=", 1)[1] for a in args if a.startswith("--onnx=")]
with open(os.environ["FAKE_TRTEXEC_LOG"], "a") as f:
    f.write(json.dumps(args) + "\\n")
if onnx:
    with open(os.environ["FAKE_TRTEXEC_LOG"] + ".onnx", "wb") as f:
        f.write(open(onnx[0], "rb").read())  # what it was given, for the test to inspect
print("&&&& RUNNING TensorRT.trtexec [TensorRT v" + code + "] # trtexec " + " ".join(args))
if "--help" in args:
    print("=== Model Options ===")
    sys.exit(0)
if os.environ.get("FAKE_TRTEXEC_FAIL"):
    print("[I] errorOnTimingCacheMiss: Disabled")
    print("[I] Start parsing network model")
    print("[E] [TRT] ModelImporter.cpp:773: fake parse failure in node 3")
    print("&&&& FAILED TensorRT.trtexec [TensorRT v8502]")
    sys.exit(1)
engine = [a.split("=", 1)[1] for a in args if a.startswith("--saveEngine=")][0]
with open(engine, "wb") as f:
    f.write(b"FAKE-ENGINE")
print("[I] === Device Information ===")
print("[I] Selected Device: Orin")
print("[I] Compute Capability: 8.7")
if any(a.startswith("--useDLACore") for a in args):
    print("[W] [TRT] Layer '/Flatten' (SHUFFLE): Unsupported on DLA. Switching this layer's device type to GPU.")
    print("[W] [TRT] Layer '/Gemm' (MATRIX_MULTIPLY): Unsupported on DLA. Switching this layer's device type to GPU.")
print("[I] Engine built in 1.2 sec.")
sys.stdout.write(open({summary!r}).read())
print("&&&& PASSED TensorRT.trtexec [TensorRT v" + code + "]")
"""


@pytest.fixture
def device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pretend Jetson: /etc/nv_tegra_release, a device-tree model, no nvidia-smi."""
    etc = tmp_path / "root" / "etc"
    etc.mkdir(parents=True)
    (etc / "nv_tegra_release").write_text(
        "# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref, EABI: aarch64, DATE: Sun Mar 19 15:19:21 UTC 2023\n"
    )
    model = tmp_path / "sys" / "firmware" / "devicetree" / "base"
    model.mkdir(parents=True)
    (model / "model").write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\x00")
    monkeypatch.setenv("MDNET_DEPLOY_ETC_ROOT", str(etc))  # the etc folder itself, as everywhere
    monkeypatch.setenv("MDNET_DEPLOY_SYSFS_ROOT", str(tmp_path / "sys"))
    monkeypatch.setenv("MDNET_DEPLOY_PROC_ROOT", str(tmp_path / "proc"))
    monkeypatch.setenv("MDNET_DEPLOY_NVIDIA_SMI", str(tmp_path / "no-nvidia-smi"))
    monkeypatch.setenv("FAKE_TRTEXEC_LOG", str(tmp_path / "argv.jsonl"))
    monkeypatch.delenv("FAKE_TRTEXEC_FAIL", raising=False)
    monkeypatch.delenv("FAKE_TRTEXEC_CODE", raising=False)
    # The GPU facts must come from trtexec's output, not from this machine.
    monkeypatch.setitem(sys.modules, "cuda", None)
    fake = tmp_path / "fake-trtexec"
    fake.write_text(FAKE.format(python=sys.executable, summary=str(SUMMARY)))
    fake.chmod(0o755)
    return fake


def _calls(tmp_path: Path) -> list[list[str]]:
    log = tmp_path / "argv.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_int8_dynamic_build_writes_engine_and_metadata(tmp_path: Path, device: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    onnx = write_tiny_classifier(out_dir / "model.int8.onnx", qdq=True)
    engine = out_dir / "model.engine"

    meta = build_engine(onnx, engine, "int8", workspace_mib=64, batch="dynamic:1,8,32", trtexec=device)

    assert engine.read_bytes() == b"FAKE-ENGINE"
    assert read_meta(engine) == meta
    assert meta.format == "engine" and meta.precision == "int8"
    assert meta.parent == {"path": str(onnx.resolve()), "sha256": sha256_file(onnx), "bytes": onnx.stat().st_size}
    assert meta.num_classes == 10 and meta.labels == [f"class{i}" for i in range(10)]  # carried from the ONNX
    assert meta.input.name == "input" and meta.input.shape == ["batch", 3, 32, 32]
    assert meta.tools["tensorrt"] == "8.5.2"
    t = meta.target
    assert t is not None
    assert (t["tensorrt"], t["gpu"], t["compute_capability"]) == ("8.5.2", "Orin", "8.7")
    assert (t["l4t"], t["jetpack"], t["board"]) == ("35.3.1", "5.1.1", "NVIDIA Jetson AGX Orin Developer Kit")
    b = t["build"]
    assert b["builder"] == "trtexec" and b["trtexec"] == str(device)
    assert b["batch"] == {"min": 1, "opt": 8, "max": 32} and b["workspace_mib"] == 64 and b["dla_core"] is None
    assert b["command"] == (
        f"mdnet-deploy compile {onnx.resolve()} --target tensorrt --precision int8 --workspace 64 "
        f"--batch dynamic:1,8,32 -o {engine.resolve()} --force"
    )
    assert f"--saveEngine={engine}" in b["trtexec_command"]
    assert b["trtexec_perf"]["latency_ms"]["mean"] == 15.07
    assert b["trtexec_perf"]["throughput_ips"] == pytest.approx(73.4985 * 8)

    help_call, build_call = _calls(tmp_path)
    assert help_call == ["--help"]  # asked for its version to pick the workspace flag
    assert build_call[0] == f"--onnx={onnx}"
    assert build_call[2:] == [
        "--int8",
        "--fp16",
        "--memPoolSize=workspace:64M",
        "--minShapes=input:1x3x32x32",
        "--optShapes=input:8x3x32x32",
        "--maxShapes=input:32x3x32x32",
    ]
    saved = Path(build_call[1].split("=", 1)[1])
    assert saved.parent == out_dir and saved.name.endswith(".partial")  # atomic: temp beside the target
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "model.engine",
        "model.engine.json",
        "model.int8.onnx",
        "model.int8.onnx.json",
    ]


def test_fp16_static_batch_and_dla(tmp_path: Path, device: Path) -> None:
    onnx = write_tiny_classifier(tmp_path / "model.onnx", qdq=False, batch=4)
    meta = build_engine(onnx, tmp_path / "model.fp16.engine", "fp16", batch=4, dla_core=0, trtexec=device)
    help_call, call = _calls(tmp_path)  # the version decides the precision flags: always asked
    assert help_call == ["--help"]
    assert call[2:] == ["--fp16", "--useDLACore=0", "--allowGPUFallback"]  # static ONNX: no shapes
    assert meta.precision == "fp16"
    assert meta.input.shape == [4, 3, 32, 32] and meta.output.shape == [4, 10]
    assert meta.target is not None and meta.target["build"]["dla_core"] == 0
    assert meta.target["device"] == "dla:0" and meta.target["typing"] == "weak"
    assert meta.target["build"]["gpu_fallback_layers"] == ["/Flatten", "/Gemm"]


def test_force_replaces_engine_and_sidecar(tmp_path: Path, device: Path) -> None:
    onnx = write_tiny_classifier(tmp_path / "m.int8.onnx")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"OLD")
    sidecar_path(engine).write_text('{"format": "engine", "precision": "fp16"}')
    build_engine(onnx, engine, "int8", force=True, trtexec=device)
    assert engine.read_bytes() == b"FAKE-ENGINE"
    assert read_meta(engine).precision == "int8"  # type: ignore[union-attr]


def test_trtexec_failure_leaves_no_engine(tmp_path: Path, device: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TRTEXEC_FAIL", "1")
    onnx = write_tiny_classifier(tmp_path / "m.int8.onnx")
    engine = tmp_path / "m.engine"
    with pytest.raises(ConversionError, match="fake parse failure in node 3") as info:
        build_engine(onnx, engine, "int8", trtexec=device)
    assert "\n" not in str(info.value)
    assert not engine.exists() and not sidecar_path(engine).exists()
    assert not list(tmp_path.glob("*.partial"))
    assert "fake parse failure" in (tmp_path / "m.engine.trtexec.log").read_text()  # the full log, for a person


def _no_trtexec_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # bindings missing, even on a GPU machine
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("MDNET_DEPLOY_TRTEXEC", raising=False)
    monkeypatch.setattr(_sys, "TRTEXEC_LOCATIONS", (str(tmp_path / "nowhere" / "trtexec"),))


def test_without_bindings_or_trtexec_the_error_carries_the_command(
    tmp_path: Path, device: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_trtexec_anywhere(tmp_path, monkeypatch)
    onnx = write_tiny_classifier(tmp_path / "m.int8.onnx")
    with pytest.raises(UnavailableError) as info:
        build_engine(onnx, tmp_path / "m.engine", "int8", batch="dynamic:1,4,16")
    msg = str(info.value)
    assert (
        f"trtexec --onnx={onnx} --saveEngine={tmp_path / 'm.engine'} --int8 --fp16 "
        "--minShapes=input:1x3x32x32 --optShapes=input:4x3x32x32 --maxShapes=input:16x3x32x32"
    ) in msg
    assert "--system-site-packages" in msg and "--trtexec PATH" in msg and "\n" not in msg
    assert not (tmp_path / "m.engine").exists()


def test_without_bindings_a_found_trtexec_is_used(
    tmp_path: Path, device: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_trtexec_anywhere(tmp_path, monkeypatch)
    monkeypatch.setenv("MDNET_DEPLOY_TRTEXEC", str(device))
    onnx = write_tiny_classifier(tmp_path / "m.int8.onnx")
    meta = build_engine(onnx, tmp_path / "m.engine", "int8")
    assert meta.target is not None and meta.target["build"]["trtexec"] == str(device)


def test_tensorrt_11_builds_strongly_typed_fp16_from_an_fp16_onnx(
    tmp_path: Path, device: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx

    monkeypatch.setenv("FAKE_TRTEXEC_CODE", "110400")
    model = write_tiny_classifier(tmp_path / "model.onnx", qdq=False)
    meta = build_engine(model, tmp_path / "model.fp16.engine", "best", trtexec=device)
    _, call = _calls(tmp_path)
    assert not any(a in call for a in ("--fp16", "--int8", "--best", "--stronglyTyped"))  # none exist (or matter) on 11
    given = Path(call[0].split("=", 1)[1])
    assert given.name == ".model.fp16.engine.fp16.onnx.partial" and not given.exists()  # temp, removed after
    sent = onnx.load(str(tmp_path / "argv.jsonl.onnx"))
    assert {i.data_type for i in sent.graph.initializer} == {onnx.TensorProto.FLOAT16}
    assert sent.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # I/O stay float32
    assert meta.precision == "fp16"
    t = meta.target
    assert t is not None and (t["tensorrt"], t["typing"], t["device"]) == ("11.4.0", "strong", "gpu")
    assert (t["l4t"], t["jetpack"]) == ("35.3.1", "5.1.1")
    b = t["build"]
    assert b["requested_precision"] == "best" and b["fp16_onnx"] is True and b["builder_flags"] == []
    assert "--precision best" in b["command"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_tensorrt_11_int8_builds_from_a_mixed_onnx(
    tmp_path: Path, device: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx

    monkeypatch.setenv("FAKE_TRTEXEC_CODE", "110400")
    onnx_path = write_tiny_classifier(tmp_path / "m.int8.onnx")
    meta = build_engine(onnx_path, tmp_path / "m.engine", "int8", trtexec=device)
    _, call = _calls(tmp_path)
    assert call[0] == f"--onnx={tmp_path / '.m.engine.fp16.onnx.partial'}" and call[2:] == [
        "--minShapes=input:1x3x32x32",
        "--optShapes=input:1x3x32x32",
        "--maxShapes=input:1x3x32x32",
    ]  # no precision flag: the graph carries it
    sent = onnx.load(str(tmp_path / "argv.jsonl.onnx"))
    assert sent.opset_import[0].version == 19  # float16 Q/DQ scales need opset 19
    scales = {i.name: i.data_type for i in sent.graph.initializer}
    assert scales["x_scale"] == onnx.TensorProto.FLOAT16 and scales["conv_w_q"] == onnx.TensorProto.INT8
    assert meta.target is not None and meta.target["typing"] == "strong" and meta.target["build"]["fp16_onnx"] is True


def test_dla_where_it_does_not_exist_is_refused_before_building(
    tmp_path: Path, device: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx_path = write_tiny_classifier(tmp_path / "m.int8.onnx")
    model = tmp_path / "sys" / "firmware" / "devicetree" / "base" / "model"
    model.write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    with pytest.raises(UnavailableError) as info:
        build_engine(onnx_path, tmp_path / "m.engine", "int8", dla_core=0, trtexec=device)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("--dla 0: NVIDIA Jetson Orin Nano Developer Kit has no DLA")
    assert "AGX Orin" in msg and "leave --dla out" in msg
    assert [c for c in _calls(tmp_path) if c != ["--help"]] == []  # no build was started
    assert not (tmp_path / "m.engine").exists()
    monkeypatch.setenv("FAKE_TRTEXEC_CODE", "100800")  # 10.8 - 11.4.0: no DLA on any board
    model.write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\x00")
    with pytest.raises(UnavailableError, match=r"TensorRT 10\.8\.0 has no DLA support"):
        build_engine(onnx_path, tmp_path / "m.engine", "int8", dla_core=0, trtexec=device)
