"""Bad dataset files through the CLI: exit code 2 and one line naming the culprit.

Each row writes a real-format file (pickle protocol 2, scipy.io.savemat, OpenBCI
GUI text, EDF+) with one defect, runs ``emomon datasets check`` (or ``replay`` /
``train`` where the defect is in an option or across files) and checks the exit
code and that the single stderr line names the file, variable or channel and
says what was expected or what to do.
"""

from __future__ import annotations

import pickle
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from emomon.cli import main
from emomon.dsp.layout import EMOTIV_CHANNELS

from .writers import (
    amigos_trials,
    cell,
    deap_arrays,
    dreamer_subjects,
    openbci_v6_text,
    seed_eeg,
    write_amigos,
    write_deap_dat,
    write_deap_mat,
    write_dreamer,
    write_edf,
    write_seed_label,
)

#: Builds the files under a fresh directory and returns the emomon argv.
Build = Callable[[Path], list[str]]


@dataclass(frozen=True)
class Row:
    """One bad input: how to make it and what the error line must contain."""

    id: str
    build: Build
    needles: tuple[str, ...]


def _check(dataset: str, data_dir: Path) -> list[str]:
    return ["datasets", "check", "--dataset", dataset, "--data-dir", str(data_dir)]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and the stderr lines of one CLI run."""
    capsys.readouterr()
    rc = main([*argv, "--quiet"] if argv[0] in ("datasets", "train") else argv)
    return rc, capsys.readouterr().err


# -- DEAP ------------------------------------------------------------------------


def _deap(root: Path, obj: object | None = None, *, raw: bytes | None = None) -> Path:
    """``s01.dat`` holding ``obj`` (default: a valid 3-trial dict) or ``raw``."""
    path = root / "s01.dat"
    if raw is not None:
        path.write_bytes(raw)
        return path
    if obj is None:
        data, labels = deap_arrays(n_trials=3)
        obj = {"data": data, "labels": labels}
    return write_deap_dat(path, obj)


def _deap_with(**changes: object) -> Build:
    def build(root: Path) -> list[str]:
        data, labels = deap_arrays(n_trials=3)
        obj = {"data": data, "labels": labels}
        for key, fn in changes.items():
            obj[key] = fn(obj[key])  # type: ignore[operator]
        _deap(root, obj)
        return _check("deap", root)

    return build


def _deap_bytes(edit: Callable[[bytes], bytes]) -> Build:
    def build(root: Path) -> list[str]:
        good = _deap(root).read_bytes()
        _deap(root, raw=edit(good))
        return _check("deap", root)

    return build


def _nan_at(value: float, index: tuple[int, ...]) -> Callable[[np.ndarray], np.ndarray]:
    def put(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        a[index] = value
        return a

    return put


class _CallsPosixSystem:
    """Pickles as a call of os.system: the restricted unpickler must refuse it."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("echo pwned",))


# A dict whose key is a tuple nested 300 000 deep: hashing it overflowed the C
# stack (segfault) before the opcode cap.
_DEEP_PICKLE = b"\x80\x02}" + b")" + b"\x85" * 300_000 + b"K\x01s."
# numpy's _reconstruct asked for a 10**12-element array (8 TB) by an 80-byte file.
_HUGE_PICKLE = (
    b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
    + b"\x8a\x06"
    + (10**12).to_bytes(6, "little")
    + b"\x85U\x01b\x87R."
)


def _deap_mat(
    edit: Callable[[bytes], bytes] | None = None, *, n_channels: int = 40
) -> Build:
    def build(root: Path) -> list[str]:
        data, labels = deap_arrays(n_trials=3, n_channels=n_channels)
        path = write_deap_mat(root / "s01.mat", data, labels)
        if edit is not None:
            path.write_bytes(edit(path.read_bytes()))
        return _check("deap", root)

    return build


# -- MATLAB byte surgery ---------------------------------------------------------
# Offsets in a little-endian, uncompressed MAT v5 file written by savemat: the
# first variable's miMATRIX tag at 128, its array flags at 136, dims tag at 152.
_VAR0 = 128


