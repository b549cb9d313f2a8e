"""Where a remote device is and how to log in: ``user@host[:port]``.

A host that names a ``Host`` entry of ``~/.ssh/config`` takes its
HostName, User, Port, IdentityFile and ProxyJump from there, as ``ssh``
does; what the command line says explicitly wins over the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

from ..errors import InputError

DEVICE_KINDS = ("rpi", "jetson")

# A host is a DNS name, an IPv4 address or a bracketed IPv6 address. Being
# strict here is a second line of defence: the host never reaches a shell,
# but a leading '-' or a space is always a typo or an attack.
_HOSTNAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.%a-zA-Z]+$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$")


@dataclass(frozen=True)
class DeviceTarget:
    """One device to bench: address, login and kind."""

    host: str
    user: str | None = None
    port: int = 22
    device: str = "rpi"
    identity: str | None = None  # private key file; stays on the workstation
    name: str | None = None  # inventory host name or ssh_config alias, for tables and messages
    proxy_jump: str | None = None  # ssh's ProxyJump: [user@]host[:port][,...], hops in order

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        login = f"{self.user}@{host}" if self.user else host
        return login if self.port == 22 else f"{login}:{self.port}"

    @property
    def label(self) -> str:
        return self.name or self.address

    def with_(self, **changes: object) -> DeviceTarget:
        return replace(self, **changes)  # type: ignore[arg-type]


def check_device_kind(device: str, where: str = "--device") -> str:
    kind = str(device).strip().lower()
    if kind not in DEVICE_KINDS:
        raise InputError(f"{where} '{device}' is not a remote device kind; use one of {', '.join(DEVICE_KINDS)}")
    return kind


def check_port(port: object, where: str) -> int:
    try:
        value = int(str(port))
    except ValueError:
        raise InputError(f"{where}: port '{port}' is not a number; give a port between 1 and 65535") from None
    if not 1 <= value <= 65535:
        raise InputError(f"{where}: port {value} is out of range; give a port between 1 and 65535")
    return value


def check_host(host: str, where: str) -> str:
    ok = bool(_HOSTNAME.match(host)) or (":" in host and bool(_IPV6.match(host)))
    if not ok:
        raise InputError(f"{where}: '{host}' is not a host name or IP address; use user@host[:port]")
    return host


DEFAULT_SSH_CONFIG = "~/.ssh/config"


def _lookup_ssh_config(host: str, path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The ``~/.ssh/config`` options for ``host`` (empty without the file or paramiko)."""
    file = Path(os.path.expanduser(str(path or DEFAULT_SSH_CONFIG)))
    if not file.is_file():
        return {}
    try:
        import paramiko
    except ImportError:  # no remote extra: nothing can connect anyway, and the session says so
        return {}
    try:
        config = paramiko.SSHConfig.from_path(str(file))
        found = dict(config.lookup(host))
    except Exception as exc:  # paramiko raises several types for a malformed file
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(f"cannot read {file} for host '{host}': {reason}; fix that entry") from None
    if found.get("hostname") == host:
        del found["hostname"]  # paramiko echoes the alias when the entry sets no HostName
    return found


def apply_ssh_config(
    target: DeviceTarget, *, port_given: bool, ssh_config: str | os.PathLike[str] | None = None, where: str = "--host"
) -> DeviceTarget:
    """Fill what ``target`` leaves open from its ``Host`` entry, as ``ssh`` would.

    Explicit values (a user in ``user@host``, a port, ``--identity``) win;
    the alias stays the target's name so tables show what the user typed.
    """
    options = _lookup_ssh_config(target.host, ssh_config)
    if not options:
        return target
    changes: dict[str, Any] = {}
    if options.get("hostname"):
        changes["host"] = check_host(str(options["hostname"]), f"{where}: HostName of '{target.host}' in ssh config")
        changes["name"] = target.name or target.host
    if target.user is None and options.get("user"):
        changes["user"] = str(options["user"])
    if not port_given and options.get("port"):
        changes["port"] = check_port(options["port"], f"{where}: Port of '{target.host}' in ssh config")
    if target.identity is None and options.get("identityfile"):
        files = [os.path.expanduser(str(f)) for f in options["identityfile"]]
        # ssh tries each; one key is kept here, so take the first that exists.
        changes["identity"] = next((f for f in files if Path(f).is_file()), files[0])
    jump = str(options.get("proxyjump") or "").strip()
    if jump and jump.lower() != "none" and target.proxy_jump is None:
        changes["proxy_jump"] = jump
    return replace(target, **changes)


def parse_target(
    spec: str,
    device: str = "rpi",
    identity: str | os.PathLike[str] | None = None,
    name: str | None = None,
    ssh_config: Optional[str | os.PathLike[str]] = None,
) -> DeviceTarget:
    """Parse ``[user@]host[:port]`` (IPv6 as ``[addr]`` when a port follows).

    ``host`` may be a ``Host`` alias of ``ssh_config`` (default
    ``~/.ssh/config``); see :func:`apply_ssh_config`.
    """
    text = str(spec).strip()
    where = f"--host '{spec}'"
    if not text:
        raise InputError("--host is empty; give the device as user@host[:port]")
    user: str | None = None
    if "@" in text:
        user, text = text.rsplit("@", 1)
        if not _USER.match(user):
            raise InputError(f"{where}: user name '{user}' is not valid; use user@host[:port]")
    port = 22
    port_given = False
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise InputError(f"{where}: missing ']' after the IPv6 address; use user@[addr]:port")
        if rest:
            if not rest.startswith(":"):
                raise InputError(f"{where}: unexpected '{rest}' after the address; use user@[addr]:port")
            port = check_port(rest[1:], where)
            port_given = True
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = check_port(port_text, where)
        port_given = True
    else:
        host = text  # a name, IPv4, or a bare IPv6 address without a port
    check_host(host, where)
    ident = str(Path(identity).expanduser()) if identity else None
    target = DeviceTarget(host=host, user=user, port=port, device=check_device_kind(device), identity=ident, name=name)
    return apply_ssh_config(target, port_given=port_given, ssh_config=ssh_config, where=where)
