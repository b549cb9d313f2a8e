"""What the machine was like during a benchmark: model, CPU, clocks, heat, mode.

Every probe is best-effort: a missing file or command yields None, never an
exception, since most probes only make sense on one kind of device.
Commands run as argument lists with a timeout. Roots come from
MDNET_DEPLOY_SYSFS_ROOT / _PROC_ROOT / _ETC_ROOT so tests can fake them.
"""

from __future__ import annotations

import os
import platform
import re
from typing import Any

from . import _sys

# ARM "CPU implementer"/"CPU part" codes of the cores found on our devices
# (arm64 /proc/cpuinfo has no "model name" line).
_ARM_PARTS = {
    ("0x41", "0xd03"): "Cortex-A53",
    ("0x41", "0xd04"): "Cortex-A35",
    ("0x41", "0xd05"): "Cortex-A55",
    ("0x41", "0xd07"): "Cortex-A57",
    ("0x41", "0xd08"): "Cortex-A72",
    ("0x41", "0xd09"): "Cortex-A73",
    ("0x41", "0xd0a"): "Cortex-A75",
    ("0x41", "0xd0b"): "Cortex-A76",
    ("0x41", "0xd0c"): "Neoverse-N1",
    ("0x41", "0xd40"): "Neoverse-V1",
    ("0x41", "0xd41"): "Cortex-A78",
    ("0x41", "0xd42"): "Cortex-A78AE",
    ("0x41", "0xd49"): "Neoverse-N2",
    ("0x41", "0xd4f"): "Neoverse-V2",
    ("0x4e", "0x004"): "NVIDIA Carmel",
}

# vcgencmd get_throttled bits (Raspberry Pi firmware documentation).
_THROTTLE_BITS = {
    0: "under_voltage",
    1: "arm_frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
    16: "under_voltage_occurred",
    17: "arm_frequency_capping_occurred",
    18: "throttling_occurred",
    19: "soft_temperature_limit_occurred",
}

_ARM_MACHINES = ("aarch64", "arm64", "armv7l", "armv6l", "armv8l")


def _cpuinfo(proc_root: str | None = None) -> str | None:
    return _sys.read_text(_sys.proc_root(proc_root) / "cpuinfo")


def _fields(cpuinfo: str) -> dict[str, str]:
    """First value of every 'key : value' line."""
    out: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and key.strip() not in out:
            out[key.strip()] = value.strip()
    return out


def cpu_model(cpuinfo: str | None) -> str | None:
    if not cpuinfo:
        return None
    f = _fields(cpuinfo)
    if f.get("model name"):
        return f["model name"]
    # arm64: name each core type by its part code; big.LITTLE gives "4x A55 + 4x A76".
    counts: dict[str, int] = {}
    for block in re.split(r"\n\s*\n", cpuinfo):
        b = _fields(block)
        implementer, part = b.get("CPU implementer", "").lower(), b.get("CPU part", "").lower()
        if implementer and part:
            core = _ARM_PARTS.get((implementer, part), f"ARM implementer {implementer} part {part}")
            counts[core] = counts.get(core, 0) + 1
    if len(counts) == 1:
        return next(iter(counts))
    if counts:
        return " + ".join(f"{n}x {core}" for core, n in counts.items())
    for key in ("Processor", "cpu model", "Hardware"):
        if f.get(key):
            return f[key]
    return None


def device_model(proc_root: str | None = None, sysfs_root: str | None = None) -> str | None:
    """The board's device-tree model, else (x86) the DMI product name."""
    return _sys.device_tree_model(proc_root, sysfs_root) or _sys.read_text(
        _sys.sysfs_root(sysfs_root) / "devices" / "virtual" / "dmi" / "id" / "product_name"
    )


def cpu_governor(sysfs_root: str | None = None) -> str | dict[str, str] | None:
    """The governor, or {policy: governor} when the clusters differ."""
    base = _sys.sysfs_root(sysfs_root) / "devices" / "system" / "cpu"
    found: dict[str, str] = {}
    for path in sorted(base.glob("cpufreq/policy*/scaling_governor")) or sorted(
        base.glob("cpu[0-9]*/cpufreq/scaling_governor")
    ):
        gov = _sys.read_text(path)
        if gov:
            found[path.parent.name if path.parent.name.startswith("policy") else path.parent.parent.name] = gov
    if not found:
        return None
    values = set(found.values())
    return values.pop() if len(values) == 1 else found


