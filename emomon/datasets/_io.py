"""Small helpers shared by the dataset readers: safe file loading and checks.

Every function here turns a problem with a user's file into a one-line
:class:`~emomon.errors.DatasetError` that names the file and says what was
expected, so that readers never leak a raw traceback for bad input.
"""

from __future__ import annotations

import codecs
import io
import math
import os
import pickle
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from emomon.errors import ConfigError, DatasetError

__all__ = [
    "check_finite",
    "float_array",
    "load_mat",
    "load_pickle",
    "loads_pickle",
    "mat_scalar",
    "mat_str",
    "one_line",
    "reject_unknown_options",
    "sorted_naturally",
    "unwrap",
]

_MAX_DETAIL = 160


def one_line(exc: BaseException) -> str:
    """``"ExcType: message"`` squeezed onto one short line."""
    msg = " ".join(str(exc).split())
    if len(msg) > _MAX_DETAIL:
        msg = msg[: _MAX_DETAIL - 3] + "..."
    name = type(exc).__name__
    return f"{name}: {msg}" if msg else name


def load_mat(
    path: Path, expected: str, variable_names: Iterable[str] | None = None
) -> dict[str, Any]:
    """Load a MATLAB (v4-v7.2) file with :func:`scipy.io.loadmat`.

    Parameters
    ----------
    path : Path
        The ``.mat`` file.
    expected : str
        What the file should contain, used in the error message.
    variable_names : iterable of str, optional
        Load only these variables (faster on large files).

    Returns
    -------
    contents : dict
        Variable name -> value, as returned by ``loadmat`` (MATLAB's 2-D shapes
        kept: a scalar is ``(1, 1)``, a cell array an object array).

    Raises
    ------
    DatasetError
        If the file is missing, truncated, corrupt (including headers that would
        make scipy allocate gigabytes or crash, see :mod:`emomon.datasets._mat5`),
        or a v7.3 (HDF5) file.
    """
    from scipy.io import loadmat

    from emomon.datasets._mat5 import MatUnsafe, check_mat5

    if not path.is_file():
        raise DatasetError(f"{path}: file not found; expected {expected}")
    names = list(variable_names) if variable_names is not None else None
    try:
        # scipy sizes cell/struct arrays from their headers before reading them:
        # refuse impossible sizes first (a flipped bit would fill gigabytes).
        check_mat5(path, names)
        return loadmat(str(path), variable_names=names)
    except MatUnsafe as exc:
        raise DatasetError(
            f"{path.name}: corrupt .mat file ({exc}); expected {expected}"
        ) from None
    except MemoryError:
        # Only a corrupt header asks for more memory than the machine has.
        raise DatasetError(
            f"{path.name}: corrupt .mat file (declares arrays larger than memory); "
            f"expected {expected}"
        ) from None
    except NotImplementedError as exc:  # scipy's answer to HDF5-based v7.3 files
        raise DatasetError(
            f"{path.name}: MATLAB v7.3 (HDF5) file, which scipy cannot read "
            f"({one_line(exc)}); re-save it in MATLAB with save(..., '-v7'); "
            f"expected {expected}"
        ) from exc
    except OSError as exc:
        # errno set: the filesystem refused (permissions, ...); unset: scipy's
        # "could not read bytes" for a file that ends too early.
        what = "cannot read" if exc.errno is not None else "truncated or corrupt"
        raise DatasetError(
            f"{path.name}: {what} .mat file ({one_line(exc)}); expected {expected}"
        ) from exc
    except Exception as exc:  # scipy raises a zoo of types for damaged files
        raise DatasetError(
            f"{path.name}: truncated or corrupt .mat file ({one_line(exc)}); "
            f"expected {expected}"
        ) from exc


#: A DEAP pickle has a few dozen opcodes; a cap keeps a crafted file from
#: building containers nested deep enough to overflow the C stack when hashed.
MAX_PICKLE_OPS = 10_000


class _NdarrayToken:
    """Stand for ``numpy.ndarray`` inside a pickle.

    Usable only as the subtype argument of ``_reconstruct`` (calling the class
    directly would allocate any shape the file asks for).
    """


_NDARRAY = _NdarrayToken()


def _counted(op: Any) -> Any:
    def run(self: _NumpyOnlyUnpickler) -> None:
        self.n_ops += 1
        if self.n_ops > MAX_PICKLE_OPS:
            raise pickle.UnpicklingError(
                f"more than {MAX_PICKLE_OPS} pickle opcodes (not a dict of arrays)"
            )
        op(self)

    return run


