"""Fixtures for the remote-bench tests.

* ``LocalSession``: a stand-in for :class:`Session` whose "device" is this
  machine (commands run with subprocess from the same argument list, copies
  are file copies), to test orchestration and clean-up without SSH.
* ``ssh_server``: a real paramiko SSH server on 127.0.0.1 in a thread, to
  test host-key checks and authentication with the real client.
* ``pi``: the emulated Raspberry Pi (``make test-arm``), skipped otherwise.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from mdnet_deploy.remote.session import CommandResult, TransferError, quote_command
from mdnet_deploy.remote.target import DeviceTarget, parse_target

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- local fake
class LocalSession:
    """Runs the remote side on this machine; records every command line."""

    fail_put_after: int | None = None  # simulate a link that drops mid-copy
    instances: list[LocalSession] = []

    def __init__(self, target: DeviceTarget, **options: Any) -> None:
        self.target = target
        self.options = options
        self.io_timeout = 10.0
        self.commands: list[str] = []
        self.puts = 0
        self._alive = False
        LocalSession.instances.append(self)

    def connect(self) -> LocalSession:
        self._alive = True
        return self

    @property
    def alive(self) -> bool:
        return self._alive

    def __enter__(self) -> LocalSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._alive = False

    def run(self, argv, *, timeout, on_stderr=lambda _: None, what="", group=None) -> CommandResult:
        if group is not None:  # the real launcher, run by this machine's python
            from mdnet_deploy.remote.session import GROUP_LAUNCHER

            argv = [sys.executable, "-c", GROUP_LAUNCHER, *argv]
        line = quote_command(argv)
        self.commands.append(line)
        # Exactly what a remote shell would do with the quoted line.
        proc = subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=timeout)
        tail = [ln for ln in proc.stderr.splitlines() if not (group is not None and ln.startswith("mdnet-pgid "))]
        for ln in tail:
            on_stderr(ln)
        return CommandResult(proc.returncode, proc.stdout, tail[-50:])

    def put(self, local, remote, progress=lambda _: None) -> None:
        self.puts += 1
        if self.fail_put_after is not None and self.puts > self.fail_put_after:
            self._alive = False  # the link is gone, as after a real drop
            raise TransferError(str(local), remote, ConnectionResetError("connection reset by peer"))
        shutil.copyfile(local, remote)

    def get(self, remote, local) -> None:
        try:
            shutil.copyfile(remote, local)
        except OSError as exc:
            raise TransferError(remote, str(local), exc) from None

    def sftp(self) -> Any:
        class _S:
            def mkdir(self, path: str, mode: int = 0o777) -> None:
                os.mkdir(path, mode)

        return _S()

    def remove_tree(self, path: str, *, timeout: float = 60.0) -> None:
        self.run(["rm", "-rf", "--", path], timeout=timeout)


FAKE_BENCH = r"""#!/bin/sh
# A stand-in device-side python: honours the bench contract, writes one row per --model.
exec "{python}" - "$@" <<'PY'
import json, sys
args = sys.argv[1:]
if args[:2] != ["-m", "mdnet_deploy"]:
    sys.exit("fake python only runs -m mdnet_deploy")
models, out, i = [], None, 0
while i < len(args):
    if args[i] == "--model": models.append(args[i + 1]); i += 1
    elif args[i] == "--json": out = args[i + 1]; i += 1
    i += 1
print("progress: 1/1", file=sys.stderr, flush=True)
if args[2] == "compile":
    engine = args[args.index("-o") + 1]
    open(engine, "wb").write(b"ENGINE")
    open(engine + ".json", "w").write('{{"format": "engine"}}')
    sys.exit(0)
if "--crash" in args:
    sys.exit("Traceback: RuntimeError: boom")
