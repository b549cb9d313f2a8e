"""Shared pieces of the property-based (hypothesis) suites over the input parsers.

Every suite checks the same three promises of issue 10 for hostile input:
only :mod:`mdnet_deploy.errors` exceptions come out (no traceback reaches the
user), no file appears outside the folder the call may write to, and no code
from the input runs (a payload that would create a canary never does).
Runs are deterministic (``derandomize``) and small enough for every CI run.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from mdnet_deploy.errors import MdnetDeployError

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

#: JSON-like values of every type, nested: what a type-confused file holds.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def truncations(data: bytes) -> st.SearchStrategy[bytes]:
    """Every prefix of ``data``, and ``data`` with one byte flipped."""
    cut = st.integers(0, max(len(data) - 1, 0)).map(lambda n: data[:n])
    flip = st.tuples(st.integers(0, max(len(data) - 1, 0)), st.integers(1, 255)).map(
        lambda t: data[: t[0]] + bytes([data[t[0]] ^ t[1]]) + data[t[0] + 1 :] if data else data
    )
    return cut | flip


class _Global:
    """Pickles as a call of ``module.name(*args)``: the shape of every code-running pickle."""

    def __init__(self, func: Callable[..., Any], args: tuple) -> None:
        self.func, self.args = func, args

    def __reduce__(self):  # noqa: ANN204
        return (self.func, self.args)


def malicious_pickles(canary: Path) -> st.SearchStrategy[bytes]:
    """Pickles that, if loaded with plain pickle, would create ``canary`` (through several globals)."""
    import builtins
    import subprocess

    calls = [
        (os.mkdir, (str(canary),)),
        (os.system, (f"mkdir {canary}",)),
        (subprocess.call, (["mkdir", str(canary)],)),
        (builtins.exec, (f"import os; os.mkdir({str(canary)!r})",)),
        (builtins.eval, (f"__import__('os').mkdir({str(canary)!r})",)),
        (builtins.open, (str(canary), "w")),
    ]
    wrappers = [
        lambda p: p,
        lambda p: {b"data": p, b"labels": [0]},
        lambda p: {b"fine_label_names": [p]},
        lambda p: [p],
    ]
    return st.tuples(st.sampled_from(calls), st.sampled_from(wrappers), st.sampled_from([0, 2, 4, 5])).map(
        lambda t: pickle.dumps(t[1](_Global(*t[0])), protocol=t[2])
    )


def snapshot(folder: Path) -> set[str]:
    return {str(p) for p in Path(folder).rglob("*")}


@contextlib.contextmanager
def sandbox() -> Iterator[Path]:
    """A fresh folder (also the cwd) for one example, with a private $TMPDIR beside it.

    Afterwards the private temp folder must be empty and nothing may have
    appeared next to the two: a parser writes nowhere, temporary files included.
    """
    with tempfile.TemporaryDirectory(prefix="fuzz-") as name:
        root = Path(name)
        work, tmp = root / "work", root / "tmp"
        work.mkdir()
        tmp.mkdir()
        old_cwd, old_tempdir = os.getcwd(), tempfile.tempdir
        os.chdir(work)
        tempfile.tempdir = str(tmp)
        try:
            yield work
        finally:
            os.chdir(old_cwd)
            tempfile.tempdir = old_tempdir
        assert sorted(p.name for p in root.iterdir()) == ["tmp", "work"]
        assert list(tmp.iterdir()) == [], f"left in $TMPDIR: {sorted(p.name for p in tmp.iterdir())}"


def only_our_errors(call: Callable[[], Any]) -> Any:
    """Run ``call``; an MdnetDeployError is fine (one line), anything else fails the property."""
    try:
        return call()
    except MdnetDeployError as exc:
        assert "\n" not in str(exc)
        return exc
