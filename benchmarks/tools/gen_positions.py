"""Write emomon/dsp/_positions_1005.py from MNE's ``standard_1005`` montage.

Run once, by hand, when the table should change (``python
benchmarks/tools/gen_positions.py``); the library reads the committed table and
never needs MNE for it. The positions are those MNE itself uses after
``info.set_montage("standard_1005")``: the montage's points carried into MNE's
head frame (x towards the right preauricular point, y towards the nasion, z up;
metres), so that emomon's spherical-spline interpolation and MNE's
``interpolate_bads`` see the same coordinates.
"""

from __future__ import annotations

import warnings
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "emomon" / "dsp" / "_positions_1005.py"


def main() -> None:
    import mne

    with warnings.catch_warnings():
        # MNE 1.13 announces the montage's rename to "colin27_1005" (same points).
        warnings.simplefilter("ignore", FutureWarning)
        montage = mne.channels.make_standard_montage("standard_1005")
    info = mne.create_info(montage.ch_names, 100.0, "eeg")
    info.set_montage(montage)
    lines = [
        '"""Electrode positions of the 10-05 system: generated, do not edit.',
        "",
        "Written by benchmarks/tools/gen_positions.py from MNE-Python "
        f"{mne.__version__}'s",
        "``standard_1005`` montage, in MNE's head frame (metres), as MNE places them",
        'after ``info.set_montage("standard_1005")``.',
        '"""',
        "",
        f'MNE_VERSION = "{mne.__version__}"',
        "",
        "#: Electrode name (MNE's spelling) -> (x, y, z) in metres, head frame.",
        "POSITIONS: dict[str, tuple[float, float, float]] = {",
    ]
    for ch in info["chs"]:
        x, y, z = (float(v) for v in ch["loc"][:3])
        lines.append(f'    "{ch["ch_name"]}": ({x!r}, {y!r}, {z!r}),')
    lines.append("}")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(info['chs'])} positions, MNE {mne.__version__})")


if __name__ == "__main__":
    main()
