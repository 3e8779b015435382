"""SEED-V files in the release's layout, small enough for tests.

The raw recordings are written with :func:`write_cnt`; a real session lasts an
hour, so tests shrink the film times with :func:`short_spans` (monkeypatched
over :data:`emomon.datasets.seed5.SESSION_SPANS`; the reader's default stays the
published table). The feature files are written as the release writes them:
``np.savez(data=pickle.dumps(dict), label=pickle.dumps(dict))``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from emomon.datasets import seed5
from tests.datasets.cnt_writer import SEEDV_CNT_CHANNELS, write_cnt

#: Counts per µV of :func:`write_cnt`'s default scaling (0.1 µV a count).
COUNTS_PER_UV = 10.0
#: Row of each SEED channel in the .cnt files of :func:`write_session`.
CNT_ROW = {name: i for i, name in enumerate(SEEDV_CNT_CHANNELS)}


def short_spans(
    first_s: float = 1.0, film_s: float = 1.2, gap_s: float = 0.3
) -> dict[int, tuple[tuple[float, float], ...]]:
    """Film times of a few seconds each: films back to back after ``first_s``."""
    spans = []
    t = first_s
    for _ in range(seed5.N_TRIALS):
        spans.append((round(t, 6), round(t + film_s, 6)))
        t += film_s + gap_s
    return {s: tuple(spans) for s in seed5.SESSIONS}


def session_counts(
    spans: tuple[tuple[float, float], ...],
    *,
    sfreq: int = 1000,
    tail_s: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """Counts (66, n) of one session: a DC level per channel plus small noise.

    Channel row ``r`` sits at ``100 * r`` counts (10 * r µV), so the reader's
    channel order and scaling show in the trial means.
    """
    n = int(round((max(e for _, e in spans) + tail_s) * sfreq))
    rng = np.random.default_rng(seed)
    counts = rng.integers(-20, 21, size=(len(SEEDV_CNT_CHANNELS), n))
    counts += 100 * np.arange(len(SEEDV_CNT_CHANNELS))[:, None]
    return counts


def write_session(
    folder: Path,
    subject: int,
    session: int,
    counts: np.ndarray,
    *,
    date: str = "20180804",
    **kwargs: Any,
) -> Path:
    """Write ``EEG_raw/<subject>_<session>_<date>.cnt`` under ``folder``."""
    raw_dir = folder / "EEG_raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    return write_cnt(raw_dir / f"{subject}_{session}_{date}.cnt", counts, **kwargs)


def de_trials(n_windows: int = 3, seed: int = 0) -> dict[int, np.ndarray]:
    """``{0..44: (n_windows, 310)}``: value ``ch * 10 + band`` plus ``key / 100``.

    Channel-major rows, as TorchEEG reads them (62 channels x 5 bands).
    """
    rng = np.random.default_rng(seed)
    ch_band = (np.arange(62)[:, None] * 10 + np.arange(5)[None, :]).reshape(-1)
    out = {}
    for k in range(45):
        n = n_windows + int(rng.integers(0, 3))
        out[k] = np.tile(ch_band + k / 100.0, (n, 1)).astype(np.float64)
    return out


def de_labels(data: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """``{k: (n_windows,)}`` of SEED-V's published label of each trial."""
    out = {}
    for k, rows in data.items():
        session, film = k // 15 + 1, k % 15
        out[k] = np.full(rows.shape[0], seed5.SESSION_LABELS[session][film])
    return out


def write_npz(folder: Path, subject: int, data: Any, label: Any) -> Path:
    """Write ``EEG_DE_features/<subject>_123.npz`` as the release does."""
    feat_dir = folder / "EEG_DE_features"
    feat_dir.mkdir(parents=True, exist_ok=True)
    path = feat_dir / f"{subject}_123.npz"
    np.savez(path, data=pickle.dumps(data), label=pickle.dumps(label))
    return path
