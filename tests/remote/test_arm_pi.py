"""Against the emulated Raspberry Pi (arm64 Debian under qemu-user): ``make test-arm``.

Timings under emulation mean nothing: these tests assert behaviour only.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mdnet_deploy.errors import BenchFailedError, InputError, UnavailableError
from mdnet_deploy.remote import check_remote_device, run_fleet, run_remote_bench
from mdnet_deploy.remote.session import Session

from .conftest import free_port

pytestmark = [pytest.mark.arm, pytest.mark.timeout(900)]

MAKE_TFLITE = r"""
import sys, torch, litert_torch
from litert_torch.quantize.pt2e_quantizer import get_symmetric_quantization_config, PT2EQuantizer
from litert_torch.quantize.quant_config import QuantConfig
from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e, convert_pt2e
torch.manual_seed(0)
class Tiny(torch.nn.Module):  # NHWC in, 10 logits out: enough to exercise the device path
    def __init__(self):
        super().__init__(); self.c = torch.nn.Conv2d(3, 8, 3, stride=2); self.f = torch.nn.Linear(8, 10)
    def forward(self, x):
        return self.f(torch.relu(self.c(x.permute(0, 3, 1, 2))).mean((2, 3)))
m, x = Tiny().eval(), (torch.rand(1, 32, 32, 3),)
q = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
p = prepare_pt2e(torch.export.export(m, x).module(), q); p(*x); p = convert_pt2e(p, fold_quantize=False)
litert_torch.convert(p, x, quant_config=QuantConfig(pt2e_quantizer=q)).export(sys.argv[1])
"""


@pytest.fixture(scope="module")
def common(pi, wheel):
    return dict(known_hosts=pi.known_hosts, wheel=wheel, connect_timeout=20, io_timeout=120)


@pytest.fixture(scope="module")
def set_up(pi, common):
    """--setup once for the module (creates or updates the device venv)."""
    lines: list[str] = []
    info = check_remote_device(pi.target, setup=True, progress=lines.append, **common)
    return info, lines


@pytest.fixture(scope="module")
def int8_tflite(tmp_path_factory):
    pytest.importorskip("litert_torch", reason="litert-torch is needed to make the test INT8 TFLite model")
    from mdnet_deploy.artifact import ArtifactMeta, Preprocessing, TensorSpec, write_meta

    out = tmp_path_factory.mktemp("model with space") / "tiny;int8.tflite"
    proc = subprocess.run([sys.executable, "-c", MAKE_TFLITE, str(out)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"could not make the INT8 TFLite test model: {proc.stderr.strip().splitlines()[-1:]}")
    meta = ArtifactMeta(
        format="tflite",
        precision="int8",
        num_classes=10,
        labels=[str(i) for i in range(10)],
        input=TensorSpec(shape=[1, 32, 32, 3], layout="NHWC"),
        output=TensorSpec(name="logits", shape=[1, 10], layout="NC"),
        preprocessing=Preprocessing(size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3),
    )
    write_meta(out, meta)
    return out


@pytest.fixture(scope="module")
def eval_npz(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("eval") / "eval.npz"
    np.savez(
        path,
        x=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8),
        y=rng.integers(0, 10, 20).astype(np.int64),
        labels=np.array([str(i) for i in range(10)]),
    )
    return path


def remote_leftovers(pi, common) -> list[str]:
    with Session(pi.target, known_hosts=common["known_hosts"]) as s:
        res = s.run(["sh", "-c", "ls -d ~/.cache/mdnet-deploy/mdnet-run-* 2>/dev/null; true"], timeout=60)
    return res.stdout.split()


def test_setup_installs_the_device_side(pi, set_up):
    info, lines = set_up
    assert info["machine"] == "aarch64" and info["python"].startswith("3.11")
    assert info["emulated"] is True  # qemu-user: reports must say so
    assert info["version"].endswith("0.1.0")
    assert info["runtime"] == {"module": "ai_edge_litert.interpreter", "ok": True, "reason": None}
    assert any("installing" in line for line in lines)


def test_int8_tflite_bench_with_eval(pi, common, set_up, int8_tflite, eval_npz):
    lines: list[str] = []
    try:
        rows = run_remote_bench(
            pi.target,
            [int8_tflite],
            eval_npz,
            ["--warmup", "2", "--iterations", "5"],
            progress=lines.append,
            timeout=600,
            **common,
        )
    except (BenchFailedError, UnavailableError) as exc:
        if "not implemented yet" in str(exc):
            pytest.skip("the device-side bench command is not implemented yet (contract only)")
        raise
    assert len(rows) == 1
    row = rows[0]
    assert row["model"]["path"] == str(int8_tflite)
    assert row["remote"]["emulated"] is True and "emulated" in row["device"]["name"]
    assert row["accuracy"]["n"] == 20
    assert any(line.startswith("running bench") for line in lines)
    assert remote_leftovers(pi, common) == []


def test_inventory_with_an_unreachable_device(pi, common, set_up, tmp_path, eval_npz):
    from mdnet_deploy.remote import load_inventory

    dead = free_port()  # loopback only, nothing listens there
    inv = tmp_path / "devices.yaml"
    inv.write_text(
        "all:\n  vars:\n    mdnet_device: rpi\n    ansible_user: pi\n    ansible_host: 127.0.0.1\n"
        f"    ansible_ssh_private_key_file: {pi.target.identity}\n"
        f"  hosts:\n    emulated-pi:\n      ansible_port: {pi.target.port}\n    gone:\n      ansible_port: {dead}\n"
    )
    targets = load_inventory(inv)
    model = tmp_path / "m.tflite"
    model.write_bytes(b"not a model")
    rows = run_fleet(targets, [model], eval_npz, [], max_parallel=2, timeout=600, **common)
    by = {r["remote"]["target"]: r for r in rows}
    assert by["gone"]["status"] == "failed" and "connection refused" in by["gone"]["reason"]
    # The emulated Pi either benches (a failed row: the model is garbage) or,
    # until the device bench exists, fails with its message: never a crash.
    assert "emulated-pi" in by
    assert remote_leftovers(pi, common) == []


def test_remote_bench_crash_is_one_line(pi, common, set_up, tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"\0" * 64)
    # An option the device bench does not know makes it exit with an error.
    with pytest.raises(BenchFailedError) as info:
        run_remote_bench(pi.target, [model], None, ["--no-such-option"], timeout=600, **common)
    assert "bench on the device failed (exit" in str(info.value) and "\n" not in str(info.value)
    assert remote_leftovers(pi, common) == []


def test_unknown_host_key_refused(pi, common, tmp_path):
    with pytest.raises(InputError, match="--accept-new-host-key"):
        check_remote_device(pi.target, **{**common, "known_hosts": tmp_path / "empty_known_hosts"})


def test_refused_authentication(pi, common, tmp_path):
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    with pytest.raises(InputError, match="refused authentication"):
        check_remote_device(pi.target.with_(identity=str(key)), **common)


def test_no_python_on_the_device(pi, common):
    with pytest.raises(UnavailableError, match="no python3.99 on the device"):
        check_remote_device(pi.target, remote_python="python3.99", **common)


def test_full_disk(pi, common, set_up, tmp_path, eval_npz):
    # start.sh mounts a 512 KB tmpfs at /mnt/full-disk inside the emulated Pi.
    big = tmp_path / "big.tflite"
    big.write_bytes(b"\0" * (2 << 20))
    with pytest.raises(UnavailableError, match="disk") as info:
        run_remote_bench(pi.target, [big], None, [], remote_root="/mnt/full-disk/mdnet", **common)
    assert "--remote-dir" in str(info.value)
    with Session(pi.target, known_hosts=common["known_hosts"]) as s:
        res = s.run(["ls", "-A", "/mnt/full-disk"], timeout=60)
    assert res.stdout.split() == []  # nothing left behind


def test_interrupted_transfer_leaves_nothing(pi, common, set_up, tmp_path):
    class DroppingSession(Session):
        """Cuts the link in the middle of the first artifact copy."""

        def put(self, local, remote, progress=lambda _: None):
            if str(local).endswith(".tflite"):
                self.client.get_transport().close()
            super().put(local, remote, progress)

    model = tmp_path / "m.tflite"
    model.write_bytes(b"\0" * 4096)
    with pytest.raises(UnavailableError, match="interrupted|connection lost"):
        run_remote_bench(pi.target, [model], None, [], session_factory=DroppingSession, **common)
    assert remote_leftovers(pi, common) == []
