"""Package this very mdnet-deploy as a wheel for the device.

The device runs exactly the workstation's code: the wheel goes on the
remote ``PYTHONPATH`` (a pure-Python wheel is importable as a zip), and
``--setup`` installs it into the device venv to pull in its dependencies.

Two sources, whichever this copy of the package is:

* a source checkout (``pyproject.toml`` beside the package): built with
  ``pip wheel`` in a temporary copy of the sources;
* an installed copy (``pip install mdnet_deploy-*.whl``): the installed
  files are zipped back into a wheel with the distribution's metadata, so
  ``bench --host`` works without the sources.

Either way the wheel is cached under ``~/.cache/mdnet-deploy/wheels`` keyed
by a hash of the package's files, so repeated remote runs do not rebuild it.

``python -m mdnet_deploy.remote.wheel DEST`` writes the wheel into DEST
(``make wheel`` uses it).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from ..errors import UnavailableError
from ..fsutil import atomic_output

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
DIST_NAME = "mdnet-deploy"
_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


def source_tree() -> Optional[Path]:
    """The checkout this package runs from, or None for an installed copy."""
    root = _PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() else None


def _package_files() -> Iterator[Tuple[str, Path]]:
    """(archive name, file) for every file of the package, in a stable order."""
    for path in sorted(_PACKAGE_DIR.rglob("*")):
        rel = path.relative_to(_PACKAGE_DIR.parent)
        if path.is_dir() or _SKIP_DIRS & set(rel.parts) or path.suffix in _SKIP_SUFFIXES:
            continue
        yield rel.as_posix(), path


def _fingerprint(extra: Optional[Path]) -> str:
    h = hashlib.sha256()
    for name, path in _package_files():
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    if extra is not None and extra.is_file():
        h.update(extra.read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    root = os.environ.get("MDNET_DEPLOY_CACHE") or os.path.join("~", ".cache", "mdnet-deploy")
    return Path(os.path.expanduser(root)) / "wheels"


def build_wheel(dest: str | os.PathLike[str], timeout: float = 300.0, use_cache: bool = True) -> Path:
    """Write ``mdnet_deploy-<version>-py3-none-any.whl`` into ``dest`` and return its path.

    From a source checkout the wheel is built by pip on a copy of the sources
    (setuptools writes ``build/`` and ``*.egg-info`` next to them, and the
    checkout must stay as the user left it); from an installed copy it is
    assembled from the installed files. A wheel built before for the same
    files is taken from the cache instead.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = source_tree()
    key = _fingerprint(root / "pyproject.toml" if root else None)
    cached = cache_dir() / key
    if use_cache:
        hits = sorted(cached.glob("mdnet_deploy-*.whl")) if cached.is_dir() else []
        if hits:
            return Path(shutil.copy2(hits[-1], dest / hits[-1].name))
    wheel = _build_from_sources(root, dest, timeout) if root else _build_from_installed(dest)
    if use_cache:
        try:  # a cache that cannot be written costs a rebuild next time, nothing more
            cached.mkdir(parents=True, exist_ok=True)
            with atomic_output(cached / wheel.name) as tmp:
                shutil.copy2(wheel, tmp)
        except OSError:
            pass
    return wheel


def _build_from_sources(root: Path, dest: Path, timeout: float) -> Path:
    with tempfile.TemporaryDirectory(prefix="mdnet-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg"):
            if (root / name).is_file():
                shutil.copy2(root / name, src / name)
        if not (src / "README.md").exists():
            (src / "README.md").write_text("mdnet-deploy\n")  # pyproject names it as the readme
        shutil.copytree(_PACKAGE_DIR, src / "mdnet_deploy", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        out = Path(tmp) / "out"
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(src),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UnavailableError(
                f"building the mdnet-deploy wheel took more than {timeout:g} s; check pip and setuptools"
            ) from None
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise UnavailableError(
                f"building the mdnet-deploy wheel failed: {last}; is setuptools installed in this venv?"
            )
        wheels = sorted(out.glob("mdnet_deploy-*.whl"))
        if not wheels:
            raise UnavailableError("pip wheel produced no mdnet_deploy wheel; check the project's pyproject.toml")
        target = dest / wheels[-1].name
        with atomic_output(target) as tmp_target:
            shutil.copy2(wheels[-1], tmp_target)
        return target


def _installed_metadata() -> Tuple[str, str, Optional[str]]:
    """(version, METADATA text, entry_points.txt text) of the installed distribution."""
    from importlib import metadata

    try:
        dist = metadata.distribution(DIST_NAME)
    except metadata.PackageNotFoundError:
        raise UnavailableError(
            "cannot package mdnet-deploy for the device: it is neither a source checkout nor an installed "
            "distribution; install it with pip install mdnet_deploy-*.whl"
        ) from None
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    if not text:
        raise UnavailableError(
            f"the installed mdnet-deploy {dist.version} has no METADATA; reinstall it with pip install --force-reinstall"
        )
    return dist.version, text, dist.read_text("entry_points.txt")


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _build_from_installed(dest: Path) -> Path:
    """Zip the installed package back into a wheel (pure Python, so any platform takes it)."""
    version, metadata_text, entry_points = _installed_metadata()
    info = f"mdnet_deploy-{version}.dist-info"
    entries: List[Tuple[str, bytes]] = [(name, path.read_bytes()) for name, path in _package_files()]
    entries.append((f"{info}/METADATA", metadata_text.encode("utf-8")))
    entries.append(
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: mdnet-deploy\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    )
    if entry_points:
        entries.append((f"{info}/entry_points.txt", entry_points.encode("utf-8")))
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in entries:
        writer.writerow([name, _record_hash(data), len(data)])
    writer.writerow([f"{info}/RECORD", "", ""])
    entries.append((f"{info}/RECORD", record.getvalue().encode("utf-8")))
    target = dest / f"mdnet_deploy-{version}-py3-none-any.whl"
    with atomic_output(target) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                # Fixed dates: the same files make the same wheel.
                zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                zi.compress_type = zipfile.ZIP_DEFLATED
                zi.external_attr = 0o644 << 16
                zf.writestr(zi, data)
    return target


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m mdnet_deploy.remote.wheel DEST``: write the wheel, print its path."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m mdnet_deploy.remote.wheel DEST_FOLDER\n")
        return 2
    try:
        print(build_wheel(args[0], use_cache=False))  # noqa: T201  (a `python -m` entry point: the path is its output)
    except UnavailableError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 4
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
