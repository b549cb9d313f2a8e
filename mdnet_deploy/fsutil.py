"""Small filesystem helpers: atomic writes and hashing.

Every artifact is written under a temporary name in the destination folder
and renamed only when complete, so an interrupted or failed step never
leaves a half-written ``model.onnx`` (or sidecar) behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Iterable, Iterator

from .errors import OutputError


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def ensure_writable_dir(folder: str | os.PathLike[str], option: str = "-o") -> Path:
    """Create ``folder`` if needed and check that we can write into it (hints name ``option``)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create output folder {folder}: {exc.strerror or exc}; choose a writable location with {option}"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {folder} is not writable; choose a writable location with {option}")
    return folder


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name one file (through links, ``..`` or hard links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_output(
    path: str | os.PathLike[str],
    force: bool = True,
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    option: str = "-o",
    append: bool = False,
) -> Path:
    """Validate an output file path before any expensive work starts.

    The one overwrite rule: an existing output is replaced only with
    ``--force`` (``append`` outputs such as ``--csv`` grow instead), and never
    when it is one of the command's own ``inputs``, whatever the flags.
    """
    path = Path(path)
    for src in inputs:
        if src is not None and Path(src).exists() and same_file(path, src):
            raise OutputError(f"{option} {path} is also an input of this command; give another output file")
    if path.exists() and path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name")
    if path.exists() and not force and not append:
        raise OutputError(f"{option} {path} already exists; pass --force to overwrite it")
    ensure_writable_dir(path.parent if str(path.parent) else Path("."), option)
    return path


def output_mode(existing: str | os.PathLike[str] | None = None) -> int:
    """Mode for a new output: an existing file's own mode, else what the umask gives (like ``open``)."""
    if existing is not None:
        try:
            return stat.S_IMODE(os.stat(existing).st_mode)
        except OSError:
            pass
    return 0o666 & ~_umask()


def _umask() -> int:
    # /proc tells the umask without changing it (os.umask would, for a moment, for every thread).
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_UMASK_LOCK = threading.Lock()


#: The stop signal the CLI received (SIGINT/SIGTERM/SIGHUP), if any. Its handler
#: raises once; a library that swallows that exception (a C++ callback, an
#: ``except BaseException``) would let the run go on, so no output is committed
#: once a stop was asked for.
_stop_signal: int | None = None


def request_stop(signum: int | None) -> None:
    """Record (or, with None, clear) a stop signal: atomic outputs refuse to commit after it."""
    global _stop_signal
    _stop_signal = signum


def check_stop() -> None:
    """Raise Interrupted when a stop signal arrived: no output may be committed after it."""
    if _stop_signal is not None:
        from .errors import Interrupted

        raise Interrupted(_stop_signal)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP for a few statements that must not be split (they arrive right after)."""
    import signal

    held = {signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])}
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place on success.

    On any exception (including KeyboardInterrupt, which SIGTERM and SIGHUP
    become in the CLI) the temporary file is removed and ``path`` is left
    untouched. A ``path`` that is a symbolic link keeps the link: its target is
    replaced. The result gets the mode the umask gives a new file (or the mode
    of the file it replaces), not mkstemp's private 0600.
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    ensure_writable_dir(path.parent if str(path.parent) else Path("."))
    tmp: Path | None = None
    try:
        with signals_deferred():  # a signal between mkstemp and `tmp = ...` would orphan the file
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent or ".")
            tmp = Path(tmp_name)
            os.close(fd)
        yield tmp
        check_stop()  # interrupted while writing (even if a library swallowed the exception): keep nothing
        os.chmod(tmp, output_mode(path if path.exists() else None))
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))
