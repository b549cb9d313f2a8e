"""Package this very mdnet-deploy as a wheel for the device.

The device runs exactly the workstation's code: the wheel goes on the
remote ``PYTHONPATH`` (a pure-Python wheel is importable as a zip), and
``--setup`` installs it into the device venv to pull in its dependencies.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import UnavailableError

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def source_tree() -> Path:
    root = _PACKAGE_DIR.parent
    if not (root / "pyproject.toml").is_file():
        raise UnavailableError(
            "cannot build the mdnet-deploy wheel for the device: no pyproject.toml beside the package; "
            "run from a source checkout (pip install -e .)"
        )
    return root


def build_wheel(dest: str | Path, timeout: float = 300.0) -> Path:
    """Build ``mdnet_deploy-*.whl`` into ``dest`` and return its path.

    The build runs on a copy of the sources in a temporary folder, because
    setuptools writes ``build/`` and ``*.egg-info`` next to the sources and the
    checkout must stay as the user left it.
    """
    root = source_tree()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mdnet-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg"):
            if (root / name).is_file():
                shutil.copy2(root / name, src / name)
        if not (src / "README.md").exists():
            (src / "README.md").write_text("mdnet-deploy\n")  # pyproject names it as the readme
        shutil.copytree(_PACKAGE_DIR, src / "mdnet_deploy", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dest), str(src)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UnavailableError(f"building the mdnet-deploy wheel took more than {timeout:g} s; check pip and setuptools") from None
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise UnavailableError(f"building the mdnet-deploy wheel failed: {last}; is setuptools installed in this venv?")
    wheels = sorted(dest.glob("mdnet_deploy-*.whl"))
    if not wheels:
        raise UnavailableError("pip wheel produced no mdnet_deploy wheel; check the project's pyproject.toml")
    return wheels[-1]
