"""Bad-channel interpolation in the live pipeline (``PipelineSettings.interpolate``).

:class:`WindowInterpolation` couples the online
:class:`~emomon.dsp.interpolate.Interpolator` to the pipeline's windows: the
samples on their way to the feature extractor go through :meth:`process`, and
each window's quality goes through :meth:`judge`, which decides whether the
window can be published with its flagged channels interpolated and then moves
the interpolated set. Both count samples as the feature extractor does (the
interpolator is fed exactly its samples), so a window's end index says which
samples were interpolated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emomon.dsp.interpolate import (
    InterpolationError,
    Interpolator,
    InterpolatorSettings,
)
from emomon.errors import EmomonError, literal
from emomon.realtime.messages import Quality

__all__ = ["WindowInterpolation", "make_interpolator"]


def make_interpolator(ch_names: Sequence[str]) -> Interpolator:
    """Build the bad-channel interpolator of a model's channels.

    Parameters
    ----------
    ch_names : sequence of str
        The model's channels (10-05 names).

    Returns
    -------
    Interpolator
        At most a quarter of the channels at once (2 of 8); a channel leaves
        the bad set after 4 clean windows in a row.

    Raises
    ------
    InterpolationError
        If a channel has no 10-05 position or the montage is too small to
        interpolate (fewer than 4 channels); the message names ``interpolate``.
    """
    try:
        return Interpolator(InterpolatorSettings(ch_names=tuple(ch_names)))
    except EmomonError as exc:
        raise InterpolationError(
            f"{literal(exc)}; run without {{interpolate}}", params=("interpolate",)
        ) from exc


class WindowInterpolation:
    """The interpolation step of a pipeline and its verdict on windows.

    Parameters
    ----------
    ch_names : sequence of str
        The model's channels, in row order.
    window_n : int
        Window length in extractor samples.
    settle_n : int
        Extractor samples a flagged channel must have been interpolated before
        a window's first sample for the window to be published: the feature
        warm-up (the causal filters settle from the switch to interpolated
        samples as from a start).

    Raises
    ------
    InterpolationError
        As :func:`make_interpolator`.
    """

    def __init__(self, ch_names: Sequence[str], *, window_n: int, settle_n: int):
        self.names = tuple(ch_names)
        self.interpolator = make_interpolator(self.names)
        self.window_n = int(window_n)
        self.settle_n = int(settle_n)
        self._row = {c: i for i, c in enumerate(self.names)}

    def reset(self) -> None:
        """Forget the bad set and the sample count (with the extractor's reset)."""
        self.interpolator.reset()

    def process(self, x: np.ndarray) -> np.ndarray:
        """Interpolate the current bad set in samples bound for the extractor.

        Parameters
        ----------
        x : ndarray, shape (n_channels, n_times)
            µV, model channel order, at the model's rate.

        Returns
        -------
        ndarray, shape (n_channels, n_times)
        """
        return self.interpolator.process(x)

    def judge(self, q: Quality, end: int) -> Quality:
        """Judge a window ending at extractor sample ``end``; move the bad set.

        The raw check still sees the source's samples, so an interpolated
        channel stays flagged while it is bad. Its verdict is accepted when
        every channel it flags has been interpolated since ``settle_n`` samples
        before the window's first sample; a lost sample is no channel's fault
        and keeps the window flagged. The set changes after this window, so the
        samples of the next hop are the first to see the change (causal).

        Parameters
        ----------
        q : Quality
            The window's quality from the source's samples.
        end : int
            Exclusive end of the window in extractor samples.

        Returns
        -------
        Quality
            ``q``, or, when the window used interpolated samples and every
            channel ``q`` flags was interpolated long enough, an ``ok`` quality
            naming each interpolated channel with reason ``"interpolated"``.
        """
        if "no_data" in q.reasons.values():
            return q  # says nothing of any channel: the set stays as it is
        interp = self.interpolator
        start = end - self.window_n
        flagged = [self._row[c] for c in q.bad_channels]
        result = q
        if q.ok or (
            q.dropped == 0
            and set(flagged) <= set(interp.covered(start - self.settle_n))
        ):
            done = interp.touched(start, end)
            if done:
                names = [self.names[i] for i in done]
                # annotations of the other channels (line_noise) stay
                notes = {c: r for c, r in q.reasons.items() if c not in q.bad_channels}
                result = Quality(
                    ok=True,
                    bad_channels=tuple(names),
                    nonfinite=q.nonfinite,
                    reasons={**notes, **dict.fromkeys(names, "interpolated")},
                )
        interp.update(flagged)
        return result
