"""The synthetic generator recording with another headset (``montage``)."""

from __future__ import annotations

import numpy as np
import pytest

from emomon.datasets import get_reader
from emomon.datasets.synthetic import SynthParams, generate_subject, write_deap
from emomon.dsp.layout import DEAP_CHANNELS
from emomon.errors import ConfigError

SMALL = {"n_subjects": 1, "n_videos": 2, "trial_s": 6.0, "seed": 4}


def test_a_montage_names_the_recorded_channels():
    trials = generate_subject(SynthParams(**SMALL, montage="brainflow:synthetic"), 0)
    assert trials[0].ch_names == (
        "Fz", "C3", "Cz", "C4", "Pz", "PO7", "Oz", "PO8",
        "F5", "F7", "F3", "F1", "F2", "F4", "F6", "F8",
    )  # fmt: skip
    assert trials[0].eeg.shape == (16, 6 * 128)
    assert trials[0].baseline.shape == (16, 3 * 128)
    assert np.isfinite(trials[0].eeg).all()
    # plausible EEG at every electrode, also those outside DEAP's 32
    sd = trials[0].eeg.std(axis=1)
    assert np.all((sd > 3.0) & (sd < 200.0)), sd


def test_the_same_head_recorded_by_another_headset():
    """Before the average reference, a DEAP-named electrode of any montage
    records what it records in DEAP's; ratings do not depend on the montage."""
    raw = {**SMALL, "deap_preprocessing": False}
    deap = generate_subject(SynthParams(**raw), 0)
    for montage in ("brainflow:synthetic", "cyton", "Oz,TP9,Fz"):
        other = generate_subject(SynthParams(**raw, montage=montage), 0)
        for a, b in zip(deap, other, strict=True):
            assert a.ratings == b.ratings
            shared = [c for c in b.ch_names if c in DEAP_CHANNELS]
            assert shared
            for c in shared:
                i, j = a.ch_names.index(c), b.ch_names.index(c)
                np.testing.assert_array_equal(a.eeg[i], b.eeg[j])


def test_electrodes_outside_deap_see_their_neighbourhood():
    """PO7 lies between P7, PO3 and O1: its signal correlates more with them
    than with frontal sites (volume conduction from its own position)."""
    p = SynthParams(**SMALL, montage="PO7,P7,PO3,O1,Fp1,F8", deap_preprocessing=False)
    eeg = generate_subject(p, 0)[0].eeg
    r = np.corrcoef(eeg)[0]
    assert min(r[1:4]) > max(r[4:6]), r


def test_the_montage_is_in_the_cache_token_and_names_the_channels():
    reader = get_reader("synthetic", None, **SMALL)
    assert reader.cache_token()["params"]["montage"] is None
    assert reader.channel_names("s01") == DEAP_CHANNELS
    other = get_reader("synthetic", None, **SMALL, montage="cyton")
    assert other.cache_token()["params"]["montage"] == "cyton"
    assert other.channel_names("s01") == ("Fp1", "Fp2", "C3", "C4", "P7", "P8",
                                          "O1", "O2")  # fmt: skip
    assert "8 ch (cyton)" in other.summary()


def test_a_montage_without_positions_or_as_deap_files_is_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        SynthParams(montage="brainflow:galea")
    assert str(info.value) == (
        "synthetic parameter montage='brainflow:galea' is invalid: need channels "
        "with a 10-05 position (no position for X1, X2, X3, X4, X5, X6); name the "
        "electrodes of a 10-05 montage"
    )
    with pytest.raises(ConfigError, match="unknown montage 'cyotn'"):
        SynthParams(montage="cyotn")
    with pytest.raises(ConfigError, match="DEAP's 32 channels"):
        write_deap(SynthParams(**SMALL, montage="cyton"), tmp_path)
