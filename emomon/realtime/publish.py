"""Publish predictions and status over ZeroMQ, and optionally as an LSL stream.

:class:`Publisher` binds a ZeroMQ **XPUB** socket (DESIGN.md section 10). An XPUB
behaves like PUB for subscribers, with one addition the publisher needs: it sees
every subscription. That gives two properties:

- *Late joiners see the state at once.* When a subscriber subscribes to the status
  topic (or a prefix of it, such as everything), the publisher re-sends the latest
  status message of every stream immediately, instead of leaving the newcomer
  without a state for up to a heartbeat. ZeroMQ cannot address one subscriber, so
  the re-send reaches all status subscribers; it keeps its ``seq``, so the others
  see (and :class:`~emomon.realtime.subscribe.Subscriber` drops) a duplicate.
  The stream description (``emomon.meta.v1``, sent once when a run starts) is
  kept and re-sent the same way, before the status, to every new subscriber
  of its topic: a viewer that connects an hour later draws its scalp map at
  once. A subscription is seen directly and through ``emomon broker`` (whose
  backend passes every subscription on); a forwarder that passes on only the
  first subscription to a topic would hide later joiners.
- *No slow-joiner guesswork in tests and tools*: a subscription notification
  means the subscriber's connection is up and messages sent from then on reach it.

The publisher never blocks its caller (the pipeline): every send uses
``zmq.NOBLOCK``. What happens when a subscriber does not keep up is ZeroMQ's
per-subscriber high-water mark (``sndhwm`` messages queued per subscriber, plus
the kernel socket buffers):

- default (``nodrop=False``): messages beyond the HWM are dropped for *that*
  subscriber only; everyone else keeps receiving everything. The publisher cannot
  see these drops; the slow subscriber sees them as ``seq`` gaps.
- ``nodrop=True`` (``ZMQ_XPUB_NODROP``): a send is refused (``zmq.Again``) while
  *any* matching subscriber's queue is full; the message is then dropped for
  everyone and counted in :attr:`Publisher.dropped`. One stuck subscriber then
  stalls all of them, which is why it is not the default.

Binding is to loopback unless stated otherwise: EEG-derived data is health data,
so a non-loopback address needs CurveZMQ (``curve_secret_key`` and
``curve_allowed_dir``, see :mod:`emomon.realtime.security`) or an explicit
``insecure=True`` (``allow_remote=True`` is the older spelling of it). Curve may
be used on loopback too. With ``connect=True`` the publisher connects to an
``emomon broker`` frontend instead of binding.

The publisher is not thread-safe: create, use and close it in one thread.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import zmq

from emomon.errors import ConfigError, EmomonError, Notice, literal
from emomon.realtime._timer import StatusTimer
from emomon.realtime.lsloutlet import LSLPredictionOutlet
from emomon.realtime.messages import (
    DEFAULT_ADDRESS,
    META_TOPIC,
    PREDICTION_TOPIC,
    STATUS_TOPIC,
    MessageError,
    MetaMessage,
    PredictionMessage,
    StatusMessage,
    encode,
    validate,
)
from emomon.realtime.security import (
    CurveServer,
    apply_client_keys,
    apply_server_keys,
)
from emomon.realtime.sinks import Sink

__all__ = [
    "DEFAULT_ADDRESS",
    "LSLPredictionOutlet",
    "Publisher",
    "PublisherSettings",
    "PublisherStats",
    "StatusTimer",
    "check_curve_settings",
    "is_loopback_address",
]

log = logging.getLogger(__name__)

_STATUS_BYTES = STATUS_TOPIC.encode("ascii")
_META_BYTES = META_TOPIC.encode("ascii")
#: Topics whose latest message per stream is kept and re-sent to newcomers, in
#: re-send order (the description before the state).
_KEPT = (_META_BYTES, _STATUS_BYTES)
_SUBSCRIBE, _UNSUBSCRIBE = 1, 0


def _split_tcp(address: str) -> tuple[str, str]:
    """Host and port of a ``tcp://host:port`` address (brackets removed)."""
    rest = address.partition("://")[2]
    host, sep, port = rest.rpartition(":")
    if not sep:
        return rest, ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def is_loopback_address(address: str) -> bool:
    """Whether binding ``address`` keeps the socket reachable from this host only.

    Parameters
    ----------
    address : str
        A ZeroMQ endpoint such as ``tcp://127.0.0.1:5556``.

    Returns
    -------
    bool
        True for ``tcp://`` on a loopback IP or ``localhost``, and for the
        host-local transports ``ipc://`` and ``inproc://``. False for wildcards
        (``*``, ``0.0.0.0``), interface names, other hosts and other transports.
    """
    transport, sep, _ = address.partition("://")
    if not sep:
        return False
    if transport in ("ipc", "inproc"):
        return True
    if transport != "tcp":
        return False
    host, _ = _split_tcp(address)
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class PublisherSettings:
    """How the prediction publisher binds and queues.

    Attributes
    ----------
    address : str
        ZeroMQ endpoint to bind. A port of ``*`` picks a free one (read it back
        from :attr:`Publisher.endpoint`). Default ``tcp://127.0.0.1:5556``.
    allow_remote : bool
        Older spelling of ``insecure``. Default False.
    curve_secret_key : str, optional
        Secret key file of this server (``server.key_secret``, from
        ``emomon keys``); with ``connect=True`` the client's secret key file.
    curve_allowed_dir : str, optional
        Directory of the allowed subscribers' public ``*.key`` files (bind only).
    curve_server_key : str, optional
        The broker's public key file (``connect=True`` with Curve only).
    insecure : bool
        Permit a non-loopback address without Curve (unencrypted; warns once on
        stderr). Default False.
    connect : bool
        Connect to ``address`` (an ``emomon broker`` frontend) instead of binding
        it. Default False.
    sndhwm : int
        Messages queued per subscriber before ZeroMQ drops (or, with ``nodrop``,
        refuses) more; 0 means unlimited (not recommended). Default 1000: at four
        predictions and one status a second, a subscriber may stall for about
        three minutes per stream before it loses messages.
    sndbuf : int
        Kernel send buffer per connection in bytes; 0 keeps the OS default.
    nodrop : bool
        Use ``ZMQ_XPUB_NODROP``: refuse a message for everyone while any
        subscriber's queue is full, and count it in :attr:`Publisher.dropped`.
        Default False (drop only for the slow subscriber).
    heartbeat_s : float
        Interval of :meth:`Publisher.maybe_heartbeat` status messages.
    validate : bool
        Check every payload against the wire schema before sending (a few
        microseconds). Default True.
    """

    address: str = DEFAULT_ADDRESS
    allow_remote: bool = False
    sndhwm: int = 1000
    sndbuf: int = 0
    nodrop: bool = False
    heartbeat_s: float = 1.0
    validate: bool = True
    curve_secret_key: str | None = None
    curve_allowed_dir: str | None = None
    curve_server_key: str | None = None
    insecure: bool = False
    connect: bool = False

    @property
    def curve(self) -> bool:
        """Whether CurveZMQ is configured."""
        return self.curve_secret_key is not None

    def __post_init__(self) -> None:
        if not isinstance(self.address, str) or "://" not in self.address:
            raise ConfigError(
                f"publisher address {self.address!r} is not a ZeroMQ endpoint; "
                f"use e.g. {DEFAULT_ADDRESS}"
            )
        for name in ("sndhwm", "sndbuf"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"publisher {name} must be an integer >= 0")
        if not (isinstance(self.heartbeat_s, (int, float)) and self.heartbeat_s > 0):
            raise ConfigError("publisher heartbeat_s must be > 0")
        check_curve_settings(
            self.address,
            secret=self.curve_secret_key,
            allowed=self.curve_allowed_dir,
            server=self.curve_server_key,
            insecure=self.insecure or self.allow_remote,
            connect=self.connect,
        )


