"""What each protocol holds out, what its null exchanges, and which question it answers.

Every protocol in :data:`~emomon.offline.protocols.PROTOCOLS` declares a
:class:`Holdout`; a protocol added later without one fails the tests. Whether a
run's numbers are *content-dependent* is not taken from the declaration: it is
measured on the run's own splits (:func:`shared_video_folds`): a fold whose test
videos appear in its training or validation part lets the model recognise the
video, the stimulus, rather than the emotion. Under LOSO on DEAP every held-out
subject watched the training subjects' videos, so LOSO is content-dependent
there; on a dataset whose subjects saw different stimuli it would not be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HOLDOUTS",
    "Holdout",
    "exchangeable_unit",
    "shared_trial_folds",
    "shared_video_folds",
]


@dataclass(frozen=True)
class Holdout:
    """A protocol's declaration.

    Attributes
    ----------
    holds_out : str
        What a test fold keeps out of training: ``"videos"``, ``"subjects"``,
        ``"subjects and videos"``, ``"trials"`` or ``"windows"``, with the scope
        in words.
    exchangeable : str
        The unit whose labels are exchangeable under the null (no emotion
        effect), i.e. what a permutation may shuffle and a bootstrap resample.
    question : str
        The question the protocol's number answers.
    shares_videos : bool
        Whether its test videos are expected in training on a dataset where
        every subject watches every video (DEAP, DREAMER, SEED); the measured
        value is the report's ``content_dependent``.
    unit : {"video", "subject", "trial"}
        ``exchangeable`` as a key of :func:`emomon.offline.scoring.window_units`.
    """

    holds_out: str
    exchangeable: str
    question: str
    shares_videos: bool
    unit: str


HOLDOUTS: dict[str, Holdout] = {
    "lovo": Holdout(
        holds_out="videos (one video, all subjects' trials of it)",
        exchangeable="video",
        question="Does the model recognise the emotion of a video it has never "
        "seen, in subjects it has seen?",
        shares_videos=False,
        unit="video",
    ),
    "loso": Holdout(
        holds_out="subjects (one subject, all its trials)",
        exchangeable="subject",
        question="Does the model work on a new person, for videos it was "
        "trained on? Content-dependent where subjects watched the same videos.",
        shares_videos=True,
        unit="subject",
    ),
    "subject-lovo": Holdout(
        holds_out="videos, within each subject (trained on that subject alone)",
        exchangeable="video",
        question="Does a model of one person recognise the emotion of a video "
        "that person has not been trained on?",
        shares_videos=False,
        unit="video",
    ),
    "seed-split": Holdout(
        holds_out="videos (each session's later films, e.g. SEED's 10-15; trained "
        "on the earlier films of the same subject and session)",
        exchangeable="video",
        question="SEED's customary within-subject benchmark: later films from "
        "earlier ones of the same recording session.",
        shares_videos=False,
        unit="video",
    ),
    "eav-authors": Holdout(
        holds_out="trials (each subject's later ones: per class the last 24/80 "
        "of its windows in recorded order; LEAKY when the cut splits a trial, "
        "measured per run)",
        exchangeable="trial (within subject; windows of a trial share its label)",
        question="The EAV authors' within-subject benchmark: later trials of each "
        "class from earlier ones of the same person and session.",
        # Video ids are trial positions: a trial cut in two puts its video on
        # both sides, which the run measures (content_dependent, leaky); on the
        # full release the cut falls between trials 14 and 15 of each class.
        shares_videos=False,
        unit="trial",
    ),
    "intra": Holdout(
        holds_out="windows (the same trials are on both sides)",
        exchangeable="trial (within subject; windows of a trial share its label)",
        question="None about emotion: how far memorising trials inflates a "
        "number. Shown only beside a cross-video protocol.",
        shares_videos=True,
        unit="trial",
    ),
}


def exchangeable_unit(protocol: str) -> str:
    """Return the unit a protocol's null exchanges and its interval resamples.

    Raises
    ------
    KeyError
        For a protocol without a declaration (every protocol must have one).
    """
    return HOLDOUTS[protocol].unit


def shared_video_folds(splits: Sequence, video: np.ndarray) -> int:
    """Count the folds whose test videos appear in their training or validation part.

    Parameters
    ----------
    splits : sequence of Split
        Each with ``train``, ``val`` and ``test`` window indices.
    video : ndarray, shape (n_windows,)
        Video id of each window.

    Returns
    -------
    int
        Folds in which some test video is also a training or validation video.
    """
    n = 0
    for s in splits:
        seen = np.union1d(video[s.train], video[s.val])
        n += bool(np.isin(video[s.test], seen).any())
    return n


def shared_trial_folds(splits: Sequence, trial: np.ndarray) -> int:
    """Count the folds with a trial on both sides (test and training/validation).

    A protocol that cuts by windows (``eav-authors``) is leaky exactly when
    this is > 0: windows of one recording then train and test the model.

    Parameters
    ----------
    splits : sequence of Split
    trial : ndarray, shape (n_windows,)
        Trial id of each window.

    Returns
    -------
    int
    """
    n = 0
    for s in splits:
        seen = np.union1d(trial[s.train], trial[s.val])
        n += bool(np.isin(trial[s.test], seen).any())
    return n
