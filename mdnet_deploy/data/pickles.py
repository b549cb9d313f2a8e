"""Which pickles may be loaded, and a loader that runs no code from a data file.

A pickle is a program: ``pickle.load`` calls whatever global the stream
names (``os.system`` included). CIFAR's python batches are pickles, so a
folder that merely *looks* like CIFAR must never be loaded with plain
``pickle``. :func:`safe_load` admits only what real CIFAR files hold:
dicts, lists, tuples, bytes, str, numbers and numpy arrays / dtypes /
scalars. Everything else is refused with a :class:`DataError` naming
``--trust-pickle``, the one way (per command run) to load a pickle the user
vouches for.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import io
import pickle
from typing import Any, BinaryIO, Callable, Iterator

from ..errors import DataError

#: Whether this command run trusts pickled data and checkpoints (``--trust-pickle``).
#: A context variable, not a global: worker threads and later runs start untrusted.
_TRUST: contextvars.ContextVar[bool] = contextvars.ContextVar("mdnet_deploy_trust_pickle", default=False)


def pickles_trusted() -> bool:
    return _TRUST.get()


@contextlib.contextmanager
def trusted_pickles(trust: bool = True) -> Iterator[None]:
    """Within this block, data pickles and checkpoints may hold arbitrary Python objects (``--trust-pickle``)."""
    token = _TRUST.set(bool(trust))
    try:
        yield
    finally:
        _TRUST.reset(token)


def _latin1_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Python 3 pickles bytes under protocol 2 as _codecs.encode(str, 'latin1'):
    # admit exactly that use, not the whole codec registry.
    if not isinstance(obj, str) or encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError("_codecs.encode is admitted only for latin-1 bytes")
    return obj.encode("latin-1")


def _numpy(name: str) -> Callable[[], Any]:
    """Resolve ``numpy.<module>.<attr>`` under numpy 1 (numpy.core) and 2 (numpy._core) alike."""

    def get() -> Any:
        module, attr = name.rsplit(".", 1)
        for candidate in (module.replace("numpy.core", "numpy._core"), module):
            with contextlib.suppress(ImportError, AttributeError):
                return getattr(importlib.import_module(candidate), attr)
        raise pickle.UnpicklingError(f"numpy has no {name}")

    return get


# (module, name) as written in the stream -> the object it may load.
_ADMITTED: dict[tuple[str, str], Callable[[], Any]] = {
    ("numpy", "ndarray"): _numpy("numpy.ndarray"),
    ("numpy", "dtype"): _numpy("numpy.dtype"),
    ("_codecs", "encode"): lambda: _latin1_encode,
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ADMITTED[(_mod, "_reconstruct")] = _numpy("numpy.core.multiarray._reconstruct")
    _ADMITTED[(_mod, "scalar")] = _numpy("numpy.core.multiarray.scalar")
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _ADMITTED[(_mod, "_frombuffer")] = _numpy("numpy.core.numeric._frombuffer")


class RefusedPickle(pickle.UnpicklingError):
    """The stream names a global outside the admitted set."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.what = f"{module}.{name}"


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        getter = _ADMITTED.get((module, name))
        if getter is None:
            raise RefusedPickle(module, name)
        return getter()

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not admitted")


def safe_load(
    f: BinaryIO | bytes, *, encoding: str = "bytes", trust: bool | None = None, what: str = "data file"
) -> Any:
    """Unpickle ``f`` admitting only plain data and numpy arrays, unless trusted.

    Raises :class:`DataError` (naming ``--trust-pickle``) for a pickle that
    would import anything else; other failures propagate for the caller to
    word (it knows what kind of file was expected).
    """
    stream = io.BytesIO(f) if isinstance(f, (bytes, bytearray)) else f
    if trust if trust is not None else pickles_trusted():
        return pickle.load(stream, encoding=encoding)  # noqa: S301 - the user vouched for this file (--trust-pickle)
    try:
        return _DataUnpickler(stream, encoding=encoding).load()
    except RefusedPickle as exc:
        raise DataError(
            f"{what} contains a pickled {exc.what}, which data files never hold; loading it would run code from the file: "
            "if you trust its source, pass --trust-pickle"
        ) from None
