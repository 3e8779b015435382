"""Headset montages: how they are named, and which channels a dataset shares."""

from __future__ import annotations

import pytest

from emomon.dsp.layout import DEAP_CHANNELS, EMOTIV_CHANNELS, SEED_CHANNELS
from emomon.dsp.montage import (
    GRID_MIN_CELLS,
    HEADSETS,
    describe_pick,
    pick_montage,
    resolve_montage,
)
from emomon.errors import ConfigError

SYNTHETIC_BOARD = ("Fz", "C3", "Cz", "C4", "Pz", "PO7", "Oz", "PO8",
                   "F5", "F7", "F3", "F1", "F2", "F4", "F6", "F8")  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "brainflow:synthetic",
        "brainflow:SYNTHETIC_BOARD",
        "brainflow:-1",
        "BrainFlow:Synthetic-Board",
    ],  # fmt: skip
)
def test_a_brainflow_board_by_name_or_id(text):
    m = resolve_montage(text)
    assert m.name == "brainflow:synthetic"
    assert m.ch_names == SYNTHETIC_BOARD
    assert "BrainFlow 5.23.0" in m.source
    assert "SYNTHETIC_BOARD" in m.source


def test_brainflow_names_are_spelled_as_10_20():
    # BrainAlive's description writes "CZ"
    assert "Cz" in resolve_montage("brainflow:brainalive").ch_names
    assert (
        resolve_montage("brainflow:cyton_daisy").ch_names
        == (HEADSETS["cyton-daisy"][0])
    )


def test_named_headsets_carry_their_source():
    assert resolve_montage("cyton").ch_names == (
        "Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2",
    )  # fmt: skip
    assert resolve_montage("EPOC+").ch_names == EMOTIV_CHANNELS
    assert resolve_montage("insight").ch_names == ("AF3", "AF4", "T7", "T8", "Pz")
    assert resolve_montage("muse").ch_names == ("TP9", "AF7", "AF8", "TP10")
    assert resolve_montage("cyton_daisy").name == "cyton-daisy"
    for chans, source in HEADSETS.values():
        assert source
        assert len(set(chans)) == len(chans)


def test_a_comma_list_in_any_case():
    m = resolve_montage(" fp1, FZ ,cz,PO8 ")
    assert m.ch_names == ("Fp1", "Fz", "Cz", "PO8")
    assert m.name == "Fp1,Fz,Cz,PO8"
    assert resolve_montage("oz").ch_names == ("Oz",)  # one electrode is a list


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("brainflow:ganglion",
         "BrainFlow's description of GANGLION_BOARD names none of its 4 EEG "
         "channels; pass montage as a comma list of the electrodes on its 4 "
         "inputs, in order (e.g. Fp1,Fp2,O1,O2)"),
        ("brainflow:nope",
         "unknown BrainFlow board 'nope' in montage; use a BoardIds name such as "
         "brainflow:synthetic, brainflow:cyton or brainflow:cyton_daisy, or its "
         "number (BrainFlow 5.23.0's boards)"),
        ("brainflow:callibri_emg",
         "BrainFlow board CALLIBRI_EMG_BOARD has no EEG channels; choose an EEG "
         "board for montage"),
        ("cyotn",
         "unknown montage 'cyotn' for montage; use brainflow:BOARD (e.g. "
         "brainflow:synthetic), one of cyton, cyton-daisy, epoc, insight, muse, "
         "or a comma list of channel names (Fp1,Fp2,...)"),
        ("Fp1,,Fp2", "montage 'Fp1,,Fp2' has an empty channel name; write the "
         "channels as Fp1,Fp2,..."),
        ("Fp1,FP1,Cz", "montage names Fp1 twice; name each channel once"),
    ],
)  # fmt: skip
def test_bad_montages_are_refused_in_one_line(text, message):
    with pytest.raises(ConfigError) as info:
        resolve_montage(text)
    assert str(info.value) == message
    assert info.value.render({"montage": "--montage"}).count("--montage") == 1