def _first_var_elements(raw: bytes) -> dict[str, int]:
    """Offsets of the first variable's dims data and first data element tag."""
    p = _VAR0 + 8 + 16  # matrix tag, array flags element
    _, n_dims_bytes = struct.unpack("<II", raw[p : p + 8])
    dims_at = p + 8
    p = dims_at + n_dims_bytes + (-n_dims_bytes % 8)
    u0, u1 = struct.unpack("<II", raw[p : p + 8])
    p += 8 if u0 >> 16 else 8 + u1 + (-u1 % 8)  # name: small or full element
    return {"dims": dims_at, "data_tag": p}


def _blow_up_dims(raw: bytes) -> bytes:
    """Second dimension of the first variable -> 2**30 + 1 (one flipped bit)."""
    b = bytearray(raw)
    at = _first_var_elements(raw)["dims"] + 4
    b[at : at + 4] = struct.pack("<i", 2**30 + 1)
    return bytes(b)


def _blow_up_dims_compressed(raw: bytes) -> bytes:
    """As _blow_up_dims, inside the zlib stream of a compressed first variable."""
    mdtype, count = struct.unpack("<II", raw[_VAR0 : _VAR0 + 8])
    assert mdtype == 15  # miCOMPRESSED
    inner = zlib.decompress(raw[_VAR0 + 8 : _VAR0 + 8 + count])
    inner = _blow_up_dims(b"\x00" * _VAR0 + inner)[_VAR0:]
    packed = zlib.compress(inner)
    rest = raw[_VAR0 + 8 + count :]
    return raw[:_VAR0] + struct.pack("<II", 15, len(packed)) + packed + rest


def _unknown_data_type(raw: bytes) -> bytes:
    """The first variable's data element gets type code 0 (scipy has no dtype)."""
    b = bytearray(raw)
    at = _first_var_elements(raw)["data_tag"]
    b[at : at + 4] = struct.pack("<I", 0)
    return bytes(b)


def _zero_dim_char(raw: bytes) -> bytes:
    """The first variable's dims element becomes a 1-byte small element: 0 dims."""
    b = bytearray(raw)
    at = _first_var_elements(raw)["dims"] - 8
    b[at : at + 8] = struct.pack("<HH", 5, 1) + b"\x00" * 4
    return bytes(b)


# -- DREAMER / SEED / AMIGOS -------------------------------------------------------


def _dreamer(
    edit: Callable[[bytes], bytes] | None = None,
    *,
    compressed: bool = False,
    subjects: list[dict[str, object]] | None = None,
    **write: object,
) -> Build:
    def build(root: Path) -> list[str]:
        path = root / "DREAMER.mat"
        write_dreamer(path, subjects or dreamer_subjects(1, 2), **write)  # type: ignore[arg-type]
        if compressed:
            from scipy.io import loadmat

            savemat(path, {"DREAMER": loadmat(path)["DREAMER"]}, do_compression=True)
        if edit is not None:
            path.write_bytes(edit(path.read_bytes()))
        return _check("dreamer", root)

    return build


def _dreamer_clip(fn: Callable[[np.ndarray], np.ndarray]) -> Build:
    subjects = dreamer_subjects(1, 2)
    subjects[0]["stimuli"][0] = fn(subjects[0]["stimuli"][0])
    return _dreamer(subjects=subjects)


def _seed(
    films: list[np.ndarray] | None = None,
    *,
    edit: Callable[[bytes], bytes] | None = None,
    label_bytes: bytes | None = None,
    extra_first: dict[str, object] | None = None,
) -> Build:
    def build(root: Path) -> list[str]:
        label = write_seed_label(root)
        if label_bytes is not None:
            label.write_bytes(label_bytes)
        path = root / "1_20131027.mat"
        variables = dict(extra_first or {})
        eeg = films if films is not None else seed_eeg()
        variables.update({f"djc_eeg{i + 1}": x for i, x in enumerate(eeg)})
        savemat(path, variables)
        if edit is not None:
            path.write_bytes(edit(path.read_bytes()))
        return _check("seed", root)

    return build


def _seed_film(fn: Callable[[np.ndarray], np.ndarray]) -> Build:
    films = seed_eeg()
    films[0] = fn(films[0])
    return _seed(films)


