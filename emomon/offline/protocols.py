"""Evaluation protocols: train/validation/test splits of a window table.

The input is window-level: window ``i`` belongs to subject ``subjects[i]``, saw video
``videos[i]`` and is part of trial ``trials[i]`` (one (subject, video) presentation).
A split is three arrays of window indices. Every protocol except ``intra`` keeps all
windows of a trial on one side, and the inner validation set (for early stopping)
comes from the *training* units only, never from the test fold.

Protocols (``make_splits(protocol, ...)``):

``lovo``
    Leave one video out, subjects pooled (subject-general, cross-video). One fold per
    video, named by the video id. Validation: windows of about ``val_fraction`` of the
    remaining videos (at least 1, chosen per fold from a seed and the fold name,
    class-stratified by the videos' majority label when ``labels`` is given).
    ``train_videos="top-bottom"`` then trains only on the most extreme training
    videos, see below.
``loso``
    Leave one subject out. Validation: about ``val_fraction`` of the other subjects
    (at least 1).
``subject-lovo``
    Per subject, leave one video out; folds named ``"<subject>/<video>"``. Train,
    validation and test all come from that subject; validation = some of its other
    videos.
``seed-split``
    SEED's standard split, per subject (and session when ``sessions`` is given):
    films 1-9 train, films 10-15 test. The film number is the trailing integer of
    the video id (``"film07"`` -> 7). Validation = some of the training films.
``eav-authors``
    The EAV authors' split, per subject the first 56/80 of each class's windows
    in recorded order train, the rest test (:mod:`emomon.offline.authors_split`).
    The cut is counted in windows, so it may split a trial: a run whose folds do
    is reported LEAKY (measured, :func:`~emomon.offline.holdout.shared_trial_folds`;
    on the full release the cut falls between trials).
``intra``
    LEAKY on purpose: stratified k-fold over *windows*, so the same trials and videos
    are on both sides. It exists only to show the content-dependent number next to
    the cross-video one; reports must say so (``protocol in LEAKY_PROTOCOLS``).
    Validation = random windows of the training part.

Top-bottom training videos (``lovo``, ``train_videos="top-bottom"``): "train on the
top and bottom 50% of videos by rating" cannot mean the top 50% plus the bottom 50%
(that is every video), so it means the most extreme half: of the fold's training
videos (the test video and the validation videos already removed), keep the
``k = max(1, round(n * extreme_fraction / 2))`` videos with the lowest and the ``k``
with the highest mean rating (``video_ratings``), i.e. the bottom 25% and top 25%
with the default ``extreme_fraction=0.5``; the ambiguous middle is dropped from
training. Ties are broken by video id. Only training videos are ranked, so the test
video's rating never influences its own fold. Validation videos are drawn before
the selection, from all training videos, so early stopping is judged on videos like
the test video (any rating), not on the easy extremes.

One-class training folds (possible with video-level labels and few videos) are
still produced; a ``SplitWarning`` is emitted and the trainer decides what to do.
"""

from __future__ import annotations

import functools
import re
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from emomon.errors import ConfigError, DatasetError

__all__ = [
    "LEAKY_PROTOCOLS",
    "PROTOCOLS",
    "WINDOW_CUT_PROTOCOLS",
    "TRAIN_VIDEO_CHOICES",
    "Split",
    "SplitWarning",
    "check_split",
    "film_number",
    "make_splits",
]

#: Valid protocol names.
PROTOCOLS: tuple[str, ...] = (
    "lovo",
    "loso",
    "subject-lovo",
    "seed-split",
    "intra",
    "eav-authors",
)

#: Protocols that share trials/videos between train and test by design (reports
#: flag them; a run of another protocol whose folds split a trial is flagged too).
LEAKY_PROTOCOLS: frozenset[str] = frozenset({"intra"})

#: Protocols that cut by windows and so may put one trial on two sides.
WINDOW_CUT_PROTOCOLS: frozenset[str] = frozenset({"intra", "eav-authors"})

#: Valid values of ``make_splits(train_videos=...)``.
TRAIN_VIDEO_CHOICES: tuple[str, ...] = ("all", "top-bottom")

_SEED_TRAIN = tuple(range(1, 10))
_SEED_TEST = tuple(range(10, 16))


class SplitWarning(UserWarning):
    """A split is valid but degenerate (e.g. one class in its training part)."""


