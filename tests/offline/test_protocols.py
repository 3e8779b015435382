"""Tests of emomon.offline.protocols: leak-freedom invariants and errors."""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emomon.errors import ConfigError, DatasetError, EmomonError
from emomon.offline.holdout import HOLDOUTS, shared_trial_folds, shared_video_folds
from emomon.offline.protocols import (
    LEAKY_PROTOCOLS,
    PROTOCOLS,
    WINDOW_CUT_PROTOCOLS,
    Split,
    SplitWarning,
    check_split,
    film_number,
    make_splits,
)


def window_table(
    n_subjects: int = 4,
    n_videos: int = 6,
    n_windows: int = 5,
    *,
    video_prefix: str = "v",
    sessions: int = 1,
) -> dict[str, np.ndarray]:
    """Synthetic window table: every subject saw every video, ``n_windows`` each."""
    subj, vid, ses, trial = [], [], [], []
    t = 0
    for s in range(n_subjects):
        for e in range(sessions):
            for v in range(n_videos):
                subj += [f"s{s + 1:02d}"] * n_windows
                vid += [f"{video_prefix}{v + 1:02d}"] * n_windows
                ses += [str(e + 1)] * n_windows
                trial += [t] * n_windows
                t += 1
    return {
        "subjects": np.array(subj),
        "videos": np.array(vid),
        "sessions": np.array(ses),
        "trials": np.array(trial),
    }


def assert_invariants(protocol: str, splits: list[Split], tab: dict) -> None:
    """Independent re-statement of the leak-freedom rules (not check_split)."""
    subj, vid, tri = tab["subjects"], tab["videos"], tab["trials"]
    assert splits
    for sp in splits:
        parts = {"train": sp.train, "val": sp.val, "test": sp.test}
        assert sp.train.size
        assert sp.test.size
        for key, idx in parts.items():
            assert idx.dtype == np.int64
            assert np.all(np.diff(idx) > 0), f"{key} not sorted/unique"
        assert not set(sp.train) & set(sp.val)
        assert not set(sp.train) & set(sp.test)
        assert not set(sp.val) & set(sp.test)
        if protocol in WINDOW_CUT_PROTOCOLS:
            continue
        tr, va, te = (set(tri[p]) for p in (sp.train, sp.val, sp.test))
        assert not tr & va, "a trial on two sides"
        assert not tr & te, "a trial on two sides"
        assert not va & te, "a trial on two sides"
        fit = np.concatenate([sp.train, sp.val])
        if protocol in ("lovo", "subject-lovo", "seed-split"):
            assert not set(vid[sp.test]) & set(vid[fit]), "test video in train/val"
        if protocol == "loso":
            assert not set(subj[sp.test]) & set(subj[fit]), "test subject in train/val"
        if protocol in ("subject-lovo", "seed-split"):
            assert len(set(subj[np.concatenate([fit, sp.test])])) == 1


@pytest.fixture
def tab() -> dict[str, np.ndarray]:
    return window_table()


def kw(tab: dict, *, sessions: bool = False) -> dict:
    out = {k: tab[k] for k in ("subjects", "videos", "trials")}
    if sessions:
        out["sessions"] = tab["sessions"]
    return out


def test_leaky_constant() -> None:
    assert LEAKY_PROTOCOLS == {"intra"}
    assert set(LEAKY_PROTOCOLS) <= WINDOW_CUT_PROTOCOLS <= set(PROTOCOLS)


def test_lovo(tab: dict) -> None:
    splits = make_splits("lovo", **kw(tab))
    assert [s.name for s in splits] == [f"v{i:02d}" for i in range(1, 7)]
    assert_invariants("lovo", splits, tab)
    for sp in splits:
        assert set(tab["videos"][sp.test]) == {sp.name}
        assert len(set(tab["subjects"][sp.test])) == 4  # subjects pooled
        assert len(set(tab["videos"][sp.val])) == 1  # round(0.15 * 5) -> at least 1
        assert sp.train.size + sp.val.size + sp.test.size == tab["trials"].size
    # Every window is tested exactly once.
    test_all = np.concatenate([s.test for s in splits])
    np.testing.assert_array_equal(np.sort(test_all), np.arange(tab["trials"].size))


def test_lovo_val_fraction_and_determinism(tab: dict) -> None:
    big = window_table(n_videos=21)
    splits = make_splits("lovo", **kw(big), val_fraction=0.15)
    assert {len(set(big["videos"][s.val])) for s in splits} == {3}  # 0.15 * 20
    again = make_splits("lovo", **kw(big), val_fraction=0.15)
    other = make_splits("lovo", **kw(big), val_fraction=0.15, seed=1)
    assert all(np.array_equal(a.val, b.val) for a, b in zip(splits, again, strict=True))
    assert any(
        not np.array_equal(a.val, b.val) for a, b in zip(splits, other, strict=True)
    )
    none = make_splits("lovo", **kw(tab), val_fraction=0.0)
    assert all(s.val.size == 0 for s in none)


