"""`bench --profile`: the 10 slowest layers in the terminal, every layer in the JSON, the flag sent to devices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import run


def _bench(model: Path, out: Path, *options: str):
    """`bench --device host -m MODEL --power-meter none --json OUT` with ``options``."""
    return run("bench", "--device", "host", "-m", model, "--power-meter", "none", *options, "--json", out)


def test_profile_top_layers_and_json(tiny_onnx: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "r.json"
    res = _bench(tiny_onnx, out, "--warmup", "2", "--iterations", "5", "--threads", "1", "--profile")
    assert res.exit_code == 0, res.output
    assert "Top 10 layers: model.onnx (onnxruntime)" in res.output
    assert "transform.attn" in res.output and "share %" in res.output
    profile = json.loads(out.read_text())[0]["profile"]
    assert profile["available"] and profile["runtime"] == "onnxruntime" and profile["runs"] == 20
    assert len(profile["layers"]) > 10  # the JSON keeps every layer, not just the top 10


def test_without_profile_rows_have_none(tiny_onnx: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "r.json"
    res = _bench(tiny_onnx, out, "--warmup", "1", "--iterations", "3")
    assert res.exit_code == 0, res.output
    assert "Top 10 layers" not in res.output and "profile" not in json.loads(out.read_text())[0]


def test_profile_flag_travels_to_devices_alone() -> None:
    import click

    from mdnet_deploy.commands.bench import command, pass_through

    ctx = click.Context(command)
    values = {}
    for p in command.params:
        values[p.name] = p.get_default(ctx)
    values.update(profile=True, iterations=7)
    ctx.params = values
    from click.core import ParameterSource

    for name in values:
        ctx.set_parameter_source(name, ParameterSource.DEFAULT)
    ctx.set_parameter_source("profile", ParameterSource.COMMANDLINE)
    ctx.set_parameter_source("iterations", ParameterSource.COMMANDLINE)
    assert pass_through(ctx, values) == ["--iterations", "7", "--profile"]
