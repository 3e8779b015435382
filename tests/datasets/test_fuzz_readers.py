"""Fuzz the dataset readers with damaged files: a clean result or a DatasetError.

Each reader gets bytes derived from a valid file of its format (truncations, bit
flips, overwritten runs, a valid MAT header or pickle prelude over random bytes)
and pure random bytes. Reading must either succeed with finite EEG or raise
:class:`~emomon.errors.EmomonError` with a one-line message; never another
exception (ValueError, KeyError, IndexError, UnpicklingError, MemoryError,
RecursionError, ...), never a crash, a hang or gigabytes of memory (the guards
in ``emomon.datasets._io`` and ``_mat5`` cap what a file can make them allocate).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.io import loadmat, savemat

from emomon.datasets import get_reader
from emomon.errors import EmomonError

from .writers import (
    amigos_trials,
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
    write_seed_session,
)

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


# -- one small valid file per format (written by the real libraries) ---------------


def _deap_dat(d: Path) -> Path:
    data, labels = deap_arrays(n_trials=2, n_samples=400)
    return write_deap_dat(d / "s01.dat", {"data": data, "labels": labels})


def _deap_mat(d: Path) -> Path:
    data, labels = deap_arrays(n_trials=2, n_samples=400)
    return write_deap_mat(d / "s01.mat", data, labels)


def _dreamer(d: Path) -> Path:
    return write_dreamer(d / "DREAMER.mat", dreamer_subjects(1, 2))


def _dreamer_compressed(d: Path) -> Path:
    path = _dreamer(d)
    savemat(path, {"DREAMER": loadmat(path)["DREAMER"]}, do_compression=True)
    return path


def _amigos(d: Path) -> Path:
    data, labels, ids = amigos_trials(n_videos=3, n_samples=20)
    return write_amigos(d / "Data_Preprocessed_P01.mat", data, labels, ids)


def _seed(d: Path) -> Path:
    write_seed_label(d)
    films = [f[:, :5] for f in seed_eeg()]
    return write_seed_session(d, "1_20131027.mat", films)


def _openbci(d: Path) -> Path:
    eeg = np.random.default_rng(0).normal(0.0, 10.0, (8, 40))
    path = d / "rec.txt"
    path.write_text(openbci_v6_text(eeg, 1.7e12 + np.arange(40) * 4.0), newline="")
    return path


def _edf(d: Path) -> Path:
    path = d / "rec.edf"
    data = np.random.default_rng(0).normal(0.0, 10.0, (3, 256))
    write_edf(path, data, ["Fp1", "Fp2", "Cz"], 128, [(0.1, 1.0, "video=v1;valence=3")])
    return path


#: format -> (reader name, writer of the valid file)
FORMATS: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "deap-dat": ("deap", _deap_dat),
    "deap-mat": ("deap", _deap_mat),
    "dreamer": ("dreamer", _dreamer),
    "dreamer-compressed": ("dreamer", _dreamer_compressed),
    "amigos": ("amigos", _amigos),
    "seed": ("seed", _seed),
    "openbci": ("openbci", _openbci),
    "edf": ("mne", _edf),
}


@functools.cache
def _valid(fmt: str, tmp: Path) -> bytes:
    """Bytes of the valid file of ``fmt`` (written once per test session)."""
    d = tmp / fmt
    d.mkdir(parents=True, exist_ok=True)
    return FORMATS[fmt][1](d).read_bytes()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], bytes]:
    tmp = tmp_path_factory.mktemp("fuzz-seeds")
    return lambda fmt: _valid(fmt, tmp)


# -- mutations ---------------------------------------------------------------------


def mutations(n: int) -> st.SearchStrategy[tuple]:
    """How a file of ``n`` bytes goes bad (a plan, applied by :func:`_apply`;
    drawing plans rather than bytes keeps Hypothesis' reports short)."""
    pos = st.integers(0, n - 1)
    return st.one_of(
        st.tuples(st.just("truncate"), pos),
        # bit rot: a few single-bit errors
        st.tuples(
            st.just("flip"),
            st.lists(st.tuples(pos, st.integers(0, 7)), min_size=1, max_size=8),
        ),
        # a run of garbage inside the file
        st.tuples(st.just("overwrite"), pos, st.binary(min_size=1, max_size=16)),
        # a valid header (MAT, pickle prelude, text) over noise
        st.tuples(st.just("head+noise"), st.binary(max_size=4000)),
        st.tuples(st.just("noise"), st.binary(max_size=2048)),
    )


def _apply(good: bytes, plan: tuple) -> bytes:
    kind, *args = plan
    if kind == "truncate":
        return good[: args[0]]
    if kind == "flip":
        b = bytearray(good)
        for at, bit in args[0]:
            b[at] ^= 1 << bit
        return bytes(b)
    if kind == "overwrite":
        at, junk = args
        return good[:at] + junk + good[at + len(junk) :]
    if kind == "head+noise":
        return good[:128] + args[0]
    return args[0]


def _read_all(reader_name: str, data_dir: Path) -> None:
    """Read every trial; success must mean finite EEG of the declared shape."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # readers warn on skipped rows/trials
        reader = get_reader(reader_name, data_dir)
        for subject in reader.subjects():
            for trial in reader.read_subject(subject):
                assert trial.eeg.dtype == np.float64
                assert trial.eeg.shape[0] == len(trial.ch_names)
                assert np.isfinite(trial.eeg).all()


def _check_bytes(fmt: str, raw: bytes, tmp_path: Path) -> None:
    reader_name, write = FORMATS[fmt]
    d = tmp_path / fmt
    d.mkdir(exist_ok=True)
    path = write(d)  # the layout (label.mat beside SEED sessions, names) ...
    path.write_bytes(raw)  # ... with the damaged bytes in the data file
    try:
        _read_all(reader_name, d)
    except EmomonError as exc:
        msg = str(exc)
    else:
        return
    assert msg, msg
    assert "\n" not in msg, msg


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_valid_seed_file_reads(fmt: str, tmp_path: Path) -> None:
    """The unmutated files read cleanly (else the fuzz below proves nothing)."""
    reader_name, write = FORMATS[fmt]
    write(tmp_path)
    _read_all(reader_name, tmp_path)


@pytest.mark.parametrize("fmt", list(FORMATS))
@FUZZ
@given(data=st.data())
def test_damaged_file_reads_or_raises_dataset_error(
    fmt: str, data: st.DataObject, tmp_path: Path, seeds: Callable[[str], bytes]
) -> None:
    good = seeds(fmt)
    plan = data.draw(mutations(len(good)), label="mutation")
    _check_bytes(fmt, _apply(good, plan), tmp_path)


@FUZZ
@given(
    body=st.lists(
        st.sampled_from(
            # Opcodes a DEAP pickle uses, plus the container and memo ones a
            # damaged file may produce (LONG_BINPUT with huge indexes included).
            [
                b"}",
                b"]",
                b")",
                b"(",
                b"t",
                b"\x85",
                b"\x86",
                b"\x87",
                b"s",
                b"u",
                b"a",
                b"e",
                b"R",
                b"b",
                b"N",
                b"K\x01",
                b"J\xff\xff\xff\x7f",
                b"X\x04\x00\x00\x00data",
                b"X\x06\x00\x00\x00labels",
                b"q\x01",
                b"h\x01",
                b"r\xff\xff\xff\x7f",
                b"j\xff\xff\xff\x7f",
                b"0",
                b"2",
                b"cnumpy\nndarray\n",
                b"cnumpy\ndtype\n",
                b"cnumpy.core.multiarray\n_reconstruct\n",
                b"c_codecs\nencode\n",
                b"U\x02f8",
                b"C\x08" + bytes(8),
                b"\x88",
                b"\x89",
            ]
        ),  # fmt: skip
        max_size=60,
    ).map(b"".join)
)
def test_opcode_soup_pickle_raises_dataset_error(body: bytes, tmp_path: Path) -> None:
    """Random sequences of plausible opcodes: every path of the restricted
    unpickler ends in a result or a DatasetError."""
    _check_bytes("deap-dat", b"\x80\x02" + body + b".", tmp_path)
