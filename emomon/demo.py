"""``make demo`` (``emomon demo``): the whole emomon chain on synthetic data.

1. write the synthetic dataset as real DEAP ``.dat`` files and check it;
2. train a fast model (logreg) leak-free on all subjects but one (LOVO, with the
   leaky intra-video split beside it) and export ``model.onnx``;
3. replay the held-out subject as a real LSL stream (with a marker stream),
4. run ``emomon stream`` on it (LSL -> features -> ONNX -> ZeroMQ),
5. subscribe to the predictions and score them live against the replay's
   marker labels; ends by itself with a summary.

Everything runs on this machine over loopback. The functions here print nothing:
they hand their narrative to a ``write`` callable (``emomon demo`` passes one that
prints).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emomon.config import FeatureSpec
from emomon.datasets import get_reader
from emomon.datasets.summary import summarize
from emomon.datasets.synthetic import SynthParams, write_deap
from emomon.offline.features import trial_features

#: Receives the demo's narrative: one piece of text (one or more lines, no
#: trailing newline) a call.
Write = Callable[[str], None]


def _silent(text: str) -> None:
    """Drop ``text`` (the default ``write``: the demo says nothing)."""


def _step(write: Write, n: int, text: str) -> None:
    write(f"\n== {n}. {text}")


def format_trial_features(values: np.ndarray, ch_names, spec: FeatureSpec) -> str:
    """Mean features over windows for a few channels, as a text table."""
    show = [c for c in ("Fp1", "F3", "F4", "Cz", "Pz", "O1", "O2") if c in ch_names]
    idx = [list(ch_names).index(c) for c in show] or list(range(min(6, len(ch_names))))
    mean = values.mean(axis=0)
    head = f"{'channel':<8}" + "".join(f"{n:>11}" for n in spec.feature_names)
    lines = [head]
    for i in idx:
        lines.append(f"{ch_names[i]:<8}" + "".join(f"{v:>11.3f}" for v in mean[i]))
    return "\n".join(lines)


class _Truth:
    """Ground-truth labels per trial from the replay's marker stream."""

    def __init__(self, marker_name: str) -> None:
        import pylsl

        self._inlet = None
        self._name = marker_name
        self._pylsl = pylsl
        self.trials: list[tuple[float, float, dict]] = []  # (start, end, labels)
        self._open: tuple[float, dict] | None = None

    def connect(self, timeout_s: float) -> bool:
        found = self._pylsl.resolve_byprop("name", self._name, 1, timeout_s)
        if found:
            self._inlet = self._pylsl.StreamInlet(found[0])
            self._inlet.open_stream(timeout=timeout_s)
        return self._inlet is not None

    def poll(self) -> None:
        if self._inlet is None:
            return
        for _ in range(1000):  # bounded drain
            sample, ts = self._inlet.pull_sample(timeout=0.0)
            if sample is None:
                break
            ts += self._inlet.time_correction(timeout=1.0)
            ev = json.loads(sample[0])
            if ev.get("event") == "trial_start":
                self._open = (ts, ev)
            elif ev.get("event") == "trial_end" and self._open is not None:
                self.trials.append((self._open[0], ts, self._open[1]))
                self._open = None

    def label(self, t: float, task: str) -> str | None:
        for start, end, ev in self.trials + (
            [(self._open[0], np.inf, self._open[1])] if self._open else []
        ):
            if start + 2.0 <= t <= end and ev.get(task) is not None:
                return "high" if float(ev[task]) > 5.0 else "low"
        return None