def test_pick_keeps_the_montage_order_and_names_what_is_missing():
    pick = pick_montage(resolve_montage("brainflow:synthetic"), DEAP_CHANNELS,
                        layout="grid", model="cnn2d", dataset="deap")  # fmt: skip
    assert pick.ch_names == ("Fz", "C3", "Cz", "C4", "Pz", "Oz",
                             "F7", "F3", "F4", "F8")  # fmt: skip
    assert pick.missing == ("PO7", "PO8", "F5", "F1", "F2", "F6")
    assert describe_pick(pick.to_dict(), "deap") == (
        "montage brainflow:synthetic: trained on 10 of its 16 channels (Fz, C3, "
        "Cz, C4, Pz, Oz, F7, F3, F4, F8); dataset deap lacks 6 (PO7, PO8, F5, F1, "
        "F2, F6)"
    )
    cyton = pick_montage(resolve_montage("cyton"), DEAP_CHANNELS, layout="flat")
    assert cyton.ch_names == resolve_montage("cyton").ch_names
    assert cyton.missing == ()


def test_pick_reads_the_datasets_spelling():
    pick = pick_montage(resolve_montage("Fp1,Fz,F5"), SEED_CHANNELS, layout="flat")
    assert pick.ch_names == ("Fp1", "Fz", "F5")  # the model's names: 10-20
    assert pick.dataset_ch_names == ("FP1", "FZ", "F5")  # the rows to pick


def test_muse_shares_nothing_with_deap_or_seed_and_is_refused_plainly():
    for name, chans in (("deap", DEAP_CHANNELS), ("seed", SEED_CHANNELS)):
        with pytest.raises(ConfigError) as info:
            pick_montage(resolve_montage("muse"), chans, layout="flat",
                         model="logreg", dataset=name)  # fmt: skip
        msg = str(info.value)
        assert msg.startswith(
            f"montage muse (TP9, AF7, AF8, TP10) shares no channel with "
            f"dataset {name} ("
        ), msg
        assert msg.endswith(
            "emomon does not substitute nearby electrodes: train on data recorded "
            "with these channels"
        )


def test_one_channel_under_the_average_reference_is_refused():
    """One channel minus the average of itself is zero: no features."""
    one = resolve_montage("Fz,TP9")
    pick_montage(one, DEAP_CHANNELS, layout="flat")  # without CAR
    with pytest.raises(ConfigError) as info:
        pick_montage(one, DEAP_CHANNELS, layout="flat", car=True, dataset="deap")
    assert str(info.value) == (
        "montage Fz,TP9 (Fz, TP9) shares 1 channel with dataset deap (Fz); with "
        "the common average reference on (features.car) one channel references "
        "to zero: name at least 2 channels the dataset has, or set car = false in "
        "[features]"
    )
    pick_montage(resolve_montage("Fz,Cz"), DEAP_CHANNELS, layout="flat", car=True)


def test_a_brain_map_model_needs_cells_and_half_the_montage():
    few = resolve_montage("Fz,C3,Cz")
    pick_montage(few, DEAP_CHANNELS, layout="flat")  # a flat model takes them
    pick_montage(few, DEAP_CHANNELS, layout="eeg")
    with pytest.raises(ConfigError) as info:
        pick_montage(few, DEAP_CHANNELS, layout="grid", model="cnn2d",
                     dataset="deap")  # fmt: skip
    assert str(info.value) == (
        "montage Fz,C3,Cz (Fz, C3, Cz) has 3 of its 3 channels in dataset "
        "deap and on the 8x9 map (Fz, C3, Cz); model cnn2d reads the map and "
        f"needs at least {GRID_MIN_CELLS} there and at least 50% of the montage's "
        "channels; use a flat model (logreg, mlp) on the shared channels instead"
    )
    # 4 cells, but 4 of 10 channels: less than half of the headset
    sparse = resolve_montage("Fz,C3,Cz,C4,TP9,TP10,AF7,AF8,FT9,FT10")
    with pytest.raises(ConfigError, match="has 4 of its 10 channels"):
        pick_montage(sparse, DEAP_CHANNELS, layout="grid", model="mtcnn")
    pick_montage(sparse, DEAP_CHANNELS, layout="flat")
    # the 10 DEAP channels of the synthetic board's 16 (62%) are enough
    pick_montage(resolve_montage("brainflow:synthetic"), DEAP_CHANNELS,
                 layout="grid")  # fmt: skip
