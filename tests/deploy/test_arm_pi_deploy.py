"""``deploy --device rpi --host`` against the emulated Raspberry Pi (``make test-arm``; skipped otherwise).

TFLite candidates are built here and benched on the (emulated) Pi, accuracy
by its aarch64 kernels. Timings under emulation mean nothing, so the choice
is made with ``--objective size`` and checked against the rows the run wrote.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mdnet_deploy.remote import parse_target
from tests.helpers.cli import run as run_cli
from tests.helpers.deploy import quick_args

pytestmark = [pytest.mark.arm, pytest.mark.timeout(1800)]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pi() -> tuple[str, Path, Path]:
    spec = os.environ.get("MDNET_DEPLOY_TEST_PI")
    if not spec:
        pytest.skip("emulated Raspberry Pi not running: run 'make test-arm' (sets MDNET_DEPLOY_TEST_PI)")
    cache = Path(os.environ.get("MDNET_DEPLOY_TEST_PI_DIR", REPO / ".cache" / "emulated-pi"))
    key = cache / "id_ed25519"
    if not key.is_file():
        pytest.skip(f"emulated Raspberry Pi key {key} missing: run 'make test-arm'")
    parse_target(spec, device="rpi")  # a malformed spec fails here, not inside the deploy
    return spec, key, cache / "known_hosts"


def test_deploy_to_the_emulated_pi_chooses_by_size_on_the_pis_own_accuracy(pi, tiny_ckpt, tmp_path):
    spec, key, known_hosts = pi
    out = tmp_path / "out"
    r = run_cli(
        "deploy",
        tiny_ckpt,
        "--device",
        "rpi",
        "--host",
        spec,
        "--identity",
        key,
        "--known-hosts",
        known_hosts,
        "--setup",
        *quick_args(warmup="1", iterations=3),
        "--objective",
        "size",
        "-o",
        out,
    )
    doc = json.loads((out / "deploy.json").read_text())
    (dev,) = doc["devices"]
    assert [c["name"] for c in dev["candidates"]] == ["tflite-fp32", "tflite-fp16", "tflite-int8"]
    for c in dev["candidates"]:
        assert c["bench"]["status"] != "failed", c["bench"]
        assert c["bench"]["remote"]["emulated"] and c["bench"]["remote"]["machine"] == "aarch64"
        assert c["bench"]["accuracy"]["n"] == 40
    assert r.exit_code == 0, r.output
    within = [c for c in dev["candidates"] if c["outcome"] in ("chosen", "lost")]
    smallest = min(within, key=lambda c: Path(c["file"]).stat().st_size)
    assert dev["chosen"] == smallest["name"] and dev["reference"] == "tflite-fp32"
    assert (out / "rpi" / "best.tflite").read_bytes() == Path(smallest["file"]).read_bytes()
    assert (out / "rpi" / "best.tflite.json").is_file()
