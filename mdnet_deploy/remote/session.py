"""One SSH connection to a device: strict host keys, quoted commands, SFTP.

Every command is built from an argument list and joined with
:func:`shlex.join`, so no user string (paths, options) reaches the remote
shell unquoted. Every network step has a time-out. Errors become one-line
:mod:`mdnet_deploy.errors` exceptions that say how to fix them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shlex
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..errors import InputError, UnavailableError
from .target import DeviceTarget

if TYPE_CHECKING:  # paramiko is the `remote` extra: import it only when used
    import paramiko

Progress = Callable[[str], None]

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


def _noop(_: str) -> None:
    pass


def fingerprint(key: Any) -> str:
    """OpenSSH-style SHA256 fingerprint, what `ssh` shows the user."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def quote_command(argv: Sequence[str]) -> str:
    """The only way a command line is made: every part quoted."""
    if not argv:
        raise ValueError("empty command")
    return shlex.join(str(a) for a in argv)


@dataclass
class CommandResult:
    exit_status: int
    stdout: str
    stderr_tail: list[str]

    @property
    def last_error(self) -> str:
        """The remote's one-line message (its 'error: ...' line when present)."""
        for line in reversed(self.stderr_tail):
            if line.startswith("error:"):
                return line[len("error:"):].strip()
        for line in reversed(self.stderr_tail):
            if line.strip():
                return line.strip()
        return "no message"


