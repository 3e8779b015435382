"""A pre-check of MATLAB v5 (``-v6``/``-v7``) files before :func:`scipy.io.loadmat`.

scipy's reader trusts two things in a file's element headers that a damaged
file gets wrong:

- it allocates cell, struct and char arrays from their declared dimensions
  *before* reading their elements (``np.empty(prod(dims), dtype=object)``, which
  numpy fills with ``None``): one flipped bit in a dimension of a 40 kB file makes
  loadmat fill gigabytes of memory for minutes before it fails;
- it looks up the dtype of every numeric or char data element in a C table
  indexed by the element's type code, unchecked, and indexes the shape of a
  char array by its last dimension: an unknown code or a char array with no
  dimensions crashes the process (segmentation fault).

:func:`check_mat5` walks the element headers the way scipy's reader does,
without reading the numeric data, and refuses such a file first. Any other
oddity is left to scipy, which names it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

__all__ = ["MatUnsafe", "check_mat5"]

# MAT-file v5 data types (mi*) and array classes (mx*), as in scipy's _mio5_params.
_MI_INT32, _MI_UINT32, _MI_MATRIX, _MI_COMPRESSED = 5, 6, 14, 15
_MX_CELL, _MX_STRUCT, _MX_OBJECT, _MX_CHAR, _MX_SPARSE = 1, 2, 3, 4, 5
_MX_NUMERIC = range(6, 16)
_MX_FUNCTION, _MX_OPAQUE = 16, 17
#: Data types scipy has a dtype for; it indexes a C table with the type of every
#: numeric or char data element, unchecked (another type crashes the process).
_MI_NUMERIC = frozenset((1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 16, 17, 18))

#: Deeper nesting than this is refused (real datasets nest < 10 levels; scipy's
#: reader recurses in C and would overflow the stack on thousands).
MAX_DEPTH = 64
#: Arrays allocated without consuming bytes per element (fieldless structs, empty
#: char arrays) may have at most this many elements.
MAX_FREE_ELEMENTS = 1 << 16
#: Every cell or struct field element is at least one 8-byte tag.
_MIN_ELEMENT = 8
#: zlib's largest expansion is about 1032:1.
_MAX_INFLATE = 1032
_CHUNK = 1 << 16
#: Longest element (dims, names, field names) the walk reads into memory.
_MAX_KEPT = 1 << 20


class MatUnsafe(Exception):
    """A header scipy would trust to allocate or index memory is impossible."""


class _Stop(Exception):
    """The walk cannot follow the file any further; scipy will say why."""


class _FileSource:
    """Sequential reads of an uncompressed stretch of the file."""

    def __init__(self, f: BinaryIO, start: int, end: int) -> None:
        self._f = f
        self._end = end
        self.pos = start
        f.seek(start)

    def read(self, n: int) -> bytes:
        if n > self._end - self.pos:
            raise _Stop
        data = self._f.read(n)
        if len(data) != n:
            raise _Stop
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if n > self._end - self.pos:
            raise _Stop
        self.pos += n
        self._f.seek(self.pos)

    def holds(self, n: int) -> bool:
        """Whether at least ``n`` more bytes follow."""
        return n <= self._end - self.pos


class _ZlibSource:
    """Sequential reads of the decompressed contents of an miCOMPRESSED element."""

    def __init__(self, f: BinaryIO, start: int, n_compressed: int) -> None:
        self._f = f
        self._at = start
        self._left = n_compressed  # compressed bytes not yet fed
        self._z = zlib.decompressobj()
        self._buf = bytearray()
        self.pos = 0  # decompressed bytes consumed

    def _more(self) -> bool:
        """Decompress one more chunk into the buffer; False at the end."""
        if self._z.unconsumed_tail:
            out = self._z.decompress(self._z.unconsumed_tail, _CHUNK)
        elif self._left > 0 and not self._z.eof:
            self._f.seek(self._at)
            raw = self._f.read(min(self._left, _CHUNK))
            if not raw:
                self._left = 0
                return False
            self._at += len(raw)
            self._left -= len(raw)
            out = self._z.decompress(raw, _CHUNK)
        else:
            return False
        self._buf += out
        return True

    def read(self, n: int) -> bytes:
        if not self.holds(n):
            raise _Stop
        data = bytes(self._buf[:n])
        del self._buf[:n]
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        while n > 0:
            if not self._buf and not self._more():
                raise _Stop
            k = min(n, len(self._buf))
            del self._buf[:k]
            self.pos += k
            n -= k

    def holds(self, n: int) -> bool:
        """Whether at least ``n`` more decompressed bytes follow."""
        room = len(self._buf) + (self._left + len(self._z.unconsumed_tail)) * (
            _MAX_INFLATE
        )
        if n > room:
            return False  # more than zlib can expand to: no need to look
        while len(self._buf) < n:
            if not self._more():
                return False
        return True


_Source = _FileSource | _ZlibSource


class _Walker:
    def __init__(self, endian: str) -> None:
        self.e = endian

    def tag(self, src: _Source) -> tuple[int, int]:
        return struct.unpack(self.e + "II", src.read(8))

    def element(self, src: _Source, keep: bool = True) -> tuple[int, int, bytes]:
        """``(mdtype, byte_count, data)`` of one data element (small or full)."""
        raw = src.read(8)
        u0, u1 = struct.unpack(self.e + "II", raw)
        if u0 >> 16:  # small data element: up to 4 bytes inside the tag
            count = u0 >> 16
            if count > 4:
                raise _Stop
            return u0 & 0xFFFF, count, raw[4 : 4 + count]
        if keep:
            if u1 > _MAX_KEPT:  # a name or dims this long: not a file scipy reads
                raise _Stop
            data = src.read(u1)
        else:
            src.skip(u1)
            data = b""
        src.skip(-u1 % 8)
        return u0, u1, data

    def data(self, src: _Source, *, last: bool = False) -> int:
        """Check the type of one numeric or char data element and skip it.

        With ``last``, leave the payload unread: the caller seeks past the
        variable. Returns its byte count.
        """
        raw = src.read(8)
        u0, u1 = struct.unpack(self.e + "II", raw)
        mdtype, count = (u0 & 0xFFFF, u0 >> 16) if u0 >> 16 else (u0, u1)
        if mdtype not in _MI_NUMERIC:
            raise MatUnsafe(f"data element of unknown type {mdtype}")
        if not u0 >> 16 and not last:
            src.skip(count + -count % 8)
        return count

    def header(self, src: _Source) -> tuple[int, bool, tuple[int, ...], bytes]:
        """Array class, complex flag, dims and name of a matrix (after its tag)."""
        src.read(8)  # the array-flags tag
        flags, _ = struct.unpack(self.e + "II", src.read(8))
        mclass = flags & 0xFF
        complex_ = bool(flags >> 11 & 1)
        if mclass == _MX_OPAQUE:
            _, _, name = self.element(src)
            return mclass, complex_, (), name
        mdtype, count, data = self.element(src)
        if mdtype not in (_MI_INT32, _MI_UINT32) or count // 4 > 32:
            raise _Stop
        if count // 4 < 2:  # MATLAB writes >= 2; scipy crashes on a 0-d char array
            raise MatUnsafe(f"array with {count // 4} dimension(s), fewer than 2")
        dims = struct.unpack(f"{self.e}{count // 4}i", data[: count // 4 * 4])
        _, _, name = self.element(src)
        return mclass, complex_, dims, name

    def matrix(self, src: _Source, depth: int) -> None:
        """Check a sub-level matrix (a cell element or struct field), tag included."""
        mdtype, count = self.tag(src)
        if mdtype != _MI_MATRIX:
            raise _Stop
        if count == 0:  # empty matrix
            return
        self.contents(src, *self.header(src), depth=depth)

    def contents(
        self,
        src: _Source,
        mclass: int,
        complex_: bool,
        dims: tuple[int, ...],
        name: bytes,
        *,
        depth: int,
    ) -> None:
        if depth > MAX_DEPTH:
            raise MatUnsafe(f"arrays nested more than {MAX_DEPTH} levels deep")
        n = 1
        for d in dims:
            if d < 0:
                raise MatUnsafe(f"array dimensions {list(dims)} are negative")
            n *= d
        what = f"array '{name.decode('latin1', 'replace')}'" if name else "an array"
        # A top-level variable's last element need not be skipped: the walk
        # goes on at the next variable's offset (saves inflating its data).
        top = depth == 0
        if mclass in _MX_NUMERIC:
            n_parts = 2 if complex_ else 1
            for i in range(n_parts):
                self.data(src, last=top and i == n_parts - 1)
        elif mclass == _MX_SPARSE:
            n_parts = 4 if complex_ else 3
            for i in range(n_parts):
                self.data(src, last=top and i == n_parts - 1)
        elif mclass == _MX_CHAR:
            count = self.data(src, last=top)
            if count == 0 and n > MAX_FREE_ELEMENTS:  # scipy builds ' ' * n
                raise MatUnsafe(f"empty char {what} declares {n} characters")
        elif mclass == _MX_CELL:
            self.need(src, n, 1, f"cell {what} of size {list(dims)}")
            for _ in range(n):
                self.matrix(src, depth + 1)
        elif mclass in (_MX_STRUCT, _MX_OBJECT):
            if mclass == _MX_OBJECT:
                self.element(src)  # class name
            _, count, data = self.element(src)
            if count != 4:
                raise _Stop
            (length,) = struct.unpack(self.e + "i", data)
            _, _, names = self.element(src)
            if length <= 0:
                raise _Stop
            n_fields = len(names) // length
            if n_fields == 0:
                if n > MAX_FREE_ELEMENTS:
                    raise MatUnsafe(
                        f"struct {what} without fields declares {n} elements"
                    )
                return
            self.need(src, n, n_fields, f"struct {what} of size {list(dims)}")
            for _ in range(n * n_fields):
                self.matrix(src, depth + 1)
        elif mclass == _MX_FUNCTION:
            self.matrix(src, depth + 1)
        elif mclass == _MX_OPAQUE:
            self.element(src)  # type system
            self.element(src)  # class name
            self.matrix(src, depth + 1)
        # other classes: scipy raises on them

    def need(self, src: _Source, n: int, n_fields: int, what: str) -> None:
        # scipy allocates n * n_fields object slots before reading one element;
        # each element takes at least one 8-byte tag of what follows.
        if not src.holds(n * n_fields * _MIN_ELEMENT):
            raise MatUnsafe(f"{what} declares more elements than the file holds")


def check_mat5(path: Path, variable_names: Iterable[str] | None = None) -> None:
    """Refuse a MATLAB v5 file that would make loadmat allocate gigabytes or crash.

    Parameters
    ----------
    path : Path
        The ``.mat`` file (v4 and v7.3 files are passed over: scipy checks them).
    variable_names : iterable of str, optional
        Only these top-level variables are checked (the others are skipped by
        loadmat too).

    Raises
    ------
    MatUnsafe
        If a cell, struct or char array declares more elements than the bytes
        after it could hold, arrays nest deeper than :data:`MAX_DEPTH`, an array
        has fewer than 2 dimensions, or a data element has a type code scipy has
        no dtype for.
    OSError
        If the file cannot be read.
    """
    wanted = None if variable_names is None else {n.encode() for n in variable_names}
    with path.open("rb") as f:
        head = f.read(128)
        if len(head) < 128 or 0 in head[:4]:  # truncated or v4: not v5
            return
        major = head[124 + (head[126] == ord("I"))]
        if major != 1:  # 2 = v7.3 (HDF5)
            return
        walker = _Walker("<" if head[126:128] == b"IM" else ">")
        size = f.seek(0, 2)
        pos = 128
        while size - pos >= 8:
            f.seek(pos)
            mdtype, count = struct.unpack(walker.e + "II", f.read(8))
            if count == 0:
                return
            src: _Source
            try:
                if mdtype == _MI_COMPRESSED:
                    src = _ZlibSource(f, pos + 8, min(count, size - pos - 8))
                    mdtype, _ = walker.tag(src)
                else:
                    src = _FileSource(f, pos + 8, size)
                if mdtype != _MI_MATRIX:
                    return
                hdr = walker.header(src)
                if wanted is None or hdr[3] in wanted:
                    walker.contents(src, *hdr, depth=0)
            except (_Stop, struct.error, zlib.error):
                return  # scipy will fail here too, and say why
            pos += 8 + count
