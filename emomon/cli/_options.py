"""Option groups shared by several verbs.

Which recording to read (``replay``, ``stream --source replay``), the CurveZMQ
server keys (``stream``, ``broker``) and the size of the synthetic dataset
(``datasets synth``, ``demo``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emomon.cli.argtypes import positive_float, positive_int, reader_option

#: :func:`~emomon.realtime.loading.load_trials` keyword -> flag.
RECORDING_FLAGS: dict[str, str] = {
    "dataset": "--dataset",
    "data_dir": "--data-dir",
    "subject": "--subject",
    "file": "--file",
    "reader_options": "--option",
}

#: Publisher / Broker keyword -> flag.
CURVE_SERVER_FLAGS: dict[str, str] = {
    "curve_secret_key": "--curve-secret",
    "curve_allowed_dir": "--curve-allowed",
    "insecure": "--insecure",
}


def add_dataset_option_argument(group: Any) -> None:
    """Add ``--dataset-option KEY=VALUE`` (also ``--option``, ``-o``), repeatable.

    Parsed into ``args.reader_options``: the reader's keyword options.
    """
    group.add_argument(
        "--dataset-option",
        "--option",
        "-o",
        dest="reader_options",
        action="append",
        type=reader_option,
        default=[],
        metavar="KEY=VALUE",
        help="reader option, repeatable (e.g. -o features=de_LDS,psd_LDS for "
        "seed-features; emomon datasets list names each reader's options)",
    )


def add_recording_arguments(group: Any, *, file: bool = True) -> None:
    """Add the options that pick a recording to ``group``.

    ``--dataset``, ``--data-dir``, ``--subject``, ``--option`` and, with
    ``file``, ``--file``: the recording :func:`recording_kwargs` picks.
    """
    group.add_argument("--dataset", help="reader name, e.g. deap, synthetic")
    group.add_argument("--data-dir", type=Path, default=None, help="dataset directory")
    group.add_argument("--subject", default=None, help="subject id (default: first)")
    if file:
        group.add_argument(
            "--file",
            type=Path,
            default=None,
            help="one OpenBCI GUI .txt or MNE-readable recording (EDF/BDF/FIF/...)",
        )
    add_dataset_option_argument(group)


def recording_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Return the keyword arguments of :func:`~emomon.realtime.loading.load_trials`.

    From the options that :func:`add_recording_arguments` added.
    """
    return {
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "subject": args.subject,
        "file": args.file,
        "reader_options": dict(args.reader_options),
    }


def add_curve_server_arguments(p: argparse.ArgumentParser) -> Any:
    """``--curve-secret``, ``--curve-allowed`` and ``--insecure`` (stream, broker).

    Returns
    -------
    argparse._ArgumentGroup
        The group, for verb-specific additions.
    """
    g = p.add_argument_group("security (non-loopback addresses need Curve)")
    g.add_argument(
        "--curve-secret",
        type=Path,
        help="server secret key file (server.key_secret, from `emomon keys`); "
        "with `stream --connect`: the publisher's own client key file",
    )
    g.add_argument(
        "--curve-allowed",
        type=Path,
        help="directory of allowed clients' public .key files",
    )
    g.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback address without Curve (unencrypted health data)",
    )
    return g


def add_curve_client_arguments(g: Any) -> None:
    """``--curve-secret`` and ``--curve-server`` of a subscriber (listen, dashboard).

    Parameters
    ----------
    g : argparse.ArgumentParser or argument group
        Where the options go (the verb's security group).
    """
    g.add_argument(
        "--curve-secret",
        type=Path,
        help="this client's secret key file (client-NAME.key_secret)",
    )
    g.add_argument(
        "--curve-server",
        type=Path,
        help="the publisher's or broker's public key file (server.key)",
    )


def add_synthetic_size_arguments(p: argparse.ArgumentParser, *, trial_s: float) -> None:
    """Add the size of the synthetic dataset to ``p``.

    ``--subjects`` (default 8), ``--videos`` (20) and ``--trial-s`` (default
    ``trial_s``).
    """
    p.add_argument("--subjects", type=positive_int, default=8, help="default 8")
    p.add_argument("--videos", type=positive_int, default=20, help="default 20")
    p.add_argument(
        "--trial-s",
        type=positive_float,
        default=trial_s,
        help=f"trial length in s (default {trial_s:g})",
    )
