"""Lenient reads of report JSON and the strict-JSON writer of report records.

A missing or mistyped value read from a report becomes ``None``; see
:meth:`emomon.offline.runreport.RunReport.from_dict`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

import numpy as np

Pair = tuple[float | None, float | None]


def _float(x: Any) -> float | None:
    """Return a finite float, else None (None, booleans, strings, NaN and inf)."""
    if x is None or isinstance(x, (bool, np.bool_, str, bytes)):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _int(x: Any) -> int | None:
    v = _float(x)
    return int(v) if v is not None and v == int(v) else None


def _str(x: Any) -> str | None:
    return None if x is None else str(x)


def _map(x: Any) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _seq(x: Any) -> list[Any]:
    if isinstance(x, (Sequence, np.ndarray)) and not isinstance(x, (str, bytes)):
        return list(x)
    return []


def _maps(x: Any) -> list[Mapping[str, Any]]:
    return [r for r in _seq(x) if isinstance(r, Mapping)]


def _pair(x: Any) -> Pair:
    v = _seq(x)
    return (_float(v[0]), _float(v[1])) if len(v) == 2 else (None, None)


def to_jsonable(obj: Any) -> Any:
    """Return a strict-JSON copy of ``obj``.

    NaN and infinities become ``None``; numpy scalars and arrays become Python
    numbers and lists; tuples and sets become lists; paths and dates become strings;
    mapping keys become strings (insertion order kept); dataclasses with a
    ``to_dict`` method are written through it. Anything else is ``str()``.

    Parameters
    ----------
    obj : object

    Returns
    -------
    object
        Serialisable by ``json.dumps(..., allow_nan=False)``.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return [to_jsonable(v) for v in sorted(obj, key=str)]
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if dataclasses.is_dataclass(obj) and hasattr(obj, "to_dict"):
        return obj.to_dict()
    return str(obj)