@dataclass(frozen=True, eq=False)
class Split:
    """One fold of a protocol.

    Attributes
    ----------
    name : str
        Fold name: the test video (``lovo``), subject (``loso``),
        ``"<subject>/<video>"`` (``subject-lovo``), subject or ``"<subject>/<session>"``
        (``seed-split``), ``"fold<k>"`` (``intra``).
    train, val, test : ndarray of int64, shape (n_train,), (n_val,), (n_test,)
        Sorted, pairwise disjoint window indices. ``val`` may be empty when there is
        only one training unit or ``val_fraction == 0``.
    """

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def __repr__(self) -> str:
        return (
            f"Split(name={self.name!r}, n_train={self.train.size}, "
            f"n_val={self.val.size}, n_test={self.test.size})"
        )


def film_number(video: str) -> int:
    """Film number of a SEED video id: its trailing integer (``"film07"`` -> 7).

    Raises
    ------
    DatasetError
        The id does not end in a number.
    """
    m = re.search(r"(\d+)\s*$", str(video))
    if m is None:
        raise DatasetError(
            f"protocol seed-split needs video ids ending in the film number "
            f"(e.g. 'film07'), got {video!r}"
        )
    return int(m.group(1))


def make_splits(
    protocol: str,
    *,
    subjects: np.ndarray | Sequence[str],
    videos: np.ndarray | Sequence[str],
    trials: np.ndarray | Sequence[int],
    labels: np.ndarray | Sequence[int] | None = None,
    sessions: np.ndarray | Sequence[str] | None = None,
    video_ratings: dict[str, float] | None = None,
    train_videos: str = "all",
    extreme_fraction: float = 0.5,
    n_folds: int = 5,
    val_fraction: float = 0.15,
    seed: int = 0,
    seed_train_films: Sequence[int] = _SEED_TRAIN,
    seed_test_films: Sequence[int] = _SEED_TEST,
) -> list[Split]:
    """Train/validation/test splits of a window table for one protocol.

    Parameters
    ----------
    protocol : {"lovo", "loso", "subject-lovo", "seed-split", "intra", "eav-authors"}
        See the module docstring.
    subjects, videos : array of str, shape (n_windows,)
        Subject and video id of every window.
    trials : array of int, shape (n_windows,)
        Trial id of every window; a trial id belongs to one (subject, video).
    labels : array of int, shape (n_windows,), optional
        Window labels, used only to stratify validation picks (and ``intra``
        folds) and to warn about one-class training parts. The test folds of the
        non-leaky protocols never depend on them.
    sessions : array of str, shape (n_windows,), optional
        Session of every window; ``seed-split`` then makes one fold per
        (subject, session).
    video_ratings : dict of str to float, optional
        Mean rating of each video; required by ``train_videos="top-bottom"``.
    train_videos : {"all", "top-bottom"}
        ``lovo`` only: train on all training videos or on the most extreme ones.
    extreme_fraction : float
        Fraction of training videos kept by ``top-bottom`` (half from each end).
    n_folds : int
        Number of folds of ``intra``.
    val_fraction : float
        Fraction of the training units (videos, subjects, windows for ``intra``)
        held out for validation; at least one unit when > 0 and there are two or
        more training units.
    seed : int
        Seed of the validation picks and of ``intra``'s fold assignment.
    seed_train_films, seed_test_films : sequence of int
        Film numbers of the ``seed-split`` train and test parts.

    Returns
    -------
    list of Split
        One split per fold, in sorted fold-name order (``intra``: fold order).

    Raises
    ------
    ConfigError
        Unknown protocol or option, or an option out of range.
    DatasetError
        Inputs of mismatched length, inconsistent trial ids, or data the protocol
        cannot split (fewer than 2 videos for lovo, 2 subjects for loso, no test
        films for seed-split, ...).
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"unknown protocol {protocol!r} (argument 'protocol'); "
            f"choose one of {', '.join(PROTOCOLS)}"
        )
    if train_videos not in TRAIN_VIDEO_CHOICES:
        raise ConfigError(
            f"unknown train_videos {train_videos!r}; "
            f"choose one of {', '.join(TRAIN_VIDEO_CHOICES)}"
        )
    if train_videos != "all" and protocol != "lovo":
        raise ConfigError(
            f"train_videos={train_videos!r} applies to protocol lovo only, "
            f"not {protocol}; use train_videos='all'"
        )
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if not 0.0 < float(extreme_fraction) <= 1.0:
        raise ConfigError(f"extreme_fraction must be in (0, 1], got {extreme_fraction}")
    table = _Table.build(subjects, videos, trials, labels, sessions)

    if protocol == "lovo":
        ratings = None
        if train_videos == "top-bottom":
            ratings = _video_rating_array(video_ratings, table.video_names)
        splits = _lovo(table, val_fraction, seed, ratings, float(extreme_fraction))
    elif protocol == "loso":
        splits = _loso(table, val_fraction, seed)
    elif protocol == "subject-lovo":
        splits = _subject_lovo(table, val_fraction, seed)
    elif protocol == "seed-split":
        splits = _seed_split(
            table, val_fraction, seed, tuple(seed_train_films), tuple(seed_test_films)
        )
    elif protocol == "eav-authors":
        from emomon.offline.authors_split import eav_authors_splits

        splits = eav_authors_splits(table, val_fraction, seed)
    else:
        splits = _intra(table, int(n_folds), val_fraction, seed)

    for split in splits:
        _check_coded(split, protocol, table.s_code, table.v_code, table.t_code)
        if (
            table.l_code is not None
            and np.count_nonzero(np.bincount(table.l_code[split.train])) < 2
        ):
            warnings.warn(
                SplitWarning(
                    f"protocol {protocol}, fold {split.name}: the training part has "
                    "only one class; the trainer must handle it (e.g. skip the fold "
                    "or predict that class)"
                ),
                stacklevel=2,
            )
    return splits


def check_split(
    split: Split,
    protocol: str,
    *,
    subjects: np.ndarray | Sequence,
    videos: np.ndarray | Sequence,
    trials: np.ndarray | Sequence,
) -> None:
    """Verify a split's leak-freedom invariants.

    Checked for every protocol: indices in range and unique, train/val/test pairwise
    disjoint, train and test non-empty. Protocols that do not cut by windows
    (:data:`WINDOW_CUT_PROTOCOLS`): no trial id on two sides. ``lovo``,
    ``subject-lovo``, ``seed-split``: no test video in train/val.
    ``loso``: no test subject in train/val. ``subject-lovo``: one subject per fold.

    Parameters
    ----------
    split : Split
        The fold to check.
    protocol : str
        Its protocol name.
    subjects, videos, trials : array, shape (n_windows,)
        The window table the split indexes.

    Raises
    ------
    RuntimeError
        An invariant is violated (a bug, not a user error).
    """
    codes = []
    for arr in (subjects, videos, trials):
        _, code = np.unique(np.asarray(arr), return_inverse=True)
        codes.append(code.reshape(-1))
    _check_coded(split, protocol, *codes)


def _check_coded(
    split: Split,
    protocol: str,
    s_code: np.ndarray,
    v_code: np.ndarray,
    t_code: np.ndarray,
) -> None:
    """``check_split`` on integer codes, O(n) without sorting."""
    n = t_code.shape[0]
    parts = {"train": split.train, "val": split.val, "test": split.test}

    def fail(why: str) -> None:
        raise RuntimeError(f"protocol {protocol}, fold {split.name}: {why}")

    for key, idx in parts.items():
        if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
            fail(f"{key} indices out of range")
    if split.train.size == 0 or split.test.size == 0:
        fail("empty train or test part")
    used = np.concatenate(list(parts.values()))
    seen = np.zeros(n, dtype=bool)
    seen[used] = True
    if np.count_nonzero(seen) != used.size:
        fail("a window is used twice (within or across train/val/test)")

    def sides(code: np.ndarray, which: tuple[str, ...]) -> np.ndarray:
        """Bit mask per code value: bit j set when part ``which[j]`` uses it."""
        mask = np.zeros(int(code.max()) + 1 if code.size else 0, dtype=np.int8)
        for bit, key in enumerate(which):
            mask[code[parts[key]]] |= np.int8(1 << bit)
        return mask

    def shared(mask: np.ndarray) -> bool:
        return bool(np.any((mask & (mask - 1)) != 0))  # two or more bits set

    if protocol not in WINDOW_CUT_PROTOCOLS:
        if shared(sides(t_code, ("train", "val", "test"))):
            fail("a trial has windows on two sides")
    fit = ("train", "val")
    if protocol in ("lovo", "subject-lovo", "seed-split"):
        m = sides(v_code, ("test",))
        m_fit = sides(v_code, fit)
        if np.any((m != 0) & (m_fit != 0)):
            fail("a test video is in train/val")
    if protocol == "loso":
        m = sides(s_code, ("test",))
        m_fit = sides(s_code, fit)
        if np.any((m != 0) & (m_fit != 0)):
            fail("the test subject is in train/val")
    if protocol in ("subject-lovo", "seed-split", "eav-authors"):
        if np.count_nonzero(sides(s_code, ("train", "val", "test"))) != 1:
            fail("windows of more than one subject in a per-subject fold")


# --------------------------------------------------------------------------- internals


@dataclass(frozen=True, eq=False)
class _Table:
    subj: np.ndarray  # (n,) str
    vid: np.ndarray  # (n,) str
    trial: np.ndarray  # (n,) trial ids as given
    labels: np.ndarray | None  # (n,) int
    sess: np.ndarray | None  # (n,) str
    s_code: np.ndarray  # (n,) int index into subject_names
    v_code: np.ndarray  # (n,) int index into video_names
    t_code: np.ndarray  # (n,) int index of the trial id
    l_code: np.ndarray | None  # (n,) int index of the label
    subject_names: np.ndarray
    video_names: np.ndarray

    @classmethod
    def build(cls, subjects, videos, trials, labels, sessions) -> _Table:
        subj = np.asarray(subjects).astype(str)
        vid = np.asarray(videos).astype(str)
        tri = np.asarray(trials)
        n = subj.shape[0] if subj.ndim == 1 else -1
        arrays = {"subjects": subj, "videos": vid, "trials": tri}
        lab = None
        if labels is not None:
            lab = np.asarray(labels)
            arrays["labels"] = lab
        ses = None
        if sessions is not None:
            ses = np.asarray(sessions).astype(str)
            arrays["sessions"] = ses
        for key, arr in arrays.items():
            if arr.ndim != 1 or arr.shape[0] != n:
                shapes = ", ".join(f"{k} {a.shape}" for k, a in arrays.items())
                raise DatasetError(
                    f"window arrays must be 1-D of one length; got {shapes} "
                    f"(check {key})"
                )
        if n == 0:
            raise DatasetError("the window table is empty: no windows to split")
        subject_names, s_code = np.unique(subj, return_inverse=True)
        video_names, v_code = np.unique(vid, return_inverse=True)
        s_code = s_code.reshape(-1)
        v_code = v_code.reshape(-1)
        _, t_code = np.unique(tri, return_inverse=True)
        t_code = t_code.reshape(-1)
        n_trials = int(t_code.max()) + 1
        pair = s_code.astype(np.int64) * video_names.size + v_code
        n_pairs = np.unique(np.stack([t_code, pair]), axis=1).shape[1]
        if n_pairs != n_trials:
            raise DatasetError(
                "a trial id is used by windows of different (subject, video) pairs; "
                "trial ids must identify one (subject, video) presentation"
            )
        l_code = None
        if lab is not None:
            l_code = np.unique(lab, return_inverse=True)[1].reshape(-1)
        return cls(
            subj,
            vid,
            tri,
            lab,
            ses,
            s_code,
            v_code,
            t_code,
            l_code,
            subject_names,
            video_names,
        )


def _fold_rng(seed: int, name: str) -> np.random.Generator:
    """Return a generator that depends only on the seed and the fold name."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())])


