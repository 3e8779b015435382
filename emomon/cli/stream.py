"""``emomon stream``: a live source -> the pipeline -> ZeroMQ (and LSL, a recording).

The verb checks the model and settings, opens the source chosen by
``--source`` (a name of :data:`~emomon.realtime.sources.SOURCES`, built from
its option group), binds the publisher and runs
:func:`~emomon.realtime.stream.run_stream` until Ctrl-C, ``--duration`` or the
end of a recording.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emomon.cli._options import (
    CURVE_SERVER_FLAGS,
    RECORDING_FLAGS,
    add_curve_server_arguments,
    add_recording_arguments,
    recording_kwargs,
)
from emomon.cli.argtypes import endpoint, positive_float
from emomon.errors import EmomonError
from emomon.realtime.names import DEFAULT_ADDRESS
from emomon.realtime.sources import SOURCES

if TYPE_CHECKING:
    from emomon.realtime.model import LoadedModel
    from emomon.realtime.pipeline import PipelineSettings
    from emomon.realtime.sinks import Sink
    from emomon.realtime.sources import Source
    from emomon.realtime.stream import StreamSettings

#: One line for ``emomon --help``.
HELP = "live EEG (LSL/BrainFlow) -> features -> ONNX -> ZeroMQ predictions"
DESCRIPTION = (
    "Read live EEG, compute the model's features causally every hop, "
    "run the ONNX model and publish valence/arousal on ZeroMQ. Example: "
    "emomon stream --source lsl --model runs/deap-lovo-logreg/model.onnx"
)

#: Library parameter -> flag (pipeline and publisher settings, the sources'
#: keywords, the recorder's).
FLAGS: dict[str, str] = {
    **RECORDING_FLAGS,
    **CURVE_SERVER_FLAGS,
    "model_path": "--model",
    "hop_s": "--hop",
    "smoothing": "--smoothing",
    "interpolate": "--interpolate",
    "address": "--address",
    "curve_server_key": "--curve-server",
    "connect": "--connect",
    "name": "--name",
    "type": "--type",
    "source_id": "--source-id",
    "timeout_s": "--timeout",
    "board_id": "--board-id",
    "serial_port": "--serial-port",
    "master_board": "--master-board",
    "speed": "--speed",
    "loop": "--loop",
    "duration_s": "--duration",
    "lsl_outlet": "--lsl-outlet",
    "overwrite": "--overwrite",
    "record": "--record",
    "markers": "--markers",
}


# -- sources: each option group -> the chosen class's keyword arguments -------------
def _lsl_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": args.name,
        "type": args.type,
        "source_id": args.source_id,
        "timeout_s": args.timeout,
    }


def _brainflow_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "board_id": args.board_id,
        "serial_port": args.serial_port,
        "file": args.file,
        "master_board": args.master_board or None,
    }


def _replay_options(args: argparse.Namespace) -> dict[str, Any]:
    from emomon.realtime.loading import load_trials

    return {
        "trials": load_trials(**recording_kwargs(args)),
        "name": args.name or "emomon-replay",
        "speed": args.speed,
        "loop": args.loop,
    }


#: ``--source`` name -> its option group as keyword arguments of its class.
SOURCE_OPTIONS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "lsl": _lsl_options,
    "brainflow": _brainflow_options,
    "replay": _replay_options,
}


def _open_source(args: argparse.Namespace) -> Source:
    from emomon.realtime.sources import source_class

    src = source_class(args.source)(**SOURCE_OPTIONS[args.source](args))
    if args.source == "lsl":  # the search may take the whole timeout: say so first
        query = src.describe_query()  # type: ignore[attr-defined]
        print(
            f"waiting up to {args.timeout:g} s for LSL stream {query}",
            file=sys.stderr,
            flush=True,
        )
    src.open(timeout_s=args.timeout)
    return src


# -- the recording ---------------------------------------------------------------------
def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _open_recorder(
    args: argparse.Namespace,
    source: Source,
    model: LoadedModel,
    settings: PipelineSettings,
    markers_stream: str,
) -> Any:
    """Open the :class:`~emomon.realtime.record.SessionRecorder` of ``--record``."""
    from emomon.realtime.record import RecorderSettings, SessionRecorder

    return SessionRecorder(
        args.record,
        ch_names=source.ch_names,
        sfreq=source.sfreq,
        stream_name=source.name,
        source_id=source.source_id,
        model=model.digest,
        markers_stream=markers_stream,
        metadata={
            "source": args.source,
            "model_name": model.contract.model,
            "model_file": str(args.model),
            "hop_s": settings.hop_s,
            "smoothing": settings.smoothing,
            "interpolate": settings.interpolate,
            "time_scale": source.time_scale,
            "source_desc": dict(source.metadata),
        },
        settings=RecorderSettings(overwrite=bool(args.overwrite)),
    )


def _finish_recording(recorder: Any, *, failing: bool) -> None:
    """Close ``recorder`` and print what was written.

    While another error is on its way out (``failing``), a recording error is
    printed instead of replacing it.
    """
    if recorder is None:
        return
    try:
        files = recorder.close()
    except EmomonError as exc:
        if not failing:
            raise
        print(f"emomon: error: {exc.render(FLAGS)}", file=sys.stderr, flush=True)
        return
    print(files.describe(), file=sys.stderr, flush=True)


def _open_markers(args: argparse.Namespace, source: Source) -> Any:
    """Open the marker stream ``--record`` keeps (``--markers``, else the replay's).

    A stream named by ``--markers`` that does not answer is an error; a replay's
    that does not answer gets one line and the session is recorded without it.
    """
    from emomon.realtime.markers import open_marker_tap

    if args.markers:  # the search may take the whole timeout: say so first
        print(
            f"waiting up to {args.timeout:g} s for LSL marker stream '{args.markers}'",
            file=sys.stderr,
            flush=True,
        )
    tap, warning = open_marker_tap(
        args.markers, source.metadata, timeout_s=args.timeout
    )
    if warning:
        print(f"emomon stream: warning: {warning}", file=sys.stderr, flush=True)
    return tap


# -- the verb --------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    """Run ``emomon stream`` until SIGINT/SIGTERM, ``--duration`` or the source's end.

    Returns 0. The model, the settings and ``--record`` are checked before the
    source is opened.
    """
    from emomon.realtime._signals import StopOnSignals
    from emomon.realtime.lslconfig import quiet_liblsl
    from emomon.realtime.model import load_model
    from emomon.realtime.pipeline import PipelineSettings
    from emomon.realtime.stream import StreamSettings

    quiet_liblsl()  # liblsl's own log off the console (before liblsl reads its config)
    model = load_model(args.model)  # validate before connecting
    model.contract.require_live(source=str(args.model))
    settings = StreamSettings(
        pipeline=PipelineSettings(
            hop_s=args.hop, smoothing=args.smoothing, interpolate=args.interpolate
        ),
        duration_s=args.duration,
    )
    if model.heavy:  # a pretrained encoder (eegpt): can this machine keep up?
        from emomon.realtime.model import check_hop

        check_hop(args.hop, cost_s=model.window_cost_s(), source=str(args.model))
    if args.interpolate:  # a model channel without a position fails before connecting
        from emomon.realtime.interpolation import make_interpolator

        make_interpolator(model.contract.ch_names)
    if args.markers is not None and args.record is None:
        raise EmomonError("{markers} needs {record}", params=("markers", "record"))
    if args.record is not None:  # a bad --record path fails before connecting
        from emomon.realtime.record import check_record_path

        check_record_path(args.record, overwrite=bool(args.overwrite))
    source = _open_source(args)
    stop = threading.Event()
    # The handlers stay until the recording is finished: a second Ctrl-C or
    # SIGTERM cannot interrupt writing the FIF.
    with StopOnSignals(stop):
        _serve(args, source, model, settings, stop)
    return 0


def _sinks(
    args: argparse.Namespace, source: Source, model: LoadedModel, pub: Sink
) -> list[Sink]:
    """Return the sinks: the publisher, the console's lines, the LSL outlet asked for.

    The status line (unless ``--quiet``) rewrites itself once a second; a lost
    or returned input gets one line of its own either way.
    """
    from emomon.dsp.features import ExtractorSettings
    from emomon.realtime.publish import LSLPredictionOutlet
    from emomon.realtime.sinks import StatusLine

    def status(text: str) -> None:
        print("\r" + text, end="", file=sys.stderr, flush=True)

    def announce(text: str) -> None:
        # below the status line, which goes on on the next line
        lead = "" if args.quiet else "\n"
        print(f"{lead}emomon stream: {text}", file=sys.stderr, flush=True)

    sinks = [pub, StatusLine(None if args.quiet else status, announce=announce)]
    if args.lsl_outlet:
        name = source.name or "eeg"
        c = model.contract
        # the pipeline's hop, rounded to whole samples at the model's rate
        hop = ExtractorSettings(c.spec, c.sfreq, len(c.ch_names), args.hop)
        sinks.append(
            LSLPredictionOutlet(
                name, c.tasks, hop_s=hop.hop_n / c.sfreq, model=model.digest
            )
        )
    return sinks


def _serve(
    args: argparse.Namespace,
    source: Source,
    model: LoadedModel,
    settings: StreamSettings,
    stop: threading.Event,
) -> None:
    """Publish ``source``'s predictions until ``stop``; always closes ``source``."""
    from emomon.realtime.markers import own_markers
    from emomon.realtime.pipeline import map_channels
    from emomon.realtime.publish import Publisher, PublisherSettings
    from emomon.realtime.stream import run_stream

    contract = model.contract
    recorder = None
    tap = None
    failing = True
    try:
        # Refuse a stream without the model's channels (or with one in a unit
        # that is not a voltage) before binding the port or announcing the
        # stream: the error is then the last output.
        map_channels(
            contract.ch_names,
            source.ch_names,
            unconverted_units=source.unconverted_units,
            montage=source.montage,
        )
        if args.record is not None:  # before the stream starts: liblsl keeps no past
            tap = _open_markers(args, source)
        pub_settings = PublisherSettings(
            address=args.address,
            curve_secret_key=_str_or_none(args.curve_secret),
            curve_allowed_dir=_str_or_none(args.curve_allowed),
            curve_server_key=_str_or_none(args.curve_server),
            insecure=args.insecure,
            connect=args.connect,
        )
        with Publisher(pub_settings) as pub:
            print(
                f"emomon stream: {source.name} ({source.n_channels} ch @ "
                f"{source.sfreq:g} Hz) -> {contract.model} -> {pub.endpoint} "
                f"(hop {args.hop:g} s)",
                file=sys.stderr,
                flush=True,
            )
            sinks = _sinks(args, source, model, pub)
            if args.record is not None:
                # a replay read in process has its markers without LSL
                own_name, own = own_markers(source) if tap is None else ("", [])
                markers = tap.name if tap else own_name
                recorder = _open_recorder(
                    args, source, model, settings.pipeline, markers
                )
                print(
                    f"recording to {recorder.path} (spool {recorder.paths.spool})"
                    + (f" with the markers of '{markers}'" if markers else ""),
                    file=sys.stderr,
                    flush=True,
                )
                if tap is not None:
                    tap.start(recorder.write_marker)
                for text, t in own:
                    recorder.write_marker(text, t)
                sinks.append(recorder)  # every chunk as read, every message sent
            try:
                stats = run_stream(
                    source, model, sinks=sinks, settings=settings, stop_event=stop
                )
            finally:
                for sink in sinks[1:]:
                    if sink is not recorder:  # the recorder is finished below
                        sink.close()
        s = stats.summary()
        dropped_by = ", ".join(f"{n} by {k}" for k, n in s["sink_drops"].items() if n)
        print(
            f"\nstopped: {s['samples']} samples, {s['dropped']} dropped, "
            f"{s['predictions']} predictions ({s['flagged']} flagged); sample age "
            f"at publication p50 {s['sample_age_ms_p50']:.1f} ms p99 "
            f"{s['sample_age_ms_p99']:.1f} ms, of which in emomon p50 "
            f"{s['latency_ms_p50']:.1f} ms p99 {s['latency_ms_p99']:.1f} ms"
            + (f"; messages dropped {dropped_by}" if dropped_by else ""),
            file=sys.stderr,
        )
        failing = False
    finally:
        try:
            if tap is not None:  # the last markers in before the files close
                tap.close()
            _finish_recording(recorder, failing=failing)
        finally:
            source.close()


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``stream`` to ``p``."""
    default = next(iter(SOURCES))
    p.add_argument(
        "--source",
        choices=list(SOURCES),
        default=default,
        help="; ".join(
            f"{name}: {entry.description}" + (" (default)" if name == default else "")
            for name, entry in SOURCES.items()
        ),
    )
    p.add_argument("--model", type=Path, required=True, help="emomon model.onnx")
    g = p.add_argument_group("LSL source")
    g.add_argument("--name", help="stream name to resolve")
    g.add_argument(
        "--type",
        default="EEG",
        help="stream type, matched in any case (default %(default)s; MNE-LSL's "
        'PlayerLSL sends "eeg"); --type "" matches any type',
    )
    g.add_argument("--source-id", help="stream source_id to resolve")
    g = p.add_argument_group("BrainFlow source")
    g.add_argument(
        "--board-id", default="synthetic", help="id or name (default %(default)s)"
    )
    g.add_argument(
        "--serial-port",
        help="the dongle's serial port, e.g. /dev/ttyUSB0 or COM3 (needed by "
        "Cyton, Cyton-Daisy, Ganglion and other dongle boards)",
    )
    g.add_argument(
        "--file",
        help="PLAYBACK_FILE_BOARD: a file written by BrainFlow; with --source "
        "replay: a recording (OpenBCI .txt, EDF/BDF/FIF, ...)",
    )
    g.add_argument("--master-board", help="board that recorded --file")
    g = p.add_argument_group("replay source (no LSL: --dataset or --file)")
    add_recording_arguments(g, file=False)  # --file is shared with BrainFlow
    g.add_argument(
        "--speed",
        type=positive_float,
        default=None,
        help="pace like a headset at this speed (default: unpaced, as fast as the "
        "pipeline runs; ends with the recording)",
    )
    g.add_argument("--loop", action="store_true", help="restart at the end")
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        help="how long to wait for the source to connect, in seconds (default "
        "%(default)g)",
    )
    p.add_argument(
        "--address",
        type=endpoint,
        default=DEFAULT_ADDRESS,
        help=f"ZeroMQ PUB address (default {DEFAULT_ADDRESS})",
    )
    p.add_argument("--hop", type=float, default=0.25, help="seconds between outputs")
    p.add_argument("--smoothing", type=float, default=0.0, help="EMA weight in [0,1)")
    p.add_argument(
        "--interpolate",
        action="store_true",
        help="interpolate bad channels (spherical splines, at most a quarter of the "
        "model's channels) instead of flagging their windows",
    )
    p.add_argument("--lsl-outlet", action="store_true", help="also publish on LSL")
    p.add_argument(
        "--duration", type=positive_float, help="stop after this many seconds"
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no status line (a lost or returned input still gets one line)",
    )
    p.add_argument(
        "--record",
        type=Path,
        metavar="PATH.fif",
        help="save the raw EEG received and the predictions: PATH.fif (MNE FIF, "
        "replay it with `emomon replay --file PATH.fif`), "
        "PATH.predictions.jsonl, PATH.timestamps.npy, and with a marker stream "
        "(a replay's, or --markers) PATH.markers.jsonl for `emomon score`",
    )
    p.add_argument(
        "--markers",
        metavar="NAME",
        help="with --record: also record this LSL marker stream as the session's "
        "ground truth (PATH.markers.jsonl, scored by `emomon score`); an emomon "
        "replay's marker stream is recorded without it; a NAME that does not "
        "answer within --timeout is an error",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="with --record: replace the files"
    )
    p.add_argument(
        "--connect",
        action="store_true",
        help="connect to --address (an `emomon broker` frontend) instead of binding",
    )
    g = add_curve_server_arguments(p)
    g.add_argument(
        "--curve-server",
        type=Path,
        help="with --connect: the broker's public key file (server.key)",
    )
