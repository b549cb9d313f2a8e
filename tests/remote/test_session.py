"""The real SSH client against a paramiko server on 127.0.0.1: host keys, auth, errors."""

import shlex

import pytest

from mdnet_deploy.errors import InputError, UnavailableError
from mdnet_deploy.remote import parse_target
from mdnet_deploy.remote.session import Session, fingerprint

from .conftest import free_port


def session(server, known_hosts, accept=False, key=None, user="tester"):
    target = parse_target(f"{user}@127.0.0.1:{server.port}", identity=key or server.user_key_file)
    return Session(target, accept_new_host_key=accept, known_hosts=known_hosts, connect_timeout=5)


def test_unknown_host_key_is_refused_without_the_flag(ssh_server, tmp_path):
    kh = tmp_path / "known_hosts"
    with pytest.raises(InputError) as info:
        session(ssh_server, kh).connect()
    msg = str(info.value)
    assert "--accept-new-host-key" in msg and fingerprint(ssh_server.host_key) in msg
    assert not kh.exists()  # nothing recorded


def test_accept_new_records_the_key_then_it_is_trusted(ssh_server, tmp_path):
    kh = tmp_path / "ssh" / "known_hosts"
    with session(ssh_server, kh, accept=True) as s:
        res = s.run(["echo", "a b;c", "$(id)"], timeout=10)
    assert shlex.split(res.stdout.strip()) == ["echo", "a b;c", "$(id)"]  # arrived quoted
    line = kh.read_text().strip()
    assert line == f"[127.0.0.1]:{ssh_server.port} ssh-ed25519 {ssh_server.host_key.get_base64()}"
    assert (kh.stat().st_mode & 0o777) == 0o600
    with session(ssh_server, kh) as s:  # now known: no flag needed
        assert s.alive


def test_changed_host_key_is_refused_even_with_the_flag(ssh_server, tmp_path):
    kh = tmp_path / "known_hosts"
    other = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    kh.write_text(f"[127.0.0.1]:{ssh_server.port} ssh-ed25519 {other}\n")
    with pytest.raises(InputError, match="CHANGED"):
        session(ssh_server, kh, accept=True).connect()


def test_refused_authentication(ssh_server, tmp_path):
    kh = tmp_path / "known_hosts"
    with pytest.raises(InputError) as info:
        session(ssh_server, kh, accept=True, user="intruder").connect()
    assert "refused authentication for intruder" in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_identity_file(ssh_server, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        session(ssh_server, tmp_path / "kh", key=tmp_path / "no_key").connect()


def test_unreachable_host_is_one_line(tmp_path):
    port = free_port()  # loopback, nothing listening
    s = Session(parse_target(f"pi@127.0.0.1:{port}"), known_hosts=tmp_path / "kh", connect_timeout=3)
    with pytest.raises(UnavailableError) as info:
        s.connect()
    assert f"127.0.0.1:{port}" in str(info.value) and "connection refused" in str(info.value)


def test_command_timeout(ssh_server, tmp_path):
    with session(ssh_server, tmp_path / "kh", accept=True) as s:
        with pytest.raises(UnavailableError, match="did not finish within 1 s"):
            s.run(["sleep", "100"], timeout=1, what="sleep")
