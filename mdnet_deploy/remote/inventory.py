"""Read the devices to bench from an Ansible inventory.

Any form ``ansible-inventory --list`` reads, when ansible-core is installed;
otherwise the YAML form below or the INI form (``inventory_ini``, turned
into the YAML form). Hosts also take what ``~/.ssh/config`` says for them
(as Ansible's ssh connection does), for what the inventory leaves open.

Supported: ``all:`` (or any top-level group) with ``hosts:``, ``vars:`` and
``children:`` nested to any depth; per-host connection variables
``ansible_host``, ``ansible_user``, ``ansible_port`` and
``ansible_ssh_private_key_file`` (plus the old ``ansible_ssh_*`` spellings);
and ``mdnet_device: rpi|jetson`` set per host or per group.

Variable precedence follows Ansible: ``all`` vars < parent group vars <
child group vars < host vars. A host listed in several groups gets the
union; deeper groups win, and among equals the one whose name sorts last
(Ansible's order). A group defined in several places is one group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from .inventory_ini import ansible_inventory_list, looks_like_ini, parse_ini_inventory
from .target import _USER, DeviceTarget, apply_ssh_config, check_device_kind, check_host, check_port

_ALIASES = {
    "ansible_ssh_host": "ansible_host",
    "ansible_ssh_user": "ansible_user",
    "ansible_ssh_port": "ansible_port",
    "ansible_private_key_file": "ansible_ssh_private_key_file",
}


@dataclass
class _Group:
    vars: dict[str, Any] = field(default_factory=dict)
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> host vars
    children: list[str] = field(default_factory=list)


def _as_mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{where} must be a mapping (key: value), not {type(value).__name__}; fix the inventory")
    return value


def _collect(name: str, body: Any, groups: dict[str, _Group], order: list[str], path: str) -> None:
    """Merge every definition of a group: Ansible treats a name as one group."""
    body = _as_mapping(body, f"{path}: group '{name}'")
    unknown = set(body) - {"hosts", "vars", "children"}
    if unknown:
        raise InputError(
            f"{path}: group '{name}' has unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            "a group holds only hosts:, vars: and children:"
        )
    group = groups.setdefault(name, _Group())
    group.vars.update(_as_mapping(body.get("vars"), f"{path}: vars of group '{name}'"))
    for host, host_vars in _as_mapping(body.get("hosts"), f"{path}: hosts of group '{name}'").items():
        if str(host) not in order:
            order.append(str(host))
        group.hosts.setdefault(str(host), {}).update(_as_mapping(host_vars, f"{path}: host '{host}'"))
    for child, child_body in _as_mapping(body.get("children"), f"{path}: children of group '{name}'").items():
        if str(child) not in group.children:
            group.children.append(str(child))
        _collect(str(child), child_body, groups, order, path)


def _depths(groups: dict[str, _Group], path: str) -> dict[str, int]:
    """Depth below 'all' (longest path), as Ansible orders group vars."""
    depth: dict[str, int] = {}

    def visit(name: str, d: int, stack: tuple[str, ...]) -> None:
        if name in stack:
            raise InputError(f"{path}: group '{name}' contains itself; fix the children: of the inventory")
        if depth.get(name, -1) >= d:
            return
        depth[name] = d
        for child in groups[name].children:
            visit(child, d + 1, stack + (name,))

    top = [g for g in groups if g != "all" and not any(g in o.children for o in groups.values())]
    if "all" in groups:
        visit("all", 0, ())
    for g in top:  # top-level groups are implicit children of 'all'
        visit(g, 1, ())
    return depth


def _host_vars(host: str, groups: dict[str, _Group], depth: dict[str, int]) -> dict[str, Any]:
    member = {g for g, grp in groups.items() if host in grp.hosts}
    # Every ancestor of a group holding the host contributes its vars too.
    changed = True
    while changed:
        parents = {g for g, grp in groups.items() if any(c in member for c in grp.children)}
        changed = not parents <= member
        member |= parents
    member.add("all")
    merged: dict[str, Any] = {}
    layers = [groups[g].vars for g in sorted(member & set(groups), key=lambda g: (depth.get(g, 1), g))]
    # Host vars beat group vars; among groups, deeper wins, then by name.
    layers += [
        groups[g].hosts[host]
        for g in sorted(member & set(groups), key=lambda g: (depth.get(g, 1), g))
        if host in groups[g].hosts
    ]
    for layer in layers:
        for key, value in layer.items():
            merged[_ALIASES.get(str(key), str(key))] = value
    return merged


def parse_inventory(data: Any, path: str = "inventory", default_device: str | None = None) -> list[DeviceTarget]:
    """Turn a loaded YAML document into targets (in first-seen order)."""
    if not isinstance(data, dict) or not data:
        raise InputError(f"{path}: not a YAML inventory (expected 'all:' with hosts:, vars: and children:)")
    groups: dict[str, _Group] = {}
    order: list[str] = []
    for name, body in data.items():
        _collect(str(name), body, groups, order, path)
    if not order:
        raise InputError(f"{path}: the inventory lists no hosts; add some under all: hosts:")
    depth = _depths(groups, path)
    base = Path(path).parent
    targets = []
    for name in order:
        v = _host_vars(name, groups, depth)
        where = f"{path}: host '{name}'"
        device = v.get("mdnet_device", default_device)
        if device is None:
            raise InputError(f"{where} has no mdnet_device; set mdnet_device: rpi or jetson on the host or its group")
        host = check_host(str(v.get("ansible_host", name)), where)
        port = check_port(v.get("ansible_port", 22), where)
        user = v.get("ansible_user")
        if user is not None and not _USER.match(str(user)):
            # The same rule as --host's user@: a leading '-' or a space is a typo or an attack.
            raise InputError(f"{where}: ansible_user '{user}' is not a valid user name; fix the inventory")
        key = v.get("ansible_ssh_private_key_file")
        identity = None
        if key:
            # Relative key paths are taken from the inventory's folder, so an
            # inventory and its keys can travel together.
            key_path = Path(os.path.expanduser(str(key)))
            identity = str(key_path if key_path.is_absolute() else base / key_path)
        target = DeviceTarget(
            host=host,
            user=str(user) if user is not None else None,
            port=port,
            device=check_device_kind(str(device), f"{where}: mdnet_device"),
            identity=identity,
            name=name,
        )
        targets.append(apply_ssh_config(target, port_given="ansible_port" in v, where=where))
    return targets


def load_inventory(path: str | os.PathLike[str], default_device: str | None = None) -> list[DeviceTarget]:
    """Read ``devices.yaml``; one clear line when it is missing or malformed."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"inventory {p} does not exist; give the path of an Ansible inventory (YAML or INI)") from None
    except OSError as exc:
        raise InputError(f"cannot read inventory {p}: {exc.strerror or exc}") from None
    listed = ansible_inventory_list(p)
    if listed is not None:
        return parse_inventory(listed, str(p), default_device)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        if looks_like_ini(text):
            return parse_inventory(parse_ini_inventory(text, str(p)), str(p), default_device)
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"inventory {p} is neither valid YAML{at} nor an INI inventory; fix the file") from None
    if not isinstance(data, dict) and looks_like_ini(text):
        return parse_inventory(parse_ini_inventory(text, str(p)), str(p), default_device)
    return parse_inventory(data, str(p), default_device)
