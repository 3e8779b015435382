"""Bad-channel interpolation with spherical splines, offline and online.

Spherical splines after Perrin, Pernier, Bertrand & Echallier (1989), "Spherical
splines for scalp potential and current density mapping", Electroenceph. clin.
Neurophysiol. 72:184-187, with the choices MNE-Python's
``Raw.interpolate_bads`` makes for EEG (``mne/channels/interpolation.py``),
reimplemented here so that the two agree (tested against MNE to 1e-6):

* electrodes are projected from the centre of a sphere fitted to their positions
  (linear least squares, points low and in front, ``z < 0`` and ``y > 0``, left
  out as MNE's ``get_fitting_dig`` does) onto the unit sphere;
* ``g(x) = 1 / (4 pi) * sum_{n=1..50} (2n + 1) / (n (n + 1))**m * P_n(x)`` with
  stiffness ``m = 4`` and the Legendre polynomials ``P_n`` (Perrin's eq. 3);
* the spline through the good channels, ``V(r) = c0 + sum_i c_i g(cos(r, r_i))``
  with ``sum_i c_i = 0``, regularised by ``alpha = 1e-5`` on the diagonal of
  ``G``: the bordered system ``[[G + alpha I, 1], [1', 0]]`` is solved once per
  set of bad channels, giving a matrix ``(n_bad, n_good)`` that maps the good
  channels' samples to the bad ones'.

:class:`Interpolator` is the online step: it replaces the bad channels of each
chunk, and keeps a bad set with hysteresis (a channel enters when a window's
quality check flags it and leaves after ``release_windows`` clean windows in a
row), so that a flickering channel does not change the matrix every hop; the
matrices are cached by bad set. More bad channels than ``max_share`` of the
channels (a quarter: two of an 8-channel headset) are not interpolated.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import legendre

from emomon.dsp._arrays import as_eeg
from emomon.dsp.positions import positions as table_positions
from emomon.errors import EmomonError

__all__ = [
    "InterpolationError",
    "Interpolator",
    "InterpolatorSettings",
    "fit_sphere",
    "interpolate_bads",
    "spline_matrix",
]


class InterpolationError(EmomonError):
    """A montage that cannot be interpolated (too few channels with positions)."""


def fit_sphere(pos: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and radius of the sphere that fits electrode positions best.

    Linear least squares on ``|p|^2 = 2 p . o + (r^2 - |o|^2)`` (the algebraic
    sphere fit MNE's ``fit_sphere_to_headshape`` uses). Points low and in front
    (``z < -1e-6`` and ``y > 1e-6``, the face) are left out, as MNE does.

    Parameters
    ----------
    pos : ndarray, shape (n_points, 3)
        Positions in metres, head frame (:func:`emomon.dsp.positions.positions`).

    Returns
    -------
    origin : ndarray, shape (3,)
        Centre in metres.
    radius : float
        Radius in metres.

    Raises
    ------
    InterpolationError
        If fewer than 4 points remain.
    """
    pos = np.asarray(pos, dtype=np.float64).reshape(-1, 3)
    keep = ~((pos[:, 2] < -1e-6) & (pos[:, 1] > 1e-6))
    pts = pos[keep]
    if pts.shape[0] < 4:
        raise InterpolationError(
            f"a sphere needs at least 4 electrode positions off the face, got "
            f"{pts.shape[0]}; interpolation needs a larger montage"
        )
    a = np.c_[2.0 * pts, np.ones(pts.shape[0])]
    b = np.einsum("ij,ij->i", pts, pts)
    sol = np.linalg.lstsq(a, b, rcond=None)[0]
    origin = sol[:3]
    return origin, float(np.sqrt(sol[3] + origin @ origin))


def _legendre_g(cosang: np.ndarray, stiffness: int, n_terms: int) -> np.ndarray:
    """Perrin's ``g(x)`` (eq. 3) summed over ``n_terms`` Legendre terms."""
    n = np.arange(1, n_terms + 1, dtype=np.float64)
    coef = (2 * n + 1) / ((n * (n + 1)) ** stiffness * 4 * np.pi)
    return legendre.legval(cosang, np.r_[0.0, coef])