def test_lovo_val_is_class_stratified() -> None:
    big = window_table(n_videos=20)
    video_label = np.array([int(v[1:]) > 10 for v in big["videos"]], dtype=int)
    splits = make_splits("lovo", **kw(big), labels=video_label, val_fraction=0.15)
    for sp in splits:
        assert set(video_label[sp.val]) == {0, 1}


def test_lovo_top_bottom_keeps_extreme_half() -> None:
    big = window_table(n_subjects=2, n_videos=11, n_windows=2)
    names = [f"v{i:02d}" for i in range(1, 12)]
    ratings = {
        v: float(r)
        for v, r in zip(names, [5, 1, 9, 2, 8, 3, 7, 4, 6, 4.5, 5.5], strict=True)
    }
    splits = make_splits(
        "lovo",
        **kw(big),
        video_ratings=ratings,
        train_videos="top-bottom",
        val_fraction=0.0,
    )
    assert_invariants("lovo", splits, big)
    by_name = {s.name: s for s in splits}
    # Test v01 (5.0): 10 training videos, k = round(10 * 0.25) = round(2.5) -> 3 a side.
    kept = set(big["videos"][by_name["v01"].train])
    assert kept == {"v02", "v04", "v06", "v03", "v05", "v07"}  # 1,2,3 and 9,8,7
    # The test video's own rating is never used: test v03 (9.0) ranks the rest.
    kept = set(big["videos"][by_name["v03"].train])
    assert kept == {"v02", "v04", "v06", "v05", "v07", "v09"}  # 1,2,3 and 8,7,6
    # With validation, val videos are drawn first from all training videos.
    splits = make_splits(
        "lovo", **kw(big), video_ratings=ratings, train_videos="top-bottom"
    )
    assert_invariants("lovo", splits, big)
    for sp in splits:
        n_train_videos = len(set(big["videos"][sp.train]))
        assert n_train_videos == 4  # 10 - 2 val = 8 -> 2 per side


def test_top_bottom_errors(tab: dict) -> None:
    with pytest.raises(ConfigError, match="video_ratings"):
        make_splits("lovo", **kw(tab), train_videos="top-bottom")
    with pytest.raises(ConfigError, match="v06"):
        make_splits(
            "lovo",
            **kw(tab),
            train_videos="top-bottom",
            video_ratings={f"v0{i}": 1.0 for i in range(1, 6)},
        )
    with pytest.raises(ConfigError, match="lovo"):
        make_splits("loso", **kw(tab), train_videos="top-bottom", video_ratings={})
    with pytest.raises(ConfigError, match="top-bottom"):
        make_splits("lovo", **kw(tab), train_videos="extremes")


def test_loso(tab: dict) -> None:
    splits = make_splits("loso", **kw(tab))
    assert [s.name for s in splits] == ["s01", "s02", "s03", "s04"]
    assert_invariants("loso", splits, tab)
    for sp in splits:
        assert set(tab["subjects"][sp.test]) == {sp.name}
        assert len(set(tab["subjects"][sp.val])) == 1


def test_subject_lovo(tab: dict) -> None:
    splits = make_splits("subject-lovo", **kw(tab))
    assert len(splits) == 24
    assert splits[0].name == "s01/v01"
    assert_invariants("subject-lovo", splits, tab)
    for sp in splits:
        s, v = sp.name.split("/")
        assert set(tab["subjects"][sp.test]) == {s}
        assert set(tab["videos"][sp.test]) == {v}
        assert set(tab["subjects"][sp.train]) == {s}
        assert sp.val.size == 5  # one of the subject's other videos


def test_seed_split_per_subject_and_session() -> None:
    tab = window_table(n_subjects=2, n_videos=15, n_windows=2, video_prefix="film")
    splits = make_splits("seed-split", **kw(tab))
    assert [s.name for s in splits] == ["s01", "s02"]
    assert_invariants("seed-split", splits, tab)
    for sp in splits:
        assert {film_number(v) for v in tab["videos"][sp.test]} == set(range(10, 16))
        fit = np.concatenate([sp.train, sp.val])
        assert {film_number(v) for v in tab["videos"][fit]} == set(range(1, 10))
        assert len(set(tab["videos"][sp.val])) == 1  # round(0.15 * 9)
    tab3 = window_table(
        n_subjects=2, n_videos=15, n_windows=2, video_prefix="film", sessions=3
    )
    splits = make_splits("seed-split", **kw(tab3, sessions=True))
    assert [s.name for s in splits][:3] == ["s01/1", "s01/2", "s01/3"]
    assert_invariants("seed-split", splits, tab3)
    for sp in splits:
        assert len(set(tab3["sessions"][np.concatenate([sp.train, sp.test])])) == 1


