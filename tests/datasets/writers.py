"""Writers of small files in the exact on-disk layouts of the real datasets.

Each writer uses the library the dataset's authors used (``pickle`` protocol 2 for
DEAP, :func:`scipy.io.savemat` with cell/struct arrays for the MATLAB releases),
so that the readers are exercised on the same byte-level structure, only smaller.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import savemat

from emomon.dsp.layout import EMOTIV_CHANNELS, SEED_CHANNELS

SEED_LABELS = [1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 0, 1, -1]


def cell(items: list[Any], shape: tuple[int, ...]) -> np.ndarray:
    """A MATLAB cell array: a numpy object array of ``shape`` holding ``items``."""
    out = np.empty(shape, dtype=object)
    for i, x in enumerate(items):
        out.flat[i] = x
    return out


# -- DEAP ----------------------------------------------------------------------


def deap_arrays(
    n_trials: int = 3, n_channels: int = 40, n_samples: int = 384 + 200, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``data`` (n_trials, n_channels, n_samples) µV and ``labels`` (n_trials, 4)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 20.0, (n_trials, n_channels, n_samples))
    labels = rng.uniform(1.0, 9.0, (n_trials, 4))
    return data, labels


def write_deap_dat(path: Path, obj: Any, *, python2_names: bool = True) -> Path:
    """Pickle ``obj`` with protocol 2, as DEAP's Python-2 ``cPickle.dump`` did.

    With ``python2_names`` the numpy globals are renamed to the
    ``numpy.core.multiarray`` spelling found in the real (numpy 1) files.
    """
    raw = pickle.dumps(obj, protocol=2)
    if python2_names:
        raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return path


def write_deap_mat(path: Path, data: np.ndarray, labels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"data": data, "labels": labels})
    return path


# -- DREAMER -------------------------------------------------------------------


def dreamer_subjects(
    n_subjects: int = 2, n_clips: int = 3, seed: int = 0
) -> list[dict[str, Any]]:
    """Per subject: stimuli/baseline lists of (n_samples, 14) and 1-5 scores."""
    rng = np.random.default_rng(seed)
    out = []
    for s in range(n_subjects):
        out.append(
            {
                # Emotiv values: ~4200 µV offset + per-channel offset + noise.
                "stimuli": [
                    4200.0
                    + rng.normal(0, 30, 14)
                    + rng.normal(0, 10, (100 + 10 * v + s, 14))
                    for v in range(n_clips)
                ],
                "baseline": [
                    4200.0 + rng.normal(0, 10, (64, 14)) for _ in range(n_clips)
                ],
                "valence": rng.integers(1, 6, n_clips).astype(float),
                "arousal": rng.integers(1, 6, n_clips).astype(float),
                "dominance": rng.integers(1, 6, n_clips).astype(float),
            }
        )
    return out


def write_dreamer(
    path: Path,
    subjects: list[dict[str, Any]],
    *,
    electrodes: tuple[str, ...] = EMOTIV_CHANNELS,
    sfreq: int = 128,
    struct_array: bool = False,
) -> Path:
    """``DREAMER.mat``: struct DREAMER with Data a (1, n) cell of 1x1 structs.

    With ``struct_array`` Data is a (1, n) struct array instead of a cell.
    """
    n_clips = len(subjects[0]["stimuli"])
    data = []
    for s in subjects:
        n = len(s["stimuli"])
        data.append(
            {
                "Age": 25,
                "Gender": "female",
                "EEG": {
                    "stimuli": cell(s["stimuli"], (n, 1)),
                    "baseline": cell(s["baseline"], (len(s["baseline"]), 1)),
                },
                "ECG": {"stimuli": cell([np.zeros((4, 2))] * n, (n, 1))},
                "ScoreValence": np.asarray(s["valence"], float).reshape(-1, 1),
                "ScoreArousal": np.asarray(s["arousal"], float).reshape(-1, 1),
                "ScoreDominance": np.asarray(s["dominance"], float).reshape(-1, 1),
            }
        )
    data_arr: np.ndarray = cell(data, (1, len(data)))
    if struct_array:
        fields = list(data[0])
        data_arr = np.empty((1, len(data)), dtype=[(f, object) for f in fields])
        for i, d in enumerate(data):
            for f in fields:
                data_arr[0, i][f] = d[f]
    dreamer = {
        "Data": data_arr,
        "EEG_SamplingRate": sfreq,
        "ECG_SamplingRate": 256,
        "EEG_Electrodes": cell(list(electrodes), (1, len(electrodes))),
        "noOfSubjects": len(data),
        "noOfVideoSequences": n_clips,
        "Disclaimer": "test",
        "Provider": "test",
        "Version": "1.0.2",
        "Acknowledgement": "test",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"DREAMER": dreamer})
    return path


# -- AMIGOS --------------------------------------------------------------------

AMIGOS_IDS = [
    "10", "13", "138", "18", "19", "20", "23", "30", "31", "34", "36", "4", "5",
    "58", "80", "9", "N1", "P1",
]  # fmt: skip


def amigos_trials(
    n_videos: int = 18, n_samples: int = 64, seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """joined_data (n_samples, 17) and labels (1, 12) per video, and VideoIDs."""
    rng = np.random.default_rng(seed)
    data = [rng.normal(0, 10, (n_samples + v, 17)) for v in range(n_videos)]
    labels = []
    for v in range(n_videos):
        lab = np.zeros((1, 12))
        lab[0, 0] = 1.0 + (v % 9)  # arousal
        lab[0, 1] = 9.0 - (v % 9)  # valence
        lab[0, 2:5] = [5.0, 6.0, 2.0]  # dominance, liking, familiarity
        lab[0, 5:] = np.arange(7) % 2
        labels.append(lab)
    return data, labels, AMIGOS_IDS[:n_videos]


def write_amigos(
    path: Path,
    data: list[np.ndarray],
    labels: list[np.ndarray],
    ids: list[str],
    *,
    extra: dict[str, Any] | None = None,
) -> Path:
    """``Data_Preprocessed_PNN.mat`` with (1, n) cells as in the real release."""
    n = len(data)
    contents: dict[str, Any] = {
        "joined_data": cell(data, (1, n)),
        "labels_selfassessment": cell(labels, (1, len(labels))),
        "labels_ext_annotation": cell([np.zeros((3, 3))] * n, (1, n)),
        "VideoIDs": cell(ids, (1, len(ids))),
    }
    contents.update(extra or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, contents)
    return path


# -- SEED ----------------------------------------------------------------------


def write_seed_label(folder: Path, labels: list[int] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "label.mat"
    savemat(path, {"label": np.asarray([labels or SEED_LABELS])})
    return path


def seed_eeg(n_films: int = 15, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 20, (len(SEED_CHANNELS), 30 + i)) for i in range(n_films)]


def write_seed_session(
    folder: Path, name: str, films: list[np.ndarray], initials: str = "djc"
) -> Path:
    """``Preprocessed_EEG/<subject>_<date>.mat`` with ``<initials>_eegN``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    savemat(path, {f"{initials}_eeg{i + 1}": x for i, x in enumerate(films)})
    return path


