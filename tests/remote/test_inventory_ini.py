"""Ansible INI inventories: read without Ansible, same result as the YAML form."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mdnet_deploy.errors import InputError
from mdnet_deploy.remote import load_inventory
from mdnet_deploy.remote.inventory_ini import _from_listing, looks_like_ini, parse_ini_inventory

INI = """
# devices in the lab
spare-pi ansible_host=192.168.1.99 mdnet_device=rpi

[pis]
pi5-a ansible_host=192.168.1.20
pi[01:03].lab ansible_user=lab

[jetsons]
orin-1 ansible_host=192.168.1.30 ansible_port=2222 ansible_ssh_private_key_file="keys/jetson key"

[pis:vars]
mdnet_device=rpi
ansible_user = pi

[jetsons:vars]
mdnet_device=jetson
ansible_user=nvidia

[lab:children]
pis
jetsons

[all:vars]
ansible_port=22
"""

YAML = """
all:
  vars: {ansible_port: 22}
  hosts:
    spare-pi: {ansible_host: 192.168.1.99, mdnet_device: rpi}
  children:
    lab:
      children:
        pis:
          vars: {mdnet_device: rpi, ansible_user: pi}
          hosts:
            pi5-a: {ansible_host: 192.168.1.20}
            pi01.lab: {ansible_user: lab}
            pi02.lab: {ansible_user: lab}
            pi03.lab: {ansible_user: lab}
        jetsons:
          vars: {mdnet_device: jetson, ansible_user: nvidia}
          hosts:
            orin-1: {ansible_host: 192.168.1.30, ansible_port: 2222, ansible_ssh_private_key_file: keys/jetson key}
"""


@pytest.fixture(autouse=True)
def no_ansible(monkeypatch, tmp_path):
    # The built-in reader is under test: hide an ansible-inventory that may be installed,
    # and any ~/.ssh/config of the machine.
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def by_name(targets):
    return {t.name: t for t in targets}


def test_ini_reads_like_the_equivalent_yaml(tmp_path):
    ini, yaml = tmp_path / "hosts", tmp_path / "hosts.yaml"
    ini.write_text(INI)
    yaml.write_text(YAML)
    a, b = by_name(load_inventory(ini)), by_name(load_inventory(yaml))
    assert set(a) == {"spare-pi", "pi5-a", "pi01.lab", "pi02.lab", "pi03.lab", "orin-1"}
    assert a == b
    orin = a["orin-1"]
    assert (orin.host, orin.port, orin.user, orin.device) == ("192.168.1.30", 2222, "nvidia", "jetson")
    assert orin.identity == str(tmp_path / "keys" / "jetson key")  # quoted value, relative to the inventory
    assert (a["pi02.lab"].user, a["pi5-a"].user, a["spare-pi"].device) == ("lab", "pi", "rpi")


def test_detection():
    assert looks_like_ini("[pis]\npi-a\n") and looks_like_ini("pi-a ansible_host=1.2.3.4\n")
    assert not looks_like_ini("all:\n  hosts:\n")


def test_range_keeps_zero_padding():
    data = parse_ini_inventory("[g]\nnode[08:10] mdnet_device=rpi\n")
    assert list(data["all"]["children"]["g"]["hosts"]) == ["node08", "node09", "node10"]


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("[pis\npi-a\n", "not a section"),
        ("[pis]\npi-a ansible_host\n", "not key=value"),
        ("[pis:vars]\nmdnet_device\n", "not key=value"),
        ("[pis]\npi-a ansible_host='unclosed\n", "check the quotes"),
        ("[pis]\npi[3:1]\n", "backwards"),
        ("[pis]\npi-a ansible_host=x;reboot mdnet_device=rpi\n", "not a host"),
    ],
)
def test_bad_ini_is_one_line_with_the_line_number(tmp_path, text, fragment):
    p = tmp_path / "hosts.ini"
    p.write_text(text)
    with pytest.raises(InputError) as info:
        load_inventory(p)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_ansible_inventory_listing_is_converted():
    listing = {
        "_meta": {
            "hostvars": {"a": {"ansible_host": "10.0.0.1", "mdnet_device": "rpi"}, "b": {"mdnet_device": "jetson"}}
        },
        "all": {"children": ["ungrouped", "g"]},
        "ungrouped": {"hosts": ["b"]},
        "g": {"hosts": ["a"]},
    }
    data = _from_listing(listing)
    assert data == {
        "all": {"hosts": {"b": {"mdnet_device": "jetson"}, "a": {"ansible_host": "10.0.0.1", "mdnet_device": "rpi"}}}
    }
    assert _from_listing({"_meta": {"hostvars": {}}, "all": {"children": []}}) is None


ANSIBLE_INVENTORY = shutil.which("ansible-inventory")  # looked up before the fixture hides PATH


@pytest.mark.skipif(ANSIBLE_INVENTORY is None, reason="ansible-core is not installed here")
def test_real_ansible_inventory_agrees(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(Path(ANSIBLE_INVENTORY).parent))
    ini = tmp_path / "hosts"
    ini.write_text(INI)
    via_ansible = by_name(load_inventory(ini))
    monkeypatch.setenv("PATH", "/nonexistent")
    assert via_ansible == by_name(load_inventory(ini))