#: The PublisherSettings fields that the Curve rules name.
_CURVE_PARAMS = {
    name: name for name in ("curve_secret_key", "curve_allowed_dir", "curve_server_key")
}


def check_curve_settings(
    address: str,
    *,
    secret: object,
    allowed: object,
    server: object = None,
    insecure: bool = False,
    connect: bool = False,
) -> None:
    """Enforce the security rules of a bound (or connected) data socket.

    Loopback needs nothing; any other address needs Curve (bind: ``secret`` and
    ``allowed``; connect: ``secret`` and ``server``) unless ``insecure``.

    Raises
    ------
    ConfigError
        Naming the missing options.
    """
    where = literal(address)
    if connect:
        if allowed is not None:
            raise ConfigError(
                "{curve_allowed_dir} applies to a bound socket; a connecting "
                "publisher needs {curve_secret_key} (its own) and the broker's "
                "public key ({curve_server_key})",
                params=_CURVE_PARAMS,
            )
        if (secret is None) != (server is None):
            raise ConfigError(
                "a connecting publisher with Curve needs both its secret key file "
                "({curve_secret_key}) and the broker's public key file "
                "({curve_server_key})",
                params=_CURVE_PARAMS,
            )
        opts = "a client secret key ({curve_secret_key}) and {curve_server_key}"
    else:
        if server is not None:
            raise ConfigError(
                "{curve_server_key} applies only with {connect}",
                params={**_CURVE_PARAMS, "connect": "connect=True"},
            )
        if (secret is None) != (allowed is None):
            missing = "curve_allowed_dir" if allowed is None else "curve_secret_key"
            raise ConfigError(
                f"Curve on {where} needs both {{curve_secret_key}} and "
                f"{{curve_allowed_dir}}; {{{missing}}} is missing",
                params=_CURVE_PARAMS,
            )
        opts = (
            "{curve_secret_key} and {curve_allowed_dir} (generate with `emomon keys`)"
        )
    if secret is None and not insecure and not is_loopback_address(address):
        verb = "connecting to" if connect else "binding to"
        raise ConfigError(
            f"{verb} {where} needs {opts} or {{insecure}}: predictions are health "
            f"data; loopback ({DEFAULT_ADDRESS}) needs neither",
            params={
                **_CURVE_PARAMS,
                "insecure": "insecure=True (or allow_remote=True)",
            },
        )