def test_seed_split_errors() -> None:
    tab = window_table(n_subjects=2, n_videos=9, video_prefix="film")
    with pytest.raises(DatasetError, match="10-15"):
        make_splits("seed-split", **kw(tab))
    bad = window_table(n_subjects=1, n_videos=2, video_prefix="film")
    bad["videos"] = np.where(bad["videos"] == "film01", "intro", bad["videos"])
    with pytest.raises(DatasetError, match="intro"):
        make_splits("seed-split", **kw(bad))


def test_intra_is_leaky_and_stratified(tab: dict) -> None:
    n = tab["trials"].size
    labels = (np.arange(n) % 3 == 0).astype(int)
    splits = make_splits("intra", **kw(tab), labels=labels, n_folds=5)
    assert [s.name for s in splits] == [f"fold{k}" for k in range(1, 6)]
    assert_invariants("intra", splits, tab)
    test_all = np.concatenate([s.test for s in splits])
    np.testing.assert_array_equal(np.sort(test_all), np.arange(n))
    shared = [set(tab["trials"][s.train]) & set(tab["trials"][s.test]) for s in splits]
    assert all(shared), "intra must share trials between train and test"
    for sp in splits:
        assert abs(labels[sp.test].mean() - labels.mean()) < 0.05
        assert sp.val.size == round(0.15 * (n - sp.test.size))
    with pytest.raises(ConfigError, match="n_folds"):
        make_splits("intra", **kw(tab), n_folds=1)


def test_error_messages(tab: dict) -> None:
    with pytest.raises(ConfigError) as err:
        make_splits("kfold", **kw(tab))
    assert all(p in str(err.value) for p in PROTOCOLS)
    one_video = window_table(n_videos=1)
    with pytest.raises(DatasetError) as err:
        make_splits("lovo", **kw(one_video))
    assert "protocol lovo needs at least 2 videos, got 1" in str(err.value)
    with pytest.raises(DatasetError, match="loso needs at least 2 subjects, got 1"):
        make_splits("loso", **kw(window_table(n_subjects=1)))
    with pytest.raises(DatasetError, match="subject s01 has 1"):
        make_splits("subject-lovo", **kw(one_video))
    bad = kw(tab)
    bad["trials"] = np.zeros_like(tab["trials"])  # one trial id over all pairs
    with pytest.raises(DatasetError, match="trial id"):
        make_splits("lovo", **bad)
    bad = kw(tab)
    bad["videos"] = tab["videos"][:-1]
    with pytest.raises(DatasetError, match="videos"):
        make_splits("lovo", **bad)
    with pytest.raises(ConfigError, match="val_fraction"):
        make_splits("lovo", **kw(tab), val_fraction=1.0)


def test_one_class_training_fold_warns_but_is_produced() -> None:
    tab = window_table(n_subjects=2, n_videos=2, n_windows=3)
    labels = (tab["videos"] == "v01").astype(int)
    with pytest.warns(SplitWarning, match="only one class"):
        splits = make_splits("lovo", **kw(tab), labels=labels)
    assert len(splits) == 2
    assert_invariants("lovo", splits, tab)
    assert all(s.val.size == 0 for s in splits)  # one training video: no val