def run_live(
    model: Path,
    data_dir: Path,
    subject: str,
    *,
    n_trials: int,
    speed: float,
    address: str = "tcp://127.0.0.1:*",
    write: Write = _silent,
) -> dict:
    """Replay ``subject`` over LSL, stream it, subscribe, score live accuracy.

    Parameters
    ----------
    model : Path
        The exported ``model.onnx``.
    data_dir : Path
        The DEAP-format dataset that holds ``subject``.
    subject : str
        The subject replayed (its first ``n_trials`` trials).
    n_trials : int
        Trials replayed.
    speed : float
        Replay speed (10 = ten times real time).
    address : str
        Where the publisher binds (default loopback, any free port).
    write : callable of str, optional
        Receives a table of the first predictions and every 40th; default:
        nothing is said.

    Returns
    -------
    dict
        ``scored`` (windows scored against the markers), ``accuracy`` (per task,
        NaN when none was scored), ``missed`` (per topic, by the subscriber) and
        ``stats`` (:meth:`~emomon.realtime.stream.StreamStats.summary`).
    """
    from emomon.realtime.model import load_model
    from emomon.realtime.pipeline import PipelineSettings
    from emomon.realtime.publish import Publisher, PublisherSettings
    from emomon.realtime.replay import Replay, ReplaySettings
    from emomon.realtime.sources.lsl import LSLSource
    from emomon.realtime.stream import StreamSettings, run_stream
    from emomon.realtime.subscribe import Subscriber

    trials = get_reader("deap", data_dir).read_subject(subject)[:n_trials]
    name = f"emomon-demo-{uuid.uuid4().hex[:6]}"
    replay = Replay(trials, settings=ReplaySettings(name=name, speed=speed))
    stop = threading.Event()
    replay.open()
    truth = _Truth(f"{name}-markers")
    truth.connect(timeout_s=10.0)
    source = LSLSource(name, timeout_s=10.0)
    source.open(timeout_s=10.0)
    results: dict = {"stats": None}
    with Publisher(PublisherSettings(address=address)) as pub:
        sub = Subscriber(pub.endpoint)

        def stream() -> None:
            results["stats"] = run_stream(
                source,
                load_model(model),
                sinks=[pub],
                settings=StreamSettings(pipeline=PipelineSettings(hop_s=0.25)),
                stop_event=stop,
            )

        def play() -> None:
            replay.run(stop_event=stop)

        t_stream = threading.Thread(target=stream, daemon=True)
        t_play = threading.Thread(target=play, daemon=True)
        t_stream.start()
        t_play.start()
        correct = {"valence": 0, "arousal": 0}
        scored = 0
        shown = 0
        total_s = sum(t.eeg.shape[1] + t.baseline.shape[1] for t in trials) / 128.0
        deadline = time.monotonic() + total_s / speed + 30.0
        write(f"{'seq':>5} {'t_lsl':>12}  valence       arousal       quality  latency")
        while time.monotonic() < deadline:
            msg = sub.recv(timeout_s=0.2)
            truth.poll()
            if msg is None:
                if not t_play.is_alive():
                    break
                continue
            if msg.kind != "prediction":
                continue
            p = msg.payload
            v, a = p["valence"], p["arousal"]
            if shown < 12 or p["seq"] % 40 == 0:
                write(
                    f"{p['seq']:>5} {p['t_lsl']:>12.3f}  "
                    f"{_fmt(v):<13} {_fmt(a):<13} "
                    f"{'ok' if p['quality']['ok'] else 'flagged':<8} "
                    f"{p['latency_ms']:.1f} ms"
                )
                shown += 1
            tv, ta = (
                truth.label(p["t_lsl"], "valence"),
                truth.label(p["t_lsl"], "arousal"),
            )
            if tv and ta and p["quality"]["ok"]:
                scored += 1
                correct["valence"] += v["label"] == tv
                correct["arousal"] += a["label"] == ta
        stop.set()
        t_play.join(timeout=10)
        t_stream.join(timeout=10)
        sub.close()
    source.close()
    replay.close()
    stats = results["stats"].summary() if results["stats"] else {}
    return {
        "scored": scored,
        "accuracy": {
            k: (c / scored if scored else float("nan")) for k, c in correct.items()
        },
        "missed": dict(sub.missed),
        "stats": stats,
    }


def _num(x: float | None) -> str:
    """Return ``x`` to 2 decimals, ``-`` where undefined."""
    return "-" if x is None else f"{x:.2f}"


def _fmt(task: dict) -> str:
    if task.get("p_high") is None:
        return "-"
    return f"{task['p_high']:.2f} {task['label']}"


def free_loopback_endpoint() -> str:
    """Return a ZeroMQ endpoint on 127.0.0.1 whose port is free now.

    For a subscriber that must know the address before the publisher binds it
    (the demo's dashboard starts before training). The port is the one the
    system picked for a socket bound and closed here; another process would
    have to take that very port in between for the publisher's bind to fail,
    and then it fails with an error naming the address.
    """
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"tcp://127.0.0.1:{port}"


