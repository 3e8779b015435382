"""Shared fixtures of the dataset reader tests."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

#: ``raises_one_line(ExcType, *needles)``: a context manager (see the fixture).
RaisesOneLine = Callable[..., contextlib.AbstractContextManager[Any]]


@contextlib.contextmanager
def _raises_one_line(
    exc_type: type[BaseException], *needles: str
) -> Iterator[pytest.ExceptionInfo[Any]]:
    with pytest.raises(exc_type) as excinfo:
        yield excinfo
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, msg


@pytest.fixture
def raises_one_line() -> RaisesOneLine:
    """``with raises_one_line(DatasetError, "s01.dat", "corrupt"): ...``.

    The block must raise ``ExcType`` whose message is one line containing every
    needle (the exception info is bound by ``as``, as with ``pytest.raises``).
    """
    return _raises_one_line