class _NumpyOnlyUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Unpickler that only builds numpy arrays, dtypes and plain containers.

    DEAP's ``.dat`` files are pickles; unpickling an arbitrary file can run
    arbitrary code, so only the globals a pickled dict of numpy arrays needs are
    allowed (Python 2 and 3, numpy 1 and 2 module names), and the ones that
    allocate are wrapped to allocate no more elements than the file has bytes.

    This is the pure-Python unpickler: the C one grows its memo table to any
    index a corrupt file names (gigabytes, zero-filled) and cannot count opcodes.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("__builtin__", "object"),
        ("builtins", "object"),
    }
    dispatch = {k: _counted(v) for k, v in pickle._Unpickler.dispatch.items()}  # type: ignore[attr-defined]

    def __init__(self, file: Any, *, max_elements: int) -> None:
        super().__init__(file, encoding="latin1")
        self.n_ops = 0
        self.max_elements = max(int(max_elements), 1)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name} (only numpy arrays allowed)"
            )
        if name == "ndarray":
            return _NDARRAY
        if name == "_reconstruct":
            return self._reconstruct
        if name == "_reconstructor":
            return self._reconstructor
        if name == "encode":
            return _latin1_encode
        has_core = hasattr(np, "_core")  # numpy >= 2 (or 1.26's forward shim)
        if module.startswith("numpy.core.") and has_core:
            module = "numpy._core." + module[len("numpy.core.") :]
        elif module.startswith("numpy._core.") and not has_core:
            module = "numpy.core." + module[len("numpy._core.") :]
        elif module == "__builtin__":
            module = "builtins"
        return super().find_class(module, name)

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        """Replace ``numpy.core.multiarray._reconstruct`` for plain ndarrays.

        Only of a size the file can back (real pickles pass shape ``(0,)``;
        ``BUILD`` fills them).
        """
        if subtype is not _NDARRAY:
            raise pickle.UnpicklingError("_reconstruct of something not an ndarray")
        dims = shape if isinstance(shape, tuple) else (shape,)
        if not all(isinstance(d, int) and d >= 0 for d in dims):
            raise pickle.UnpicklingError(f"bad array shape {shape!r}")
        if math.prod(dims) > self.max_elements:
            raise pickle.UnpicklingError(f"array shape {dims} is larger than the file")
        return np.ndarray(dims, dtype=dtype)

    def _reconstructor(self, cls: Any, base: Any, state: Any) -> Any:
        """``copyreg._reconstructor`` for plain objects only."""
        if cls is not object or base is not object:
            raise pickle.UnpicklingError("copyreg._reconstructor of a non-object")
        return object()


def _latin1_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> Any:
    """``_codecs.encode`` as Python 3 pickles of bytes use it (latin1 only)."""
    if encoding.replace("-", "").replace("_", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"refusing codec {encoding!r} in a pickle")
    return codecs.encode(obj, "latin1", errors)


def load_pickle(path: Path, expected: str) -> Any:
    """Load a (Python 2 or 3) pickle of numpy arrays, ``encoding="latin1"``.

    Raises
    ------
    DatasetError
        If the file is missing, truncated, corrupt, holds anything but numpy
        arrays in plain containers, declares an array larger than the file, or
        has more than :data:`MAX_PICKLE_OPS` opcodes.
    """
    if not path.is_file():
        raise DatasetError(f"{path}: file not found; expected {expected}")
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            return _unpickle(f, size, path.name, expected)
    except OSError as exc:
        raise DatasetError(
            f"{path.name}: cannot read ({one_line(exc)}); expected {expected}"
        ) from exc


def loads_pickle(data: bytes, where: str, expected: str) -> Any:
    """Unpickle bytes stored inside another file, as :func:`load_pickle` does.

    For containers that hold a pickle as one member (SEED-V's ``.npz`` files
    store ``pickle.dumps`` of a dict as a bytes array): the same restricted
    unpickler, with arrays no larger than ``data``.

    Parameters
    ----------
    data : bytes
        The pickle.
    where : str
        Names the pickle in errors (``"1_123.npz: 'data'"``).
    expected : str
        What it should contain, for the error message.

    Raises
    ------
    DatasetError
        As :func:`load_pickle`, naming ``where``.
    """
    return _unpickle(io.BytesIO(data), len(data), where, expected)


