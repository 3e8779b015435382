"""What a replay serves: one subject of a dataset, or one recording file.

Shared by ``emomon replay`` (served as an LSL stream) and ``emomon stream
--source replay`` (read in process).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emomon.datasets import Reader, Trial, get_reader
from emomon.errors import ConfigError, DatasetError

__all__ = ["load_trials", "reader_for_file"]


def reader_for_file(path: str | Path) -> Reader:
    """Pick the reader for one recording: OpenBCI GUI text or any MNE-readable file.

    An OpenBCI GUI file is recognised by its ``%`` header line (or a ``.txt`` /
    ``.csv`` name); EDF/BDF/GDF/FIF/BrainVision/EEGLAB by their endings.

    Raises
    ------
    DatasetError
        If the file does not exist or its format cannot be told.
    """
    from emomon.datasets.mne_reader import SUFFIXES as MNE_SUFFIXES

    p = Path(path).expanduser()
    if not p.is_file():
        raise DatasetError(
            f"{p}: file not found; expected an OpenBCI GUI .txt or an MNE-readable "
            "recording"
        )
    try:
        with p.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise DatasetError(f"{p}: cannot read ({exc})") from exc
    lower = p.name.lower()
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"%"):
        return get_reader("openbci", p)
    if lower.endswith(MNE_SUFFIXES):
        # a recorded live session is served as received, dropouts included
        return get_reader("mne", p, allow_nonfinite=True)
    if lower.endswith((".txt", ".csv")):
        return get_reader("openbci", p)
    raise DatasetError(
        f"{p.name}: cannot tell the recording format; expected an OpenBCI GUI "
        f"text file ('%' header) or one of {', '.join(MNE_SUFFIXES)}"
    )


def _pick_subject(reader: Reader, subject: str | None) -> str:
    subjects = reader.subjects()
    if subject is None:
        return subjects[0]
    if subject in subjects:
        return subject
    digits = subject.strip().lower().lstrip("s")
    if digits.isdigit():
        for s in subjects:
            tail = "".join(ch for ch in s if ch.isdigit())
            if tail and int(tail) == int(digits):
                return s
    shown = ", ".join(subjects[:8]) + (" ..." if len(subjects) > 8 else "")
    raise DatasetError(
        f"subject '{subject}' not found in dataset '{reader.name}' (found: {shown})"
    )


def load_trials(
    *,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    subject: str | None = None,
    file: str | Path | None = None,
    reader_options: dict[str, Any] | None = None,
) -> list[Trial]:
    """Load one subject's trials from a dataset, or one recording's.

    From a dataset (``dataset``/``data_dir``/``subject``) or from one recording
    (``file``).

    Raises
    ------
    DatasetError
        For a missing dataset, subject or file, or unreadable data.
    ConfigError
        If both or neither of ``dataset`` and ``file`` are given.
    """
    if (dataset is None) == (file is None):
        raise ConfigError(
            "replay: give either {dataset} (with {subject}) or {file}",
            params=("dataset", "subject", "file"),
        )
    if file is not None:
        reader = reader_for_file(file)
    else:
        assert dataset is not None
        reader = get_reader(dataset, data_dir, **(reader_options or {}))
    return reader.read_subject(_pick_subject(reader, subject))