def _unit(pos: np.ndarray, origin: np.ndarray) -> np.ndarray:
    v = np.asarray(pos, dtype=np.float64) - origin
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def spline_matrix(
    pos_from: np.ndarray,
    pos_to: np.ndarray,
    *,
    origin: np.ndarray,
    stiffness: int = 4,
    n_terms: int = 50,
    alpha: float = 1e-5,
) -> np.ndarray:
    """Spherical-spline interpolation matrix from good to bad electrodes.

    Parameters
    ----------
    pos_from : ndarray, shape (n_good, 3)
        Positions of the channels interpolated from (metres).
    pos_to : ndarray, shape (n_bad, 3)
        Positions of the channels to interpolate (metres).
    origin : ndarray, shape (3,)
        Centre of the head sphere (:func:`fit_sphere`).
    stiffness : int
        Spline order ``m`` (Perrin's m; 4 as MNE).
    n_terms : int
        Legendre terms of ``g`` (50 as MNE).
    alpha : float
        Added to the diagonal of ``G`` (smoothing; 1e-5 as MNE).

    Returns
    -------
    ndarray, shape (n_bad, n_good)
        ``x_bad = W @ x_good`` for samples ``x_good`` of shape (n_good, n_times);
        each row sums to 1 (a constant is interpolated exactly).
    """
    u_from = _unit(pos_from, origin)
    u_to = _unit(pos_to, origin)
    n_from = u_from.shape[0]
    g_from = _legendre_g(np.clip(u_from @ u_from.T, -1, 1), stiffness, n_terms)
    g_to = _legendre_g(np.clip(u_to @ u_from.T, -1, 1), stiffness, n_terms)
    g_from[np.diag_indices(n_from)] += alpha
    # Bordered system C [c; c0] = [v; 0]: C is symmetric, so the rows of
    # [g_to, 1] C^-1 are C^-1 applied to the columns of [g_to, 1]'.
    c = np.zeros((n_from + 1, n_from + 1))
    c[:n_from, :n_from] = g_from
    c[:n_from, n_from] = 1.0
    c[n_from, :n_from] = 1.0
    rhs = np.c_[g_to, np.ones(u_to.shape[0])].T
    return np.linalg.solve(c, rhs).T[:, :n_from]


def interpolate_bads(
    eeg: np.ndarray,
    ch_names: Sequence[str],
    bads: Iterable[str],
    *,
    positions: np.ndarray | None = None,
) -> np.ndarray:
    """Replace bad channels of a recording by spherical-spline interpolation.

    The offline counterpart of MNE's ``Raw.interpolate_bads`` for EEG: the sphere
    is fitted to all channels' positions, the bad ones are interpolated from the
    others.

    Parameters
    ----------
    eeg : ndarray, shape (n_channels, n_times)
        µV (any unit: the map is linear).
    ch_names : sequence of str
        The rows' 10-05 names.
    bads : iterable of str
        Names among ``ch_names`` to interpolate.
    positions : ndarray, shape (n_channels, 3), optional
        Electrode positions (metres); default from the 10-05 table.

    Returns
    -------
    ndarray, shape (n_channels, n_times)
        A copy with the bad rows replaced.

    Raises
    ------
    InterpolationError
        If a bad name is not a channel, or the montage is too small.
    """
    x = as_eeg(eeg, len(ch_names), name="eeg").copy()
    names = list(ch_names)
    bads = list(bads)
    unknown = [b for b in bads if b not in names]
    if unknown:
        raise InterpolationError(f"bad channel(s) {unknown} are not in ch_names")
    bad = sorted({names.index(b) for b in bads})
    if not bad:
        return x
    pos = table_positions(names) if positions is None else np.asarray(positions)
    origin, _ = fit_sphere(pos)
    good = [i for i in range(len(names)) if i not in bad]
    x[bad] = spline_matrix(pos[good], pos[bad], origin=origin) @ x[good]
    return x


