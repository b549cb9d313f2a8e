"""The OS boundary: every path root and external command the device code uses.

Tests and unusual installs redirect these with environment variables (or the
meters' constructor arguments), so nothing below hard-codes ``/sys`` or a
command path. Readers here are best-effort: they return None instead of
raising, because a missing sysfs file is a normal answer on most machines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

ENV_SYSFS = "MDNET_DEPLOY_SYSFS_ROOT"
ENV_PROC = "MDNET_DEPLOY_PROC_ROOT"
ENV_ETC = "MDNET_DEPLOY_ETC_ROOT"
ENV_TEGRASTATS = "MDNET_DEPLOY_TEGRASTATS"
ENV_VCGENCMD = "MDNET_DEPLOY_VCGENCMD"
ENV_NVPMODEL = "MDNET_DEPLOY_NVPMODEL"
ENV_NVIDIA_SMI = "MDNET_DEPLOY_NVIDIA_SMI"
ENV_TRTEXEC = "MDNET_DEPLOY_TRTEXEC"

# Where JetPack (and NVIDIA's containers) put trtexec; not on PATH by default.
TRTEXEC_LOCATIONS: tuple[str, ...] = ("/usr/src/tensorrt/bin/trtexec",)

# Long enough for a busy Pi, short enough that a hung tool cannot stall a run.
COMMAND_TIMEOUT_S = 5.0


def sysfs_root(override: str | os.PathLike[str] | None = None) -> Path:
    return Path(override if override is not None else os.environ.get(ENV_SYSFS, "/sys"))


def proc_root(override: str | os.PathLike[str] | None = None) -> Path:
    return Path(override if override is not None else os.environ.get(ENV_PROC, "/proc"))


def etc_root(override: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds ``nv_tegra_release`` and friends: ``$MDNET_DEPLOY_ETC_ROOT`` is the etc folder itself."""
    return Path(override if override is not None else os.environ.get(ENV_ETC, "/etc"))


def command_path(env: str, default: str, override: str | None = None) -> str:
    return override if override is not None else os.environ.get(env, default)


def resolve_executable(command: str) -> str | None:
    """A command name or path -> the executable to run, or None when there is none."""
    if os.sep in command:
        return command if os.path.isfile(command) and os.access(command, os.X_OK) else None
    return shutil.which(command)


def device_tree_model(
    proc_root_override: str | os.PathLike[str] | None = None, sysfs_root_override: str | os.PathLike[str] | None = None
) -> str | None:
    """The board's device-tree model ("NVIDIA Jetson Orin Nano Developer Kit", "Raspberry Pi 5 ..."), or None.

    The one reader of it: /proc/device-tree/model, else the same node under
    /sys/firmware/devicetree (what /proc/device-tree links to).
    """
    for path in (
        proc_root(proc_root_override) / "device-tree" / "model",
        sysfs_root(sysfs_root_override) / "firmware" / "devicetree" / "base" / "model",
    ):
        text = read_text(path)
        if text:
            return text
    return None


def nvidia_smi() -> str | None:
    """The nvidia-smi to run (``$MDNET_DEPLOY_NVIDIA_SMI``, else the one on PATH), or None."""
    return resolve_executable(command_path(ENV_NVIDIA_SMI, "nvidia-smi"))


def find_trtexec() -> Path | None:
    """``$MDNET_DEPLOY_TRTEXEC``, then ``trtexec`` on PATH, then JetPack's location; None if none.

    An override that does not resolve gives None: a wrong explicit setting is
    never silently replaced by another trtexec.
    """
    override = os.environ.get(ENV_TRTEXEC)
    if override:
        found = resolve_executable(override)
        return Path(found) if found else None
    for candidate in ("trtexec", *TRTEXEC_LOCATIONS):
        found = resolve_executable(candidate)
        if found:
            return Path(found)
    return None


def read_text(path: str | os.PathLike[str]) -> str | None:
    """File contents stripped of whitespace and NULs (device-tree strings end in one), or None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data.decode("utf-8", "replace").replace("\x00", "").strip()


def read_number(path: str | os.PathLike[str]) -> float | None:
    text = read_text(path)
    if not text:
        return None
    try:
        # Some drivers append a unit ("32760 ma"); the number comes first.
        return float(text.split()[0])
    except ValueError:
        return None


def run_command(argv: Sequence[str], timeout: float = COMMAND_TIMEOUT_S) -> tuple[int | None, str]:
    """Run an argument list (never a shell); (exit status, stdout+stderr).

    The status is None when the command is missing, not executable or timed
    out; the text then says which.
    """
    try:
        proc = subprocess.run(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        return None, f"{argv[0]}: command not found"
    except PermissionError:
        return None, f"{argv[0]}: not executable"
    except subprocess.TimeoutExpired:
        return None, f"{argv[0]}: no answer within {timeout:g} s"
    except OSError as exc:
        return None, f"{argv[0]}: {exc.strerror or exc}"
    return proc.returncode, proc.stdout.decode("utf-8", "replace")