_warned_insecure = False


def warn_insecure(address: str) -> None:
    """Log a warning, once per process, that ``address`` carries plain text.

    The message is a :class:`~emomon.errors.Notice` naming the ``insecure``
    parameter (``emomon stream`` and ``emomon broker`` print it on stderr as
    ``emomon: warning: ... (--insecure) ...``).

    Parameters
    ----------
    address : str
        The non-loopback address bound or connected to without CurveZMQ.
    """
    global _warned_insecure
    if not _warned_insecure:
        _warned_insecure = True
        log.warning(
            Notice(
                f"{literal(address)} is not loopback and not encrypted "
                "({insecure}): anyone on the network can read the predictions",
                params={"insecure": "insecure=True"},
            )
        )


@dataclass(frozen=True)
class PublisherStats:
    """Counters of a :class:`Publisher` (a snapshot).

    Attributes
    ----------
    sent : int
        Messages handed to ZeroMQ (including status re-sends).
    dropped : int
        Messages refused with ``zmq.Again`` (only with ``nodrop=True``).
    resent_status : int
        Status messages re-sent because a subscriber joined.
    resent_meta : int
        Stream descriptions re-sent because a subscriber joined.
    subscribe_events, unsubscribe_events : int
        Subscription notifications seen (one per subscriber and topic prefix;
        a disconnect unsubscribes).
    active_subscriptions : int
        Subscriptions currently held by connected subscribers.
    """

    sent: int
    dropped: int
    resent_status: int
    subscribe_events: int
    unsubscribe_events: int
    active_subscriptions: int
    resent_meta: int = 0


