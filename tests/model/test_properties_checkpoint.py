"""Property-based (hypothesis) suite over checkpoint loading (export's first step).

Random bytes behind a zip or pickle header, truncations of a real checkpoint, state dicts
with wrongly typed or shaped entries, and code-running pickles: only CheckpointError/InputError,
no files written, no code run (torch.load runs with weights_only unless --trust-pickle).
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdnet_deploy.model.checkpoint import load_checkpoint
from tests.helpers.fuzz import FUZZ, json_values, malicious_pickles, only_our_errors, sandbox, snapshot, truncations

# torch notes protocol-4/5 pickles before refusing them; the refusal is what is tested.
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")

_TINY: bytes | None = None


def tiny_bytes() -> bytes:
    global _TINY
    if _TINY is None:
        import torch

        from mdnet_deploy.model.mdnet import create_model

        torch.manual_seed(0)
        buf = io.BytesIO()
        torch.save(create_model(4, width=0.125).state_dict(), buf)
        _TINY = buf.getvalue()
    return _TINY


def _check(data: bytes) -> None:
    with sandbox() as folder:
        (folder / "c.pth").write_bytes(data)
        before = snapshot(folder)
        only_our_errors(lambda: load_checkpoint(folder / "c.pth"))
        assert snapshot(folder) == before


@FUZZ
@given(
    st.sampled_from([b"PK\x03\x04", b"\x80\x02", b"\x80\x05", b""]).flatmap(
        lambda head: st.binary(max_size=300).map(lambda b: head + b)
    )
)
def test_random_bytes(data):
    _check(data)


@FUZZ
@given(st.data())
def test_truncated_or_flipped_checkpoint(data):
    _check(data.draw(truncations(tiny_bytes())))


tensors = st.builds(
    lambda shape, kind: __import__("torch").zeros(shape, dtype=getattr(__import__("torch"), kind)),
    st.lists(st.integers(0, 3), max_size=4).map(tuple),
    st.sampled_from(["float32", "int64", "bool", "float16"]),
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["conv2.weight", "pre.0.weight", "transform.attn.temperature", "state_dict", "x"]),
        tensors | json_values,
        max_size=4,
    )
)
def test_type_confused_state_dicts(state):
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    _check(buf.getvalue())


@FUZZ
@given(st.data())
def test_code_running_pickles_run_nothing(data):
    with sandbox() as folder:
        canary = folder / "PWNED"
        payload = data.draw(malicious_pickles(canary))
        (folder / "c.pth").write_bytes(payload if payload[:1] == b"\x80" else b"\x80\x02" + payload)
        only_our_errors(lambda: load_checkpoint(folder / "c.pth"))
        assert not canary.exists()