def run_demo(
    out_dir: str | Path,
    *,
    n_subjects: int = 8,
    n_videos: int = 20,
    trial_s: float = 30.0,
    replay_trials: int = 8,
    speed: float = 10.0,
    address: str = "tcp://127.0.0.1:*",
    write: Write = _silent,
) -> None:
    """Run the whole chain on synthetic data under ``out_dir``, narrating each step.

    Parameters
    ----------
    out_dir : str or Path
        Where the dataset, the feature cache and the run go.
    n_subjects, n_videos : int
        Size of the synthetic dataset (the last subject is held out).
    trial_s : float
        Length of each synthetic trial in seconds.
    replay_trials : int
        Trials of the held-out subject replayed live.
    speed : float
        Replay speed (10 = ten times real time).
    address : str
        Where the live step's publisher binds (default loopback, any free
        port; ``emomon demo --dashboard`` gives the address its dashboard
        subscribes to, from :func:`free_loopback_endpoint`).
    write : callable of str, optional
        Receives the narrative (steps, tables, live predictions, summary), one
        piece of text a call (one or more lines, no trailing newline); default:
        nothing is said. ``emomon demo`` prints it.
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    data_dir = out / "synthetic-deap"
    params = SynthParams(
        n_subjects=n_subjects, n_videos=n_videos, trial_s=trial_s, seed=1
    )
    _step(write, 1, f"synthetic dataset -> {data_dir} (real DEAP .dat format)")
    paths = write_deap(params, data_dir)
    write(f"wrote {len(paths)} files: {paths[0].name} .. {paths[-1].name}")
    reader = get_reader("deap", data_dir)
    write(summarize(reader, progress=False).format())
    spec = FeatureSpec()
    trial = reader.read_subject(reader.subjects()[0])[0]
    tf = trial_features(trial, spec)
    write(
        f"\nfeatures of {trial.subject}/{trial.video}: "
        f"{tf.values.shape} (windows, channels, features)"
    )
    write(format_trial_features(tf.values, trial.ch_names, spec))

    held_out = reader.subjects()[-1]
    train_subjects = tuple(reader.subjects()[:-1])
    _step(
        write,
        2,
        f"train logreg leak-free on {len(train_subjects)} subjects "
        f"(held out: {held_out}), LOVO beside the leaky intra split",
    )
    from emomon.offline.report import format_summary
    from emomon.offline.runfolder import MANIFEST
    from emomon.offline.train import TrainConfig, run_training

    cfg = TrainConfig(
        dataset="deap",
        data_dir=str(data_dir),
        subjects=train_subjects,
        protocols=("lovo", "intra"),
        model="logreg",
        batch_size=256,
        epochs=15,
        patience=3,
        permutations=0,
        n_boot=200,
        cache_dir=str(out / "cache"),
    )
    run_dir = out / "run"
    # The demo's own run folder is replaced on every demo (one from before run
    # folders had manifests is recognised by its report).
    if (run_dir / "report.json").is_file() and not (run_dir / MANIFEST).is_file():
        shutil.rmtree(run_dir)
    report = run_training(cfg, run_dir, progress=True, mode="overwrite")
    write(format_summary(report))
    model = run_dir / report.export.path
    write(f"reports and model in {run_dir}/")

    _step(
        write,
        3,
        f"replay {held_out} over LSL at {speed:g}x -> emomon stream -> "
        "ZeroMQ -> subscriber",
    )
    live = run_live(
        model,
        data_dir,
        held_out,
        n_trials=replay_trials,
        speed=speed,
        address=address,
        write=write,
    )
    s = live["stats"]
    _step(write, 4, "summary")
    write(
        f"live predictions: {s.get('predictions', 0)} "
        f"({s.get('flagged', 0)} flagged), samples {s.get('samples', 0)}, "
        f"dropped {s.get('dropped', 0)}, missed by subscriber {live['missed']}"
    )
    write(
        f"latency p50 {s.get('latency_ms_p50', float('nan')):.1f} ms, "
        f"p99 {s.get('latency_ms_p99', float('nan')):.1f} ms; per-hop compute p50 "
        f"{s.get('compute_ms_p50', float('nan')):.2f} ms"
    )
    acc = live["accuracy"]
    write(
        f"live accuracy on held-out {held_out} vs marker labels "
        f"({live['scored']} windows): valence {acc['valence']:.2f}, "
        f"arousal {acc['arousal']:.2f}"
    )
    main_res = report.results["lovo"].tasks
    write(
        "offline LOVO balanced accuracy: "
        + ", ".join(
            f"{t} {_num(r.metrics.balanced_accuracy)}" for t, r in main_res.items()
        )
    )
    write(f"\ndemo finished in {time.perf_counter() - t_start:.1f} s")
