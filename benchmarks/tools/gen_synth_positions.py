"""Write emomon/datasets/_synth_positions.py from MNE's ``standard_1005`` montage.

Run once, by hand, when the table should change (``python
benchmarks/tools/gen_synth_positions.py``). The synthetic generator places its
sources and electrodes on a unit sphere: each point of the montage, in the
montage's own frame (origin near the head's centre), divided by its norm and
rounded to 3 decimals, the way the generator's table of DEAP's 32 sites was
made (``emomon.datasets.synthetic._POS`` equals this table on those names).
This is not ``emomon.dsp.positions`` (MNE's head frame, metres, whose origin
between the ears would put every direction lower).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

OUT = (
    Path(__file__).resolve().parents[2] / "emomon" / "datasets" / "_synth_positions.py"
)


def main() -> None:
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # renamed colin27_1005
        montage = mne.channels.make_standard_montage("standard_1005")
    pos = montage.get_positions()["ch_pos"]
    lines = [
        '"""Unit-sphere directions of the 10-05 electrodes: generated, do not edit.',
        "",
        "Written by benchmarks/tools/gen_synth_positions.py from MNE-Python",
        f"{mne.__version__}'s standard_1005 montage (its own frame), normalised and",
        "rounded to 3 decimals; x right, y anterior, z up. Read by the synthetic",
        "generator to place channels outside DEAP's 32.",
        '"""',
        "",
        f'MNE_VERSION = "{mne.__version__}"',
        "",
        "UNIT_POSITIONS: dict[str, tuple[float, float, float]] = {",
    ]
    for name, xyz in pos.items():
        u = np.round(np.asarray(xyz) / np.linalg.norm(xyz), 3) + 0.0  # no -0.0
        lines.append(f'    "{name}": ({u[0]:+.3f}, {u[1]:+.3f}, {u[2]:+.3f}),')
    lines.append("}")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
