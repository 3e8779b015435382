"""The plain scipy + scikit-learn reference for ``emomon train --model logreg``.

An independent implementation of the same experiment, written the way a
scientist would script it: the same synthetic recordings, DE and Welch PSD
features from scipy.signal, leave-one-video-out folds, and per fold a
``StandardScaler`` and scikit-learn's ``LogisticRegression`` (lbfgs, L2,
balanced class weights) per target. Timed against emomon by
``benchmarks/bench_linear.py``.

Data: the raw trials come from emomon's synthetic generator
(``emomon.datasets.synthetic.SyntheticReader``, the only emomon import): both
sides start from the same microvolt recordings and pay the same generation
time. Everything after that is scipy / numpy / scikit-learn.

Features (emomon's definitions, README "Features"): the trial with its
pre-trial baseline in front (filtered together, as emomon does for a baseline
contiguous with the trial), common average reference, a causal 4th-order
Butterworth band-pass per band (second-order sections, initial state from the
first sample), windows of 2 s every 0.5 s after a 1 s warm-up counted from the
start of the baseline, keeping the windows that lie inside the trial; per
window and channel, DE = 0.5 ln(2 pi e var) of each band-filtered signal (var
with ddof=1) and log10 of the Welch band power (Hann, 1 s segments, 50%
overlap, constant detrend, density scaling; trapezoid over the bins inside the
band) of the referenced signal.

Labels: rating > midpoint of the 1-9 scale. Penalty: emomon's logreg minimises
the class-weighted mean cross-entropy + ``l2 / 2 * ||W||^2`` over a two-column
(multinomial) weight matrix; for two classes that is scikit-learn's binomial
objective with ``C = 2 / (n_train * l2)`` (the optimum has ``W[1] = -W[0]``, so
the penalty on the binomial vector ``W[1] - W[0]`` is halved).

Usage: python benchmarks/probes/linear_script.py --subjects 6 --videos 12
Prints one JSON line: the pooled balanced accuracy per target and the seconds.
"""

from __future__ import annotations

import argparse
import json
import time

T0 = time.perf_counter()

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402
from scipy import signal  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import balanced_accuracy_score  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from emomon.datasets.synthetic import SyntheticReader  # noqa: E402

BANDS = [("theta", 4.0, 8.0), ("alpha", 8.0, 13.0), ("beta", 13.0, 30.0),
         ("gamma", 30.0, 45.0)]  # fmt: skip


def trial_features(baseline: np.ndarray, eeg: np.ndarray, fs: float) -> np.ndarray:
    """(n_windows, n_channels * 8) DE and log-PSD features of one trial."""
    x = np.concatenate([baseline, eeg], axis=1)
    x = x - x.mean(axis=0, keepdims=True)  # common average reference
    win, hop, warm, seg = (int(round(s * fs)) for s in (2.0, 0.5, 1.0, 1.0))
    ends = np.arange(warm + win, x.shape[1] + 1, hop)
    ends = ends[ends - win >= baseline.shape[1]]  # windows inside the trial
    starts = ends - win
    de = []
    for _, lo, hi in BANDS:
        sos = signal.butter(4, [lo, hi], btype="bandpass", fs=fs, output="sos")
        zi = signal.sosfilt_zi(sos)[:, None, :] * x[:, 0][None, :, None]
        y, _ = signal.sosfilt(sos, x, axis=-1, zi=zi)
        w = sliding_window_view(y, win, axis=-1)[:, starts]  # (C, W, win)
        de.append(0.5 * np.log(2 * np.pi * np.e * w.var(axis=-1, ddof=1)))
    xw = sliding_window_view(x, win, axis=-1)[:, starts]
    f, p = signal.welch(xw, fs=fs, window="hann", nperseg=seg, noverlap=seg // 2)
    psd = []
    for _, lo, hi in BANDS:
        band = (f >= lo) & (f <= hi)
        psd.append(np.log10(np.trapezoid(p[..., band], f[band], axis=-1)))
    feats = np.stack(de + psd, axis=-1)  # (C, W, 8)
    return feats.transpose(1, 0, 2).reshape(len(starts), -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subjects", type=int, default=6)
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--synth-seed", type=int, default=0)
    ap.add_argument("--l2", type=float, default=0.1, help="emomon's logreg l2")
    args = ap.parse_args()

    reader = SyntheticReader(
        None, n_subjects=args.subjects, n_videos=args.videos, seed=args.synth_seed
    )
    X, video, labels = [], [], {"valence": [], "arousal": []}
    for subject in reader.subjects():
        for trial in reader.read_subject(subject):
            f = trial_features(trial.baseline, trial.eeg, trial.sfreq)
            X.append(f)
            video += [trial.video] * len(f)
            for target in labels:
                mid = (trial.scale[0] + trial.scale[1]) / 2
                labels[target] += [int(trial.ratings[target] > mid)] * len(f)
    X = np.concatenate(X)
    video = np.asarray(video)
    y = {t: np.asarray(v) for t, v in labels.items()}
    t_feat = time.perf_counter() - T0

    pred = {t: np.empty_like(v) for t, v in y.items()}
    for v in np.unique(video):  # leave one video out
        test, train = video == v, video != v
        scaler = StandardScaler().fit(X[train])
        x_tr, x_te = scaler.transform(X[train]), scaler.transform(X[test])
        for t in y:
            clf = LogisticRegression(
                C=2.0 / (train.sum() * args.l2),
                class_weight="balanced",
                solver="lbfgs",
                max_iter=1000,
            )
            pred[t][test] = clf.fit(x_tr, y[t][train]).predict(x_te)
    out = {
        "balanced_accuracy": {
            t: float(balanced_accuracy_score(y[t], pred[t])) for t in y
        },
        "n_windows": int(X.shape[0]),
        "features_s": round(t_feat, 2),
        "total_s": round(time.perf_counter() - T0, 2),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