def read_temperatures(sysfs_root: str | None = None) -> dict[str, float]:
    """Thermal zone type -> degrees C, for recording before and after a run."""
    temps: dict[str, float] = {}
    base = _sys.sysfs_root(sysfs_root) / "class" / "thermal"

    def zone_number(path: Any) -> int:
        digits = re.sub(r"\D", "", path.name)
        return int(digits) if digits else 0

    for zone in sorted(base.glob("thermal_zone*"), key=zone_number):
        milli = _sys.read_number(zone / "temp")
        if milli is None or milli <= -40000:  # absent sensors report -40 C or less
            continue
        name = _sys.read_text(zone / "type") or zone.name
        if name in temps:
            name = f"{name}.{zone.name}"
        temps[name] = round(milli / 1000.0, 3)
    return temps


# L4T (what the device reports) -> JetPack (what people call it). Only the
# releases we are sure of; an unknown L4T is still recorded as such.
JETPACK_FOR_L4T = {
    "32.6.1": "4.6",
    "32.7.1": "4.6.1",
    "32.7.2": "4.6.2",
    "32.7.3": "4.6.3",
    "32.7.4": "4.6.4",
    "32.7.5": "4.6.5",
    "35.1.0": "5.0.2",
    "35.2.1": "5.1",
    "35.3.1": "5.1.1",
    "35.4.1": "5.1.2",
    "35.5.0": "5.1.3",
    "35.6.0": "5.1.4",
    "36.3.0": "6.0",
    "36.4.0": "6.1",
    "36.4.3": "6.2",
    "36.4.4": "6.2.1",
}


def parse_l4t_release(text: str | None) -> str | None:
    """'# R32 (release), REVISION: 7.1, ...' -> '32.7.1'; 'REVISION: 4' -> '36.4.0'.

    The one parser of /etc/nv_tegra_release: an engine's ``target.l4t`` and a
    bench row's ``env.l4t_release`` come from here, so they always agree.
    Always three numbers (the form JetPack's release tables use).
    """
    if not text:
        return None
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)", text)
    if not m:
        return None
    parts = [p for p in m.group(2).split(".") if p][:2]
    if not parts:
        return None
    parts += ["0"] * (2 - len(parts))
    return ".".join([m.group(1), *(str(int(p)) for p in parts)])


def read_l4t_release(etc_root: str | os.PathLike[str] | None = None) -> dict[str, str] | None:
    """``{"l4t", "jetpack" (when known), "l4t_board"}`` from ``ETC/nv_tegra_release``, or None off Jetson.

    ``etc_root`` (default ``$MDNET_DEPLOY_ETC_ROOT``, else ``/etc``) is the etc folder itself.
    """
    text = _sys.read_text(_sys.etc_root(etc_root) / "nv_tegra_release")
    first = text.splitlines()[0] if text else None
    l4t = parse_l4t_release(first)
    if l4t is None or first is None:
        return None
    out = {"l4t": l4t}
    if l4t in JETPACK_FOR_L4T:
        out["jetpack"] = JETPACK_FOR_L4T[l4t]
    board = re.search(r"BOARD:\s*([^,]+)", first)
    if board:
        out["l4t_board"] = board.group(1).strip()
    return out


def parse_nvpmodel(text: str | None) -> dict[str, Any] | None:
    """``nvpmodel -q`` -> {"name": "MAXN", "id": 0}."""
    if not text:
        return None
    m = re.search(r"NV Power Mode:\s*(.+)", text)
    if not m:
        return None
    name = m.group(1).strip()
    after = text[m.end() :].split()
    mode_id = int(after[0]) if after and after[0].isdigit() else None
    return {"name": name, "id": mode_id}