class Publisher(Sink):
    """ZeroMQ XPUB publisher of prediction and status messages.

    A :class:`~emomon.realtime.sinks.Sink` of the live loop.

    Parameters
    ----------
    settings : PublisherSettings, optional
        Address and queueing; default loopback ``tcp://127.0.0.1:5556``.
    context : zmq.Context, optional
        Context to create the socket in; default the process-wide instance
        (never terminated by the publisher).

    Raises
    ------
    EmomonError
        If the address cannot be bound (in use, malformed, unknown interface).

    Notes
    -----
    Call :meth:`publish_prediction` per hop and :meth:`maybe_heartbeat` every
    loop iteration (it also serves late joiners, via :meth:`poll_subscriptions`).
    Both return at once whatever the subscribers do. As a sink of
    :func:`~emomon.realtime.stream.run_stream` it publishes what the loop hands
    it, and :meth:`poll` serves late joiners; it is non-blocking, its queues
    being ZeroMQ's per-subscriber high-water marks (``sndhwm``).

    Examples
    --------
    >>> from emomon.realtime.publish import Publisher, PublisherSettings
    >>> with Publisher(PublisherSettings(address="tcp://127.0.0.1:*")) as pub:
    ...     pub.endpoint.startswith("tcp://127.0.0.1:")
    True
    """

    def __init__(
        self,
        settings: PublisherSettings | None = None,
        *,
        context: zmq.Context | None = None,
    ) -> None:
        self.settings = settings if settings is not None else PublisherSettings()
        s = self.settings
        self._own_ctx: zmq.Context | None = None
        self._auth: CurveServer | None = None
        if s.curve and not s.connect and context is None:
            # one ZAP authenticator per context: give this publisher its own
            context = self._own_ctx = zmq.Context()
        ctx = context if context is not None else zmq.Context.instance()
        try:
            if s.curve and not s.connect:
                assert s.curve_allowed_dir is not None
                self._auth = CurveServer(ctx, s.curve_allowed_dir)
            sock = ctx.socket(zmq.XPUB)
        except BaseException:
            self._close_security()
            raise
        try:
            if s.curve_secret_key is not None:
                if s.connect:
                    assert s.curve_server_key is not None
                    apply_client_keys(sock, s.curve_secret_key, s.curve_server_key)
                else:
                    apply_server_keys(sock, s.curve_secret_key)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, s.sndhwm)
            if s.sndbuf > 0:
                sock.setsockopt(zmq.SNDBUF, s.sndbuf)
            # Every subscribe and unsubscribe (also duplicates, and on disconnect)
            # is passed up, so each new subscriber is seen.
            sock.setsockopt(getattr(zmq, "XPUB_VERBOSER", zmq.XPUB_VERBOSE), 1)
            if s.nodrop:
                sock.setsockopt(zmq.XPUB_NODROP, 1)
            if s.address.startswith("tcp://["):
                sock.setsockopt(zmq.IPV6, 1)
            if s.connect:
                sock.connect(s.address)
                endpoint = s.address.encode()
            else:
                sock.bind(s.address)
                endpoint = sock.getsockopt(zmq.LAST_ENDPOINT)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            self._close_security()
            verb = "connect" if s.connect else "bind"
            raise EmomonError(
                f"cannot {verb} the prediction publisher to {literal(s.address)}: "
                f"{literal(exc.strerror)}; choose another address or port "
                "({address}), or stop the process that uses it",
                params=("address",),
            ) from None
        except BaseException:
            sock.close(linger=0)
            self._close_security()
            raise
        if not s.curve and not is_loopback_address(s.address):
            warn_insecure(s.address)
        self._sock: zmq.Socket | None = sock
        self._endpoint = endpoint.decode("utf-8", "replace")
        self._timer = StatusTimer(s.heartbeat_s)
        # The latest status and description per stream: {topic: {stream: frames}}.
        self._kept: dict[bytes, dict[str, list[bytes]]] = {t: {} for t in _KEPT}
        self._subscriptions: Counter[bytes] = Counter()
        self._in_multipart = False
        self._sent = 0
        self._dropped = 0
        self._resent = 0
        self._resent_meta = 0
        self._sub_events = 0
        self._unsub_events = 0

    # -- state -------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """The bound endpoint, with the actual port (``tcp://127.0.0.1:40123``)."""
        return self._endpoint

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._sock is None

    @property
    def dropped(self) -> int:
        """Messages refused because a subscriber queue was full (``nodrop``)."""
        return self._dropped

    @property
    def stats(self) -> PublisherStats:
        """A snapshot of the publisher's counters."""
        return PublisherStats(
            sent=self._sent,
            dropped=self._dropped,
            resent_status=self._resent,
            resent_meta=self._resent_meta,
            subscribe_events=self._sub_events,
            unsubscribe_events=self._unsub_events,
            active_subscriptions=sum(self._subscriptions.values()),
        )

    def has_subscribers(self, topic: str = PREDICTION_TOPIC) -> bool:
        """Whether a connected subscriber currently receives ``topic``.

        Only as fresh as the last :meth:`poll_subscriptions` (or publish) call.
        """
        t = topic.encode("ascii")
        return any(n > 0 and t.startswith(p) for p, n in self._subscriptions.items())

    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            raise RuntimeError("the publisher is closed")
        return self._sock

    # -- subscriptions -------------------------------------------------------------
    def poll_subscriptions(self, timeout_s: float = 0.0) -> int:
        """Handle pending subscription notifications; never blocks by default.

        A new subscription to the status topic (or to a prefix of it) re-sends
        the latest status message of every stream; one to the meta topic, the
        latest description of every stream.

        Parameters
        ----------
        timeout_s : float
            Wait up to this long for a first notification (0: do not wait).

        Returns
        -------
        int
            Number of subscribe/unsubscribe notifications handled.
        """
        return self._drain(timeout_s)

    def _drain(self, timeout_s: float, *, fresh: bytes | None = None) -> int:
        """Handle subscriptions; re-send kept messages to newcomers.

        ``fresh``: a kept topic whose new message is about to be sent (its
        old one is not re-sent).
        """
        sock = self._socket()
        if timeout_s > 0:
            if not sock.poll(max(1, math.ceil(timeout_s * 1000))):
                return 0
        elif not sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            return 0  # the common case, without raising zmq.Again
        handled = 0
        wanted: set[bytes] = set()
        while True:
            try:
                frame = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            more = bool(sock.getsockopt(zmq.RCVMORE))
            part_of_message, self._in_multipart = self._in_multipart, more
            if part_of_message or more or not frame:
                continue  # not a subscription (an XSUB peer's own message)
            kind, prefix = frame[0], frame[1:]
            if kind == _SUBSCRIBE:
                self._subscriptions[prefix] += 1
                self._sub_events += 1
                handled += 1
                wanted.update(t for t in _KEPT if t.startswith(prefix))
            elif kind == _UNSUBSCRIBE:
                if self._subscriptions[prefix] > 1:
                    self._subscriptions[prefix] -= 1
                else:
                    self._subscriptions.pop(prefix, None)
                self._unsub_events += 1
                handled += 1
        for topic in _KEPT:
            if topic not in wanted or topic == fresh:
                continue
            for frames in self._kept[topic].values():
                if self._send(frames):
                    if topic == _STATUS_BYTES:
                        self._resent += 1
                    else:
                        self._resent_meta += 1
        return handled

    # -- publishing ---------------------------------------------------------------
    def _send(self, frames: Sequence[bytes]) -> bool:
        try:
            self._socket().send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            self._dropped += 1
            return False
        self._sent += 1
        return True

    def _encode(
        self,
        topic: str,
        payload: Mapping[str, Any] | PredictionMessage | StatusMessage | MetaMessage,
    ) -> list[bytes]:
        if isinstance(payload, (PredictionMessage, StatusMessage, MetaMessage)):
            payload = payload.to_dict()
        if self.settings.validate:
            try:
                validate(topic, payload)
            except MessageError as exc:
                raise ValueError(f"invalid {topic} payload: {exc}") from None
        return encode(topic, payload)

    def publish_prediction(
        self, payload: Mapping[str, Any] | PredictionMessage
    ) -> bool:
        """Send one prediction message without blocking.

        Parameters
        ----------
        payload : PredictionMessage or mapping
            The message, or a payload built by
            :func:`~emomon.realtime.messages.prediction_message`.

        Returns
        -------
        bool
            True if ZeroMQ queued it, False if it was refused (counted in
            :attr:`dropped`; only possible with ``nodrop=True``).

        Raises
        ------
        ValueError
            If ``validate`` is on and the payload breaks the wire schema.
        """
        frames = self._encode(PREDICTION_TOPIC, payload)
        self._drain(0.0)
        return self._send(frames)

    def publish_status(self, payload: Mapping[str, Any] | StatusMessage) -> bool:
        """Send a status message without blocking and keep it for late joiners.

        Parameters
        ----------
        payload : StatusMessage or mapping
            The message, or a payload built by
            :func:`~emomon.realtime.messages.status_message`.

        Returns
        -------
        bool
            True if ZeroMQ queued it.
        """
        return self._publish_kept(STATUS_TOPIC, payload)

    def publish_meta(self, payload: Mapping[str, Any] | MetaMessage) -> bool:
        """Send a stream description without blocking and keep it for late joiners.

        Parameters
        ----------
        payload : MetaMessage or mapping
            The description (:func:`~emomon.realtime.meta.describe`).

        Returns
        -------
        bool
            True if ZeroMQ queued it.
        """
        return self._publish_kept(META_TOPIC, payload)

    def _publish_kept(
        self, topic: str, payload: Mapping[str, Any] | StatusMessage | MetaMessage
    ) -> bool:
        frames = self._encode(topic, payload)
        if isinstance(payload, (StatusMessage, MetaMessage)):
            stream = payload.stream
        else:
            stream = str(payload["stream"])
        # Newcomers get this fresh message below; no need to re-send the old one.
        self._drain(0.0, fresh=frames[0])
        self._kept[frames[0]][stream] = frames
        return self._send(frames)

    # -- the Sink interface --------------------------------------------------------
    nonblocking = True

    @property
    def name(self) -> str:
        """``"zeromq"`` in stream summaries."""
        return "zeromq"

    def on_prediction(self, message: PredictionMessage, window: Any) -> None:
        """Publish a prediction of the live loop."""
        self.publish_prediction(message)

    def on_status(self, message: StatusMessage) -> None:
        """Publish a status of the live loop (kept for late joiners)."""
        self.publish_status(message)

    def on_meta(self, message: MetaMessage) -> None:
        """Publish the run's description (kept for late joiners)."""
        self.publish_meta(message)

    def poll(self) -> None:
        """Serve late joiners (re-send the latest description and status).

        Never blocks.
        """
        self.poll_subscriptions(0.0)

    def maybe_heartbeat(
        self,
        build_status: Callable[[], Mapping[str, Any]],
        *,
        now: float | None = None,
    ) -> bool:
        """Serve new subscribers and publish a status when the heartbeat is due.

        Call it on every pipeline loop iteration; it returns at once.

        Parameters
        ----------
        build_status : callable
            Returns a fresh status payload; called only when a heartbeat is due.
        now : float, optional
            Monotonic time in seconds (default :func:`time.monotonic`).

        Returns
        -------
        bool
            Whether a status message was published.
        """
        if self._timer.due(now):
            self.publish_status(build_status())
            return True
        self._drain(0.0)
        return False

    # -- lifecycle ----------------------------------------------------------------
    def close(self) -> None:
        """Close the socket at once (``linger=0``: queued messages are discarded).

        Idempotent.
        """
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        self._close_security()

    def _close_security(self) -> None:
        if self._auth is not None:
            self._auth.close()
            self._auth = None
        if self._own_ctx is not None:
            self._own_ctx.term()
            self._own_ctx = None

    def __repr__(self) -> str:
        state = "closed" if self.closed else self._endpoint
        return f"Publisher({state}, sent={self._sent}, dropped={self._dropped})"
