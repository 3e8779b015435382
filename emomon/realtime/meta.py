"""The stream description a viewer needs once: ``emomon.meta.v1``.

:func:`describe` builds the :class:`~emomon.realtime.messages.MetaMessage` of a
live run (channel names in model order, rates, window, tasks and each
channel's position for a scalp map); the live loop hands it to every sink when
it starts, and the ZeroMQ publisher keeps it and re-sends it to each new
subscriber of the topic. :func:`scalp_2d` is the scalp-map projection.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

import numpy as np

from emomon.dsp.positions import positions
from emomon.realtime.messages import MetaMessage

__all__ = ["describe", "scalp_2d"]

#: The circumference of the 10-20 system (its "equator"): the projection is
#: centred on their mean and puts them on the unit circle.
_EQUATOR = ("Fpz", "T7", "Oz", "T8")


def _frame() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, up and right axes of the projection, from the 10-05 table.

    The centre is the mean of the four circumference electrodes and "up" the
    normal of the plane they span (least squares), turned towards Cz; "right"
    is the head frame's x axis (towards the right ear) made orthogonal to it.
    """
    ring = positions(_EQUATOR)
    centre = ring.mean(axis=0)
    up = np.linalg.svd(ring - centre)[2][-1]
    if (positions(["Cz"])[0] - centre) @ up < 0:
        up = -up
    right = np.array([1.0, 0.0, 0.0]) - up[0] * up
    return centre, up, right / np.linalg.norm(right)


def scalp_2d(pos_3d: np.ndarray) -> np.ndarray:
    """Scalp-map coordinates of electrode positions (as seen from above).

    Azimuthal equidistant projection about the axis through the centre of
    the 10-20 circumference (Fpz, T7, Oz and T8 in the 10-05 table), normal
    to the plane it spans: a point's distance from the map's centre is its
    angle from that axis divided by 90 degrees, so the circumference through
    Fpz, T7, Oz and T8 is the unit circle (within 6%) and Cz lies at the
    centre (the
    projection MNE's topographic maps use, in a unit circle).

    Parameters
    ----------
    pos_3d : ndarray, shape (n_channels, 3)
        Positions in metres in MNE's head frame (NaN rows allowed).

    Returns
    -------
    ndarray, shape (n_channels, 2)
        ``(x, y)``: x towards the right ear, y towards the nose; NaN where the
        input is NaN.
    """
    centre, up, right = _frame()
    rel = np.asarray(pos_3d, dtype=np.float64) - centre
    norm = np.linalg.norm(rel, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        theta = np.arccos(np.clip((rel @ up) / norm, -1.0, 1.0))
    front = np.cross(up, right)
    phi = np.arctan2(rel @ front, rel @ right)
    r = theta / (math.pi / 2)
    return np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)


def describe(
    *,
    stream: str,
    model: str,
    ch_names: Sequence[str],
    tasks: Mapping[str, Sequence[str]],
    sfreq: float,
    model_sfreq: float,
    window_s: float,
    hop_s: float,
) -> MetaMessage:
    """Build the ``emomon.meta.v1`` message of a live run.

    Parameters
    ----------
    stream : str
        Stream name, as in the run's predictions.
    model : str
        Model identifier, as in the predictions.
    ch_names : sequence of str
        The model's channels in model order.
    tasks : mapping of str to sequence of str
        Task -> class names (the model contract's).
    sfreq : float
        The source's sampling rate (Hz).
    model_sfreq : float
        The model's sampling rate (Hz).
    window_s, hop_s : float
        Window length and hop (s).

    Returns
    -------
    MetaMessage
        ``seq`` 0; a channel without a 10-05 position has None as both
        positions.
    """
    pos = positions(ch_names, on_missing="nan")
    flat = scalp_2d(pos)

    def points(a: np.ndarray) -> tuple[tuple[float, ...] | None, ...]:
        return tuple(
            tuple(round(float(c), 6) for c in row) if np.isfinite(row).all() else None
            for row in a
        )

    return MetaMessage(
        seq=0,
        stream=stream,
        t_pub=time.time(),
        model=model,
        sfreq=float(sfreq),
        model_sfreq=float(model_sfreq),
        window_s=float(window_s),
        hop_s=float(hop_s),
        tasks={t: tuple(map(str, c)) for t, c in tasks.items()},
        ch_names=tuple(ch_names),
        pos_3d=points(pos),
        pos_2d=points(flat),
    )