def decode_throttled(text: str | None) -> dict[str, Any] | None:
    """``throttled=0x50000`` -> {"raw": "0x50000", "flags": [...]} (empty flags: never throttled)."""
    if not text:
        return None
    m = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text)
    if not m:
        return None
    value = int(m.group(1), 0)
    return {"raw": m.group(1), "flags": [name for bit, name in sorted(_THROTTLE_BITS.items()) if value & (1 << bit)]}


_BINFMT_NAMES = {
    "aarch64": "qemu-aarch64",
    "arm64": "qemu-aarch64",
    "armv7l": "qemu-arm",
    "armv6l": "qemu-arm",
    "armv8l": "qemu-arm",
}


def detect_emulation(
    cpuinfo: str | None, machine: str | None = None, environ: Any = None, proc_root: str | None = None
) -> tuple[bool, str | None]:
    """(emulated, why) for a process under qemu user-mode emulation.

    qemu-user reports the guest architecture from uname but passes the
    host kernel's /proc/cpuinfo through, so an ARM process that sees an x86
    cpuinfo (or one with no ARM fields at all) is emulated. Newer qemu
    versions fake cpuinfo for some targets, so a qemu binfmt handler for our
    own architecture (a native ARM box has none) counts too, as do the
    QEMU_* variables that qemu containers set.
    """
    environ = os.environ if environ is None else environ
    machine = (machine or platform.machine()).lower()
    forced = environ.get("MDNET_DEPLOY_EMULATED")
    if forced is not None:
        return forced.strip().lower() in ("1", "true", "yes"), "MDNET_DEPLOY_EMULATED"
    hints = sorted(k for k in environ if k.startswith("QEMU"))
    if hints:
        return True, f"environment {hints[0]}"
    if cpuinfo is not None and machine in _ARM_MACHINES:
        f = _fields(cpuinfo)
        if "vendor_id" in f or re.search(r"GenuineIntel|AuthenticAMD", cpuinfo):
            return True, f"{machine} process but /proc/cpuinfo describes an x86 CPU"
        if not any(k in f for k in ("CPU implementer", "CPU part", "Features", "CPU architecture")):
            return True, f"{machine} process but /proc/cpuinfo has no ARM CPU fields"
    handler = _BINFMT_NAMES.get(machine)
    if handler:
        entry = _sys.read_text(_sys.proc_root(proc_root) / "sys" / "fs" / "binfmt_misc" / handler)
        if entry and entry.splitlines()[0].strip() == "enabled":
            return True, f"{machine} process and the kernel runs {machine} binaries through {handler} (binfmt_misc)"
    return False, None


def _numpy_version() -> str | None:
    try:
        import numpy

        return str(numpy.__version__)
    except Exception:
        return None


def capture_environment(kind: str) -> dict[str, Any]:
    """The result's ``device.env`` block for a ``kind`` device (jetson, rpi, host, cuda)."""
    cpuinfo = _cpuinfo()
    emulated, why = detect_emulation(cpuinfo)
    try:
        usable = len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        usable = None
    env: dict[str, Any] = {
        "kind": kind,
        "hostname": platform.node() or None,
        "machine": platform.machine() or None,
        "os": platform.platform(),
        "kernel": platform.release() or None,
        "device_model": device_model(),
        "cpu_model": cpu_model(cpuinfo),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "cpu_governor": cpu_governor(),
        "temperatures_c": read_temperatures() or None,
        "emulated": emulated,
        "emulation_hint": why,
        "python": platform.python_version(),
        "numpy": _numpy_version(),
    }
    if kind == "jetson":
        nvpmodel = _sys.command_path(_sys.ENV_NVPMODEL, "nvpmodel")
        status, text = _sys.run_command([nvpmodel, "-q"])
        env["power_mode"] = parse_nvpmodel(text) if status == 0 else None
        release = read_l4t_release()
        env["l4t_release"] = release["l4t"] if release else None
    if kind == "rpi":
        vcgencmd = _sys.command_path(_sys.ENV_VCGENCMD, "vcgencmd")
        status, text = _sys.run_command([vcgencmd, "get_throttled"])
        env["throttled"] = decode_throttled(text) if status == 0 else None
    return env