@st.composite
def tables(draw: st.DrawFn) -> dict:
    n_subjects = draw(st.integers(1, 5))
    n_videos = draw(st.integers(1, 16))
    present = draw(
        st.lists(
            st.booleans(),
            min_size=n_subjects * n_videos,
            max_size=n_subjects * n_videos,
        )
    )
    if not any(present):
        present[0] = True
    n_win = draw(
        st.lists(st.integers(1, 4), min_size=len(present), max_size=len(present))
    )
    subj, vid, tri = [], [], []
    t = 0
    for i, keep in enumerate(present):
        if keep:
            s, v = divmod(i, n_videos)
            subj += [f"s{s}"] * n_win[i]
            vid += [f"film{v + 1:02d}"] * n_win[i]
            tri += [t] * n_win[i]
            t += 1
    perm = np.random.default_rng(draw(st.integers(0, 2**16))).permutation(len(tri))
    return {
        "subjects": np.array(subj)[perm],
        "videos": np.array(vid)[perm],
        "trials": np.array(tri)[perm] * 7 + 3,  # ids need not be 0..n-1
        "labels": np.array(
            draw(st.lists(st.integers(0, 1), min_size=len(tri), max_size=len(tri)))
        )[perm],
    }


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tab=tables(),
    protocol=st.sampled_from(PROTOCOLS),
    val_fraction=st.sampled_from([0.0, 0.15, 0.5]),
    top_bottom=st.booleans(),
    seed=st.integers(0, 3),
)
def test_invariants_property(
    tab: dict, protocol: str, val_fraction: float, top_bottom: bool, seed: int
) -> None:
    options: dict = {
        "val_fraction": val_fraction,
        "seed": seed,
        "labels": tab["labels"],
    }
    if protocol == "lovo" and top_bottom:
        options["train_videos"] = "top-bottom"
        options["video_ratings"] = {
            v: float(zlib.crc32(v.encode()) % 9) for v in set(tab["videos"])
        }
    if protocol == "intra":
        options["n_folds"] = min(3, tab["trials"].size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitWarning)
        try:
            splits = make_splits(protocol, **kw(tab), **options)
        except EmomonError as err:
            refusal: EmomonError | None = err
        else:
            refusal = None
    if refusal is not None:
        # Only the documented data shortfalls may refuse to split.
        n_videos = len(set(tab["videos"]))
        n_subjects = len(set(tab["subjects"]))
        films = {film_number(v) for v in tab["videos"]}
        expected = {
            "lovo": n_videos < 2,
            "loso": n_subjects < 2,
            "subject-lovo": any(
                len(set(tab["videos"][tab["subjects"] == s])) < 2
                for s in set(tab["subjects"])
            ),
            "seed-split": not (
                films & set(range(10, 16)) and films & set(range(1, 10))
            ),
            "intra": tab["trials"].size < 2,
        }[protocol]
        assert expected, f"unexpected refusal: {refusal}"
        return
    assert_invariants(protocol, splits, tab)
    if protocol in ("lovo", "loso", "subject-lovo", "intra"):
        tested = np.sort(np.concatenate([s.test for s in splits]))
        np.testing.assert_array_equal(tested, np.arange(tab["trials"].size))


def test_check_split_catches_leaks(tab: dict) -> None:
    intra = make_splits("intra", **kw(tab), n_folds=3)
    check_split(intra[0], "intra", **kw(tab))  # leaky by design: accepted
    with pytest.raises(RuntimeError, match="trial"):
        check_split(intra[0], "lovo", **kw(tab))
    lovo = make_splits("lovo", **kw(tab))[0]
    with pytest.raises(RuntimeError, match="subject"):
        check_split(lovo, "loso", **kw(tab))
    twice = Split("x", lovo.train, lovo.train[:1], lovo.test)
    with pytest.raises(RuntimeError, match="twice"):
        check_split(twice, "lovo", **kw(tab))


def test_test_folds_do_not_depend_on_labels(tab: dict) -> None:
    rng = np.random.default_rng(0)
    for protocol in ("lovo", "loso", "subject-lovo"):
        a = make_splits(
            protocol, **kw(tab), labels=rng.integers(0, 2, tab["trials"].size)
        )
        b = make_splits(protocol, **kw(tab))
        assert all(np.array_equal(x.test, y.test) for x, y in zip(a, b, strict=True))


def test_every_protocol_declares_what_it_holds_out() -> None:
    assert set(HOLDOUTS) == set(PROTOCOLS)  # a new protocol must declare itself
    for name, h in HOLDOUTS.items():
        assert h.holds_out.startswith(("videos", "subjects", "trials", "windows")), name
        assert h.exchangeable, name
        assert h.question, name
    assert HOLDOUTS["lovo"].exchangeable == "video"
    assert HOLDOUTS["loso"].exchangeable == "subject"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_shared_videos_are_measured_on_the_splits(protocol: str) -> None:
    # every subject watched every video (as on DEAP): the declaration holds
    seed = protocol == "seed-split"
    tab = window_table(n_videos=15 if seed else 6, video_prefix="film" if seed else "v")
    splits = make_splits(protocol, **kw(tab))
    shared = shared_video_folds(splits, tab["videos"])
    if protocol == "eav-authors":
        # Cut by windows: whether a trial (its video) is split is a property of
        # the data, measured per run (tests/offline/test_train_eav.py).
        assert shared > 0
        assert shared_trial_folds(splits, tab["trials"]) == shared
        return
    if HOLDOUTS[protocol].shares_videos:
        assert shared == len(splits) if protocol == "loso" else shared > 0
    else:
        assert shared == 0


def test_loso_shares_no_video_when_subjects_saw_different_ones() -> None:
    tab = window_table(n_subjects=4, n_videos=3)
    tab["videos"] = np.char.add(tab["subjects"], tab["videos"])  # own stimuli
    splits = make_splits("loso", **kw(tab))
    assert shared_video_folds(splits, tab["videos"]) == 0
