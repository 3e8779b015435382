"""A minimal Neuroscan .cnt writer for tests (MNE reads .cnt but cannot write it).

Written from the published layout of the format (Paul Bourke, "EEG data file
formats", paulbourke.net/dataformats/eeg/: the 900-byte ``SETUP`` struct, one
75-byte ``ELECTLOC`` per channel, the multiplexed samples, then the ``TEEG``
event table). Only the fields a reader needs are filled; the rest stay zero.
A file from here read back by MNE shows that emomon and MNE agree on this
layout, not that real SEED-V files fill the same fields (see
``emomon/datasets/seed5.py``).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: SEED-V's 66 channels in the Neuroscan 64-channel Quik-Cap order (the 62 SEED
#: electrodes with M1 after T8 and M2 after TP8) followed by the eye channels.
SEEDV_CNT_CHANNELS: tuple[str, ...] = (
    "FP1", "FPZ", "FP2", "AF3", "AF4", "F7", "F5", "F3", "F1", "FZ", "F2", "F4",
    "F6", "F8", "FT7", "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8",
    "T7", "C5", "C3", "C1", "CZ", "C2", "C4", "C6", "T8", "M1", "TP7", "CP5",
    "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6", "TP8", "M2", "P7", "P5", "P3", "P1",
    "PZ", "P2", "P4", "P6", "P8", "PO7", "PO5", "PO3", "POZ", "PO4", "PO6", "PO8",
    "CB1", "O1", "OZ", "O2", "CB2", "HEO", "VEO",
)  # fmt: skip

SETUP_SIZE = 900
ELECTLOC_SIZE = 75


def write_cnt(
    path: Path,
    counts: np.ndarray,
    *,
    ch_names: Sequence[str] = SEEDV_CNT_CHANNELS,
    sfreq: int = 1000,
    dtype: str = "int16",
    baseline: Sequence[int] | int = 0,
    sensitivity: float = 204.8,
    calib: float = 0.1,
) -> Path:
    """Write ``counts`` as a Neuroscan .cnt file.

    Parameters
    ----------
    path : Path
        The file to write.
    counts : ndarray of int, shape (n_channels, n_samples)
        Raw sample values (A/D counts).
    ch_names : sequence of str
        Electrode labels (at most 9 characters).
    sfreq : int
        Rate in Hz (the header field is an unsigned 16-bit integer).
    dtype : {"int16", "int32"}
        Sample width.
    baseline, sensitivity, calib
        Per-file scaling: Bourke gives µV = (count - baseline) * sensitivity *
        calib / 204.8, so the defaults make one count 0.1 µV.

    Returns
    -------
    Path
        ``path``.
    """
    counts = np.asarray(counts)
    n_ch, n_samp = counts.shape
    assert n_ch == len(ch_names)
    n_bytes = {"int16": 2, "int32": 4}[dtype]
    base = np.broadcast_to(np.asarray(baseline, dtype=np.int64), (n_ch,))
    data_start = SETUP_SIZE + ELECTLOC_SIZE * n_ch
    event_pos = data_start + n_ch * n_samp * n_bytes

    setup = bytearray(SETUP_SIZE)

    def put(offset: int, fmt: str, *values: object) -> None:
        struct.pack_into("<" + fmt, setup, offset, *values)

    put(0, "20s", b"Version 3.0")  # rev
    put(21, "20s", b"1")  # id
    put(121, "20s", b"subject")  # patient
    put(143, "cc", b"F", b"R")  # sex, hand
    put(225, "10s", b"08/04/18")  # date, mm/dd/yy
    put(235, "12s", b"14:02:03")  # time
    put(353, "B", 1)  # savemode: continuous
    put(370, "H", n_ch)  # nchannels
    put(376, "H", sfreq)  # rate
    put(864, "i", n_samp)  # NumSamples
    put(886, "i", event_pos)  # EventTablePos
    put(890, "f", n_samp / sfreq)  # ContinousSeconds
    # ChannelOffset: bytes of one channel's run in a multiplexed block; one
    # sample per run is plain interleaving (MNE divides it by the sample width).
    put(894, "i", n_bytes)

    chans = bytearray()
    angles = np.linspace(0.0, 2.0 * np.pi, n_ch, endpoint=False)
    for i, name in enumerate(ch_names):
        rec = bytearray(ELECTLOC_SIZE)
        struct.pack_into("<10s", rec, 0, name.encode("ascii"))
        # A ring of positions: MNE fits the x/y of EEG channels to a sphere.
        x, y = float(np.cos(angles[i])), float(np.sin(angles[i]))
        struct.pack_into("<ff", rec, 19, x, y)  # x_coord, y_coord
        struct.pack_into("<h", rec, 47, int(base[i]))  # baseline
        struct.pack_into("<f", rec, 59, sensitivity)
        struct.pack_into("<f", rec, 71, calib)
        chans += rec

    # Samples are multiplexed: all channels of sample 0, then of sample 1, ...
    samples = np.ascontiguousarray(counts.T, dtype="<i2" if n_bytes == 2 else "<i4")
    assert np.array_equal(samples.T, counts), "counts do not fit the sample width"
    # TEEG: event type 2, 0 bytes of events, offset 0.
    teeg = struct.pack("<Bii", 2, 0, 0)
    with open(path, "wb") as f:
        f.write(setup)
        f.write(chans)
        f.write(samples.tobytes())
        f.write(teeg)
    return path
