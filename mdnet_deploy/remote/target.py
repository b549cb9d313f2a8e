"""Where a remote device is and how to log in: ``user@host[:port]``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

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
    name: str | None = None  # inventory host name, for tables and messages

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        login = f"{self.user}@{host}" if self.user else host
        return login if self.port == 22 else f"{login}:{self.port}"

    @property
    def label(self) -> str:
        return self.name or self.address

    def with_(self, **changes: object) -> "DeviceTarget":
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


def parse_target(
    spec: str, device: str = "rpi", identity: str | os.PathLike[str] | None = None, name: str | None = None
) -> DeviceTarget:
    """Parse ``[user@]host[:port]`` (IPv6 as ``[addr]`` when a port follows)."""
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
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise InputError(f"{where}: missing ']' after the IPv6 address; use user@[addr]:port")
        if rest:
            if not rest.startswith(":"):
                raise InputError(f"{where}: unexpected '{rest}' after the address; use user@[addr]:port")
            port = check_port(rest[1:], where)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = check_port(port_text, where)
    else:
        host = text  # a name, IPv4, or a bare IPv6 address without a port
    check_host(host, where)
    ident = str(Path(identity).expanduser()) if identity else None
    return DeviceTarget(host=host, user=user, port=port, device=check_device_kind(device), identity=ident, name=name)
