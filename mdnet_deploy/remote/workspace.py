"""A temporary work folder on the device, its venv, and their clean-up.

Layout on the device (``root`` defaults to ``~/.cache/mdnet-deploy``)::

    root/mdnet-venv-rpi/        kept: the venv that --setup creates or updates
    root/mdnet-run-XXXXXXXX/    this run only: wheel, artifacts, eval set, JSON

The run folder is made by ``tempfile.mkdtemp`` on the device (unique,
mode 0700) and removed when the run ends, whatever happened, unless the
user asked to keep it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import InputError, MdnetDeployError, UnavailableError, one_line
from .session import Progress, Session, TransferError, _human
from .target import DeviceTarget

DEFAULT_REMOTE_ROOT = "~/.cache/mdnet-deploy"
MIN_PYTHON = (3, 9)

# What --setup installs besides the wheel (which brings numpy, click, rich,
# pyyaml). A Jetson's venv sees JetPack's TensorRT and numpy through
# --system-site-packages instead, so nothing is added there.
RUNTIME_PACKAGES: dict[str, tuple[str, ...]] = {"rpi": ("ai-edge-litert",), "jetson": ()}

# Runs on the device with its system python3: creates the root and a fresh
# run folder, and reports what the workstation must know. Fixed text: the
# only inputs are argv entries, which arrive quoted.
PROBE = r"""
import json, os, platform, shutil, sys, tempfile
root = os.path.abspath(os.path.expanduser(sys.argv[1]))
created = []  # folders this run makes, deepest first: the clean-up removes them again when empty
d = root
while not os.path.exists(d):
    created.append(d)
    d = os.path.dirname(d)
os.makedirs(root, mode=0o700, exist_ok=True)
work = tempfile.mkdtemp(prefix="mdnet-run-", dir=root)
venv = os.path.join(root, sys.argv[2])
try:
    with open("/proc/cpuinfo") as f:
        cpu = f.read()
except OSError:
    cpu = ""
