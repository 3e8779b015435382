"""``eav-authors``: the EAV authors' per-subject chronological split.

The authors' code (github.com/nubcico/EAV: ``Dataload_eeg.py`` cuts each 20 s
trial into four 5 s chunks in recorded order; ``EAV_datasplit.py``
``get_split(h_idx=56)`` keeps, per class, the first 56 of its 80 chunks for
training and the last 24 for testing, per subject) is reproduced on emomon's
windows: per subject and class, the windows in recorded order (trial id, then
window order within the trial, as the window table lists them) and the first
``56/80`` of them (rounded down) train, the rest test. One fold per subject,
trained on that subject alone.

When it is leaky: the cut is counted in windows, not trials, so a trial can
have windows on both sides (the authors' chunks could, had a class's chunk
count not been a multiple of four). The run measures it
(:func:`~emomon.offline.holdout.shared_trial_folds`) and the report marks the
protocol LEAKY when a fold splits a trial. On the full release (20 trials of a
class per condition, equal lengths) the cut falls between trials 14 and 15 of
the class and splits none: the number then says how well later trials of a
session are recognised from earlier ones of the same person, never a new
stimulus order or person.
Validation: about ``val_fraction`` of the trials lying wholly in the training
part (class-interleaved).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from emomon.errors import DatasetError

if TYPE_CHECKING:  # pragma: no cover
    from emomon.offline.protocols import Split, _Table

__all__ = ["AUTHORS_TRAIN_SHARE", "eav_authors_splits"]

#: The authors' ``h_idx = 56`` of 80 chunks per class (70 %).
AUTHORS_TRAIN_SHARE = (56, 80)


def eav_authors_splits(t: _Table, val_fraction: float, seed: int) -> list[Split]:
    """Make one chronological per-subject fold per subject of the window table.

    Parameters
    ----------
    t : _Table
        The window table of :func:`~emomon.offline.protocols.make_splits`; the
        cut is made per class when it has labels.
    val_fraction : float
        Share of the wholly-training trials held out for validation.
    seed : int
        Seed of the validation picks.

    Returns
    -------
    list of Split
        One per subject with both a training and a test part, named by subject.

    Raises
    ------
    DatasetError
        When no subject has windows on both sides.
    """
    from emomon.offline.protocols import (
        Split,
        SplitWarning,
        _fold_rng,
        _idx,
        _n_val,
        _pick_val,
        _unit_majority,
    )

    # Without labels (never from the trainer, which passes them) a subject's
    # windows form one group.
    l_code = np.zeros(t.subj.size, np.int64) if t.l_code is None else t.l_code
    num, den = AUTHORS_TRAIN_SHARE
    # Recorded order: trial id, then position in the table (stable sort).
    order = np.argsort(np.asarray(t.trial), kind="stable")
    is_train = np.zeros(t.subj.size, dtype=bool)
    for s in range(t.subject_names.size):
        for c in np.unique(l_code):
            rows = order[(t.s_code[order] == s) & (l_code[order] == c)]
            is_train[rows[: rows.size * num // den]] = True
    splits = []
    for s, name in enumerate(t.subject_names):
        name = str(name)
        mine = t.s_code == s
        train, test = mine & is_train, mine & ~is_train
        if not train.any() or not test.any():
            warnings.warn(
                SplitWarning(
                    f"protocol eav-authors: subject {name} has no windows on one "
                    "side of the cut; skipped"
                ),
                stacklevel=3,
            )
            continue
        # Trials wholly on the training side may go to validation.
        straddle = np.unique(t.t_code[test])
        cand = np.setdiff1d(np.unique(t.t_code[train]), straddle)
        labels = None if cand.size == 0 else _unit_majority(t.t_code, l_code, cand)
        val_units = _pick_val(
            cand, _n_val(cand.size, val_fraction), _fold_rng(seed, name), labels
        )
        val = train & np.isin(t.t_code, val_units)
        splits.append(Split(name, _idx(train & ~val), _idx(val), _idx(test)))
    if not splits:
        raise DatasetError(
            "protocol eav-authors: no subject has windows on both sides of the cut; "
            "load more trials per class"
        )
    return splits