def _amigos(
    edit: Callable[[bytes], bytes] | None = None,
    *,
    n_labels: int | None = None,
    nan_all: bool = False,
) -> Build:
    def build(root: Path) -> list[str]:
        data, labels, ids = amigos_trials(n_videos=3, n_samples=40)
        if nan_all:
            data = [np.full_like(x, np.nan) for x in data]
        if n_labels is not None:
            labels = labels[:n_labels]
        path = write_amigos(root / "Data_Preprocessed_P01.mat", data, labels, ids)
        if edit is not None:
            path.write_bytes(edit(path.read_bytes()))
        return _check("amigos", root)

    return build


# -- OpenBCI, EDF ------------------------------------------------------------------


def _openbci_text(n: int = 60, sfreq: int = 250) -> str:
    rng = np.random.default_rng(0)
    eeg = rng.normal(0.0, 10.0, (8, n))
    return openbci_v6_text(eeg, 1.7e12 + np.arange(n) * 4.0, sfreq=sfreq)


def _openbci(edit: Callable[[str], str] | None = None, *, raw: bytes | None = None):
    def build(root: Path) -> list[str]:
        path = root / "rec.txt"
        text = _openbci_text()
        if raw is not None:
            path.write_bytes(text.encode()[: text.index("Sample Index")] + raw)
        else:
            path.write_text(edit(text) if edit else text, newline="")
        return _check("openbci", root)

    return build


def _replay_openbci(*options: str) -> Build:
    def build(root: Path) -> list[str]:
        path = root / "rec.txt"
        path.write_text(_openbci_text(), newline="")
        opts = [x for o in options for x in ("-o", o)]
        return ["replay", "--dataset", "openbci", "--data-dir", str(path), *opts]

    return build


