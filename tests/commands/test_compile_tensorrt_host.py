"""compile --target tensorrt without TensorRT: one short line; --host / --inventory reach remote/."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mdnet_deploy.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_no_tensorrt_here_is_one_short_line(tiny_onnx, tmp_path, monkeypatch):
    from mdnet_deploy.export.tensorrt.build import tensorrt_bindings
    from mdnet_deploy.export.tensorrt.trtexec import find_trtexec

    if tensorrt_bindings()[0] or find_trtexec() is not None:
        pytest.skip("TensorRT is installed here")
    res = invoke("compile", tiny_onnx, "--target", "tensorrt", "--precision", "fp16", "-o", tmp_path / "m.engine")
    assert res.exit_code != 0
    line = res.output.strip()
    assert "\n" not in line and len(line) < 160, line
    assert (
        line.startswith("error: TensorRT is not installed here") and "--host" in line and 'section "TensorRT"' in line
    )
    assert not (tmp_path / "m.engine").exists()


def test_host_unreachable_is_one_line(tiny_onnx, tmp_path):
    from tests.remote.conftest import free_port

    port = free_port()
    res = invoke(
        "compile",
        tiny_onnx,
        "--target",
        "tensorrt",
        "--precision",
        "fp16",
        "-o",
        tmp_path / "m.engine",
        "--host",
        f"nvidia@127.0.0.1:{port}",
        "--known-hosts",
        tmp_path / "kh",
    )
    assert res.exit_code != 0
    assert f"127.0.0.1:{port}" in res.output and "connection refused" in res.output
    assert not (tmp_path / "m.engine").exists()


def test_inventory_with_several_hosts_needs_a_name(tiny_onnx, tmp_path):
    inv = tmp_path / "devices.ini"
    inv.write_text("[jetsons]\norin-1 ansible_host=10.0.0.1\norin-2 ansible_host=10.0.0.2\n")
    res = invoke(
        "compile",
        tiny_onnx,
        "--target",
        "tensorrt",
        "--precision",
        "int8",
        "-o",
        tmp_path / "m.engine",
        "--inventory",
        inv,
    )
    assert res.exit_code != 0 and "orin-1, orin-2" in res.output and "--host NAME" in res.output


def test_host_is_not_an_option_of_tflite(tiny_onnx, tmp_path):
    res = invoke(
        "compile", tiny_onnx, "--target", "tflite", "--precision", "fp32", "-o", tmp_path / "m.tflite", "--host", "pi@x"
    )
    assert res.exit_code != 0 and "--host is not an option of --target tflite" in res.output