def _n_val(n_units: int, val_fraction: float) -> int:
    if val_fraction <= 0.0 or n_units < 2:
        return 0
    n = int(np.floor(val_fraction * n_units + 0.5))
    return min(n_units - 1, max(1, n))


def _unit_majority(
    codes: np.ndarray,
    l_code: np.ndarray,
    units: np.ndarray,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Majority label code of the (masked) windows of each unit (ties: smallest)."""
    c, lc = (codes, l_code) if mask is None else (codes[mask], l_code[mask])
    n_codes = int(codes.max()) + 1
    k = int(l_code.max()) + 1
    counts = np.bincount(c * k + lc, minlength=n_codes * k).reshape(n_codes, k)
    return np.argmax(counts[units], axis=1)


def _pick_val(
    units: np.ndarray,
    n_val: int,
    rng: np.random.Generator,
    unit_labels: np.ndarray | None,
) -> np.ndarray:
    """Choose ``n_val`` of ``units``, class-interleaved when labels are given."""
    if n_val == 0:
        return units[:0]
    if unit_labels is None:
        return np.sort(rng.permutation(units)[:n_val])
    lab = np.asarray(unit_labels)
    classes = rng.permutation(np.unique(lab))
    pools = [list(rng.permutation(units[lab == c])) for c in classes]
    order: list = []
    while len(order) < n_val:
        for pool in pools:
            if pool:
                order.append(pool.pop(0))
    return np.sort(np.asarray(order[:n_val], dtype=units.dtype))


def _idx(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask).astype(np.int64)


def _video_rating_array(
    video_ratings: dict[str, float] | None, video_names: np.ndarray
) -> np.ndarray:
    if video_ratings is None:
        raise ConfigError(
            "train_videos='top-bottom' needs video_ratings (mean rating of each "
            "video, e.g. of the target dimension over subjects)"
        )
    missing = [v for v in video_names if v not in video_ratings]
    if missing:
        raise ConfigError(
            f"video_ratings has no rating for video(s) {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}; give one per video"
        )
    r = np.array([float(video_ratings[v]) for v in video_names])
    if not np.all(np.isfinite(r)):
        raise ConfigError("video_ratings contains NaN or inf")
    return r


def _extreme_videos(
    cand: np.ndarray, ratings: np.ndarray, extreme_fraction: float
) -> np.ndarray:
    """Pick the ``k`` lowest- and ``k`` highest-rated of ``cand`` (video codes)."""
    n = cand.size
    if n <= 2:
        return cand
    k = max(1, int(np.floor(n * extreme_fraction / 2 + 0.5)))
    k = min(k, n // 2)
    # Video codes follow sorted video ids, so lexsort breaks rating ties by id.
    order = cand[np.lexsort((cand, ratings[cand]))]
    return np.sort(np.concatenate([order[:k], order[n - k :]]))


def _hold_out(
    name: str,
    unit: int,
    cand: np.ndarray,
    codes: np.ndarray,
    *,
    val_fraction: float,
    seed: int,
    unit_labels: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    keep_train: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Split:
    """Make the fold ``name`` that tests on ``unit`` and trains on ``cand``.

    A share ``val_fraction`` of the candidate units is drawn for validation (by
    :func:`_pick_val`, class-interleaved with ``unit_labels``, from the fold's own
    generator); ``keep_train`` may thin out the rest. ``codes`` gives each window's
    unit: all windows, or those at the indices ``rows``.
    """
    val_units = _pick_val(
        cand, _n_val(cand.size, val_fraction), _fold_rng(seed, name), unit_labels
    )
    train_units = np.setdiff1d(cand, val_units)
    if keep_train is not None:
        train_units = keep_train(train_units)

    def windows(mask: np.ndarray) -> np.ndarray:
        return _idx(mask) if rows is None else rows[mask]

    return Split(
        name,
        windows(np.isin(codes, train_units)),
        windows(np.isin(codes, val_units)),
        windows(codes == unit),
    )


def _lovo(
    t: _Table,
    val_fraction: float,
    seed: int,
    ratings: np.ndarray | None,
    extreme_fraction: float,
) -> list[Split]:
    n_videos = t.video_names.size
    if n_videos < 2:
        raise DatasetError(
            f"protocol lovo needs at least 2 videos, got {n_videos}; "
            "use more videos or another protocol"
        )
    keep_train = (
        None
        if ratings is None
        else functools.partial(
            _extreme_videos, ratings=ratings, extreme_fraction=extreme_fraction
        )
    )
    splits = []
    for v in range(n_videos):
        cand = np.delete(np.arange(n_videos), v)
        splits.append(
            _hold_out(
                str(t.video_names[v]),
                v,
                cand,
                t.v_code,
                val_fraction=val_fraction,
                seed=seed,
                unit_labels=None
                if t.l_code is None
                else _unit_majority(t.v_code, t.l_code, cand),
                keep_train=keep_train,
            )
        )
    return splits


def _loso(t: _Table, val_fraction: float, seed: int) -> list[Split]:
    n_subjects = t.subject_names.size
    if n_subjects < 2:
        raise DatasetError(
            f"protocol loso needs at least 2 subjects, got {n_subjects}; "
            "use more subjects or another protocol (e.g. subject-lovo)"
        )
    return [
        _hold_out(
            str(t.subject_names[s]),
            s,
            np.delete(np.arange(n_subjects), s),
            t.s_code,
            val_fraction=val_fraction,
            seed=seed,
        )
        for s in range(n_subjects)
    ]


def _subject_lovo(t: _Table, val_fraction: float, seed: int) -> list[Split]:
    splits = []
    for s in range(t.subject_names.size):
        subject = str(t.subject_names[s])
        rows = _idx(t.s_code == s)  # work on this subject's windows only
        v_rows = t.v_code[rows]
        vids = np.unique(v_rows)
        if vids.size < 2:
            raise DatasetError(
                f"protocol subject-lovo needs at least 2 videos per subject; "
                f"subject {subject} has {vids.size}; drop that subject or use lovo"
            )
        majority = (
            None
            if t.l_code is None
            else _unit_majority(v_rows, t.l_code[rows], np.arange(v_rows.max() + 1))
        )
        for v in vids:
            cand = vids[vids != v]
            splits.append(
                _hold_out(
                    f"{subject}/{t.video_names[v]}",
                    v,
                    cand,
                    v_rows,
                    val_fraction=val_fraction,
                    seed=seed,
                    unit_labels=None if majority is None else majority[cand],
                    rows=rows,
                )
            )
    return splits


def _seed_split(
    t: _Table,
    val_fraction: float,
    seed: int,
    train_films: tuple[int, ...],
    test_films: tuple[int, ...],
) -> list[Split]:
    if set(train_films) & set(test_films):
        raise ConfigError(
            "seed_train_films and seed_test_films overlap: "
            f"{sorted(set(train_films) & set(test_films))}"
        )
    film = np.array([film_number(v) for v in t.video_names])
    is_train_video = np.isin(film, train_films)
    is_test_video = np.isin(film, test_films)
    present = sorted(set(film.tolist()))
    if not is_test_video.any():
        raise DatasetError(
            f"protocol seed-split needs test films {_span(test_films)}, "
            f"found films {_span(present)}; load all 15 SEED films"
        )
    if not is_train_video.any():
        raise DatasetError(
            f"protocol seed-split needs training films {_span(train_films)}, "
            f"found films {_span(present)}; load all 15 SEED films"
        )
    if t.sess is None:
        group_key = t.subj
    else:
        group_key = np.char.add(np.char.add(t.subj, "/"), t.sess)
    group_names, g_code = np.unique(group_key, return_inverse=True)
    g_code = g_code.reshape(-1)
    win_train_video = is_train_video[t.v_code]
    win_test_video = is_test_video[t.v_code]
    splits = []
    for g, name in enumerate(group_names):
        name = str(name)
        in_g = g_code == g
        test = in_g & win_test_video
        cand = np.unique(t.v_code[in_g & win_train_video])
        if not test.any() or cand.size == 0:
            warnings.warn(
                SplitWarning(
                    f"protocol seed-split: {name} lacks training or test films; skipped"
                ),
                stacklevel=3,
            )
            continue
        unit_labels = (
            None if t.l_code is None else _unit_majority(t.v_code, t.l_code, cand, in_g)
        )
        val_units = _pick_val(
            cand, _n_val(cand.size, val_fraction), _fold_rng(seed, name), unit_labels
        )
        train_units = np.setdiff1d(cand, val_units)
        splits.append(
            Split(
                name,
                _idx(in_g & np.isin(t.v_code, train_units)),
                _idx(in_g & np.isin(t.v_code, val_units)),
                _idx(test),
            )
        )
    if not splits:
        raise DatasetError(
            "protocol seed-split: no subject has both training and test films"
        )
    return splits


def _intra(t: _Table, n_folds: int, val_fraction: float, seed: int) -> list[Split]:
    n = t.subj.size
    if n_folds < 2 or n_folds > n:
        raise ConfigError(
            f"protocol intra needs 2 <= n_folds <= n_windows ({n}), got {n_folds}"
        )
    rng = np.random.default_rng(seed)
    key = rng.random(n)
    if t.l_code is None:
        order = np.argsort(key)
    else:
        # Grouped by class, random within class: dealing round-robin stratifies.
        order = np.lexsort((key, t.labels))
    fold = np.empty(n, dtype=np.int64)
    fold[order] = np.arange(n) % n_folds
    splits = []
    for k in range(n_folds):
        name = f"fold{k + 1}"
        test = _idx(fold == k)
        train_all = _idx(fold != k)
        n_val = _n_val(train_all.size, val_fraction)
        val = np.sort(_fold_rng(seed, name).permutation(train_all)[:n_val])
        train = np.setdiff1d(train_all, val)
        splits.append(Split(name, train, val, test))
    return splits


def _span(films: Sequence[int]) -> str:
    films = sorted(films)
    if not films:
        return "none"
    if films == list(range(films[0], films[-1] + 1)):
        return f"{films[0]}-{films[-1]}"
    return ", ".join(map(str, films))
