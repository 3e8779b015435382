"""Score a recorded live session by the offline report's rules (``emomon score``).

A session recorded with ``emomon stream --record`` holds the raw EEG, every
published prediction and, when a marker stream was present (an emomon replay's,
or the one ``--markers`` names), the ground-truth markers
(:mod:`emomon.realtime.record`). This module lines them up and scores them:

Windows scored
    A prediction is placed on the recorded sample nearest to its ``t_lsl`` (its
    window's last sample, as the recorder placed it). A window is scored when it
    lies wholly inside one trial's marker span, ``trial_start`` to
    ``trial_end`` inclusive (its first sample, ``window_s`` before its last, at
    or after the trial's first sample): the offline rule that trial windows
    never include baseline samples. Windows the pipeline flagged (no
    probabilities) are left out and counted in the flagged-window summary;
    windows of a trial without a label for the task are left out for that task.

Labels
    From the trial markers' ratings by the model's label rule (its contract's
    ``labels`` and ``threshold``, :func:`emomon.offline.labels.make_labels` over
    the session's trials, on the markers' rating ``scale``), or the trial's
    class name for a class task. ``random`` labels (the shuffled control) have
    nothing to score against and are refused.

Statistics
    Per task, with the offline report's function
    (:func:`emomon.offline.scoring.score_task`):
    balanced accuracy, accuracy, AUC; the permutation test of a fixed model
    (the model is not retrained, so its null is the test-set permutation null:
    the trials' labels are shuffled among the session's trials, all windows of
    a trial keeping one label, the predictions fixed; trials are the
    exchangeable units of one session); the 95% bootstrap interval resampling
    trials, shown only beside a permutation p; the verdict "inconclusive" when
    the reruns cannot reach alpha (``1 / (N + 1) >= alpha``).

The offline numbers for the same windows
    With the model file, the recorded EEG goes through the offline feature path
    (:func:`emomon.offline.features.trial_features`, the recording as one
    continuous trial at the live hop, so that the filters carry their state
    across trials as they did live) and the model, and the windows that end on
    the same samples as the live ones are scored by the same function; both
    are printed side by side. Equal numbers say that the live chain (LSL,
    chunking, the pipeline, onnxruntime) computed what the offline code
    computes; a difference points at the live chain.

Latency
    From the recorded payloads, on this machine's LSL clock: ``sample_age_ms``
    (the sender's timestamp of the window's last sample, mapped by the inlet's
    time correction, to publication: sender push -> prediction) and
    ``latency_ms`` (the chunk read by emomon -> publication).
"""

from emomon.livescore.session import (
    SessionScore,
    format_session_score,
    offline_proba,
    score_session,
)
from emomon.livescore.stats import (
    ALPHA,
    TaskScore,
    arrangements,
    flagged_summary,
    latency_summary,
    score_windows,
)
from emomon.livescore.windows import (
    ScoreError,
    SessionWindows,
    TrialSpan,
    marker_trials,
    session_windows,
)

__all__ = [
    "ALPHA",
    "ScoreError",
    "SessionScore",
    "SessionWindows",
    "TaskScore",
    "TrialSpan",
    "arrangements",
    "flagged_summary",
    "format_session_score",
    "latency_summary",
    "marker_trials",
    "offline_proba",
    "score_session",
    "score_windows",
    "session_windows",
]
