"""Other inventory forms, turned into the YAML form that ``inventory`` reads.

* ``ansible-inventory --list`` (when ansible-core is installed): every
  format and plugin Ansible knows, with variables already merged by Ansible.
* Ansible's INI form, read here without Ansible: ``[group]`` sections of
  host lines (``name key=value ...``, numeric ranges ``pi[01:04]``),
  ``[group:vars]`` and ``[group:children]``; hosts before any section are
  ungrouped. No Python library outside ansible-core reads this form
  (``configparser`` does not: host lines have no ``=`` and keys repeat),
  so this is a small reader of the subset inventories of devices use.

Both return a mapping of the YAML form (``all: {hosts:, vars:, children:}``)
so one code path resolves hosts, precedence and checks.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..errors import InputError

_SECTION = re.compile(r"^\[([^\]:]+)(?::(vars|children))?\]$")
_RANGE = re.compile(r"^(.*?)\[([0-9]+):([0-9]+)(?::([0-9]+))?\](.*)$")


def looks_like_ini(text: str) -> bool:
    """A ``[section]`` line, or host lines without any YAML ``key:``."""
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith(("#", ";", "---")):
            continue
        return bool(_SECTION.match(s)) or ":" not in s.split("=", 1)[0]
    return False


def _expand(name: str, where: str) -> List[str]:
    m = _RANGE.match(name)
    if not m:
        return [name]
    head, lo, hi, step, tail = m.groups()
    if int(lo) > int(hi):
        raise InputError(f"{where}: host range [{lo}:{hi}] runs backwards; write [low:high]")
    width = len(lo) if lo.startswith("0") else 0
    return [f"{head}{i:0{width}d}{tail}" for i in range(int(lo), int(hi) + 1, int(step or 1))]


def _value(text: str) -> Any:
    # Ansible reads INI values as Python literals when they are one; here only
    # numbers need it (ports), and strings stay strings. Nothing is evaluated.
    return int(text) if text.isdigit() else text


def _pairs(tokens: List[str], where: str) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for tok in tokens:
        key, sep, val = tok.partition("=")
        if not sep or not key:
            raise InputError(f"{where}: '{tok}' is not key=value; write host variables as name=value")
        out[key] = _value(val)
    return out


def parse_ini_inventory(text: str, path: str = "inventory") -> Dict[str, Any]:
    """Ansible's INI inventory as the equivalent YAML mapping."""
    groups: Dict[str, Dict[str, Any]] = {}
    ungrouped: Dict[str, Any] = {}

    def group(name: str) -> Dict[str, Any]:
        return groups.setdefault(name, {"hosts": {}, "vars": {}, "children": {}})

    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        where = f"{path} line {number}"
        if line.startswith("["):
            m = _SECTION.match(line)
            if not m:
                raise InputError(f"{where}: '{line}' is not a section; use [group], [group:vars] or [group:children]")
            section, kind = m.group(1).strip(), m.group(2) or "hosts"
            group(section)
            continue
        if kind == "vars":
            # key=value, the value being the rest of the line (quotes removed).
            key, sep, val = line.partition("=")
            if not sep or not key.strip():
                raise InputError(f"{where}: '{line}' is not key=value; a [{section}:vars] line sets one variable")
            try:
                words = shlex.split(val, comments=True)
            except ValueError as exc:
                raise InputError(f"{where}: {exc}; check the quotes") from None
            group(section)["vars"][key.strip()] = _value(" ".join(words))
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise InputError(f"{where}: {exc}; check the quotes") from None
        if not tokens:
            continue
        if kind == "children":
            group(section)["children"][tokens[0]] = None
            group(tokens[0])
        else:
            host_vars = _pairs(tokens[1:], where)
            bucket = ungrouped if section in ("ungrouped", "all") else group(section)["hosts"]
            for host in _expand(tokens[0], where):
                bucket.setdefault(host, {}).update(host_vars)
    all_vars = groups.pop("all", {}).get("vars", {})
    body: Dict[str, Any] = {"vars": all_vars, "hosts": ungrouped, "children": {}}
    data: Dict[str, Any] = {"all": body}
    children_of_any = {c for g in groups.values() for c in g["children"]}
    for name, g in groups.items():
        entry = {k: v for k, v in g.items() if v}
        if name in children_of_any:
            data[name] = entry  # merged by name with its mention under the parent
        else:
            body["children"][name] = entry
    return data


def ansible_inventory_list(path: str | os.PathLike[str], timeout: float = 60.0) -> Optional[Dict[str, Any]]:
    """The inventory through ``ansible-inventory --list``, or None when Ansible is not installed.

    An executable inventory file is an Ansible inventory *script*: it is never
    handed over, because running it would run code from a data file.
    """
    exe = shutil.which("ansible-inventory")
    p = Path(path)
    if exe is None or os.access(p, os.X_OK):
        return None
    try:
        proc = subprocess.run([exe, "-i", str(p), "--list"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None  # the built-in readers still get their chance
    if proc.returncode != 0:
        return None
    try:
        listing = json.loads(proc.stdout)
    except ValueError:
        return None
    return _from_listing(listing)


def _from_listing(listing: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """``--list`` JSON (groups name hosts; ``_meta.hostvars`` already merged) as the YAML form."""
    hostvars = (listing.get("_meta") or {}).get("hostvars") or {}
    order: List[str] = []
    seen_groups: set = set()

    def walk(name: str) -> None:
        if name in seen_groups:
            return
        seen_groups.add(name)
        g = listing.get(name) or {}
        for h in g.get("hosts") or []:
            if h not in order:
                order.append(h)
        for child in g.get("children") or []:
            walk(child)

    walk("all")
    if not order:
        return None  # an empty answer: let the built-in readers explain what is wrong
    return {"all": {"hosts": {h: dict(hostvars.get(h) or {}) for h in order}}}