@dataclass(frozen=True)
class InterpolatorSettings:
    """Frozen settings of an :class:`Interpolator`.

    Attributes
    ----------
    ch_names : tuple of str
        The channels, in row order (10-05 names; positions from the table).
    max_share : float
        The largest share of the channels interpolated at once: more bad
        channels than ``floor(max_share * n_channels)`` are not interpolated
        (the windows are flagged as without interpolation). A quarter by
        default: 2 of 8, 3 of 14, 8 of 32.
    release_windows : int
        Clean windows in a row after which a bad channel leaves the bad set
        (hysteresis: a flickering channel keeps its matrix).
    stiffness, n_terms, alpha :
        Spline order, Legendre terms and regularisation (MNE's 4, 50, 1e-5).
    cache_size : int
        Interpolation matrices kept, by bad set (least recently used dropped).
    positions : tuple of (x, y, z), optional
        Electrode positions in metres, head frame, one per channel; default
        from the 10-05 table (:mod:`emomon.dsp.positions`).
    """

    ch_names: tuple[str, ...]
    max_share: float = 0.25
    release_windows: int = 4
    stiffness: int = 4
    n_terms: int = 50
    alpha: float = 1e-5
    cache_size: int = 16
    positions: tuple[tuple[float, float, float], ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ch_names", tuple(self.ch_names))
        if not 0 < self.max_share < 1:
            raise EmomonError(
                f"{{max_share}} must be in (0, 1), got {self.max_share}",
                params=("max_share",),
            )
        if self.release_windows < 1:
            raise EmomonError(
                f"{{release_windows}} must be >= 1, got {self.release_windows}",
                params=("release_windows",),
            )
        if self.cache_size < 1:
            raise EmomonError(f"cache_size must be >= 1, got {self.cache_size}")
        if self.positions is not None and len(self.positions) != len(self.ch_names):
            raise EmomonError(
                f"{{positions}} holds {len(self.positions)} rows for "
                f"{len(self.ch_names)} channels",
                params=("positions",),
            )

    @property
    def max_bad(self) -> int:
        """The most channels interpolated at once."""
        return math.floor(self.max_share * len(self.ch_names) + 1e-9)


class Interpolator:
    """Online bad-channel interpolation: chunks in, repaired chunks out.

    Feed every sample through :meth:`process` (the bad set in effect replaces
    its rows) and, after each window's quality check, call :meth:`update` with
    the channels it flagged. Sample indices count the samples :meth:`process`
    has seen since the start or :meth:`reset`, so a caller that feeds the same
    samples to a feature extractor can ask which channels were interpolated over
    a window (:meth:`covered`, :meth:`touched`).

    Parameters
    ----------
    settings : InterpolatorSettings

    Raises
    ------
    UnknownPositionError
        If a channel has no position in the 10-05 table (and none is given).
    InterpolationError
        If the montage has fewer than 4 usable positions or allows no channel
        to be interpolated (fewer than ``1 / max_share`` channels).
    """

    def __init__(self, settings: InterpolatorSettings) -> None:
        self.settings = settings
        s = settings
        if s.positions is None:
            pos = table_positions(s.ch_names)
        else:
            pos = np.asarray(s.positions, dtype=np.float64).reshape(-1, 3)
        if s.max_bad < 1:
            raise InterpolationError(
                f"{len(s.ch_names)} channels allow no interpolation at a maximum "
                f"share of {s.max_share:g}; interpolation needs at least "
                f"{math.ceil(1 / s.max_share)} channels"
            )
        self._pos = pos
        self.origin, self.radius = fit_sphere(pos)
        self._cache: OrderedDict[tuple[int, ...], np.ndarray] = OrderedDict()
        self.matrices_built = 0  # how often a matrix was computed (not cached)
        self.reset()

    # -- state ---------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the bad set and the sample count (the matrix cache stays)."""
        self.n_seen = 0
        self._clean: dict[int, int] = {}  # bad set -> clean windows in a row
        self._active: tuple[int, ...] = ()
        self._since: dict[int, int] = {}  # active channel -> first sample it covers
        self._ended: dict[int, int] = {}  # channel -> end of its last interpolation
        self._matrix: np.ndarray | None = None
        self._good: np.ndarray | None = None

    @property
    def bad_set(self) -> tuple[int, ...]:
        """Rows in the bad set (hysteresis), interpolated or not."""
        return tuple(sorted(self._clean))

    @property
    def active(self) -> tuple[int, ...]:
        """Rows interpolated now (the bad set, or none when it is too large)."""
        return self._active

    def matrix(self, bad: Sequence[int]) -> np.ndarray:
        """Return the interpolation matrix for a set of bad rows, cached by set.

        Parameters
        ----------
        bad : sequence of int
            Bad rows (sorted or not).

        Returns
        -------
        ndarray, shape (len(bad), n_channels - len(bad))
            Maps the good rows (ascending) to the bad rows (ascending).
        """
        key = tuple(sorted(bad))
        w = self._cache.get(key)
        if w is not None:
            self._cache.move_to_end(key)
            return w
        good = [i for i in range(len(self.settings.ch_names)) if i not in key]
        s = self.settings
        w = spline_matrix(
            self._pos[good],
            self._pos[list(key)],
            origin=self.origin,
            stiffness=s.stiffness,
            n_terms=s.n_terms,
            alpha=s.alpha,
        )
        self.matrices_built += 1
        self._cache[key] = w
        if len(self._cache) > s.cache_size:
            self._cache.popitem(last=False)
        return w

    def update(self, flagged: Iterable[int]) -> tuple[int, ...]:
        """Take one window's quality verdict; return the rows interpolated next.

        A flagged row enters the bad set (or stays, its clean count reset); a row
        of the set not flagged counts one clean window and leaves after
        ``release_windows`` in a row. The set is interpolated from the next
        sample on when it holds at most ``max_bad`` rows, else nothing is.

        Parameters
        ----------
        flagged : iterable of int
            Rows the window's quality check flagged.

        Returns
        -------
        tuple of int
            :attr:`active`.
        """
        flagged = set(flagged)
        for i in list(self._clean):
            if i in flagged:
                continue
            self._clean[i] += 1
            if self._clean[i] >= self.settings.release_windows:
                del self._clean[i]
        for i in flagged:
            self._clean[i] = 0
        bad = tuple(sorted(self._clean))
        new = bad if len(bad) <= self.settings.max_bad else ()
        if new != self._active:
            for i in set(self._active) - set(new):
                self._ended[i] = self.n_seen
                del self._since[i]
            for i in set(new) - set(self._active):
                self._since[i] = self.n_seen
            self._active = new
            if new:
                self._matrix = self.matrix(new)
                self._good = np.array(
                    [i for i in range(len(self.settings.ch_names)) if i not in new]
                )
            else:
                self._matrix = self._good = None
        return self._active

    # -- queries -------------------------------------------------------------------
    def covered(self, start: int) -> tuple[int, ...]:
        """Rows interpolated in every sample from ``start`` to now.

        Parameters
        ----------
        start : int
            Sample index (samples since the start or the last reset).
        """
        return tuple(i for i in self._active if self._since[i] <= start)

    def touched(self, start: int, end: int) -> tuple[int, ...]:
        """Rows interpolated in any sample of ``[start, end)``.

        Parameters
        ----------
        start, end : int
            Sample indices, ``end <= n_seen``.
        """
        rows = {i for i in self._active if self._since[i] < end}
        rows |= {i for i, e in self._ended.items() if e > start}
        return tuple(sorted(rows))

    # -- processing ------------------------------------------------------------------
    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Replace the active bad rows of one chunk.

        Parameters
        ----------
        chunk : ndarray, shape (n_channels, n_times)
            µV.

        Returns
        -------
        ndarray, shape (n_channels, n_times)
            ``chunk`` itself when nothing is interpolated, else a copy with the
            active rows replaced by the spline of the others.
        """
        x = as_eeg(chunk, len(self.settings.ch_names))
        self.n_seen += x.shape[1]
        if self._matrix is None:
            return x
        out = x.copy()
        out[list(self._active)] = self._matrix @ x[self._good]
        return out
