"""Read EEG from a Lab Streaming Layer (LSL) stream, surviving stream loss.

Resolution
    The stream is looked for with a :class:`pylsl.ContinuousResolver` on an XPath
    predicate built from ``name``, ``type`` and ``source_id``, whose results are
    polled until ``timeout_s``. The name and source_id match exactly; the type
    matches in any case (ASCII letters: liblsl evaluates the predicate with
    pugixml's XPath 1.0, whose ``translate()`` lowers the stream's type), so the
    default ``"EEG"`` finds MNE-LSL's ``PlayerLSL`` streams, typed ``"eeg"``.
    While a type is asked for, a second resolver looks for the same name and
    source_id with any type, so that a search that finds nothing can say which
    type the stream has instead (MNE-LSL types a stream of mixed channel types
    ``""``). (The one-shot
    :func:`pylsl.resolve_bypred` is not used: with liblsl 1.18 and a machine-only
    or IPv4-only configuration, a resolve that finds nothing returns only after
    its timeout *plus* ``UnicastMaxRTT``, 5 s by default, so it cannot bound a
    wait; the continuous resolver works in liblsl's background thread and polling
    its results never blocks.) Channel labels come from the full stream description
    (``desc/channels/channel/label``; a resolver result has an empty ``desc``, so
    the full info is fetched from the inlet, as pylsl's ``StreamInfo`` docstring
    says), falling back to ``ch1 .. chN``. Units (``desc/channels/channel/unit``)
    are converted to microvolts: volts x 1e6, millivolts x 1e3, microvolts as is;
    a missing unit is taken as microvolts, the unit the XDF meta-data
    recommendations give for EEG. A channel in another unit (a trigger channel in
    ``"none"``) is passed on unconverted and listed in
    :attr:`LSLSource.unconverted_units`; whoever uses the channels checks them
    there (:class:`~emomon.realtime.pipeline.Pipeline` refuses a model channel
    in such a unit), so a stream is not refused for a channel nobody reads.

Pulling
    :meth:`LSLSource.read` pulls with ``pull_chunk(timeout=0, max_samples=...,
    dest_obj=buffer)`` into one buffer allocated per connection, in the stream's
    own sample type, and drains until the inlet is empty (bounded number of
    pulls). liblsl's fixed-buffer pull waits for ``max_samples`` *or* the timeout
    (pylsl docstring), which is what ``read(timeout_s, min_samples=n)`` uses:
    when fewer than ``n`` samples were drained, one blocking pull of the missing
    ones returns inside liblsl the moment the sample that makes ``n`` arrives,
    whatever the sender's chunking (its thread sleeps on liblsl's queue, not in
    Python), then the rest is drained without waiting.

Clock
    The inlet does no post-processing (``processing_flags=0``). Timestamps are
    mapped to this machine's LSL clock by adding the inlet's
    :meth:`pylsl.StreamInlet.time_correction` estimate ("the number that needs to
    be added to a time stamp that was remotely generated via local_clock() to map
    it into the local clock domain", pylsl docstring). The first estimate is
    awaited (bounded) when connecting, so no sample is ever delivered with an
    unmapped timestamp; afterwards the estimate is refreshed every
    ``clock_update_s`` with a non-blocking call (liblsl keeps it updated in the
    background) and the same offset is applied to every sample until the next
    refresh. So delivered timestamps are exactly the pushed ones plus the current
    offset (on one machine the offset is the estimate of 0: a few microseconds).
    This keeps sample spacing exact between refreshes, unlike ``proc_clocksync``,
    which applies each new estimate as it arrives, and unlike ``proc_dejitter``,
    which rewrites the sender's timestamps. A guard keeps timestamps
    non-decreasing should an offset refresh step back by more than one sample.
    A step back by more than :data:`~emomon.realtime.sources.base.CLOCK_RESTART_S`
    is not clamped: the sender's clock restarted, and the samples from the
    restart on start the next chunk (held until the next :meth:`LSLSource.read`),
    so that the consumer sees the restart and starts again.

Stream loss and return
    The inlet is created with ``recover=False``: liblsl's own silent recovery
    would hide the loss from us and could reconnect to a stream with another
    layout. A lost stream shows up as :class:`pylsl.util.LostError` from the
    pull (raised as soon as the connection breaks). Because liblsl's watchdog
    does nothing when recovery is off, a stream that stops delivering data
    without closing the connection (a crashed host, a pulled cable) is treated
    as lost after ``stall_timeout_s`` without samples. On loss the state becomes
    ``"reconnecting"`` and a background thread watches a continuous resolver,
    every ``retry_interval_s``, for the *same source*: the original query
    narrowed to the lost stream's name and source_id. The resolver keeps
    reporting a vanished stream for about a second (its ``forget_after``), so
    the lost stream's uid is skipped for that long and a stream that fails to
    connect is retried only after a back-off. A stream that answers is
    connected in the background (bounded waits) and checked
    against the lost one: the same channel count, labels and sampling rate, and
    no channel newly in a unit that cannot be converted (the pipeline checked
    the units of its channels once, against the first connection). A
    stream that differs is refused (``last_error`` says why, the state stays
    ``"reconnecting"``, the thread keeps waiting); a matching one is handed to
    the next :meth:`read`, which resumes and clears ``last_error``. ``read``
    itself never blocks on the network beyond its ``timeout_s``.
"""

