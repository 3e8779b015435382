"""``emomon replay``: serve a recording as a real LSL stream (a simulated headset)."""

from __future__ import annotations

import argparse
import sys
import threading
import time

from emomon.cli._options import (
    RECORDING_FLAGS,
    add_recording_arguments,
    recording_kwargs,
)
from emomon.cli.argtypes import positive_float, positive_int
from emomon.errors import ConfigError

#: One line for ``emomon --help``.
HELP = "serve a recorded session as an LSL stream (simulated headset)"
DESCRIPTION = (
    "Serve one subject of a dataset (trials back to back, baseline then "
    "trial) or one recording file as a real LSL EEG outlet, paced in real "
    "time, with a Markers outlet of JSON trial events."
)

#: Library parameter -> flag (load_trials, ReplaySettings, run_replay).
FLAGS: dict[str, str] = {
    **RECORDING_FLAGS,
    "name": "--name",
    "source_id": "--source-id",
    "speed": "--speed",
    "loop": "--loop",
    "chunk": "--chunk",
    "markers": "--no-markers",
    "duration_s": "--duration",
    "wait_for_consumers_s": "--wait-for-consumer",
}

#: Seconds ``--wait-for-consumer`` waits when given without a number.
WAIT_FOR_CONSUMER_S = 60.0


def run(args: argparse.Namespace) -> int:
    """Run ``emomon replay`` to its end, ``--duration`` or SIGINT/SIGTERM.

    Returns 0; input problems raise :class:`~emomon.errors.EmomonError`.
    """
    from emomon.realtime._signals import StopOnSignals
    from emomon.realtime.loading import load_trials
    from emomon.realtime.lslconfig import quiet_liblsl
    from emomon.realtime.replay import Replay, ReplaySettings, run_replay

    quiet_liblsl()  # liblsl's own log off the console (before liblsl reads its config)
    if (args.dataset is None) == (args.file is None):
        raise ConfigError("replay: give either --dataset (with --subject) or --file")
    settings = ReplaySettings(
        name=args.name,
        source_id=args.source_id,
        chunk=args.chunk,
        speed=args.speed,
        loop=args.loop,
        markers=not args.no_markers,
        wait_for_consumers_s=args.wait_for_consumer or 0.0,
    )
    trials = load_trials(**recording_kwargs(args))
    stop = threading.Event()

    def on_start(replay: Replay) -> None:
        s = replay.session
        st = replay.settings
        mins, secs = divmod(round(s.duration_s), 60)
        markers = f", markers '{st.marker_stream_name}'" if st.markers else ""
        print(
            f"replay: '{st.name}' ({st.stream_type}, {replay.n_channels} ch, "
            f"{s.sfreq:g} Hz, source_id {replay.source_id}) <- "
            f"{s.dataset or 'file'} {s.subject}: {s.n_trials} trial(s), "
            f"{mins}:{secs:02d} min at {st.speed:g}x"
            f"{' looping' if st.loop else ''}{markers}; Ctrl-C stops",
            flush=True,
        )
        if st.wait_for_consumers_s > 0:
            streams = f"'{st.name}'" + (
                f" and '{st.marker_stream_name}'" if st.markers else ""
            )
            print(
                f"replay: waiting up to {st.wait_for_consumers_s:g} s for a consumer "
                f"of {streams} before the first sample (--wait-for-consumer)",
                flush=True,
            )
            t = time.monotonic()
            if replay.wait_for_consumers(st.wait_for_consumers_s, stop):
                print(
                    f"replay: connected after {time.monotonic() - t:.1f} s; serving "
                    "from the first sample",
                    flush=True,
                )

    with StopOnSignals(stop):
        result = run_replay(
            trials,
            file=args.file,
            settings=settings,
            duration_s=args.duration,
            stop_event=stop,
            on_start=on_start,
        )
    what = {"end": "end of recording", "duration": "duration reached"}.get(
        result.reason, "stopped"
    )
    print(
        f"replay: {what} after {result.elapsed_s:.1f} s "
        f"({result.samples_pushed} samples, {result.markers_pushed} markers)",
        file=sys.stderr,
        flush=True,
    )
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``replay`` to ``p``."""
    add_recording_arguments(p.add_argument_group("what to serve (--dataset or --file)"))
    out = p.add_argument_group("stream")
    out.add_argument("--name", default="emomon-replay", help="LSL stream name")
    out.add_argument(
        "--source-id",
        default="",
        help="LSL source id (default: stable, from dataset/subject or file)",
    )
    out.add_argument(
        "--speed", type=positive_float, default=1.0, help="1 = real time (default)"
    )
    out.add_argument("--loop", action="store_true", help="restart at the end")
    out.add_argument(
        "--chunk",
        type=positive_int,
        default=None,
        help="samples per push (default: about 1/32 s)",
    )
    out.add_argument("--no-markers", action="store_true", help="no Markers outlet")
    out.add_argument(
        "--duration",
        type=positive_float,
        default=None,
        help="stop after this many seconds (default: end of recording)",
    )
    out.add_argument(
        "--wait-for-consumer",
        type=positive_float,
        nargs="?",
        const=WAIT_FOR_CONSUMER_S,
        default=None,
        metavar="S",
        help="before the first sample, wait up to S seconds (default "
        f"{WAIT_FOR_CONSUMER_S:g}) until something reads the EEG stream and, "
        "unless --no-markers, the marker stream, so that it gets the whole "
        "session; exit 2 if nothing does",
    )