def _host_key_policy(known_hosts: Path, accept_new: bool, label: str) -> Any:
    import paramiko

    class Policy(paramiko.MissingHostKeyPolicy):
        """Unknown key: refuse, or with --accept-new-host-key add it (ssh's accept-new).

        A *changed* key never gets here: paramiko raises BadHostKeyException.
        """

        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            if not accept_new:
                raise InputError(
                    f"{label}: host key {key.get_name()} {fingerprint(key)} is not in {known_hosts}; "
                    "check the fingerprint on the device (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) "
                    "and re-run with --accept-new-host-key, or add it with ssh"
                )
            known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Append one line rather than rewriting the user's file.
            fd = os.open(known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as f:
                f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")

    return Policy()


class Session:
    """A connected SSH client plus its SFTP channel. Use as a context manager."""

    def __init__(
        self,
        target: DeviceTarget,
        *,
        accept_new_host_key: bool = False,
        known_hosts: str | os.PathLike[str] | None = None,
        connect_timeout: float = 15.0,
        io_timeout: float = 60.0,
    ) -> None:
        self.target = target
        self.accept_new_host_key = accept_new_host_key
        self.known_hosts = Path(os.path.expanduser(str(known_hosts or DEFAULT_KNOWN_HOSTS)))
        self.connect_timeout = connect_timeout
        self.io_timeout = io_timeout
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    # -- connection --------------------------------------------------------
    def connect(self) -> "Session":
        try:
            import paramiko
        except ImportError:
            raise UnavailableError(
                "benchmarking over SSH needs paramiko; install it with pip install 'mdnet-deploy[remote]'"
            ) from None
        t = self.target
        label = t.label
        if t.identity and not Path(t.identity).is_file():
            raise InputError(f"{label}: identity file {t.identity} does not exist; give a private key with --identity")
        client = paramiko.SSHClient()
        if self.known_hosts.exists():
            try:
                client.load_host_keys(str(self.known_hosts))
            except (OSError, paramiko.SSHException) as exc:
                raise InputError(f"cannot read known_hosts {self.known_hosts}: {exc}; fix or move that file") from None
        client.set_missing_host_key_policy(_host_key_policy(self.known_hosts, self.accept_new_host_key, label))
        where = f"{t.host}:{t.port}"
        try:
            client.connect(
                t.host,
                port=t.port,
                username=t.user,
                key_filename=t.identity,
                # With an explicit key, do not wander through ~/.ssh as well:
                # the user said which key this device takes.
                look_for_keys=t.identity is None,
                allow_agent=True,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                channel_timeout=self.connect_timeout,
            )
        except InputError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise InputError(
                f"{label}: the host key of {where} CHANGED (now {fingerprint(exc.key)}); refusing to connect - "
                f"if the device was reinstalled, remove its old line from {self.known_hosts} (ssh-keygen -R)"
            ) from None
        except paramiko.PasswordRequiredException:
            client.close()
            raise InputError(
                f"{label}: identity {t.identity} is protected by a passphrase; load it into ssh-agent (ssh-add) first"
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            who = t.user or "the default user"
            key = f"key {t.identity}" if t.identity else "the agent's and ~/.ssh keys"
            raise InputError(
                f"{label}: {where} refused authentication for {who} with {key}; "
                "check the user name and that the public key is in ~/.ssh/authorized_keys on the device"
            ) from None
        except socket.gaierror:
            client.close()
            raise UnavailableError(f"{label}: cannot resolve host name '{t.host}'; check the address") from None
        except (socket.timeout, TimeoutError):
            client.close()
            raise UnavailableError(
                f"{label}: {where} did not answer within {self.connect_timeout:g} s; check that the device is on and reachable"
            ) from None
        except paramiko.ssh_exception.NoValidConnectionsError:
            client.close()
            raise UnavailableError(
                f"{label}: cannot connect to {where} (connection refused); check the address and port, and that sshd runs on the device"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            raise UnavailableError(f"{label}: SSH connection to {where} failed: {_reason(exc)}") from None
        transport = client.get_transport()
        if transport is not None:
            # Notice a dead link during long silent steps (pip, engine build).
            transport.set_keepalive(15)
        self._client = client
        return self

    @property
    def client(self) -> "paramiko.SSHClient":
        if self._client is None:
            raise RuntimeError("session is not connected")
        return self._client

    @property
    def alive(self) -> bool:
        transport = self._client.get_transport() if self._client else None
        return bool(transport and transport.is_active())

    def sftp(self) -> "paramiko.SFTPClient":
        if self._sftp is None:
            try:
                self._sftp = self.client.open_sftp()
            except Exception as exc:  # paramiko raises several unrelated types here
                raise UnavailableError(f"{self.target.label}: cannot open SFTP: {_reason(exc)}; is sftp-server installed?") from None
            channel = self._sftp.get_channel()
            if channel is not None:
                # A stalled transfer raises instead of hanging forever.
                channel.settimeout(self.io_timeout)
        return self._sftp

    def close(self) -> None:
        for closable in (self._sftp, self._client):
            try:
                if closable is not None:
                    closable.close()
            except Exception:
                pass
        self._sftp = None
        self._client = None

    def __enter__(self) -> "Session":
        return self.connect() if self._client is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands ----------------------------------------------------------
    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        on_stderr: Progress = _noop,
        what: str = "remote command",
    ) -> CommandResult:
        """Run ``argv`` on the device; stream its stderr lines as they arrive.

        Raises UnavailableError when the connection drops or ``timeout``
        seconds pass; otherwise returns the exit status for the caller to
        judge. stdout is collected whole (it is small by contract).
        """
        label = self.target.label
        command = quote_command(argv)
        try:
            transport = self.client.get_transport()
            if transport is None or not transport.is_active():
                raise EOFError("connection closed")
            channel = transport.open_session(timeout=self.connect_timeout)
            channel.exec_command(command)
            channel.shutdown_write()  # nothing to send: EOF on the remote stdin
        except Exception as exc:  # paramiko raises SSHException, EOFError and OSError here
            raise UnavailableError(f"{label}: cannot start {what}: {_reason(exc)}") from None
        out = bytearray()
        err_buf = bytearray()
        tail: list[str] = []
        deadline = time.monotonic() + timeout

        def flush_err(final: bool = False) -> None:
            while b"\n" in err_buf or (final and err_buf):
                idx = err_buf.find(b"\n")
                raw = bytes(err_buf) if idx < 0 else bytes(err_buf[:idx])
                del err_buf[: len(raw) + (0 if idx < 0 else 1)]
                # Progress bars redraw with '\r': show the latest state only.
                line = raw.decode("utf-8", "replace").rstrip("\r").split("\r")[-1]
                tail.append(line)
                del tail[:-50]
                on_stderr(line)

        try:
            while True:
                busy = False
                while channel.recv_ready():
                    out += channel.recv(65536)
                    busy = True
                while channel.recv_stderr_ready():
                    err_buf += channel.recv_stderr(65536)
                    busy = True
                flush_err()
                if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                    break
                if not self.alive:
                    raise EOFError("connection lost")
                if time.monotonic() > deadline:
                    channel.close()
                    raise UnavailableError(
                        f"{label}: {what} did not finish within {timeout:g} s; raise the time-out or check the device"
                    )
                if not busy:
                    time.sleep(0.05)
            flush_err(final=True)
            status = channel.recv_exit_status()
        except UnavailableError:
            raise
        except Exception as exc:
            raise UnavailableError(f"{label}: connection lost during {what}: {_reason(exc)}") from None
        finally:
            channel.close()
        return CommandResult(status, out.decode("utf-8", "replace"), tail)

    # -- files -------------------------------------------------------------
    def put(self, local: str | os.PathLike[str], remote: str, progress: Progress = _noop) -> None:
        local = Path(local)
        size = local.stat().st_size
        progress(f"uploading {local.name} ({_human(size)})")
        try:
            self.sftp().put(str(local), remote, confirm=True)
        except Exception as exc:
            raise _TransferError(str(local), remote, exc) from None

    def get(self, remote: str, local: str | os.PathLike[str]) -> None:
        try:
            self.sftp().get(remote, str(local))
        except Exception as exc:
            raise _TransferError(remote, str(local), exc) from None

    def remove_tree(self, path: str, *, timeout: float = 60.0) -> None:
        """``rm -rf`` one of *our* folders; refuses anything else."""
        if "/mdnet-run-" not in path and "/mdnet-venv-" not in path:
            raise ValueError(f"refusing to remove {path!r}: not an mdnet-deploy folder")
        self.run(["rm", "-rf", "--", path], timeout=timeout, what="clean-up")


class _TransferError(Exception):
    """An SFTP copy failed; the caller knows whether the disk is full."""

    def __init__(self, src: str, dst: str, cause: BaseException) -> None:
        super().__init__(f"{src} -> {dst}: {_reason(cause)}")
        self.src, self.dst, self.cause = src, dst, cause


TransferError = _TransferError


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