from __future__ import annotations

import inspect
import math
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pylsl

from emomon.errors import literal
from emomon.realtime.sources._lslinfo import (
    FORGET_AFTER_S,
    TO_LOWER,
    build_predicate,
    channel_fields,
    describe_query,
    flatten_desc,
    poll_resolver,
    unit_scale_to_uv,
)
from emomon.realtime.sources.base import CLOCK_RESTART_S, Chunk, Source, SourceError

try:  # pylsl >= 1.17 moved the exception classes out of the package namespace
    from pylsl.util import LostError as _LostError
    from pylsl.util import TimeoutError as _LSLTimeoutError
except ImportError:  # pragma: no cover - pylsl 1.16
    from pylsl.pylsl import LostError as _LostError  # type: ignore[no-redef]
    from pylsl.pylsl import (  # type: ignore[no-redef]
        TimeoutError as _LSLTimeoutError,
    )

__all__ = ["LSLSource", "build_predicate", "unit_scale_to_uv"]

# pylsl >= 1.18 can return numpy timestamps instead of a Python list.
_PULL_KW: dict[str, Any] = (
    {"as_numpy": True}
    if "as_numpy" in inspect.signature(pylsl.StreamInlet.pull_chunk).parameters
    else {}
)

# liblsl channel formats (lsl_channel_format_t) -> numpy sample type.
_NUMERIC_DTYPES: dict[int, type[np.generic]] = {
    pylsl.cf_float32: np.float32,
    pylsl.cf_double64: np.float64,
    pylsl.cf_int8: np.int8,
    pylsl.cf_int16: np.int16,
    pylsl.cf_int32: np.int32,
    pylsl.cf_int64: np.int64,
}


_MAX_PULLS_PER_READ = 16
_RETRY_BACKOFF_S = 1.0  # a stream that failed to connect is retried after this


class _Refused(SourceError):
    """A stream answered the query but does not match the lost one."""


@dataclass(eq=False)
class _Connection:
    """One open inlet with everything needed to read and convert it."""

    inlet: pylsl.StreamInlet
    name: str
    source_id: str
    uid: str
    hostname: str
    sfreq: float
    ch_names: tuple[str, ...]
    labels_from_stream: bool
    scale: np.ndarray | None  # (n_channels,) to µV, None when all 1
    unconverted: dict[str, str]  # channel -> unit of those passed on as they are
    buffer: np.ndarray  # (max_chunk, n_channels) in the stream's sample type
    offset: float  # time_correction estimate (s)
    desc: dict[str, str]
    connected_at: float  # local_clock() when connected
    last_data_at: float  # local_clock() of the latest sample arrival
    next_clock_update: float


