"""build_engine refuses bad requests before any build starts (no TensorRT needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")

from mdnet_deploy.artifact import ArtifactMeta, write_meta  # noqa: E402
from mdnet_deploy.errors import InputError, OutputError  # noqa: E402
from mdnet_deploy.export.tensorrt.build import build_engine, inspect_onnx  # noqa: E402
from mdnet_deploy.export.tensorrt.smoke import write_tiny_classifier  # noqa: E402


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_int8_of_a_float_onnx_says_quantize_first(tmp_path: Path) -> None:
    model = write_tiny_classifier(tmp_path / "model.onnx", qdq=False)
    before = _listing(tmp_path)
    with pytest.raises(InputError) as info:
        build_engine(model, tmp_path / "model.engine", "int8")
    msg = str(info.value)
    assert "\n" not in msg
    assert "QuantizeLinear/DequantizeLinear" in msg and f"mdnet-deploy quantize {model}" in msg
    assert _listing(tmp_path) == before


def test_qdq_detection_without_the_onnx_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    qdq = write_tiny_classifier(tmp_path / "q.int8.onnx", qdq=True)
    flt = write_tiny_classifier(tmp_path / "f.onnx", qdq=False)
    monkeypatch.setitem(sys.modules, "onnx", None)  # a bare device venv
    assert inspect_onnx(qdq).has_qdq and inspect_onnx(qdq).input_shape is None
    assert not inspect_onnx(flt).has_qdq
    with pytest.raises(InputError, match="mdnet-deploy quantize"):
        build_engine(flt, tmp_path / "f.engine", "int8")


def test_fp16_of_a_qdq_onnx_is_refused(tmp_path: Path) -> None:
    model = write_tiny_classifier(tmp_path / "model.int8.onnx", qdq=True)
    with pytest.raises(InputError, match="--precision int8"):
        build_engine(model, tmp_path / "model.engine", "fp16")


def test_qoperator_onnx_is_refused(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
        "q",
        [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [1, 4]),
            helper.make_tensor_value_info("b", TensorProto.UINT8, [4, 2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 2])],
    )
    path = tmp_path / "q.onnx"
    onnx.save(helper.make_model(graph), str(path))
    write_meta(path, ArtifactMeta(format="onnx"))
    with pytest.raises(InputError, match="QOperator"):
        build_engine(path, tmp_path / "q.engine", "int8")


def test_existing_output_without_force_is_refused_and_untouched(tmp_path: Path) -> None:
    model = write_tiny_classifier(tmp_path / "model.int8.onnx", qdq=True)
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"precious")
    before = _listing(tmp_path)
    with pytest.raises(OutputError, match="--force") as info:
        build_engine(model, engine, "int8", trtexec="/nonexistent/trtexec")
    assert "\n" not in str(info.value)
    assert _listing(tmp_path) == before  # nothing written, nothing removed, no temp files


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"precision": "bf16"}, InputError, "int8, fp16, fp32, best"),
        ({"precision": "int8", "workspace_mib": 0}, InputError, "positive"),
        ({"precision": "int8", "dla_core": -1}, InputError, "DLA core"),
        ({"precision": "int8", "batch": "dynamic:4,2,1"}, InputError, "MIN <= OPT <= MAX"),
        ({"precision": "int8", "trtexec": "/nonexistent/trtexec"}, InputError, "not an executable"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict, error: type, match: str) -> None:
    model = write_tiny_classifier(tmp_path / "model.int8.onnx", qdq=True)
    with pytest.raises(error, match=match):
        build_engine(model, tmp_path / "model.engine", **kwargs)
    assert not (tmp_path / "model.engine").exists()


def test_bad_paths(tmp_path: Path) -> None:
    model = write_tiny_classifier(tmp_path / "model.int8.onnx", qdq=True)
    with pytest.raises(InputError, match="no such ONNX"):
        build_engine(tmp_path / "missing.onnx", tmp_path / "m.engine", "int8")
    with pytest.raises(OutputError, match=r"\.engine"):
        build_engine(model, tmp_path / "m.trt", "int8")


def test_fixed_batch_onnx_cannot_become_dynamic(tmp_path: Path) -> None:
    model = write_tiny_classifier(tmp_path / "model.int8.onnx", qdq=True, batch=1)
    with pytest.raises(InputError, match="fixed batch of 1"):
        build_engine(model, tmp_path / "m.engine", "int8", batch="dynamic:1,8,64")
