"""Files in the exact layout of the EAV release (Zenodo 10205702), only smaller.

``subjectN/EEG/subjectN_eeg.mat`` holds ``seg1`` or ``seg`` (n_times, 30,
n_trials), ``subjectN_eeg_label.mat`` holds ``label`` one-hot (10, n_trials),
written with :func:`scipy.io.savemat` (v5) as the release's MATLAB did, or as
MATLAB v7.3 (HDF5 with a 512-byte MATLAB header) with h5py. ``Video/`` gets an
empty ``NNN_Trial_TT_Listening|Speaking_Emotion.mp4`` per trial and ``Audio/`` a
``..._Speaking_Emotion_Aud.wav`` per speaking trial, named as in the release.
Trials alternate listening, speaking (odd ``NNN`` listening) and pairs share an
emotion; by default the 0-based even label rows are listening, as the media
names of the release show.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import savemat

EMOTIONS = ("Neutral", "Sadness", "Anger", "Happiness", "Calmness")
N_CHANNELS = 30


def eav_rows(n_trials: int, *, listening_rows: str = "even") -> np.ndarray:
    """0-based label row of each trial: emotion pairs (listen, speak) in a cycle."""
    k = np.arange(n_trials)
    speaking = k % 2
    emotion = (k // 2) % len(EMOTIONS)
    return 2 * emotion + (speaking if listening_rows == "even" else 1 - speaking)


def eav_eeg(n_times: int, n_trials: int, seed: int = 0) -> np.ndarray:
    """(n_times, 30, n_trials) µV: noise plus a class-dependent 10 Hz rhythm."""
    rng = np.random.default_rng(seed)
    eeg = rng.normal(0.0, 10.0, (n_times, N_CHANNELS, n_trials))
    t = np.arange(n_times) / 500.0
    emotion = (np.arange(n_trials) // 2) % len(EMOTIONS)
    eeg += 4.0 * emotion[None, None, :] * np.sin(2 * np.pi * 10.0 * t)[:, None, None]
    return eeg


def write_eav_subject(
    root: Path,
    number: int,
    *,
    n_times: int = 250,
    n_trials: int = 20,
    variable: str = "seg1",
    listening_rows: str = "even",
    video: bool = True,
    v73: bool = False,
    seed: int = 0,
) -> tuple[Path, np.ndarray, np.ndarray]:
    """Write ``root/subjectN`` and return ``(folder, seg, label)``."""
    folder = root / f"subject{number}"
    eeg_dir = folder / "EEG"
    eeg_dir.mkdir(parents=True)
    seg = eav_eeg(n_times, n_trials, seed)
    rows = eav_rows(n_trials, listening_rows=listening_rows)
    label = np.zeros((10, n_trials))
    label[rows, np.arange(n_trials)] = 1.0
    eeg_path = eeg_dir / f"subject{number}_eeg.mat"
    label_path = eeg_dir / f"subject{number}_eeg_label.mat"
    if v73:
        write_v73(eeg_path, {variable: seg})
        write_v73(label_path, {"label": label})
    else:
        savemat(eeg_path, {variable: seg})
        savemat(label_path, {"label": label})
    if video:
        write_media(folder, rows, listening_rows=listening_rows)
    return folder, seg, label


def media_name(k: int, row: int, *, listening_rows: str = "even") -> str:
    """The release's Video name of 0-based trial ``k`` with label row ``row``."""
    listening = row % 2 == (0 if listening_rows == "even" else 1)
    cond = "Listening" if listening else "Speaking"
    return f"{k + 1:03d}_Trial_{k % 20 + 1:02d}_{cond}_{EMOTIONS[row // 2]}.mp4"


def write_media(folder: Path, rows: np.ndarray, *, listening_rows: str) -> None:
    """Empty Video/*.mp4 (every trial) and Audio/*.wav (speaking trials)."""
    (folder / "Video").mkdir()
    (folder / "Audio").mkdir()
    for k, row in enumerate(rows):
        name = media_name(k, int(row), listening_rows=listening_rows)
        (folder / "Video" / name).touch()
        if "_Speaking_" in name:
            (folder / "Audio" / name.replace(".mp4", "_Aud.wav")).touch()


def write_v73(path: Path, variables: dict[str, np.ndarray]) -> Path:
    """A MATLAB v7.3 file: HDF5 after a 512-byte block with MATLAB's header.

    MATLAB stores each array column-major, so HDF5 holds its transpose, with the
    ``MATLAB_class`` attribute.
    """
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        for name, arr in variables.items():
            ds = f.create_dataset(name, data=np.ascontiguousarray(arr.T))
            ds.attrs["MATLAB_class"] = np.bytes_("double")
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 "
    text += b"2024 HDF5 schema 1.00 ."
    header = text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with path.open("r+b") as f:
        f.write(header)
    return path