def _edf(
    path: Path,
    *,
    sfreq: int = 128,
    ch_names: tuple[str, ...] = ("Fp1", "Fp2", "Cz"),
    seconds: int = 8,
    seed: int = 0,
) -> Path:
    """An EDF+ recording with two rated trials (annotations with durations)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 20.0, (len(ch_names), seconds * sfreq))
    ann = [(0.5, 3.0, "video=v1;valence=7"), (4.0, 3.0, "video=v2;valence=2")]
    write_edf(path, data, list(ch_names), sfreq, ann)
    return path


def _edf_bytes(edit: Callable[[bytes], bytes]) -> Build:
    def build(root: Path) -> list[str]:
        path = _edf(root / "rec.edf")
        path.write_bytes(edit(path.read_bytes()))
        return _check("mne", root)

    return build


def _mne_check(**edf: object) -> Build:
    def build(root: Path) -> list[str]:
        _edf(root / "rec.edf", **edf)  # type: ignore[arg-type]
        return _check("mne", root)

    return build


def _edf_signal_count(raw: bytes) -> bytes:
    b = bytearray(raw)
    b[252:256] = b"x?  "  # "number of signals" field: not a number
    return bytes(b)


def _train_mne(*recordings: dict[str, object], model: str = "logreg") -> Build:
    def build(root: Path) -> list[str]:
        data = root / "data"
        data.mkdir()
        for i, kw in enumerate(recordings):
            _edf(data / f"sub{i + 1}.edf", seed=i, **kw)  # type: ignore[arg-type]
        return [
            "train",
            "--permutations",
            "0",
            "--dataset",
            "mne",
            "--data-dir",
            str(data),
            "--model",
            model,
            "--targets",
            "valence",
            "--no-cache",
            "--no-export",
            "--jobs",
            "1",
            "--out",
            str(root / "run"),
        ]

    return build


# -- the table ----------------------------------------------------------------------

CORRUPT = [
    Row(
        "deap-dat-truncated",
        _deap_bytes(lambda b: b[: len(b) // 2]),
        ("s01.dat", "truncated or corrupt pickle", "expected DEAP"),
    ),
    Row("deap-dat-empty", _deap_bytes(lambda b: b""), ("s01.dat", "corrupt pickle")),
    Row(
        "deap-dat-random-bytes",
        _deap_bytes(lambda b: np.random.default_rng(1).bytes(500)),
        ("s01.dat", "corrupt pickle", "expected DEAP"),
    ),
    Row(
        "deap-dat-foreign-global",
        _deap_bytes(lambda b: pickle.dumps({"data": _CallsPosixSystem()}, 2)),
        ("s01.dat", "refusing to load global", "only numpy arrays"),
    ),
    Row(
        "deap-dat-deeply-nested",
        _deap_bytes(lambda b: _DEEP_PICKLE),
        ("s01.dat", "more than 10000 pickle opcodes"),
    ),
    Row(
        "deap-dat-huge-array-header",
        _deap_bytes(lambda b: _HUGE_PICKLE),
        ("s01.dat", "larger than the file"),
    ),
    Row(
        "deap-mat-truncated",
        _deap_mat(lambda b: b[:1000]),
        ("s01.mat", "truncated or corrupt .mat file", "expected DEAP"),
    ),
    Row(
        "deap-mat-unknown-data-type",  # scipy segfaulted on this
        _deap_mat(_unknown_data_type),
        ("s01.mat", "corrupt .mat file", "unknown type 0"),
    ),
    Row(
        "dreamer-truncated",
        _dreamer(lambda b: b[: len(b) // 3]),
        ("DREAMER.mat", "truncated or corrupt .mat file", "expected DREAMER.mat"),
    ),
    Row(
        "dreamer-random-bytes",
        _dreamer(lambda b: np.random.default_rng(2).bytes(3000)),
        ("DREAMER.mat", "corrupt .mat file"),
    ),
    Row(
        "dreamer-struct-dims-blown-up",  # loadmat filled 16 GB for minutes
        _dreamer(_blow_up_dims),
        ("DREAMER.mat", "struct array 'DREAMER'", "more elements than the file"),
    ),
    Row(
        "dreamer-compressed-dims-blown-up",
        _dreamer(_blow_up_dims_compressed, compressed=True),
        ("DREAMER.mat", "struct array 'DREAMER'", "more elements than the file"),
    ),
    Row(
        "seed-session-truncated",
        _seed(edit=lambda b: b[: len(b) - 5000]),
        ("1_20131027.mat", "truncated or corrupt .mat file", "<initials>_eeg1..15"),
    ),
    Row(
        "seed-zero-dim-char-array",  # scipy segfaulted on this
        _seed(edit=_zero_dim_char, extra_first={"note": "ab"}),
        ("1_20131027.mat", "corrupt .mat file", "fewer than 2"),
    ),
    Row(
        "seed-label-garbage",
        _seed(label_bytes=b"MATLAB 5.0 MAT-file" + b"\xff" * 200),
        ("label.mat", "corrupt .mat file", "'label' (1, 15)"),
    ),
    Row(
        "amigos-truncated",
        _amigos(lambda b: b[:700]),
        ("Data_Preprocessed_P01.mat", "corrupt .mat file", "joined_data"),
    ),
    Row(
        "openbci-cut-in-header",
        _openbci(lambda t: t[: t.index("%Sample Rate")]),
        ("rec.txt", "no '%Sample Rate = F Hz' header line", "sfreq"),
    ),
    Row(
        "openbci-cut-after-header",
        _openbci(lambda t: t[: t.index("\n0, ") + 1]),
        ("rec.txt", "no sample rows", "one row per sample"),
    ),
    Row(
        "openbci-garbage-row",
        _openbci(lambda t: t.replace("\n3, ", "\n3, abc", 1)),
        ("rec.txt", "malformed sample row", "OpenBCI GUI text"),
    ),
    Row(
        "openbci-binary-body",
        _openbci(raw=bytes(range(256)) * 4),
        ("rec.txt", "OpenBCI GUI text"),
    ),
    Row(
        "edf-cut-in-header",
        _edf_bytes(lambda b: b[:300]),
        ("rec.edf", "cannot be read by MNE", "EDF"),
    ),
    Row(
        "edf-corrupt-signal-count",
        _edf_bytes(_edf_signal_count),
        ("rec.edf", "cannot be read by MNE"),
    ),
    Row("edf-empty", _edf_bytes(lambda b: b""), ("rec.edf", "cannot be read by MNE")),
]

SHAPES = [
    Row(
        "deap-data-2d",
        _deap_with(data=lambda a: a[0]),
        ("s01.dat", "'data' has shape (40, 584)", "(n_trials, >= 32 channels"),
    ),
    Row(
        "deap-too-few-channels",
        _deap_with(data=lambda a: a[:, :20]),
        ("s01.dat", "'data' has shape (3, 20, 584)", ">= 32 channels"),
    ),
    Row(
        "deap-labels-mismatch-trials",
        _deap_with(labels=lambda a: a[:2]),
        ("s01.dat", "'labels' has shape (2, 4)", "need (3, 4)"),
    ),
    Row(
        "deap-data-nested-lists",  # np.asarray raised ValueError (exit 1)
        _deap_with(data=lambda a: [[[1.0, 2.0]] * 32, [[3.0]] * 32]),  # ragged
        ("s01.dat", "must be numpy arrays (got list, ndarray)"),
    ),
    Row(
        "deap-missing-labels",
        _deap_with(labels=lambda a: None),
        ("s01.dat", "'data' and 'labels' must be numpy arrays"),
    ),
    Row(
        "deap-mat-too-few-channels",
        _deap_mat(n_channels=10),
        ("s01.mat", "'data' has shape (3, 10, 584)", "expected DEAP"),
    ),
    Row(
        "dreamer-13-columns",
        _dreamer_clip(lambda x: x[:, :13]),
        ("DREAMER.Data{1}.EEG.stimuli{1}", "need (n_samples, 14)", "samples first"),
    ),
    Row(
        "seed-61-channels",
        _seed_film(lambda x: x[:61]),
        ("1_20131027.mat", "djc_eeg1 has shape (61, 30)", "(62, n_samples)"),
    ),
    Row(
        "amigos-labels-count-mismatch",
        _amigos(n_labels=2),
        ("3 joined_data, 2 labels_selfassessment", "expected AMIGOS"),
    ),
]

NONFINITE = [
    Row(
        "deap-nan-eeg",
        _deap_with(data=_nan_at(np.nan, (1, 5, 500))),
        ("s01.dat: EEG channels 0-31", "1 NaN/inf value(s)"),
    ),
    Row(
        "deap-inf-labels",
        _deap_with(labels=_nan_at(np.inf, (0, 1))),
        ("s01.dat: 'labels'", "NaN/inf", "ratings on 1-9"),
    ),
    Row(
        "dreamer-nan-clip",
        _dreamer_clip(
            lambda x: np.where(np.arange(x.shape[0])[:, None] == 3, np.nan, x)
        ),
        ("DREAMER.Data{1}.EEG.stimuli{1}", "14 NaN/inf value(s)", "finite EEG"),
    ),
    Row(
        "seed-inf-film",
        _seed_film(lambda x: np.where(x > 40, np.inf, x)),
        ("1_20131027.mat: djc_eeg1", "NaN/inf", "finite EEG samples"),
    ),
    Row(
        "openbci-nan-sample",
        _openbci(lambda t: re.sub(r"\n7, [^,]+,", "\n7, nan,", t, count=1)),
        ("rec.txt", "1 NaN/inf EXG value(s)", "finite samples"),
    ),
    Row(
        "amigos-every-trial-nan",
        _amigos(nan_all=True),
        ("Data_Preprocessed_P01.mat", "no usable trial"),
    ),
]

CHANNELS = [
    Row(
        "openbci-channel-count",
        _replay_openbci("ch_names=Fp1,Fp2"),
        ("rec.txt", "8 EXG channels but 2 ch_names given"),
    ),
    Row(
        "openbci-duplicate-channel",
        _replay_openbci("ch_names=Fp1,Fp2,C3,C4,P7,P8,O1,fp1"),
        ("ch_names names Fp1 more than once", "its own name"),
    ),
    Row(
        "openbci-empty-channel-name",
        _replay_openbci("ch_names=Fp1,,C3,C4,P7,P8,O1,O2"),
        ("ch_names has an empty name", "one 10-20 name per EXG channel"),
    ),
    Row(
        "mne-two-channels-one-name",
        _mne_check(ch_names=("EEG Fp1-REF", "Fp1", "Cz")),
        ("rec.edf", "'EEG Fp1-REF' and 'Fp1' both read as 'Fp1'", "rename"),
    ),
    Row(
        "dreamer-13-electrode-names",
        _dreamer(electrodes=EMOTIV_CHANNELS[:13]),
        ("EEG.stimuli{1}", "need (n_samples, 13)"),
    ),
    Row(
        "train-grid-model-on-unknown-names",
        _train_mne({"ch_names": ("X1", "X2", "X3")}, model="cnn2d"),
        ("model cnn2d", "X1, X2, X3", "use a flat model (logreg, mlp)"),
    ),
    Row(
        "train-subjects-differ-in-montage",
        _train_mne({}, {"ch_names": ("Fp1", "Fp2", "Pz")}),
        ("dataset 'mne'", "subject sub2 lacks Cz and adds Pz", "one montage"),
    ),
]

RATES = [
    Row(
        "openbci-sfreq-option-conflicts-with-header",
        _replay_openbci("sfreq=200"),
        ("rec.txt", "'%Sample Rate = 250 Hz' but sfreq=200", "drop the sfreq"),
    ),
    Row(
        "openbci-sfreq-option-not-a-rate",
        _replay_openbci("sfreq=fast"),
        ("openbci: sfreq must be a rate in Hz > 0", "'fast'"),
    ),
    Row(
        "train-subjects-at-different-rates",
        _train_mne({}, {"sfreq": 256}),
        ("subject sub2 is sampled at 256 Hz but subject sub1 at 128 Hz", "resample"),
    ),
    Row(
        "train-recording-too-slow-for-bands",
        _train_mne({"sfreq": 64}),
        ("subject sub1 video v1: recorded at 64 Hz", "gamma band up to 45 Hz"),
    ),
    Row(
        "dreamer-zero-sampling-rate",
        _dreamer(sfreq=0),
        ("DREAMER.EEG_SamplingRate is 0", "positive rate"),
    ),
]


@pytest.mark.filterwarnings("ignore:AMIGOS. skipping:UserWarning")
@pytest.mark.parametrize(
    "row", CORRUPT + SHAPES + NONFINITE + CHANNELS + RATES, ids=lambda r: r.id
)
def test_bad_file_exits_2_with_one_line_naming_it(
    row: Row, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = row.build(tmp_path)
    rc, err = _run(argv, capsys)
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("emomon: error: "), err
    for needle in row.needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def test_train_on_bad_data_leaves_no_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _train_mne({}, {"sfreq": 256})(tmp_path)
    rc, _ = _run(argv, capsys)
    assert rc == 2
    assert not (tmp_path / "run").exists()


def test_corrupt_mat_fails_fast_without_filling_memory(tmp_path: Path) -> None:
    """The blown-up header is refused before loadmat allocates (peak RSS)."""
    resource = pytest.importorskip("resource")  # Unix: peak RSS

    from emomon.datasets import get_reader
    from emomon.errors import DatasetError

    _dreamer(_blow_up_dims)(tmp_path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DatasetError):
        get_reader("dreamer", tmp_path).subjects()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200  # loadmat alone would have filled ~16 GB


def _savemat_bytes(**variables: object) -> bytes:
    import io

    buf = io.BytesIO()
    savemat(buf, variables)
    return buf.getvalue()


def test_surgery_helpers_edit_what_they_claim() -> None:
    """The byte offsets used above point at the dims and data tag of savemat's
    first variable (a broken helper would make the rows above vacuous)."""
    raw = _savemat_bytes(x=np.zeros((2, 3)))
    at = _first_var_elements(raw)
    assert struct.unpack("<ii", raw[at["dims"] : at["dims"] + 8]) == (2, 3)
    assert struct.unpack("<I", raw[at["data_tag"] : at["data_tag"] + 4]) == (9,)
    blown = _blow_up_dims(raw)
    assert struct.unpack("<i", blown[at["dims"] + 4 : at["dims"] + 8]) == (2**30 + 1,)
    cells = _savemat_bytes(c=cell([np.zeros(1)] * 2, (1, 2)))
    assert _first_var_elements(cells)["dims"] == _first_var_elements(raw)["dims"]