class LSLSource(Source):
    """EEG from an LSL stream found by name, type and/or source_id.

    Parameters
    ----------
    name : str, optional
        Stream name to match exactly (``StreamInfo.name``).
    type : str, default "EEG"
        Stream content type to match, in any case (``"EEG"`` finds ``"eeg"``);
        ``None`` or ``""`` matches any type.
    source_id : str, optional
        Source id to match (the most specific choice: it survives restarts of
        the sending app).
    timeout_s : float, default 5.0
        Default bound of the search in :meth:`open`.
    max_chunk : int, default 1024
        Samples per pull, the size of the preallocated pull buffer.
    max_buflen_s : float, default 30.0
        Seconds of data liblsl buffers for this inlet when :meth:`read` is not
        called often enough (older samples are dropped beyond that).
    stall_timeout_s : float or None, default 5.0
        Treat the stream as lost after this long without a sample (regular-rate
        streams only); ``None`` disables it.
    connect_timeout_s : float, default 2.0
        Bound of connecting to a found stream, in :meth:`open` and in each
        reconnection attempt (description, subscription, first clock estimate;
        the first estimate alone takes about 0.6 s with liblsl's default
        probing).
    retry_interval_s : float, default 0.1
        How often the reconnect thread checks the resolver's results.
    clock_update_s : float, default 5.0
        How often the clock offset estimate is refreshed.

    Raises
    ------
    SourceError
        If none of ``name``, ``type`` and ``source_id`` is given.

    Attributes
    ----------
    clock_offset : float
        The offset (s) currently added to the stream's timestamps.
    source_id, stream_uid, stream_hostname : str
        Identity of the connected stream.
    metadata : dict of str to str
        The stream description outside ``channels``, flattened
        (``{"acquisition/manufacturer": "...", "replay/speed": "4.0", ...}``).
    unconverted_units : dict of str to str
        Channel name -> unit of the channels passed on unconverted because
        their unit is not a voltage this source converts (a trigger channel in
        ``"none"``); the pipeline refuses a model channel among them.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        type: str | None = "EEG",  # noqa: A002 - LSL's own property name
        source_id: str | None = None,
        timeout_s: float = 5.0,
        max_chunk: int = 1024,
        max_buflen_s: float = 30.0,
        stall_timeout_s: float | None = 5.0,
        connect_timeout_s: float = 2.0,
        retry_interval_s: float = 0.1,
        clock_update_s: float = 5.0,
    ) -> None:
        super().__init__()
        if not (name or type or source_id):
            raise SourceError(  # reachable from the command line: --type ""
                "nothing to look for: give the LSL stream's {name}, {type} or "
                "{source_id} (an empty type matches any type, but not alone)",
                params=("name", "type", "source_id"),
            )
        if max_chunk < 1:
            raise ValueError(f"max_chunk must be >= 1, got {max_chunk}")
        for label, value in (
            ("timeout_s", timeout_s),
            ("max_buflen_s", max_buflen_s),
            ("connect_timeout_s", connect_timeout_s),
            ("retry_interval_s", retry_interval_s),
            ("clock_update_s", clock_update_s),
        ):
            if not value > 0:
                raise ValueError(f"{label} must be > 0, got {value}")
        self.query_name = name or None
        self.query_type = type or None
        self.query_source_id = source_id or None
        self.predicate = build_predicate(
            name=self.query_name, stream_type=self.query_type, source_id=source_id
        )
        self.name = name or ""
        self.timeout_s = float(timeout_s)
        self.max_chunk = int(max_chunk)
        self.max_buflen_s = float(max_buflen_s)
        self.stall_timeout_s = (
            None if stall_timeout_s is None else float(stall_timeout_s)
        )
        self.connect_timeout_s = float(connect_timeout_s)
        self.retry_interval_s = float(retry_interval_s)
        self.clock_update_s = float(clock_update_s)
        self.clock_offset = 0.0
        self.stream_uid = ""
        self.stream_hostname = ""
        self._conn: _Connection | None = None
        self._pending: _Connection | None = None
        self._lock = threading.Lock()
        self._reconnect_stop = threading.Event()
        self._reconnect_thread: threading.Thread | None = None
        self._last_ts = -math.inf
        self._held: tuple[np.ndarray, np.ndarray] | None = None
        self._closing = False

    # -- description of the query ---------------------------------------------
    def describe_query(self) -> str:
        """Describe the query in words, for messages.

        ``"name='X' and type='EEG' (any case)"``.
        """
        return describe_query(
            name=self.query_name,
            stream_type=self.query_type,
            source_id=self.query_source_id,
        )

    # -- open / close -----------------------------------------------------------
    def open(self, timeout_s: float | None = None) -> None:
        """Resolve the stream, subscribe and get the first clock estimate.

        Waits at most ``timeout_s`` (default: the constructor's) for a matching
        stream, then at most ``connect_timeout_s`` to connect to it.

        Raises
        ------
        SourceError
            If no stream matches within ``timeout_s`` (the message names the
            query, and the type of a stream that matches it but for the type),
            or the stream is not numeric, has no regular sampling rate, or stops
            answering while connecting.
        """
        if self.state != "stopped":
            return
        self._closing = False
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        self._set_state("connecting")
        try:
            deadline = time.monotonic() + timeout
            # Beside the query, the same query without its type: what it finds
            # explains a search that finds nothing.
            any_type = None
            if self.query_type:
                any_type = build_predicate(
                    name=self.query_name, source_id=self.query_source_id
                )
            infos, others = poll_resolver(self.predicate, deadline, beside=any_type)
            if not infos:
                raise self._not_found(timeout, others)
            if len(infos) > 1:
                infos.sort(key=lambda i: i.created_at(), reverse=True)
                warnings.warn(
                    f"{len(infos)} LSL streams match {self.describe_query()}; using "
                    f"the newest, '{infos[0].name()}' on {infos[0].hostname()} "
                    f"(source_id {infos[0].source_id()!r}); pass a source_id to "
                    "choose",
                    stacklevel=2,
                )
            conn = self._connect(infos[0], self.connect_timeout_s, expect=None)
        except BaseException:
            self._set_state("stopped")
            raise
        self._adopt(conn)
        self.samples_received = 0
        self.reconnects = 0
        self.last_error = None
        self._last_ts = -math.inf
        self._held = None

    def _not_found(self, timeout: float, others: list[pylsl.StreamInfo]) -> SourceError:
        """Make the error of a search that found nothing within ``timeout`` s.

        ``others`` are the streams that match the query but for its type.
        """
        head = (
            f"no LSL stream matching {literal(self.describe_query())} found within "
            f"{timeout:g} s"
        )
        # (a stream of the type asked for that answered the first resolver too
        # late is no other type)
        asked = (self.query_type or "").translate(TO_LOWER)
        types = sorted(
            {i.type() for i in others if i.type().translate(TO_LOWER) != asked}
        )
        if types and self.query_type:
            if self.query_name:
                which = f"named {self.query_name!r}"
            else:
                which = f"with source_id {self.query_source_id!r}"
            if len(types) == 1:
                found = f"a stream {which} exists with type {types[0]!r}"
            else:
                listed = ", ".join(repr(t) for t in types)
                found = f"streams {which} exist with types {listed}"
            suggest = f"{{type}}={literal(repr(types[0]))} or " if types[0] else ""
            return SourceError(
                f'{head}; {literal(found)}; pass {suggest}{{type}}="" to match any '
                "type",
                params=("type",),
            )
        if self.query_type:
            return SourceError(
                f"{head}; start the stream (e.g. 'emomon replay'), check its "
                'name/type/source_id, or pass {type}="" to match any type',
                params=("type",),
            )
        return SourceError(
            f"{head}; start the stream (e.g. 'emomon replay') or check its "
            "name/source_id"
        )

    def close(self) -> None:
        """Stop reconnecting, destroy the inlet; state becomes ``"stopped"``."""
        with self._lock:
            self._closing = True
            self._reconnect_stop.set()
            thread, self._reconnect_thread = self._reconnect_thread, None
            self._conn = None  # the inlet is destroyed with its last reference
            self._pending = None
            self._held = None
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.connect_timeout_s + self.retry_interval_s + 1.0)
        with self._lock:
            self._pending = None
        self._set_state("stopped")

    # -- reading ----------------------------------------------------------------
    def read(self, timeout_s: float = 0.0, *, min_samples: int = 1) -> Chunk:
        """Read the samples that arrived since the last call, in µV on the LSL clock.

        Parameters
        ----------
        timeout_s : float, default 0.0
            Wait at most this long while fewer than ``min_samples`` are buffered.
        min_samples : int, default 1
            Return as soon as this many samples are there (capped at
            ``max_chunk``). Above 1 with a timeout, exactly this many are
            returned when they come in time (the rest stay queued for the next
            read); otherwise every sample already there is returned.

        Returns
        -------
        Chunk
            ``data`` (n_channels, n_times) float64 µV and ``timestamps``
            (n_times,); empty while reconnecting or stopped. Samples after a
            restart of the sender's clock come in the next chunk (returned by
            the next call, at once).
        """
        if self._held is not None:
            held, self._held = self._held, None
            return self._deliver(*held)
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None and not self._closing:
            self._adopt(pending)
            self.reconnects += 1
        conn = self._conn
        if conn is None:
            if timeout_s > 0 and self.state == "reconnecting":
                self._reconnect_stop.wait(min(timeout_s, self.retry_interval_s))
            return Chunk.empty(self.n_channels)

        data_parts: list[np.ndarray] = []
        ts_parts: list[np.ndarray] = []
        want = min(min_samples, self.max_chunk)
        try:
            if want > 1 and timeout_s > 0:
                # One pull that returns when the ``want``-th sample is there
                # (at once if it already is); samples after it stay queued for
                # the next read. Draining first and after, as a plain read
                # does, cost two more pulls a window (0.25 ms a hop, measured).
                self._pull_into(
                    conn, timeout_s, want, data_parts, ts_parts, drain=False
                )
            else:
                got = self._pull_into(conn, 0.0, self.max_chunk, data_parts, ts_parts)
                if got < want and timeout_s > 0:
                    if self._pull_into(
                        conn, timeout_s, want - got, data_parts, ts_parts, drain=False
                    ):
                        self._pull_into(conn, 0.0, self.max_chunk, data_parts, ts_parts)
            now = pylsl.local_clock()
            if now >= conn.next_clock_update:
                self._refresh_clock(conn, now)
        except _LostError:
            self._lost(
                conn, "the connection broke off (sender closed or crashed)", gone=True
            )
        else:
            if ts_parts:
                conn.last_data_at = pylsl.local_clock()
            elif (
                self.stall_timeout_s is not None
                and pylsl.local_clock() - conn.last_data_at > self.stall_timeout_s
            ):
                self._lost(conn, f"no data for {self.stall_timeout_s:g} s", gone=False)
        if not ts_parts:
            return Chunk.empty(self.n_channels)
        data = data_parts[0] if len(data_parts) == 1 else np.hstack(data_parts)
        ts = ts_parts[0] if len(ts_parts) == 1 else np.concatenate(ts_parts)
        ts += conn.offset
        if conn.scale is not None:
            data *= conn.scale[:, None]
        return self._deliver(data, ts)

    def _deliver(self, data: np.ndarray, ts: np.ndarray) -> Chunk:
        """Make ``ts`` non-decreasing and return the chunk, up to a clock restart.

        Up to a restart of the sender's clock: the samples from the restart on
        are held for the next :meth:`read`.
        """
        restarts = np.flatnonzero(np.diff(ts, prepend=self._last_ts) < -CLOCK_RESTART_S)
        floor = self._last_ts
        if restarts.size and restarts[0] == 0:  # a new time line: no floor
            floor, restarts = -math.inf, restarts[1:]
        if restarts.size:
            cut = int(restarts[0])
            self._held = (np.ascontiguousarray(data[:, cut:]), ts[cut:].copy())
            data, ts = np.ascontiguousarray(data[:, :cut]), ts[:cut].copy()
        np.maximum(ts, floor, out=ts)
        np.maximum.accumulate(ts, out=ts)
        self._last_ts = float(ts[-1])
        self.samples_received += ts.shape[0]
        return Chunk(data, ts)

    def _pull_into(
        self,
        conn: _Connection,
        timeout: float,
        max_samples: int,
        data_parts: list[np.ndarray],
        ts_parts: list[np.ndarray],
        *,
        drain: bool = True,
    ) -> int:
        """Pull (and, with ``drain``, repeat while full) into the buffer; copy out.

        Returns the number of samples pulled.
        """
        buf = conn.buffer
        total = 0
        for _ in range(_MAX_PULLS_PER_READ):
            _, stamps = conn.inlet.pull_chunk(
                timeout=timeout, max_samples=max_samples, dest_obj=buf, **_PULL_KW
            )
            n = len(stamps)
            if n == 0:
                break
            # (n, n_ch) in the stream's type -> a new (n_ch, n) float64 array
            data_parts.append(np.array(buf[:n].T, dtype=np.float64, order="C"))
            ts_parts.append(np.array(stamps, dtype=np.float64))
            total += n
            if n < max_samples or not drain:
                break
            timeout = 0.0
        return total

    def _refresh_clock(self, conn: _Connection, now: float) -> None:
        conn.next_clock_update = now + self.clock_update_s
        try:
            conn.offset = float(conn.inlet.time_correction(timeout=0.0))
        except _LSLTimeoutError:  # no new estimate yet: keep the current one
            return
        self.clock_offset = conn.offset

    # -- connection management --------------------------------------------------
    def _connect(
        self, info: pylsl.StreamInfo, timeout_s: float, *, expect: _Connection | None
    ) -> _Connection:
        """Open an inlet on ``info`` with bounded waits.

        Check it against ``expect`` (the lost stream) when given.
        """
        deadline = time.monotonic() + timeout_s
        where = f"LSL stream '{info.name()}' on {info.hostname()}"

        def left() -> float:
            return max(deadline - time.monotonic(), 0.0)

        inlet = pylsl.StreamInlet(
            info,
            max_buflen=max(1, math.ceil(self.max_buflen_s)),
            max_chunklen=0,
            recover=False,
        )
        try:
            full = inlet.info(timeout=left())
            n_ch = full.channel_count()
            sfreq = float(full.nominal_srate())
            fmt = full.channel_format()
            source_id = full.source_id()
            if fmt not in _NUMERIC_DTYPES:
                raise SourceError(
                    f"{where} carries non-numeric samples (channel format {fmt}); "
                    "expected EEG in a numeric format (float32 is usual)"
                )
            if not sfreq > 0:
                raise SourceError(
                    f"{where} has no regular sampling rate (nominal_srate "
                    f"{sfreq:g}); expected an EEG stream with a nominal rate"
                )
            labels = channel_fields(full, n_ch, "label")
            from_stream = all(labels)
            ch_names = tuple(lab or f"ch{i + 1}" for i, lab in enumerate(labels))
            units = channel_fields(full, n_ch, "unit")
            scales = []
            unconverted: dict[str, str] = {}
            for ch, unit in zip(ch_names, units, strict=True):
                factor = unit_scale_to_uv(unit)
                if factor is None:  # not a voltage: passed on as it is
                    unconverted[ch] = unit
                    factor = 1.0
                scales.append(factor)
            scale = None if all(s == 1.0 for s in scales) else np.asarray(scales)
            if expect is not None:
                self._check_same_layout(
                    where, source_id, n_ch, ch_names, sfreq, unconverted, expect
                )
            inlet.open_stream(timeout=left())
            offset = float(inlet.time_correction(timeout=left()))
        except _LSLTimeoutError:
            raise SourceError(
                f"{where} found but did not answer within {timeout_s:g} s "
                "(description, subscription or clock synchronisation)"
            ) from None
        except _LostError:
            raise SourceError(f"{where} vanished while connecting") from None
        now = pylsl.local_clock()
        return _Connection(
            inlet=inlet,
            name=full.name(),
            source_id=source_id,
            uid=full.uid(),
            hostname=full.hostname(),
            sfreq=sfreq,
            ch_names=ch_names,
            labels_from_stream=from_stream,
            scale=scale,
            unconverted=unconverted,
            buffer=np.empty((self.max_chunk, n_ch), dtype=_NUMERIC_DTYPES[fmt]),
            offset=offset,
            desc=flatten_desc(full),
            connected_at=now,
            last_data_at=now,
            next_clock_update=now + self.clock_update_s,
        )

    @staticmethod
    def _check_same_layout(
        where: str,
        source_id: str,
        n_ch: int,
        ch_names: tuple[str, ...],
        sfreq: float,
        unconverted: dict[str, str],
        expect: _Connection,
    ) -> None:
        what = f"{where} (source_id {source_id!r}) came back"
        tail = "; refusing it and waiting for a matching stream"
        if n_ch != len(expect.ch_names):
            raise _Refused(
                f"{what} with {n_ch} channels, expected {len(expect.ch_names)} "
                f"(channel count changed){tail}"
            )
        if expect.labels_from_stream and ch_names != expect.ch_names:
            i = next(
                k
                for k, (a, b) in enumerate(zip(ch_names, expect.ch_names, strict=True))
                if a != b
            )
            raise _Refused(
                f"{what} with different channel labels (channel {i + 1} is "
                f"{ch_names[i]!r}, expected {expect.ch_names[i]!r}){tail}"
            )
        if sfreq != expect.sfreq:
            raise _Refused(
                f"{what} at {sfreq:g} Hz, expected {expect.sfreq:g} Hz "
                f"(sampling rate changed){tail}"
            )
        # The pipeline checked the units of its channels against the first
        # connection: a channel it may read must not turn unconvertible.
        newly = [ch for ch in unconverted if ch not in expect.unconverted]
        if newly:
            ch = newly[0]
            raise _Refused(
                f"{what} with channel {ch!r} in unit {unconverted[ch]!r}, which "
                f"cannot be converted to microvolts (it was a voltage){tail}"
            )

    def _adopt(self, conn: _Connection) -> None:
        self._conn = conn
        self.name = conn.name
        self.ch_names = conn.ch_names
        self.sfreq = conn.sfreq
        self.clock_offset = conn.offset
        self.source_id = conn.source_id
        self.stream_uid = conn.uid
        self.stream_hostname = conn.hostname
        self.metadata = conn.desc
        self.unconverted_units = dict(conn.unconverted)
        self._set_state("connected")  # after a reconnect, clears last_error

    def _lost(self, conn: _Connection, reason: str, *, gone: bool) -> None:
        """Drop ``conn`` and start re-resolving the same source in the background.

        ``gone``: the connection broke (the outlet is destroyed), as opposed to a
        silent stream that may still exist.
        """
        self.last_error = (
            f"LSL stream '{conn.name}' (source_id {conn.source_id!r}) lost: {reason}; "
            "reconnecting"
        )
        # the same source: the lost stream's name and source_id (it matched the
        # query, so this only narrows it)
        try:
            predicate = build_predicate(
                name=conn.name,
                stream_type=self.query_type,
                source_id=conn.source_id or self.query_source_id,
            )
        except SourceError:  # a name XPath cannot quote: fall back to the query
            predicate = self.predicate
        with self._lock:
            if self._closing:
                return
            if self._conn is conn:
                self._conn = None
            self._set_state("reconnecting")
            self._reconnect_stop = stop = threading.Event()
            self._reconnect_thread = threading.Thread(
                target=self._reconnect_loop,
                args=(predicate, conn, gone, stop),
                name=f"emomon-lsl-reconnect-{conn.name}",
                daemon=True,
            )
            self._reconnect_thread.start()

    def _reconnect_loop(
        self, predicate: str, lost: _Connection, gone: bool, stop: threading.Event
    ) -> None:
        """Background: watch the resolver until a matching stream is connected."""
        refused: set[str] = set()
        now = time.monotonic()
        # a vanished stream stays in the resolver's results for forget_after
        skip_until: dict[str, float] = {}
        if gone:
            skip_until[lost.uid] = now + FORGET_AFTER_S + 0.5
        resolver = pylsl.ContinuousResolver(pred=predicate, forget_after=FORGET_AFTER_S)
        try:
            while not stop.is_set():
                for info in resolver.results():
                    if stop.is_set():
                        return
                    uid = info.uid()
                    if uid in refused or skip_until.get(uid, 0.0) > time.monotonic():
                        continue
                    try:
                        conn = self._connect(info, self.connect_timeout_s, expect=lost)
                    except _Refused as exc:
                        refused.add(uid)
                        self.last_error = str(exc)
                        continue
                    except SourceError as exc:
                        skip_until[uid] = time.monotonic() + _RETRY_BACKOFF_S
                        self.last_error = f"{exc}; still reconnecting"
                        continue
                    except Exception as exc:  # noqa: BLE001 - keep the thread alive
                        skip_until[uid] = time.monotonic() + _RETRY_BACKOFF_S
                        self.last_error = (
                            f"connecting to LSL stream '{info.name()}' failed "
                            f"({type(exc).__name__}: {exc}); still reconnecting"
                        )
                        continue
                    with self._lock:
                        if not stop.is_set():
                            self._pending = conn
                    return
                stop.wait(self.retry_interval_s)
        finally:
            del resolver
