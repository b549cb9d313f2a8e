"""Remote command lines: built from lists, every part quoted."""

import shlex

import pytest

from mdnet_deploy.errors import InputError
from mdnet_deploy.remote.bench import BENCH_RESERVED, bench_argv, compile_argv
from mdnet_deploy.remote.session import quote_command
from mdnet_deploy.remote.workspace import PROBE, reject_reserved

NASTY = "/home/pi/my models/m; rm -rf ~ $(reboot) `id` 'q' \"d\".tflite"


def test_bench_command_keeps_every_argument_whole():
    argv = bench_argv(
        "/v/bin/python",
        "/w/mdnet_deploy-0.1.0-py3-none-any.whl",
        "rpi",
        [NASTY, "/w/m1/b.tflite"],
        "/w/eval set.npz",
        "/w/out.json",
        ["--threads", "4", "--note", "a b;c"],
    )
    line = quote_command(argv)
    assert shlex.split(line) == argv  # the remote shell sees exactly the list
    assert argv[argv.index("--model") + 1] == NASTY
    assert argv[:3] == ["env", "PYTHONPATH=/w/mdnet_deploy-0.1.0-py3-none-any.whl", "PYTHONUNBUFFERED=1"]
    assert argv[argv.index("--eval") + 1] == "/w/eval set.npz"
    assert argv[-4:] == ["--threads", "4", "--note", "a b;c"]


def test_compile_command_is_quoted():
    argv = compile_argv("/v/bin/python", "/w/x.whl", NASTY, "/w/out.engine", ["--fp16"])
    assert shlex.split(quote_command(argv)) == argv
    assert argv[argv.index("tensorrt") + 1] == NASTY


def test_probe_script_travels_as_one_argument():
    argv = ["python3", "-c", PROBE, "~/dir with space;x", "mdnet-venv-rpi"]
    assert shlex.split(quote_command(argv)) == argv


@pytest.mark.parametrize("opt", ["--model", "--json=/tmp/x", "--eval", "--device"])
def test_pass_through_cannot_override_what_the_run_sets(opt):
    with pytest.raises(InputError, match="set by the remote run"):
        reject_reserved(["--threads", "2", opt], BENCH_RESERVED, "bench options")


def test_empty_command_refused():
    with pytest.raises(ValueError):
        quote_command([])
