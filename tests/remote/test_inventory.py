import textwrap

import pytest

from mdnet_deploy.errors import InputError
from mdnet_deploy.remote import load_inventory

INVENTORY = """
all:
  vars:
    ansible_user: pi
    mdnet_device: rpi
  hosts:
    lonely:
      ansible_host: 10.0.0.9
  children:
    pis:
      vars:
        ansible_port: 2222
      hosts:
        pi-a:
          ansible_host: 10.0.0.1
        pi-b:
          ansible_host: 10.0.0.2
          ansible_port: 22
          ansible_ssh_private_key_file: keys/pi_b
    jetsons:
      vars:
        mdnet_device: jetson
        ansible_user: nvidia
      children:
        orins:
          vars:
            ansible_ssh_private_key_file: ~/.ssh/orin
          hosts:
            orin-1:
              ansible_host: 10.0.1.1
              ansible_user: admin
        nanos:
          hosts:
            nano-1:
"""


def write(tmp_path, text):
    p = tmp_path / "devices.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_groups_vars_and_devices(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", "/home/me")
    targets = {t.name: t for t in load_inventory(write(tmp_path, INVENTORY))}
    assert list(targets) == ["lonely", "pi-a", "pi-b", "orin-1", "nano-1"]
    assert (targets["lonely"].host, targets["lonely"].user, targets["lonely"].port) == ("10.0.0.9", "pi", 22)
    assert (targets["pi-a"].port, targets["pi-a"].device) == (2222, "rpi")  # group var
    assert targets["pi-b"].port == 22  # host var beats group var
    assert targets["pi-b"].identity == str(tmp_path / "keys" / "pi_b")  # relative to the inventory
    orin = targets["orin-1"]
    assert (orin.device, orin.user, orin.identity) == ("jetson", "admin", "/home/me/.ssh/orin")
    nano = targets["nano-1"]
    assert (nano.host, nano.user, nano.device) == ("nano-1", "nvidia", "jetson")  # name as address


def test_child_group_beats_parent_even_when_listed_first(tmp_path):
    text = """
    jetsons:
      vars: {mdnet_device: jetson}
    all:
      vars: {mdnet_device: rpi}
      children:
        jetsons:
          hosts:
            j1: {}
    """
    assert load_inventory(write(tmp_path, text))[0].device == "jetson"


def test_missing_device_kind_names_the_host(tmp_path):
    with pytest.raises(InputError, match="'h1' has no mdnet_device"):
        load_inventory(write(tmp_path, "all:\n  hosts:\n    h1:\n"))
    assert load_inventory(write(tmp_path, "all:\n  hosts:\n    h1:\n"), default_device="rpi")[0].device == "rpi"


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("[pis]\npi-a\n", "'pi-a' has no mdnet_device"),  # INI, read; the kind is missing
        ("all: [\n", "neither valid YAML"),
        ("", "not a YAML inventory"),
        ("all:\n  hosts: {}\n", "lists no hosts"),
        ("all:\n  hostz:\n    a:\n", "unknown key"),
        ("all:\n  hosts:\n    a:\n      mdnet_device: esp32\n", "esp32"),
        ("all:\n  hosts:\n    a:\n      mdnet_device: rpi\n      ansible_port: 99999\n", "out of range"),
        ("all:\n  hosts:\n    a:\n      mdnet_device: rpi\n      ansible_host: 'x; rm -rf /'\n", "not a host"),
    ],
)
def test_bad_inventories(tmp_path, text, fragment):
    with pytest.raises(InputError, match=fragment):
        load_inventory(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_inventory(tmp_path / "nope.yaml")
