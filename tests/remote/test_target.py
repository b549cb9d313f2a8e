import pytest

from mdnet_deploy.errors import InputError
from mdnet_deploy.remote import parse_target


@pytest.mark.parametrize(
    "spec,user,host,port",
    [
        ("pi@raspberrypi.local", "pi", "raspberrypi.local", 22),
        ("pi@192.168.1.20:2222", "pi", "192.168.1.20", 2222),
        ("jetson-nano", None, "jetson-nano", 22),
        ("nvidia@[fe80::1]:2200", "nvidia", "fe80::1", 2200),
        ("fe80::1", None, "fe80::1", 22),
        ("a.b@host_1", "a.b", "host_1", 22),
    ],
)
def test_parse_target(spec, user, host, port):
    t = parse_target(spec, device="jetson")
    assert (t.user, t.host, t.port, t.device) == (user, host, port, "jetson")


def test_address_round_trip():
    for spec in ("pi@h:2222", "pi@h", "u@[fe80::1]:2200"):
        assert parse_target(parse_target(spec).address).address == parse_target(spec).address


@pytest.mark.parametrize(
    "spec,fragment",
    [
        ("", "empty"),
        ("pi@host:0", "out of range"),
        ("pi@host:ssh", "not a number"),
        ("pi@-oProxyCommand=x", "not a host"),
        ("pi@host name", "not a host"),
        ("p;i@host", "user name"),
        ("pi@[fe80::1", "missing ']'"),
        ("pi@host;reboot", "not a host"),
    ],
)
def test_bad_targets_are_one_clear_line(spec, fragment):
    with pytest.raises(InputError) as info:
        parse_target(spec)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_bad_device_kind():
    with pytest.raises(InputError, match="rpi, jetson"):
        parse_target("pi@h", device="esp32")


def test_identity_is_expanded(monkeypatch):
    monkeypatch.setenv("HOME", "/home/someone")
    assert parse_target("pi@h", identity="~/.ssh/id_pi").identity == "/home/someone/.ssh/id_pi"