rows = [{{"schema": 1, "device": {{"kind": "rpi", "name": "fake"}}, "model": {{"path": m}}, "argv": args}} for m in models]
json.dump(rows, open(out, "w"))
PY
"""


@pytest.fixture
def local_device(tmp_path: Path) -> dict[str, Any]:
    """A remote root with a ready 'venv' whose python is the fake bench."""
    root = tmp_path / "device-root"
    for kind in ("rpi", "jetson"):
        venv_bin = root / f"mdnet-venv-{kind}" / "bin"
        venv_bin.mkdir(parents=True)
        py = venv_bin / "python"
        py.write_text(FAKE_BENCH.format(python=sys.executable))
        py.chmod(0o755)
    LocalSession.instances = []
    LocalSession.fail_put_after = None
    return {"root": str(root), "target": parse_target("pi@127.0.0.1:2222")}


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mdnet_deploy.remote.wheel import build_wheel

    return build_wheel(tmp_path_factory.mktemp("wheel"))


# ---------------------------------------------------------------- ssh server
@dataclass
class SshServer:
    port: int
    host_key: Any
    user_key_file: Path
    user: str = "tester"


def _execute(channel: Any, command: bytes, started: list[subprocess.Popen]) -> None:
    """Run ``command`` through ``sh -c`` as sshd does (new session), streaming stdout/stderr back.

    Like sshd without a terminal, closing the channel does not stop the command:
    that is what the process-group clean-up has to do.
    """
    proc = subprocess.Popen(
        ["sh", "-c", command.decode()],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    started.append(proc)

    def pump(stream: Any, send: Any) -> None:
        for chunk in iter(lambda: stream.read1(4096), b""):
            try:
                send(chunk)
            except Exception:
                pass  # the client went away; the command goes on, as under sshd

    threads = [
        threading.Thread(target=pump, args=(proc.stdout, channel.sendall), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, channel.sendall_stderr), daemon=True),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    status = proc.wait()
    try:
        channel.send_exit_status(status)
        channel.close()
    except Exception:
        pass


def _serve(
    sock: socket.socket,
    host_key: Any,
    allowed: Any,
    stop: threading.Event,
    started: list[subprocess.Popen] | None = None,
) -> None:
    import paramiko

    class Server(paramiko.ServerInterface):
        def get_allowed_auths(self, username: str) -> str:
            return "publickey"

        def check_auth_publickey(self, username: str, key: Any) -> int:
            if username == "tester" and key.get_base64() == allowed.get_base64():
                return paramiko.AUTH_SUCCESSFUL
            return paramiko.AUTH_FAILED

        def check_channel_request(self, kind: str, chanid: int) -> int:
            return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

        def check_channel_exec_request(self, channel: Any, command: bytes) -> bool:
            if started is not None:  # the executing server: sh -c, like a real device
                threading.Thread(
                    target=lambda: (time.sleep(0.2), _execute(channel, command, started)), daemon=True
                ).start()
                return True
            # Echo the command line back so tests can see what arrived;
            # 'sleep ...' never answers (for the time-out test).
            if command.startswith(b"sleep"):
                return True

            def reply() -> None:
                # paramiko acknowledges the exec request only after this
                # method returns; answering (and closing) before that makes
                # the client see "Channel closed" instead of the output.
                time.sleep(0.2)
                channel.sendall(command + b"\n")
                channel.send_exit_status(0)
                channel.close()

            threading.Thread(target=reply, daemon=True).start()
            return True

    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except (socket.timeout, OSError):
            continue
        t = paramiko.Transport(conn)
        t.add_server_key(host_key)
        try:
            t.start_server(server=Server())
        except Exception:
            t.close()


@pytest.fixture
def ssh_server(tmp_path: Path) -> Iterator[SshServer]:
    import paramiko

    host_key = paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "host")))
    user_file = _keygen(tmp_path / "user")
    user_key = paramiko.Ed25519Key.from_private_key_file(str(user_file))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # loopback only
    sock.listen(5)
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(sock, host_key, user_key, stop), daemon=True)
    thread.start()
    try:
        yield SshServer(sock.getsockname()[1], host_key, user_file)
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


@pytest.fixture
def ssh_exec_server(tmp_path: Path) -> Iterator[SshServer]:
    """Like ``ssh_server``, but commands really run (``sh -c`` in a new session, as sshd does)."""
    import paramiko

    host_key = paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "host")))
    user_file = _keygen(tmp_path / "user")
    user_key = paramiko.Ed25519Key.from_private_key_file(str(user_file))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # loopback only
    sock.listen(5)
    stop = threading.Event()
    started: list[subprocess.Popen] = []
    thread = threading.Thread(target=_serve, args=(sock, host_key, user_key, stop, started), daemon=True)
    thread.start()
    try:
        yield SshServer(sock.getsockname()[1], host_key, user_file)
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()
        for proc in started:  # never leave a test's commands running
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)


def _keygen(path: Path) -> Path:
    """An Ed25519 key in OpenSSH format (paramiko cannot generate Ed25519)."""
    if shutil.which("ssh-keygen"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        return path
    pytest.skip("ssh-keygen is needed to make test keys (apt install openssh-client)")


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- emulated pi
@dataclass
class EmulatedPi:
    target: DeviceTarget
    known_hosts: Path
    cache: Path


@pytest.fixture(scope="session")
def pi() -> EmulatedPi:
    spec = os.environ.get("MDNET_DEPLOY_TEST_PI")
    if not spec:
        pytest.skip("emulated Raspberry Pi not running: run 'make test-arm' (sets MDNET_DEPLOY_TEST_PI)")
    cache = Path(os.environ.get("MDNET_DEPLOY_TEST_PI_DIR", REPO / ".cache" / "emulated-pi"))
    key = cache / "id_ed25519"
    if not key.is_file():
        pytest.skip(f"emulated Raspberry Pi key {key} missing: run 'make test-arm'")
    return EmulatedPi(parse_target(spec, device="rpi", identity=key), cache / "known_hosts", cache)


def split(line: str) -> list[str]:
    return shlex.split(line)
