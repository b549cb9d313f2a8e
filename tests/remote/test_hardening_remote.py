"""Issue 10 (remote): robust known_hosts, no paramiko tracebacks, the device job stopped, options validated."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mdnet_deploy.errors import InputError, UnavailableError
from mdnet_deploy.remote import parse_target, run_remote_bench
from mdnet_deploy.remote.inventory import parse_inventory
from mdnet_deploy.remote.session import Session
from tests.helpers.cli import assert_one_line_error, run

from .conftest import LocalSession

OTHER_KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def session(server, known_hosts, **kw):
    target = parse_target(f"tester@127.0.0.1:{server.port}", identity=server.user_key_file)
    return Session(target, known_hosts=known_hosts, connect_timeout=5, **kw)


def test_known_hosts_with_markers_and_a_truncated_key(ssh_server, tmp_path):
    """A known_hosts with @cert-authority, @revoked (another key) and a truncated key: was InvalidHostKey traceback."""
    name = f"[127.0.0.1]:{ssh_server.port}"
    kh = tmp_path / "known_hosts"
    kh.write_text(
        f"@cert-authority *.example.com ssh-ed25519 {OTHER_KEY}\n"
        f"@revoked * ssh-ed25519 {OTHER_KEY}\n"
        f"broken.example.com ssh-rsa AAAAB3NzaC1yc2E\n"
        "# a comment\n\n"
        f"{name} ssh-ed25519 {ssh_server.host_key.get_base64()}"  # no final newline
    )
    with session(ssh_server, kh) as s:
        assert s.alive


def test_revoked_host_key_is_refused(ssh_server, tmp_path):
    """`@revoked * <the device's key>`: OpenSSH refuses that host; so does the bench."""
    kh = tmp_path / "known_hosts"
    key = ssh_server.host_key.get_base64()
    kh.write_text(f"@revoked * ssh-ed25519 {key}\n[127.0.0.1]:{ssh_server.port} ssh-ed25519 {key}\n")
    with pytest.raises(InputError, match="@revoked"):
        session(ssh_server, kh).connect()


def test_accepting_a_key_after_a_line_without_newline(ssh_server, tmp_path):
    """--accept-new-host-key appended its line to a last line without a newline, merging the two."""
    kh = tmp_path / "known_hosts"
    kh.write_text(f"other.example.com ssh-ed25519 {OTHER_KEY}")
    with session(ssh_server, kh, accept_new_host_key=True) as s:
        assert s.alive
    assert kh.read_text().splitlines()[0] == f"other.example.com ssh-ed25519 {OTHER_KEY}"
    assert len(kh.read_text().splitlines()) == 2


@pytest.fixture
def not_ssh_port():
    """A loopback port that answers like a web server, not an SSH server."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    stop = threading.Event()

    def serve():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"x" * 200 + b"\r\n")
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        t.join(timeout=5)
        sock.close()


