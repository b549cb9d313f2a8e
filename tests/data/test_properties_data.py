"""Property-based (hypothesis) suite over the data parsers: .npz, CIFAR pickles, images.

For random bytes, truncations, flipped bytes and type-confused contents: only DataError
(one line) comes out, nothing is written outside the example's folder, no code runs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from mdnet_deploy.data.dataset import load_dataset
from tests.helpers.datasets import cifar100
from tests.helpers.fuzz import FUZZ, json_values, malicious_pickles, only_our_errors, sandbox, snapshot, truncations


def _valid_npz() -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez_compressed(
        buf, x=rng.integers(0, 256, (3, 4, 4, 3), dtype=np.uint8), y=np.array([0, 1, 0]), labels=np.array(["a", "b"])
    )
    return buf.getvalue()


def _load_file(folder: Path, name: str, data: bytes) -> None:
    (folder / name).write_bytes(data)
    before = snapshot(folder)
    only_our_errors(lambda: load_dataset(str(folder / name)))
    assert snapshot(folder) == before  # a loader writes nothing


@FUZZ
@given(st.binary(max_size=512) | truncations(_valid_npz()))
def test_npz_bytes(data):
    with sandbox() as folder:
        _load_file(folder, "d.npz", data)


arrays = st.one_of(
    st.builds(
        lambda shape, dtype: np.zeros(shape, dtype),
        st.lists(st.integers(0, 4), max_size=5).map(tuple),
        st.sampled_from([np.uint8, np.int64, np.float32, np.float64, np.bool_, np.complex64, "U3", "S2"]),
    ),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=6).map(np.array),
    st.lists(st.integers(-5, 5), max_size=6).map(np.array),
)


@FUZZ
@given(st.dictionaries(st.sampled_from(["x", "y", "labels", "description", "other"]), arrays, max_size=4))
def test_npz_type_confused(members):
    with sandbox() as folder:
        np.savez(folder / "d.npz", **members)
        before = snapshot(folder)
        only_our_errors(lambda: load_dataset(str(folder / "d.npz")))
        assert snapshot(folder) == before


def _cifar_test_batch() -> bytes:
    return pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1]}, protocol=2)


@FUZZ
@given(st.sampled_from(["meta", "test"]), st.binary(max_size=256) | truncations(_cifar_test_batch()))
def test_cifar_pickle_bytes(which, data):
    with sandbox() as folder:
        cifar100(folder / "c")
        (folder / "c" / which).write_bytes(data)
        only_our_errors(lambda: load_dataset(str(folder / "c")))


@FUZZ
@given(
    st.sampled_from(["meta", "test"]),
    json_values
    | st.dictionaries(
        st.sampled_from([b"data", b"fine_labels", b"fine_label_names"]), json_values | arrays, max_size=3
    ),
)
def test_cifar_type_confused(which, obj):
    with sandbox() as folder:
        cifar100(folder / "c")
        (folder / "c" / which).write_bytes(pickle.dumps(obj, protocol=2))
        only_our_errors(lambda: load_dataset(str(folder / "c")))


@FUZZ
@given(st.data())
def test_cifar_malicious_pickles_run_nothing(data):
    with sandbox() as folder:
        canary = folder / "PWNED"
        cifar100(folder / "c")
        which = data.draw(st.sampled_from(["meta", "test"]))
        (folder / "c" / which).write_bytes(data.draw(malicious_pickles(canary)))
        err = only_our_errors(lambda: load_dataset(str(folder / "c")))
        assert err is not None and "--trust-pickle" in str(err)
        assert not canary.exists()


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@FUZZ
@given(
    st.binary(max_size=256)
    | truncations(_png())
    | st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1)).map(
        lambda wh: _png()[:16] + wh[0].to_bytes(4, "big") + wh[1].to_bytes(4, "big") + _png()[24:]
    )
)
def test_image_bytes(data):
    with sandbox() as folder:
        (folder / "imgs" / "a").mkdir(parents=True)
        (folder / "imgs" / "a" / "x.png").write_bytes(data)
        (folder / "imgs" / "a" / "ok.png").write_bytes(_png())
        before = snapshot(folder)
        only_our_errors(lambda: load_dataset(str(folder / "imgs")))
        assert snapshot(folder) == before
