"""One SSH connection to a device: strict host keys, quoted commands, SFTP.

Every command is built from an argument list and joined with
:func:`shlex.join`, so no user string (paths, options) reaches the remote
shell unquoted. Every network step has a time-out. Errors become one-line
:mod:`mdnet_deploy.errors` exceptions that say how to fix them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import shlex
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import InputError, UnavailableError, one_line
from ..progress import Say
from .target import DeviceTarget

if TYPE_CHECKING:  # paramiko is the `remote` extra: import it only when used
    import paramiko

Progress = Say  # see mdnet_deploy.progress

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"

# Runs the remote command as the leader of a new process group (a new session
# where it can) and says which, so an interrupted or timed-out run can stop
# the whole tree with one `kill -- -PGID`: closing the channel alone leaves a
# device-side bench running, loading the board and skewing the next one.
# Fixed text; the command arrives as argv entries.
GROUP_LAUNCHER = r"""
import os, sys
try:
    os.setsid()
except OSError:
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
sys.stderr.write("mdnet-pgid %d\n" % os.getpgid(0))
sys.stderr.flush()
os.execvp(sys.argv[1], sys.argv[1:])
"""
PGID_MARKER = "mdnet-pgid "

# Set when the run is being interrupted: signals reach only the main thread,
# so a fleet's worker threads learn it here, stop their device jobs and unwind.
_CANCEL = threading.Event()


def cancelled() -> bool:
    return _CANCEL.is_set()


def cancel_running(cancel: bool = True) -> None:
    """Make every Session.run in any thread stop its remote job and raise KeyboardInterrupt (or clear that)."""
    if cancel:
        _CANCEL.set()
    else:
        _CANCEL.clear()


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
                return line[len("error:") :].strip()
        for line in reversed(self.stderr_tail):
            if line.strip():
                return line.strip()
        return "no message"


def load_known_hosts(client: Any, known_hosts: Path) -> set[str]:
    """Load ``known_hosts`` into ``client`` the way OpenSSH reads it; return the revoked keys (base64).

    paramiko's own loader raises on lines it does not understand
    (``@cert-authority``, ``@revoked``, a truncated key). OpenSSH skips a bad
    line and goes on, so this does too: a line it cannot use trusts nothing.
    ``@revoked`` keys are returned so a host presenting one is refused.
    ``@cert-authority`` lines are skipped: paramiko checks no host certificates.
    """
    import paramiko

    try:
        text = known_hosts.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(
            f"cannot read known_hosts {known_hosts}: {exc.strerror or exc}; fix or move that file"
        ) from None
    keys = client.get_host_keys()
    revoked: set[str] = set()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            marker, _, rest = line.partition(" ")
            fields = rest.split()
            if marker == "@revoked" and len(fields) >= 3:
                revoked.add(fields[2])
            continue
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line, lineno)
        except Exception:  # a truncated or unknown key: OpenSSH ignores the line too
            continue
        if entry is None or entry.key is None:
            continue
        for name in entry.hostnames:
            keys.add(name, entry.key.get_name(), entry.key)
    return revoked


def _quiet_paramiko() -> None:
    # paramiko's transport thread logs its exceptions with full tracebacks;
    # with no handler configured Python prints them on stderr. Our one-line
    # errors already say what went wrong.
    log = logging.getLogger("paramiko")
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())
    log.propagate = False


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
            # Append one line rather than rewriting the user's file (after a
            # newline when its last line has none, or the two would merge).
            lead = ""
            with contextlib.suppress(OSError), open(known_hosts, "rb") as old:
                old.seek(0, os.SEEK_END)
                if old.tell():
                    old.seek(-1, os.SEEK_END)
                    lead = "" if old.read(1) == b"\n" else "\n"
            fd = os.open(known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as f:
                f.write(f"{lead}{hostname} {key.get_name()} {key.get_base64()}\n")

    return Policy()


class Session:
    """A connected SSH client plus its SFTP channel. Use as a context manager."""

    _depth = 0  # ProxyJump hops between here and this session

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
        self._jump: Session | None = None  # the ProxyJump hop this connection runs through

    # -- connection --------------------------------------------------------
    def connect(self) -> Session:
        try:
            import paramiko
        except ImportError:
            raise UnavailableError(
                "benchmarking over SSH needs paramiko; install it with pip install 'mdnet-deploy[remote]'"
            ) from None
        t = self.target
        label = t.label
        if t.identity and not Path(t.identity).is_file():
            # An inventory or ~/.ssh/config host got its key from there, not from an option.
            how = (
                (
                    "fix the key path where this host's key is named (the inventory's ansible_ssh_private_key_file "
                    "or IdentityFile in ~/.ssh/config)"
                )
                if t.name
                else "give a private key with --identity"
            )
            raise InputError(f"{label}: identity file {t.identity} does not exist; {how}")
        _quiet_paramiko()
        client = paramiko.SSHClient()
        revoked: set[str] = set()
        if self.known_hosts.exists():
            revoked = load_known_hosts(client, self.known_hosts)
        client.set_missing_host_key_policy(_host_key_policy(self.known_hosts, self.accept_new_host_key, label))
        where = f"{t.host}:{t.port}"
        try:
            sock = self._open_jump() if t.proxy_jump else None
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
                sock=sock,
            )
        except (InputError, UnavailableError):
            client.close()
            self._close_jump()
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
            hint = f"; is {where} an SSH server?" if "banner" in str(exc) else ""
            raise UnavailableError(f"{label}: SSH connection to {where} failed: {one_line(exc)}{hint}") from None
        except Exception as exc:  # paramiko raises a few types outside SSHException (key parsing, crypto)
            client.close()
            raise UnavailableError(f"{label}: SSH connection to {where} failed: {one_line(exc)}") from None
        transport = client.get_transport()
        server_key = transport.get_remote_server_key() if transport is not None else None
        if server_key is not None and server_key.get_base64() in revoked:
            client.close()
            raise InputError(
                f"{label}: the host key of {where} ({fingerprint(server_key)}) is marked @revoked in {self.known_hosts}; "
                "refusing to connect - check the device"
            )
        if transport is not None:
            # Notice a dead link during long silent steps (pip, engine build).
            transport.set_keepalive(15)
        self._client = client
        return self

    def _open_jump(self) -> Any:
        """Connect the last ProxyJump hop (its own hops first) and open a tunnel to the target through it."""
        from .target import parse_target

        t = self.target
        hops = [h.strip() for h in str(t.proxy_jump).split(",") if h.strip()]
        if self._depth >= 8:
            raise InputError(f"{t.label}: ProxyJump chain is longer than 8 hops or loops; check ~/.ssh/config")
        hop = parse_target(hops[-1], device=t.device)
        if len(hops) > 1:
            hop = hop.with_(proxy_jump=",".join(hops[:-1]))
        jump = Session(
            hop,
            accept_new_host_key=self.accept_new_host_key,
            known_hosts=self.known_hosts,
            connect_timeout=self.connect_timeout,
            io_timeout=self.io_timeout,
        )
        jump._depth = self._depth + 1
        jump.connect()
        self._jump = jump
        try:
            return jump.client.get_transport().open_channel(  # type: ignore[union-attr]
                "direct-tcpip", (t.host, t.port), ("127.0.0.1", 0), timeout=self.connect_timeout
            )
        except Exception as exc:  # paramiko's ChannelException / SSHException
            raise UnavailableError(
                f"{t.label}: jump host {hop.address} cannot reach {t.host}:{t.port} ({_reason(exc)}); check ProxyJump and the address"
            ) from None

    def _close_jump(self) -> None:
        if self._jump is not None:
            self._jump.close()
            self._jump = None

    @property
    def client(self) -> paramiko.SSHClient:
        if self._client is None:
            raise RuntimeError("session is not connected")
        return self._client

    @property
    def alive(self) -> bool:
        transport = self._client.get_transport() if self._client else None
        return bool(transport and transport.is_active())

    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = self.client.open_sftp()
            except Exception as exc:  # paramiko raises several unrelated types here
                raise UnavailableError(
                    f"{self.target.label}: cannot open SFTP: {_reason(exc)}; is sftp-server installed?"
                ) from None
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
        self._close_jump()

    def __enter__(self) -> Session:
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
        group: str | None = None,
    ) -> CommandResult:
        """Run ``argv`` on the device; stream its stderr lines as they arrive.

        Raises UnavailableError when the connection drops or ``timeout``
        seconds pass; otherwise returns the exit status for the caller to
        judge. stdout is collected whole (it is small by contract).

        ``group``: a Python on the device that starts ``argv`` in its own
        process group. Then a time-out, Ctrl-C or SIGTERM (any exception
        while waiting) kills that whole group on the device before raising:
        a long job must not outlive the run that started it.
        """
        label = self.target.label
        if group is not None:
            argv = [group, "-c", GROUP_LAUNCHER, *argv]
        command = quote_command(argv)
        pgid: int | None = None
        try:
            transport = self.client.get_transport()
            if transport is None or not transport.is_active():
                raise EOFError("connection closed")
            channel = transport.open_session(timeout=self.connect_timeout)
            channel.exec_command(command)
            channel.shutdown_write()  # nothing to send: EOF on the remote stdin
        except Exception as exc:  # paramiko raises SSHException, EOFError and OSError here
            raise UnavailableError(f"{label}: cannot start {what}: {one_line(exc)}") from None
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
                if group is not None and pgid is None and line.startswith(PGID_MARKER):
                    set_pgid(line[len(PGID_MARKER) :])
                    continue
                tail.append(line)
                del tail[:-50]
                on_stderr(line)

        def set_pgid(text: str) -> None:
            nonlocal pgid
            with contextlib.suppress(ValueError):
                value = int(text.strip())
                pgid = value if value > 1 else None  # never signal init's group or "all processes"

        finished = False
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
                if group is not None and _CANCEL.is_set():
                    # The run was interrupted in another thread. Only long jobs stop here:
                    # the clean-up commands that follow must still run.
                    raise KeyboardInterrupt
                if time.monotonic() > deadline:
                    channel.close()
                    raise UnavailableError(
                        f"{label}: {what} did not finish within {timeout:g} s; raise the time-out or check the device"
                    )
                if not busy:
                    time.sleep(0.05)
            flush_err(final=True)
            status = channel.recv_exit_status()
            finished = True
        except UnavailableError:
            raise
        except Exception as exc:
            raise UnavailableError(f"{label}: connection lost during {what}: {one_line(exc)}") from None
        finally:
            channel.close()
            if not finished and pgid is not None:
                self._stop_group(pgid)
        return CommandResult(status, out.decode("utf-8", "replace"), tail)

    def _stop_group(self, pgid: int) -> None:
        """SIGTERM the device-side process group, SIGKILL what is left after 2 s; never raises."""
        # No `--` before the negative id: dash's kill (Debian's /bin/sh) rejects it.
        script = (
            'kill -TERM "-$1" 2>/dev/null || exit 0; i=0; '
            'while kill -0 "-$1" 2>/dev/null && [ "$i" -lt 20 ]; do sleep 0.1; i=$((i+1)); done; '
            'kill -KILL "-$1" 2>/dev/null; exit 0'
        )
        with contextlib.suppress(Exception):
            if self.alive:
                self.run(
                    ["sh", "-c", script, "sh", str(pgid)],
                    timeout=min(self.io_timeout, 15.0),
                    what="stopping the remote job",
                )

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


# One wording for every exception (mdnet_deploy.errors.one_line); the old name stays for callers.
_reason = one_line


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
