"""One context-manager protocol for the realtime objects that own resources."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """``with obj:`` gives ``obj`` and calls ``obj.close()`` on the way out.

    Subclasses implement :meth:`close` (idempotent); those that must open on
    entry override ``__enter__`` only.
    """

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
