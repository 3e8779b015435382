"""Play EEG with MNE-LSL's ``PlayerLSL``, in its own process: a sender emomon did
not write, on its own liblsl (MNE-LSL ships one beside pylsl's).

Usage::

    python play_with_mne_lsl.py EEG.npy SFREQ CH1,CH2,... NAME OUT_DIR

Writes ``OUT_DIR/raw.fif`` with MNE (``EEG.npy``: channels x samples in
microvolts, stored in volts as MNE stores EEG), plays it with ``PlayerLSL``'s
defaults (``chunk_size=10``, looping) as stream ``NAME``, prints ``playing``
and stops when its stdin closes, or after ``MAX_S`` seconds at the latest. The
liblsl configuration comes from ``LSLAPICFG``, inherited from the tests.
"""

from __future__ import annotations

import select
import sys
from pathlib import Path

import numpy as np

MAX_S = 120.0  # the longest a test may leave the player running


def main(argv: list[str]) -> int:
    eeg_file, sfreq, ch_names, name, out_dir = argv
    # Imported here: a warning or a log line of either library goes to stderr,
    # which the test shows when the player fails; stdout carries "playing" only.
    import mne
    from mne_lsl import set_log_level
    from mne_lsl.player import PlayerLSL

    mne.set_log_level("ERROR")
    set_log_level("ERROR")
    eeg_uv = np.load(eeg_file)
    info = mne.create_info(ch_names.split(","), float(sfreq), ch_types="eeg")
    raw = mne.io.RawArray(eeg_uv * 1e-6, info)
    fname = Path(out_dir) / "raw.fif"
    raw.save(fname, overwrite=True)
    player = PlayerLSL(fname, name=name)
    player.start()
    try:
        sys.stdout.write("playing\n")  # the one line on stdout: the test waits for it
        sys.stdout.flush()
        # Until the test closes our stdin (readable at EOF), bounded.
        select.select([sys.stdin], [], [], MAX_S)
    finally:
        player.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