arm = platform.machine().lower().startswith(("aarch64", "arm"))
print(json.dumps({
    "python": list(sys.version_info[:3]), "machine": platform.machine(), "node": platform.node(),
    "root": root, "work": work, "venv": venv, "created": created,
    "venv_python": os.path.join(venv, "bin", "python"),
    "venv_exists": os.path.exists(os.path.join(venv, "bin", "python")),
    "free_bytes": shutil.disk_usage(work).free,
    "emulated": arm and any(v in cpu for v in ("GenuineIntel", "AuthenticAMD")),
}))
"""

Connector = Callable[[DeviceTarget], Session]


@dataclass
class Workspace:
    session: Session
    info: dict[str, Any]
    progress: Progress
    uploaded: dict[str, str] = field(default_factory=dict)  # local -> remote

    @property
    def work(self) -> str:
        return str(self.info["work"])

    @property
    def venv_python(self) -> str:
        return str(self.info["venv_python"])

    @property
    def label(self) -> str:
        return self.session.target.label

    def remote_path(self, *parts: str) -> str:
        return posixpath.join(self.work, *parts)

    # -- copies -------------------------------------------------------------
    def check_space(self, paths: Sequence[Path]) -> None:
        need = sum(p.stat().st_size for p in paths) + (1 << 20)
        free = int(self.info.get("free_bytes", 0))
        if free < need:
            raise UnavailableError(
                f"{self.label}: not enough disk space on the device: {_human(need)} needed, {_human(free)} free in "
                f"{self.info['root']}; free some space or choose another folder with --remote-dir"
            )

    def upload(self, local: Path, *parts: str) -> str:
        remote = self.remote_path(*parts)
        try:
            self.session.put(local, remote, self.progress)
        except TransferError as exc:
            raise self._transfer_error(exc, f"copying {local.name} to the device") from None
        self.uploaded[str(local)] = remote
        return remote

    def mkdir(self, *parts: str) -> str:
        remote = self.remote_path(*parts)
        try:
            self.session.sftp().mkdir(remote, 0o700)
        except Exception as exc:
            raise self._transfer_error(TransferError("", remote, exc), f"creating {remote}") from None
        return remote

    def download(self, remote: str, local: Path) -> None:
        try:
            self.session.get(remote, local)
        except TransferError as exc:
            raise self._transfer_error(exc, f"copying {posixpath.basename(remote)} back") from None

    def _transfer_error(self, exc: TransferError, doing: str) -> MdnetDeployError:
        cause = exc.cause
        full = isinstance(cause, OSError) and cause.errno == errno.ENOSPC
        if not full and self.session.alive:
            # SFTP reports a full disk as a generic "Failure": ask the device.
            with contextlib.suppress(Exception):
                res = self.session.run(
                    ["df", "-Pk", self.work], timeout=self.session.io_timeout, what="free-space check"
                )
                fields = res.stdout.strip().splitlines()[-1].split()
                full = res.exit_status == 0 and int(fields[3]) < 64
        if full:
            return UnavailableError(
                f"{self.label}: the device's disk is full ({doing} in {self.info['root']}); "
                "free some space or choose another folder with --remote-dir"
            )
        return UnavailableError(
            f"{self.label}: transfer interrupted while {doing} ({one_line(cause)}); nothing was kept, re-run"
        )

    # -- venv ---------------------------------------------------------------
    def setup_venv(self, device: str, python: str, wheel_remote: str, extra: Sequence[str], timeout: float) -> None:
        """Create (when missing) or update the device venv; undo a venv we just made if this fails."""
        venv = str(self.info["venv"])
        created = False
        on_err = self.progress
        try:
            if not self.info.get("venv_exists"):
                self.progress(f"creating venv {venv}")
                argv = [python, "-m", "venv"]
                if device == "jetson":
                    argv.append("--system-site-packages")  # JetPack's TensorRT bindings live there
                created = True
                res = self.session.run(argv + [venv], timeout=timeout, on_stderr=on_err, what="venv creation")
                if res.exit_status != 0:
                    text = " ".join(res.stderr_tail + [res.stdout])
                    if "ensurepip" in text or "venv" in text and "No module" in text:
                        raise UnavailableError(
                            f"{self.label}: python3 on the device cannot create a venv; install it with sudo apt install python3-venv"
                        )
                    raise self._setup_error(res.last_error, "creating the venv")
            packages = [wheel_remote, *RUNTIME_PACKAGES.get(device, ()), *extra]
            self.progress(f"installing {', '.join(posixpath.basename(p) for p in packages)} into the device venv")
            res = self.session.run(
                [
                    self.venv_python,
                    "-m",
                    "pip",
                    "install",
                    "--upgrade",
                    "--progress-bar",
                    "off",
                    "--disable-pip-version-check",
                    *packages,
                ],
                timeout=timeout,
                on_stderr=on_err,
                what="pip install",
            )
            if res.exit_status != 0:
                text = " ".join(res.stderr_tail)
                if "No space left" in text:
                    raise UnavailableError(
                        f"{self.label}: the device's disk is full (pip install); free some space or choose another folder with --remote-dir"
                    )
                raise self._setup_error(res.last_error, "installing packages")
            if device == "jetson":
                res = self.session.run(
                    [self.venv_python, "-c", "import tensorrt"], timeout=timeout, what="TensorRT check"
                )
                if res.exit_status != 0:
                    raise UnavailableError(
                        f"{self.label}: the device venv cannot import tensorrt; install JetPack's python3-libnvinfer "
                        "for the system python3 and re-run with --setup"
                    )
            self.info["venv_exists"] = True
            created = False
        finally:
            if created:
                with contextlib.suppress(Exception):
                    self.session.remove_tree(venv)

    def _setup_error(self, message: str, doing: str) -> UnavailableError:
        return UnavailableError(f"{self.label}: --setup failed while {doing}: {message}")


def probe(session: Session, python: str, root: str, venv_name: str, timeout: float) -> dict[str, Any]:
    label = session.target.label
    res = session.run([python, "-c", PROBE, root, venv_name], timeout=timeout, what="device check")
    if res.exit_status == 127:
        raise UnavailableError(
            f"{label}: no {python} on the device; install Python 3 there (sudo apt install python3 python3-venv)"
        )
    if res.exit_status != 0:
        raise UnavailableError(f"{label}: cannot prepare a work folder under {root} on the device: {res.last_error}")
    try:
        info = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise UnavailableError(f"{label}: the device check printed no result; is '{python}' really Python 3?") from None
    if tuple(info["python"][:2]) < MIN_PYTHON:
        # The work folder exists already: the caller's clean-up removes it.
        info["too_old"] = True
    return info


@contextlib.contextmanager
def open_workspace(
    session: Session,
    *,
    python: str,
    root: str,
    venv_name: str,
    keep_remote: bool,
    timeout: float,
    progress: Progress,
    reconnect: Callable[[], Session] | None = None,
) -> Iterator[Workspace]:
    """Make the run folder; remove it afterwards unless asked to keep it."""
    check_remote_root(root)
    info = probe(session, python, root, venv_name, timeout)
    ws = Workspace(session, info, progress)
    try:
        if info.get("too_old"):
            version = ".".join(map(str, info["python"]))
            raise UnavailableError(
                f"{ws.label}: the device has Python {version}; mdnet-deploy needs 3.9 or newer - install a newer python3"
            )
        yield ws
    finally:
        if keep_remote:
            progress(f"kept the remote work folder {ws.work}")
        else:
            _cleanup(ws, reconnect)


def _cleanup(ws: Workspace, reconnect: Callable[[], Session] | None) -> None:
    session = ws.session
    opened: Session | None = None
    try:
        if not session.alive and reconnect is not None:
            # The link dropped (interrupted transfer): a fresh connection
            # still removes what we left on the device.
            opened = session = reconnect()
        session.remove_tree(ws.work, timeout=session.io_timeout)
        # Remove the root too when nothing else (no venv) lives there, and the
        # folders above it that this run created (rmdir leaves non-empty ones).
        folders = [str(ws.info["root"])] + [
            str(d) for d in ws.info.get("created") or [] if str(d) != str(ws.info["root"])
        ]
        session.run(
            ["sh", "-c", 'for d in "$@"; do rmdir -- "$d" 2>/dev/null || exit 0; done', "sh", *folders],
            timeout=session.io_timeout,
            what="clean-up",
        )
    except Exception as exc:  # clean-up must never hide the real error
        ws.progress(f"warning: could not remove {ws.work} on {ws.label}: {one_line(exc)}")
    finally:
        if opened is not None:
            opened.close()


#: What a --remote-dir may hold. It reaches the device only as a quoted
#: argument, but it also becomes part of `env PYTHONPATH=<dir>/...` and of
#: the venv python's path given to `env`, where '=' turns a path into a
#: variable assignment and ':' splits PYTHONPATH.
_REMOTE_DIR = re.compile(r"^(~|~/|/)?[A-Za-z0-9_.+@%,/-]*$")


def check_remote_root(root: str) -> str:
    """``--remote-dir`` as given, or InputError saying what it may hold."""
    text = str(root)
    if not text.strip() or not _REMOTE_DIR.match(text) or "/../" in f"/{text}/" or text.startswith("-"):
        raise InputError(
            f"--remote-dir '{root}' is not valid; give a folder path of letters, digits and . _ - + @ % , / "
            "(absolute, or under ~/), without '..'"
        )
    return text


def reject_reserved(args: Sequence[str], reserved: Sequence[str], where: str) -> list[str]:
    """Pass-through options must not override what this module sets."""
    out = [str(a) for a in args]
    for a in out:
        name = a.split("=", 1)[0]
        if name in reserved:
            raise InputError(
                f"{where}: {name} is set by the remote run itself; remove it from the pass-through options"
            )
    return out