def _unpickle(f: Any, size: int, where: str, expected: str) -> Any:
    """Run the numpy-only unpickler on ``f`` (``size`` bytes)."""
    try:
        return _NumpyOnlyUnpickler(f, max_elements=size).load()
    except OSError:
        raise  # the file's problem, not the pickle's: the caller words it
    except MemoryError:
        raise DatasetError(
            f"{where}: corrupt pickle (asks for more memory than the machine "
            f"has); expected {expected}"
        ) from None
    except Exception as exc:  # UnpicklingError, EOFError, ValueError, ...
        # Our own refusals say what was refused; other messages are noise.
        why = one_line(exc) if isinstance(exc, pickle.UnpicklingError) else ""
        raise DatasetError(
            f"{where}: truncated or corrupt pickle ({why or type(exc).__name__}); "
            f"expected {expected}"
        ) from exc


def check_finite(arr: np.ndarray, where: str, expected: str = "") -> None:
    """Raise DatasetError if ``arr`` holds NaN or inf (``where`` names the culprit)."""
    finite = np.isfinite(arr)
    if not finite.all():
        n_bad = int(arr.size - np.count_nonzero(finite))
        tail = f"; expected {expected}" if expected else ""
        raise DatasetError(f"{where}: {n_bad} NaN/inf value(s) out of {arr.size}{tail}")


def float_array(
    x: Any,
    where: str,
    shape: tuple[int | None, ...],
    expected: str,
    *,
    finite: str,
    need: str = "",
) -> np.ndarray:
    """Return a stored numeric array as a float64 copy, its shape and values checked.

    Parameters
    ----------
    x : array_like
        The stored array.
    where : str
        Names it in errors (``"s01.mat: djc_eeg1"``).
    shape : tuple of int or None
        The length of each axis; ``None`` takes any length >= 1.
    expected : str
        What the file should contain, for the error message.
    finite : str
        What NaN or inf break, for the error message (``"finite EEG samples"``).
    need : str, optional
        Appended to the shape error, e.g. ``", need (n_samples, 14) numeric"``.

    Returns
    -------
    ndarray of float64

    Raises
    ------
    DatasetError
        For a non-numeric array, another number of axes or another length, an
        empty axis, or NaN/inf values.
    """
    arr = np.asarray(x)
    if (
        arr.dtype.kind not in "iuf"
        or arr.ndim != len(shape)
        or any(
            n == 0 or want not in (None, n)
            for n, want in zip(arr.shape, shape, strict=True)
        )
    ):
        raise DatasetError(
            f"{where} has shape {arr.shape} ({arr.dtype}){need}; expected {expected}"
        )
    out = arr.astype(np.float64)
    check_finite(out, where, finite)
    return out


def unwrap(x: Any) -> Any:
    """Strip MATLAB's ``(1, 1)`` object wrappers (``a[0, 0]`` until a non-1x1)."""
    while isinstance(x, np.ndarray) and x.dtype == object and x.size == 1:
        x = x.reshape(-1)[0]
    return x


def mat_str(x: Any) -> str:
    """Convert a MATLAB char array (as returned by ``loadmat``) to a Python string."""
    x = unwrap(x)
    if isinstance(x, np.ndarray):
        if x.size == 0:
            return ""
        if x.dtype.kind in "US":
            return "".join(str(v) for v in x.reshape(-1)).strip()
        if x.dtype.kind in "iuf" and x.size == 1:
            v = float(x.reshape(-1)[0])
            return str(int(v)) if v.is_integer() else str(v)
        return str(x.reshape(-1)[0]).strip()
    if isinstance(x, bytes):
        return x.decode("latin1").strip()
    return str(x).strip()


def mat_scalar(x: Any, where: str) -> float:
    """Convert a MATLAB numeric scalar (``(1, 1)`` array) to a float."""
    arr = np.asarray(unwrap(x))
    if arr.dtype == object or arr.size != 1 or arr.dtype.kind not in "iufb":
        raise DatasetError(f"{where}: expected a numeric scalar, got {arr.shape}")
    return float(arr.reshape(-1)[0])


def sorted_naturally(items: Iterable[str]) -> list[str]:
    """Sort strings with embedded numbers numerically (``s2`` before ``s10``)."""

    def key(s: str) -> list[Any]:
        return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in _DIGITS.split(s)]

    return sorted(items, key=key)


_DIGITS = re.compile(r"(\d+)")


def reject_unknown_options(reader: str, unknown: dict[str, Any], allowed: str) -> None:
    """Raise ConfigError for options a reader does not take."""
    if unknown:
        raise ConfigError(
            f"dataset '{reader}' has no option(s) {', '.join(sorted(unknown))}; "
            f"valid options: {allowed or 'none'}"
        )