def seed_features(n_films: int = 15, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(1, n_films + 1):
        n_win = 3 + i % 4
        for key in ("de_LDS", "de_movingAve", "psd_LDS", "psd_movingAve"):
            out[f"{key}{i}"] = rng.uniform(1, 30, (len(SEED_CHANNELS), n_win, 5))
        # the real files also hold asymmetry features, ignored by the reader
        out[f"dasm_LDS{i}"] = rng.uniform(-1, 1, (27, n_win, 5))
    return out


def write_seed_features(folder: Path, name: str, feats: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    savemat(path, feats)
    return path


# -- SEED-IV -------------------------------------------------------------------


def seed4_eeg(
    n_trials: int = 24, n_samples: int = 20, seed: int = 0
) -> list[np.ndarray]:
    """Trial ``i`` (1-based, at index ``i - 1``): (62, n_samples + i) µV."""
    rng = np.random.default_rng(seed)
    return [
        rng.normal(0, 20, (len(SEED_CHANNELS), n_samples + i))
        for i in range(1, n_trials + 1)
    ]


def seed4_features(
    families: tuple[str, ...] = ("de_LDS", "de_movingAve"),
    n_trials: int = 24,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """``<family><N>`` -> (62, 2 + N % 3, 5) (the real files hold all four families)."""
    rng = np.random.default_rng(seed)
    return {
        f"{f}{i}": rng.uniform(1, 30, (len(SEED_CHANNELS), 2 + i % 3, 5))
        for i in range(1, n_trials + 1)
        for f in families
    }


def write_shuffled_mat(path: Path, variables: dict[str, Any], seed: int = 0) -> Path:
    """``savemat`` of ``variables`` in a shuffled order.

    savemat writes a dict in its iteration order, so the file's own variable
    order (``scipy.io.whosmat``) is the shuffled one: a reader that went by
    position would pair trials with the wrong labels.
    """
    keys = list(variables)
    order = np.random.default_rng(seed).permutation(len(keys))
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {keys[k]: variables[keys[k]] for k in order})
    return path


def write_seed4_session(
    folder: Path,
    session: str,
    name: str,
    trials: list[np.ndarray],
    initials: str = "cz",
    seed: int = 0,
) -> Path:
    """``<session>/<subject>_<date>.mat`` holding ``<initials>_eegN``, shuffled."""
    variables = {f"{initials}_eeg{i}": x for i, x in enumerate(trials, start=1)}
    return write_shuffled_mat(folder / session / name, variables, seed)


# -- OpenBCI -------------------------------------------------------------------

V6_COLUMNS = (
    "Sample Index, EXG Channel 0, EXG Channel 1, EXG Channel 2, EXG Channel 3, "
    "EXG Channel 4, EXG Channel 5, EXG Channel 6, EXG Channel 7, Accel Channel 0, "
    "Accel Channel 1, Accel Channel 2, Not Used, Digital Channel 0 (D11), Digital "
    "Channel 1 (D12), Digital Channel 2 (D13), Digital Channel 3 (D17), Not Used, "
    "Digital Channel 4 (D18), Analog Channel 0, Analog Channel 1, Analog Channel 2, "
    "Timestamp, Marker Channel, Timestamp (Formatted)"
)


def openbci_v6_text(eeg: np.ndarray, ts_ms: np.ndarray, sfreq: int = 250) -> str:
    """An OpenBCI GUI v6 'Raw EXG' file body (CRLF), 8 EXG channels."""
    lines = [
        "%OpenBCI Raw EXG Data",
        f"%Number of channels = {eeg.shape[0]}",
        f"%Sample Rate = {sfreq} Hz",
        "%Board = OpenBCI_GUI$BoardCytonSerial",
        V6_COLUMNS,
    ]
    for i in range(eeg.shape[1]):
        exg = ", ".join(f"{v:.2f}" for v in eeg[:, i])
        lines.append(
            f"{i % 256}, {exg}, 0.040, 0.420, 0.238,0,0,0,0,0,0,0,0,0,0, "
            f"{int(ts_ms[i])},0, 12:00:53.329"
        )
    return "\r\n".join(lines) + "\r\n"


# -- EDF+ (written by hand: no edfio needed) --------------------------------------


def write_edf(
    path: Path,
    data_uv: np.ndarray,
    ch_names: list[str],
    sfreq: int,
    annotations: list[tuple[float, float, str]] = (),  # type: ignore[assignment]
) -> np.ndarray:
    """A minimal EDF+C file: int16 samples, 0.1 µV per digital unit, 1 s records.

    Returns the physical values (µV) actually stored, after quantisation.
    """
    n_ch, n_times = data_uv.shape
    assert n_times % sfreq == 0
    n_rec = n_times // sfreq
    dig = np.clip(np.round(data_uv * 10.0), -32768, 32767).astype("<i2")
    ann_bytes = 120  # 60 int16 "samples" per record for the annotation channel
    tals = []
    for r in range(n_rec):
        tal = f"+{r}\x14\x14\x00"
        if r == 0:
            tal += "".join(
                f"+{on:g}\x15{du:g}\x14{txt}\x14\x00" for on, du, txt in annotations
            )
        raw = tal.encode("latin1")
        assert len(raw) <= ann_bytes
        tals.append(raw.ljust(ann_bytes, b"\x00"))
    ns = n_ch + 1

    def field(values: list[str], width: int) -> bytes:
        return b"".join(v.encode("latin1")[:width].ljust(width) for v in values)

    labels = [*ch_names, "EDF Annotations"]
    header = (
        field(["0"], 8)
        + field(["X X X X"], 80)
        + field(["Startdate 01-MAY-2024 X X X"], 80)
        + field(["01.05.24"], 8)
        + field(["10.00.00"], 8)
        + field([str(256 * (ns + 1))], 8)
        + field(["EDF+C"], 44)
        + field([str(n_rec)], 8)
        + field(["1"], 8)
        + field([str(ns)], 4)
        + field(labels, 16)
        + field(["AgAgCl electrode"] * n_ch + [""], 80)
        + field(["uV"] * n_ch + [""], 8)
        + field(["-3276.8"] * n_ch + ["-1"], 8)
        + field(["3276.7"] * n_ch + ["1"], 8)
        + field(["-32768"] * ns, 8)
        + field(["32767"] * ns, 8)
        + field([""] * ns, 80)
        + field([str(sfreq)] * n_ch + [str(ann_bytes // 2)], 8)
        + field([""] * ns, 32)
    )
    assert len(header) == 256 * (ns + 1)
    body = b"".join(
        dig[:, r * sfreq : (r + 1) * sfreq].tobytes() + tals[r] for r in range(n_rec)
    )
    path.write_bytes(header + body)
    return dig.astype(np.float64) / 10.0
