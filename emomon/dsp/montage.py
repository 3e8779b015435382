"""Headset montages: which channels a model for a given headset is trained on.

A montage is named three ways (:func:`resolve_montage`):

* ``brainflow:NAME_OR_ID``: the EEG channel names of BrainFlow's own board
  description, read from a committed table
  (:mod:`emomon.dsp._brainflow_montages`, written by
  ``benchmarks/tools/gen_brainflow_montages.py`` with BrainFlow's version), so
  training never imports BrainFlow;
* a headset of :data:`HEADSETS` (``cyton``, ``cyton-daisy``, ``epoc``,
  ``insight``, ``muse``), each with its source;
* a comma list of channel names (10-20 names in any case).

:func:`pick_montage` then decides which of the montage's channels a dataset
provides, and refuses when they are too few for the model (the thresholds are
:data:`MIN_SHARED`, :data:`GRID_MIN_CELLS` and :data:`GRID_MIN_SHARE`). A
missing channel is never replaced by a nearby electrode: a model reads what the
headset measures at that place, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emomon.dsp._brainflow_montages import BOARDS, BRAINFLOW_VERSION
from emomon.dsp.layout import EMOTIV_CHANNELS, canonical_name, grid_positions
from emomon.errors import ConfigError, literal

__all__ = [
    "GRID_MIN_CELLS",
    "GRID_MIN_SHARE",
    "HEADSETS",
    "MIN_SHARED",
    "Montage",
    "MontagePick",
    "brainflow_montage_name",
    "describe_pick",
    "pick_montage",
    "resolve_montage",
    "train_hint",
]

#: Named headsets: name -> (channels in the headset's order, where they come from).
HEADSETS: dict[str, tuple[tuple[str, ...], str]] = {
    "cyton": (
        ("Fp1", "Fp2", "C3", "C4", "P7", "P8", "O1", "O2"),
        "OpenBCI Cyton default electrode placement, inputs N1P-N8P (OpenBCI "
        "documentation, Cyton board and EEG headset guides); BrainFlow's "
        "CYTON_BOARD description names the same",
    ),
    "cyton-daisy": (
        (
            "Fp1",
            "Fp2",
            "C3",
            "C4",
            "P7",
            "P8",
            "O1",
            "O2",
            "F7",
            "F8",
            "F3",
            "F4",
            "T7",
            "T8",
            "P3",
            "P4",
        ),
        "OpenBCI Cyton + Daisy 16-channel default placement: the Cyton's 8 then "
        "the Daisy's F7 F8 F3 F4 T7 T8 P3 P4, as in BrainFlow's CYTON_DAISY_BOARD "
        f"description (BrainFlow {BRAINFLOW_VERSION})",
    ),  # fmt: skip
    "epoc": (
        EMOTIV_CHANNELS,
        "Emotiv EPOC / EPOC+ / EPOC X, 14 channels (Emotiv EPOC X user manual; "
        "the montage DREAMER and AMIGOS were recorded with)",
    ),
    "insight": (
        ("AF3", "AF4", "T7", "T8", "Pz"),
        "Emotiv Insight, 5 channels AF3 AF4 T7 T8 Pz (Emotiv Insight user manual)",
    ),
    "muse": (
        ("TP9", "AF7", "AF8", "TP10"),
        "Interaxon Muse (2016, 2, S), 4 channels TP9 AF7 AF8 TP10 (Muse "
        "developer documentation; BrainFlow's MUSE_2_BOARD description)",
    ),
}
_ALIASES = {
    "cytondaisy": "cyton-daisy",
    "epoc+": "epoc",
    "epocx": "epoc",
    "epoc-x": "epoc",
    "muse2": "muse",
    "muse-2": "muse",
    "muse-s": "muse",
}

#: Any model needs at least this many of the montage's channels in the dataset
#: (2 when the features use the common average reference: see pick_montage).
MIN_SHARED = 1
#: A brain-map model (input ``grid``) needs at least this many montage channels
#: that the dataset has on the 8x9 map: its 3x3 convolutions learn patterns of
#: neighbouring electrodes, which three or fewer scattered cells do not have.
GRID_MIN_CELLS = 4
#: ... and at least this share of the montage's channels on the map: below it the
#: map shows less than half of what the headset measures, and a flat model on
#: the same channels reads the same information without the empty map.
GRID_MIN_SHARE = 0.5

# One 10-05 electrode name (Fp1, AFz, TP10, FFC1h, ...), for a single word that
# is neither a headset nor a list: a typo of a headset name is refused, not
# taken as a one-channel montage.
_ELECTRODE = re.compile(r"^(N|I|A|M|[A-Z]{1,4})(z|\d{1,2})h?$", re.IGNORECASE)


@dataclass(frozen=True)
class Montage:
    """A headset's EEG channels.

    Attributes
    ----------
    name : str
        How it was named, normalised (``"brainflow:SYNTHETIC_BOARD"``,
        ``"cyton"``, or the comma list itself).
    ch_names : tuple of str
        Channels in the headset's order, spelled as
        :func:`~emomon.dsp.layout.canonical_name` does.
    source : str
        Where the names come from.
    """

    name: str
    ch_names: tuple[str, ...]
    source: str

    def to_dict(self) -> dict[str, Any]:
        """Return the montage as a JSON object (reports and model contracts)."""
        return {
            "name": self.name,
            "ch_names": list(self.ch_names),
            "source": self.source,
        }


def _board(key: str) -> tuple[str, int, str | None, int | None]:
    """``(BoardIds name, id, names, n_eeg)`` of a board given by name or id."""
    text = key.strip()
    try:
        number = int(text)
    except ValueError:
        number = None
    for name, (bid, names, n) in BOARDS.items():
        if number is not None and bid == number:
            return name, bid, names, n
        up = text.upper().replace("-", "_").replace(" ", "_")
        if number is None and name in (up, f"{up}_BOARD"):
            return name, bid, names, n
    raise ConfigError(
        f"unknown BrainFlow board {literal(repr(key))} in {{montage}}; use a "
        "BoardIds name such as brainflow:synthetic, brainflow:cyton or "
        "brainflow:cyton_daisy, or its number (BrainFlow "
        f"{BRAINFLOW_VERSION}'s boards)",
        params=("montage",),
    )


def brainflow_montage_name(board: str) -> str:
    """Return the ``montage`` naming a BrainFlow board (``"brainflow:synthetic"``).

    Parameters
    ----------
    board : str
        A ``BoardIds`` name (``"SYNTHETIC_BOARD"``).
    """
    return "brainflow:" + board.lower().removesuffix("_board")


def resolve_montage(text: str) -> Montage:
    """Return the montage ``text`` names.

    Parameters
    ----------
    text : str
        ``brainflow:NAME_OR_ID`` (``brainflow:synthetic``, ``brainflow:-1``), a
        headset of :data:`HEADSETS`, or a comma list of channel names.

    Returns
    -------
    Montage

    Raises
    ------
    ConfigError
        Naming ``montage``: an unknown board or headset, a BrainFlow board whose
        description names no EEG channels (then give a comma list), an empty or
        repeated channel name.
    """
    raw = str(text).strip()
    if raw.lower().startswith("brainflow:"):
        name, bid, names, n = _board(raw.split(":", 1)[1])
        if not n:
            raise ConfigError(
                f"BrainFlow board {name} has no EEG channels; choose an EEG board "
                "for {montage}",
                params=("montage",),
            )
        if names is None:
            raise ConfigError(
                f"BrainFlow's description of {name} names none of its {n} EEG "
                "channels; pass {montage} as a comma list of the electrodes on "
                f"its {n} inputs, in order (e.g. Fp1,Fp2,O1,O2)",
                params=("montage",),
            )
        chans = tuple(canonical_name(c) for c in names.split(","))
        return Montage(
            brainflow_montage_name(name),
            chans,
            f"BrainFlow {BRAINFLOW_VERSION} board description of {name} "
            f"(id {bid}), eeg_names",
        )
    key = raw.lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key in HEADSETS:
        chans, source = HEADSETS[key]
        return Montage(key, tuple(chans), source)
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) == 1 and not _ELECTRODE.match(parts[0]):
        raise ConfigError(
            f"unknown montage {literal(repr(raw))} for {{montage}}; use "
            f"brainflow:BOARD (e.g. brainflow:synthetic), one of "
            f"{', '.join(HEADSETS)}, or a comma list of channel names (Fp1,Fp2,...)",
            params=("montage",),
        )
    if not all(parts):
        raise ConfigError(
            f"{{montage}} {literal(repr(raw))} has an empty channel name; write "
            "the channels as Fp1,Fp2,...",
            params=("montage",),
        )
    chans = tuple(canonical_name(p) for p in parts)
    ups = [c.upper() for c in chans]
    dups = sorted({c for c, u in zip(chans, ups, strict=True) if ups.count(u) > 1})
    if dups:
        raise ConfigError(
            f"{{montage}} names {literal(', '.join(dups))} twice; name each "
            "channel once",
            params=("montage",),
        )
    return Montage(",".join(chans), chans, "channel names given")


@dataclass(frozen=True)
class MontagePick:
    """The channels of a montage that a dataset provides.

    Attributes
    ----------
    montage : Montage
    ch_names : tuple of str
        The shared channels, in the montage's order and spelling: the model's
        channels.
    dataset_ch_names : tuple of str
        The same channels as the dataset spells them (its rows to pick).
    missing : tuple of str
        Montage channels the dataset lacks (in the montage's order).
    """

    montage: Montage
    ch_names: tuple[str, ...]
    dataset_ch_names: tuple[str, ...]
    missing: tuple[str, ...]

    def summary(self, dataset: str) -> str:
        """Return one line: what is shared and what is missing."""
        return describe_pick(self.to_dict(), dataset)

    def to_dict(self) -> dict[str, Any]:
        """Return the pick as a JSON object (reports and model contracts)."""
        return {
            **self.montage.to_dict(),
            "shared": list(self.ch_names),
            "missing": list(self.missing),
        }


def pick_montage(
    montage: Montage,
    dataset_ch_names: Sequence[str],
    *,
    layout: str,
    car: bool = False,
    model: str = "",
    dataset: str = "",
) -> MontagePick:
    """Return the montage's channels a dataset has, checked for the model.

    Parameters
    ----------
    montage : Montage
    dataset_ch_names : sequence of str
        The dataset's channels (any case).
    layout : {"flat", "grid", "eeg"}
        The model's input: a ``grid`` (8x9 brain map) model needs at least
        :data:`GRID_MIN_CELLS` shared channels on the map and at least
        :data:`GRID_MIN_SHARE` of the montage's channels there; any model needs
        :data:`MIN_SHARED` shared channel.
    car : bool
        Whether the features use the common average reference: then at least
        2 shared channels, since one channel minus its own average is zero.
    model, dataset : str
        Names for the messages.

    Returns
    -------
    MontagePick

    Raises
    ------
    ConfigError
        Naming ``montage`` (and ``model``), what is shared and what the threshold
        is, when the dataset has too few of the montage's channels.
    """
    index = {canonical_name(c).upper(): c for c in dataset_ch_names}
    shared = [c for c in montage.ch_names if c.upper() in index]
    missing = tuple(c for c in montage.ch_names if c.upper() not in index)
    what = "{montage} " + literal(f"{montage.name} ({', '.join(montage.ch_names)})")
    ds = f"dataset {dataset}" if dataset else "the dataset"
    if len(shared) < MIN_SHARED:
        raise ConfigError(
            f"{what} shares no channel with {ds} "
            f"({literal(_short(dataset_ch_names))}); emomon does not substitute nearby "
            "electrodes: train on data recorded with these channels",
            params=("montage",),
        )
    if car and len(shared) < 2:
        raise ConfigError(
            f"{what} shares 1 channel with {ds} ({literal(shared[0])}); with the "
            "common average reference on (features.car) one channel references "
            "to zero: name at least 2 channels the dataset has, or set car = "
            "false in [features]",
            params=("montage",),
        )
    if layout == "grid":
        cells = [c for c in shared if grid_positions([c])[0, 0] >= 0]
        n = len(montage.ch_names)
        if len(cells) < GRID_MIN_CELLS or len(cells) < GRID_MIN_SHARE * n:
            on_map = ", ".join(cells) or "none"
            raise ConfigError(
                f"{what} has {len(cells)} of its {n} channels in {ds} "
                f"and on the 8x9 map ({on_map}); {{model}} {model} reads the map "
                f"and needs at least {GRID_MIN_CELLS} there and at least "
                f"{GRID_MIN_SHARE:.0%} of the montage's channels; use a flat model "
                "(logreg, mlp) on the shared channels instead",
                params=("montage", "model"),
            )
    return MontagePick(
        montage,
        tuple(shared),
        tuple(index[c.upper()] for c in shared),
        missing,
    )


def describe_pick(pick: Mapping[str, Any], dataset: str) -> str:
    """Return one line on a pick as a report records it (:meth:`MontagePick.to_dict`).

    Parameters
    ----------
    pick : mapping
        ``name``, ``ch_names``, ``shared`` and ``missing``.
    dataset : str
        The dataset's name.
    """
    shared = [str(c) for c in pick.get("shared", [])]
    missing = [str(c) for c in pick.get("missing", [])]
    n = len(pick.get("ch_names", []))
    line = (
        f"montage {pick.get('name')}: trained on {len(shared)} of its {n} "
        f"channels ({', '.join(shared)})"
    )
    if missing:
        line += f"; dataset {dataset} lacks {len(missing)} ({', '.join(missing)})"
    else:
        line += f"; dataset {dataset} has them all"
    return line


def train_hint(source_ch: Sequence[str], montage: str | None = None) -> str:
    """Return the ``train`` command whose model would fit a source, as a hint.

    Parameters
    ----------
    source_ch : sequence of str
        The source's channel names.
    montage : str, optional
        The source's montage, where it knows one (``"brainflow:synthetic"``);
        default its channel names as a comma list.

    Returns
    -------
    str
        ``" (emomon train --montage M ...)"``, or, for channels without
        electrode names (BrainFlow's ``ch1``, ``ch2``, ...), how to name them.
    """
    if montage is None:
        names = [canonical_name(c) for c in source_ch]
        # ch1, ch2, ...: the BrainFlow source's names for a board that names none
        if not names or any(re.fullmatch(r"ch\d+", n, re.IGNORECASE) for n in names):
            return (
                " (its channels have no electrode names: train with emomon train "
                "--montage NAME1,NAME2,... naming the electrodes on its inputs)"
            )
        montage = ",".join(names)
    return f" (emomon train --montage {montage} ...)"


def _short(names: Sequence[str], n: int = 8) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (
        f", ... ({len(names)} in all)" if len(names) > n else ""
    )