def test_bench_host_that_is_not_ssh_through_the_cli(not_ssh_port, tmp_path):
    """`mdnet-deploy bench -m m.tflite --host pi@127.0.0.1:<web port>`: paramiko's thread printed two tracebacks."""
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "mdnet_deploy",
            "bench",
            "-m",
            str(model),
            "--host",
            f"pi@127.0.0.1:{not_ssh_port}",
            "--known-hosts",
            str(tmp_path / "kh"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert res.returncode == 6, res.stderr
    assert "Traceback" not in res.stderr and "paramiko" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "SSH server" in errors[0]


def test_port_that_is_not_ssh_gives_one_line_and_no_traceback(not_ssh_port, tmp_path, capfd):
    """`bench --host pi@127.0.0.1:<an HTTP port>`: paramiko's transport thread printed its own tracebacks."""
    s = Session(parse_target(f"pi@127.0.0.1:{not_ssh_port}"), known_hosts=tmp_path / "kh", connect_timeout=3)
    with pytest.raises(UnavailableError) as info:
        s.connect()
    time.sleep(0.3)  # the transport thread logs after the client gave up
    assert "SSH server" in str(info.value) and "\n" not in str(info.value)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "paramiko" not in err


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie is dead, only not yet reaped


def _wait_dead(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


JOB = 'sleep 300 & echo $! > "$1"; echo started >&2; wait'


def test_timeout_kills_the_remote_process_group(ssh_exec_server, tmp_path):
    """A device bench past --remote-timeout: the channel was closed but the bench (and its children) ran on."""
    pidfile = tmp_path / "pid"
    with session(ssh_exec_server, tmp_path / "kh", accept_new_host_key=True) as s:
        with pytest.raises(UnavailableError, match="did not finish within"):
            s.run(["sh", "-c", JOB, "sh", str(pidfile)], timeout=2, group=sys.executable, what="the remote bench")
    pid = int(pidfile.read_text())
    assert _wait_dead(pid), "the device-side job outlived the time-out"


def test_interrupt_kills_the_remote_process_group(ssh_exec_server, tmp_path):
    """Ctrl-C / SIGTERM during a remote bench (KeyboardInterrupt in the wait loop): the device-side bench kept running."""
    pidfile = tmp_path / "pid"

    def on_stderr(line: str) -> None:
        if line == "started":
            raise KeyboardInterrupt  # where a signal lands: while streaming the device's progress

    with session(ssh_exec_server, tmp_path / "kh", accept_new_host_key=True) as s:
        with pytest.raises(KeyboardInterrupt):
            s.run(["sh", "-c", JOB, "sh", str(pidfile)], timeout=60, on_stderr=on_stderr, group=sys.executable)
        assert s.alive
    pid = int(pidfile.read_text())
    assert _wait_dead(pid), "the device-side job outlived the interrupt"


def test_group_run_reports_output_and_status(ssh_exec_server, tmp_path):
    """The launcher is invisible when nothing goes wrong: stdout, stderr lines and exit status pass through."""
    with session(ssh_exec_server, tmp_path / "kh", accept_new_host_key=True) as s:
        res = s.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=30, group=sys.executable)
    assert res.exit_status == 3 and res.stdout.strip() == "out" and res.stderr_tail == ["err"]


@pytest.mark.parametrize("remote_dir", ["/tmp/a=b", "~/x:y", "-rf", "/tmp/../etc", "a b\nc", ""])
def test_remote_dir_is_validated(remote_dir, tmp_path):
    """`bench --host pi@dev --remote-dir /tmp/a=b`: `env` took the venv python's path as a variable assignment."""
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    assert_one_line_error(
        run("bench", "-m", model, "--host", "pi@127.0.0.1", "--remote-dir", remote_dir), "--remote-dir"
    )


def test_inventory_ansible_user_is_validated(tmp_path):
    """`ansible_user: "-oProxyCommand=x"` in an inventory was taken as is; --host's user@ was already checked."""
    inv = tmp_path / "inv.yml"
    inv.write_text(
        'all:\n  hosts:\n    pi1:\n      ansible_host: 127.0.0.1\n      ansible_user: "-oProxyCommand=x"\n'
        "      mdnet_device: rpi\n"
    )
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    assert_one_line_error(run("bench", "-m", model, "--inventory", inv), "ansible_user", "-oProxyCommand=x")


def test_missing_inventory_key_hint_names_the_inventory(tmp_path):
    """An inventory host whose ansible_ssh_private_key_file is missing: the hint said --identity, which --inventory refuses."""
    [target] = parse_inventory(
        {
            "all": {
                "hosts": {
                    "pi1": {
                        "ansible_host": "127.0.0.1",
                        "mdnet_device": "rpi",
                        "ansible_ssh_private_key_file": str(tmp_path / "nokey"),
                    }
                }
            }
        }
    )
    with pytest.raises(InputError) as info:
        Session(target, known_hosts=tmp_path / "kh").connect()
    assert "ansible_ssh_private_key_file" in str(info.value) and "--identity" not in str(info.value)


def test_intermediate_folders_of_a_custom_remote_dir_are_removed(local_device, wheel, tmp_path):
    """`bench --host ... --remote-dir /x/new/a/b`: the run folder went, but new/a/b stayed on the device."""
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    root = tmp_path / "device" / "new" / "a" / "b"
    (tmp_path / "device").mkdir()
    with pytest.raises(InputError, match="--setup"):  # no venv there: fails after the folders were made
        run_remote_bench(
            local_device["target"], [model], remote_root=str(root), wheel=wheel, session_factory=LocalSession
        )
    assert os.listdir(tmp_path / "device") == []


def test_fleet_worker_stops_its_device_job_when_the_run_is_interrupted(ssh_exec_server, tmp_path):
    """Ctrl-C during `bench --inventory`: signals reach the main thread only; worker threads ran their device benches on."""
    from mdnet_deploy.remote.session import cancel_running

    pidfile = tmp_path / "pid"
    outcome: list[BaseException] = []
    started = threading.Event()

    def worker() -> None:
        with session(ssh_exec_server, tmp_path / "kh", accept_new_host_key=True) as s:
            try:
                s.run(
                    ["sh", "-c", JOB, "sh", str(pidfile)],
                    timeout=60,
                    group=sys.executable,
                    on_stderr=lambda line: started.set() if line == "started" else None,
                )
            except BaseException as exc:  # noqa: BLE001 - the test inspects what the worker saw
                outcome.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    try:
        assert started.wait(30)
        cancel_running()  # what run_fleet does when the main thread is interrupted
        t.join(30)
    finally:
        cancel_running(False)
    assert outcome and isinstance(outcome[0], KeyboardInterrupt)
    assert _wait_dead(int(pidfile.read_text())), "the device-side job outlived the interrupt"
