"""Property-based (hypothesis) suite over the remote inputs: Ansible inventories and known_hosts.

Type-confused inventory data and random inventory text give InputError only; a known_hosts
file of random, truncated or marker lines never raises (OpenSSH skips what it cannot use).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mdnet_deploy.remote.inventory import load_inventory, parse_inventory
from mdnet_deploy.remote.session import load_known_hosts
from tests.helpers.fuzz import FUZZ, json_values, only_our_errors, sandbox, snapshot, truncations

KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
GOOD_INVENTORY = """all:
  vars:
    mdnet_device: rpi
  hosts:
    pi1:
      ansible_host: 192.168.1.10
      ansible_user: pi
      ansible_port: 22
  children:
    jetsons:
      vars: {mdnet_device: jetson}
      hosts:
        nano: {ansible_host: nano.local, ansible_ssh_private_key_file: keys/id}
"""
host_vars = st.dictionaries(
    st.sampled_from(
        ["ansible_host", "ansible_user", "ansible_port", "mdnet_device", "ansible_ssh_private_key_file", "x"]
    ),
    json_values,
    max_size=4,
)


@FUZZ
@given(
    json_values
    | st.fixed_dictionaries(
        {"all": st.fixed_dictionaries({"hosts": st.dictionaries(st.text(max_size=6), host_vars, max_size=3)})}
    )
)
def test_inventory_data(data):
    only_our_errors(lambda: parse_inventory(data, "inv.yml", default_device=None))


@FUZZ
@given(st.text(max_size=300) | truncations(GOOD_INVENTORY.encode()).map(lambda b: b.decode("utf-8", "replace")))
def test_inventory_text(text):
    with sandbox() as folder:
        (folder / "inv.yml").write_text(text)
        before = snapshot(folder)
        only_our_errors(lambda: load_inventory(folder / "inv.yml"))
        assert snapshot(folder) == before


lines = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["@cert-authority", "@revoked", "host", "|1|abc|def", "[h]:22", "*"]).flatmap(
        lambda head: st.tuples(
            st.sampled_from(["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "x"]),
            truncations(KEY.encode()).map(lambda b: b.decode("latin-1")),
        ).map(lambda t: f"{head} * {t[0]} {t[1]}")
    ),
)


@FUZZ
@given(st.lists(lines, max_size=6))
def test_known_hosts_lines(content):
    import paramiko

    with sandbox() as folder:
        kh = folder / "known_hosts"
        kh.write_text("\n".join(content), encoding="utf-8", errors="replace")
        before = snapshot(folder)
        client = paramiko.SSHClient()
        revoked = only_our_errors(lambda: load_known_hosts(client, kh))
        assert isinstance(revoked, set)  # never an error: bad lines are skipped
        assert snapshot(folder) == before
