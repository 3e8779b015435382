"""`emomon broker`: 3 publishers and 3 subscribers meet through it on 127.0.0.1,
and the ``emomon broker`` command line stops cleanly on SIGTERM and SIGINT.

Publishers connect (``PublisherSettings(connect=True)``), so a publisher cannot
tell when its connection is up; each keeps publishing consecutive ``seq`` until
every subscriber has heard from every stream, then a fixed number more. Every
subscriber must then hold, per stream, a gap-free run of ``seq`` ending at the
last one sent. All waits are bounded polls, no sleeps.
"""

from __future__ import annotations

import signal
import time

import pytest

from emomon.cli.broker import FLAGS as BROKER_FLAGS
from emomon.errors import EmomonError
from emomon.realtime.broker import Broker
from emomon.realtime.messages import PREDICTION_TOPIC
from emomon.realtime.publish import Publisher, PublisherSettings
from emomon.realtime.subscribe import Subscriber

from .helpers import assert_can_bind, free_tcp_port
from .helpers import fake_prediction as prediction

pytestmark = pytest.mark.integration

ANY_PORT = "tcp://127.0.0.1:*"


def drain(sub: Subscriber, got: dict[str, list[int]], wait_s: float) -> None:
    msg = sub.recv(timeout_s=wait_s)
    while msg is not None:
        got.setdefault(msg.stream, []).append(msg.seq)
        msg = sub.recv(timeout_s=0)


def test_three_publishers_three_subscribers():
    streams = ["s0", "s1", "s2"]
    with Broker(ANY_PORT, ANY_PORT) as broker:
        assert broker.running
        subs = [
            Subscriber(broker.backend_endpoint, topics=(PREDICTION_TOPIC,))
            for _ in range(3)
        ]
        pubs = [
            Publisher(PublisherSettings(address=broker.frontend_endpoint, connect=True))
            for _ in streams
        ]
        got: list[dict[str, list[int]]] = [{} for _ in subs]
        seq = 0
        try:
            # warm-up: publish until everyone hears from every stream
            deadline = time.monotonic() + 10.0
            for _ in range(10_000):
                if all(set(g) == set(streams) for g in got):
                    break
                assert time.monotonic() < deadline, "broker did not connect"
                for pub, name in zip(pubs, streams, strict=True):
                    pub.publish_prediction(prediction(seq, name))
                seq += 1
                for sub, g in zip(subs, got, strict=True):
                    drain(sub, g, 0.01)
            extra = 50
            for _ in range(extra):
                for pub, name in zip(pubs, streams, strict=True):
                    assert pub.publish_prediction(prediction(seq, name))
                seq += 1
            last = seq - 1
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and not all(
                g[s][-1] == last for g in got for s in streams
            ):
                for sub, g in zip(subs, got, strict=True):
                    drain(sub, g, 0.05)
            for g in got:
                for s in streams:
                    seqs = g[s]
                    assert seqs[-1] == last
                    assert seqs == list(range(seqs[0], last + 1)), s
                    assert len(seqs) >= extra
            for sub in subs:
                assert sub.missed[PREDICTION_TOPIC] == 0
        finally:
            for x in [*subs, *pubs]:
                x.close()
    assert not broker.running


def test_broker_stop_is_idempotent_and_checks_security():
    broker = Broker(ANY_PORT, ANY_PORT).start()
    broker.stop()
    broker.stop()
    assert not broker.running
    with pytest.raises(EmomonError) as err:
        Broker("tcp://0.0.0.0:*", ANY_PORT)
    assert "--insecure" in err.value.render(BROKER_FLAGS)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_cli_broker_stops_on_signal_and_frees_its_ports(emomon_cli, sig):
    """``emomon broker`` forwarding between a connected publisher and a
    subscriber stops on SIGTERM or SIGINT: exit 0 within 3 s, a last line,
    both ports free again."""
    front = f"tcp://127.0.0.1:{free_tcp_port()}"
    back = f"tcp://127.0.0.1:{free_tcp_port()}"
    proc = emomon_cli.start("broker", "--frontend", front, "--backend", back)
    with (
        Subscriber(back, topics=(PREDICTION_TOPIC,)) as sub,
        Publisher(PublisherSettings(address=front, connect=True)) as pub,
    ):
        # publish until one message made it through (the broker is up)
        got = None
        deadline = time.monotonic() + 20.0
        for seq in range(10_000):
            if got is not None or time.monotonic() > deadline:
                break
            pub.publish_prediction(prediction(seq, "through"))
            got = sub.recv(timeout_s=0.05)
        assert got is not None, proc.poll()
        assert got.stream == "through", proc.poll()
        t_signal = time.monotonic()
        proc.send_signal(getattr(signal, sig))
        _, err = emomon_cli.finish(proc, 10.0)
        took = time.monotonic() - t_signal
    assert proc.returncode == 0, err
    assert took < 3.0, took
    assert err.rstrip().endswith("emomon broker: stopped")
    assert "Traceback" not in err
    for address in (front, back):
        assert_can_bind(address)
