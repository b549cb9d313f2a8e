"""Each device's environment manifest, and warnings when compared rows ran under different conditions.

Two rows on one device are comparable only when the device was set up the
same way for both: power mode, governor, clocks, runtime version, not
throttled, not loaded. Rows from several results files (or a long run) can
differ there; the report says so next to the plots instead of letting a
governor change pass for a model improvement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .fields import device_label, get, row_label

#: (path under the row, label) shown in a device's manifest, in this order.
MANIFEST: tuple[tuple[tuple[str, ...], str], ...] = (
    (("device", "kind"), "kind"),
    (("device", "env", "device_model"), "device model"),
    (("device", "env", "cpu_model"), "CPU"),
    (("device", "env", "cores"), "cores"),
    (("device", "env", "cores_usable"), "cores usable"),
    (("device", "env", "l4t_release"), "L4T / JetPack"),
    (("device", "env", "tensorrt"), "TensorRT"),
    (("device", "env", "power_mode"), "power mode"),
    (("device", "env", "cpu_governor"), "CPU governor"),
    (("conditions", "before", "cpu_freq_mhz"), "CPU clocks MHz (before a run)"),
    (("device", "env", "throttled"), "throttled"),
    (("device", "env", "temperatures_c"), "temperatures °C"),
    (("device", "env", "os"), "OS"),
    (("device", "env", "kernel"), "kernel"),
    (("device", "env", "python"), "Python"),
    (("device", "env", "numpy"), "numpy"),
    (("device", "env", "emulated"), "emulated"),
)

#: Settings that must match between rows of one device for their figures to compare.
MUST_MATCH: tuple[tuple[tuple[str, ...], str], ...] = (
    (("device", "env", "power_mode"), "power mode"),
    (("device", "env", "cpu_governor"), "CPU governor"),
    (("conditions", "before", "cpu_governor"), "CPU governor"),
    (("device", "env", "l4t_release"), "L4T release"),
    (("conditions", "after", "throttled", "flags"), "throttle flags"),
    (("batch",), "batch size"),
    (("runtime", "threads"), "threads"),
)
#: Rows whose hottest sensor differs by more than this ran at different temperatures (clocks follow heat).
MAX_TEMP_SPREAD_C = 10.0


def _text(v: Any) -> str:
    if isinstance(v, Mapping):
        return ", ".join(f"{k}: {_text(x)}" for k, x in v.items() if x is not None) or "-"
    if isinstance(v, (list, tuple)):
        return ", ".join(_text(x) for x in v) or "none"
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else str(v)


def by_device(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(device_label(r), []).append(r)
    return groups


def manifest(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(label, value) pairs for one device's rows; a setting that differs between rows lists each value."""
    out: list[tuple[str, str]] = []
    for path, label in MANIFEST:
        values = list(dict.fromkeys(_text(get(r, *path)) for r in rows))
        values = [v for v in values if v != "-"] or ["-"]
        if values != ["-"]:
            out.append((label, " | ".join(values)))
    loads = [x for x in (_load(r) for r in rows) if x is not None]
    if loads:
        lo, hi = min(x[0] for x in loads), max(x[0] for x in loads)
        out.append(
            (
                "load average during runs",
                f"{lo:.2f}" + (f" to {hi:.2f}" if hi != lo else "") + f" on {loads[0][1]} cores",
            )
        )
    runtimes: dict[str, list[str]] = {}
    for r in rows:
        name = get(r, "runtime", "name")
        if name:
            runtimes.setdefault(str(name), [])
            v = _text(get(r, "runtime", "version"))
            if v not in runtimes[str(name)]:
                runtimes[str(name)].append(v)
    for name, versions in runtimes.items():
        out.append((f"runtime {name}", " | ".join(versions)))
    sources = sorted({str(r.get("_source")) for r in rows if r.get("_source")})
    if sources:
        out.append(("results files", ", ".join(sources)))
    return out


def condition_warnings(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per setting that differs between rows of the same device, and per row run under load."""
    warnings: list[str] = []
    for device, group in by_device(rows).items():
        for path, label in MUST_MATCH:
            seen: dict[str, list[str]] = {}
            for r in group:
                v = get(r, *path)
                if v is not None:
                    seen.setdefault(_text(v), []).append(row_label(r))
            if len(seen) > 1:
                detail = "; ".join(
                    f"{v} ({', '.join(who[:3])}{'…' if len(who) > 3 else ''})" for v, who in seen.items()
                )
                warnings.append(f"{device}: rows ran with different {label}: {detail}; their figures do not compare")
        versions: dict[str, set[str]] = {}
        for r in group:
            name, ver = get(r, "runtime", "name"), get(r, "runtime", "version")
            if name and ver:
                versions.setdefault(str(name), set()).add(str(ver))
        for name, vs in versions.items():
            if len(vs) > 1:
                warnings.append(f"{device}: rows ran on different {name} versions ({', '.join(sorted(vs))})")
        loaded = {row_label(r): load for r in group for load in [_load(r)] if load is not None}
        busy = [who for who, (load, cores) in loaded.items() if load > cores]
        calm = [who for who, (load, cores) in loaded.items() if load <= cores / 2]
        if busy and calm:
            warnings.append(
                f"{device}: some rows ran under load ({', '.join(busy[:3])}) and others did not "
                f"({', '.join(calm[:3])}); their latencies do not compare"
            )
        temps = {row_label(r): t for r in group for t in [_hottest(r)] if t is not None}
        if temps and max(temps.values()) - min(temps.values()) > MAX_TEMP_SPREAD_C:
            hot, cold = max(temps, key=temps.get), min(temps, key=temps.get)  # type: ignore[arg-type]
            warnings.append(
                f"{device}: rows started at different temperatures ({hot} {temps[hot]:.0f} °C, "
                f"{cold} {temps[cold]:.0f} °C); clocks follow heat"
            )
    return list(dict.fromkeys(warnings))


def _load(row: Mapping[str, Any]) -> tuple[float, int] | None:
    """(highest 1-minute load average before/after the run, usable cores)."""
    cores = get(row, "conditions", "cores")
    loads = [get(row, "conditions", w, "loadavg") for w in ("before", "after")]
    firsts = [v[0] for v in loads if isinstance(v, list) and v and isinstance(v[0], (int, float))]
    return (max(firsts), cores) if firsts and isinstance(cores, int) and cores > 0 else None


def _hottest(row: Mapping[str, Any]) -> float | None:
    temps = get(row, "conditions", "before", "temperatures_c") or get(row, "device", "temperatures_c", "before")
    values = [v for v in (temps or {}).values() if isinstance(v, (int, float))] if isinstance(temps, Mapping) else []
    return max(values) if values else None
