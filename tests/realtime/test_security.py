"""CurveZMQ on real ZeroMQ sockets on 127.0.0.1 (random ports), and `emomon keys`.

No sleeps as synchronisation: the XPUB subscription notification tells when the
authorised subscriber is connected; every wait polls against a deadline.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from emomon.cli import build_parser
from emomon.cli import main as cli_main
from emomon.cli.stream import FLAGS as STREAM_FLAGS
from emomon.errors import EmomonError
from emomon.realtime.messages import PREDICTION_TOPIC
from emomon.realtime.publish import Publisher, PublisherSettings
from emomon.realtime.security import (
    generate_keypair,
    load_allowed_keys,
    load_client_keys,
    load_server_keys,
)
from emomon.realtime.subscribe import Subscriber

from .helpers import fake_prediction

pytestmark = pytest.mark.integration

ANY_PORT = "tcp://127.0.0.1:*"


def prediction(seq: int) -> dict:
    return fake_prediction(seq, "secure")


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    server_pub, server_sec = generate_keypair(tmp_path / "server", "server")
    alice_pub, alice_sec = generate_keypair(tmp_path / "clients", "client-alice")
    _, mallory_sec = generate_keypair(tmp_path / "others", "client-mallory")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    shutil.copy(alice_pub, allowed / alice_pub.name)
    return {
        "server_pub": server_pub,
        "server_sec": server_sec,
        "alice_sec": alice_sec,
        "mallory_sec": mallory_sec,
        "allowed": allowed,
    }


def test_unauthorised_gets_nothing_authorised_gets_every_seq(keys):
    settings = PublisherSettings(
        address=ANY_PORT,
        curve_secret_key=str(keys["server_sec"]),
        curve_allowed_dir=str(keys["allowed"]),
    )
    with Publisher(settings) as pub:
        good = Subscriber(
            pub.endpoint,
            topics=(PREDICTION_TOPIC,),
            curve_secret_key=keys["alice_sec"],
            curve_server_key=keys["server_pub"],
        )
        bad = Subscriber(
            pub.endpoint,
            topics=(PREDICTION_TOPIC,),
            curve_secret_key=keys["mallory_sec"],
            curve_server_key=keys["server_pub"],
        )
        plain = Subscriber(pub.endpoint, topics=(PREDICTION_TOPIC,))
        try:
            deadline = time.monotonic() + 5.0
            # the authorised one's topic and emomon.meta.v1 (every Subscriber's)
            while pub.stats.subscribe_events < 2 and time.monotonic() < deadline:
                pub.poll_subscriptions(timeout_s=0.05)
            assert pub.stats.subscribe_events == 2  # only the authorised one

            got: list[int] = []
            seq = 0
            end = time.monotonic() + 2.0
            for _ in range(10_000):
                if time.monotonic() >= end:
                    break
                assert pub.publish_prediction(prediction(seq))
                seq += 1
                msg = good.recv(timeout_s=0.02)
                if msg is not None:
                    got.append(msg.seq)
                assert bad.recv(timeout_s=0.01) is None
                assert plain.recv(timeout_s=0.01) is None
            deadline = time.monotonic() + 5.0
            while len(got) < seq and time.monotonic() < deadline:
                msg = good.recv(timeout_s=0.1)
                if msg is not None:
                    got.append(msg.seq)
            assert seq > 10
            assert got == list(range(seq))
            assert good.missed[PREDICTION_TOPIC] == 0
            assert bad.received[PREDICTION_TOPIC] == 0
            assert plain.received[PREDICTION_TOPIC] == 0
            assert pub.stats.subscribe_events == 2
        finally:
            for sub in (good, bad, plain):
                sub.close()


@pytest.mark.parametrize("address", ["tcp://0.0.0.0:*", "tcp://*:5556"])
def test_non_loopback_bind_needs_curve_or_insecure(address, keys):
    with pytest.raises(EmomonError) as err:
        PublisherSettings(address=address)
    text = err.value.render(STREAM_FLAGS)  # as `emomon stream` prints it
    for option in ("--curve-secret", "--curve-allowed", "--insecure", "emomon keys"):
        assert option in text
    assert "\n" not in text
    # the library's own text names the settings' fields
    for field in ("curve_secret_key", "curve_allowed_dir", "insecure=True"):
        assert field in str(err.value)
    # settings only: nothing is bound or sent on a non-loopback address
    assert PublisherSettings(address=address, insecure=True).insecure
    assert PublisherSettings(
        address=address,
        curve_secret_key=str(keys["server_sec"]),
        curve_allowed_dir=str(keys["allowed"]),
    ).curve
    with pytest.raises(EmomonError) as err:
        PublisherSettings(address=address, curve_secret_key=str(keys["server_sec"]))
    assert "--curve-allowed is missing" in err.value.render(STREAM_FLAGS)


def test_keys_verb_writes_loadable_pair(tmp_path, capsys):
    out = tmp_path / "k"
    assert cli_main(["keys", "--out", str(out), "--name", "server"]) == 0
    assert cli_main(["keys", "--out", str(out), "--name", "client-bob"]) == 0
    public, secret = load_server_keys(out / "server.key_secret")
    assert len(public) == 40
    assert len(secret) == 40
    assert load_client_keys(out / "client-bob.key_secret")[0] != public
    assert len(load_allowed_keys(out)) == 2
    assert (out / "server.key_secret").stat().st_mode & 0o077 == 0
    # a second run refuses to overwrite
    assert cli_main(["keys", "--out", str(out), "--name", "server"]) == 2
    assert "server.key exists already" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\xff garbage\n",
        b'public-key = "short"\nsecret-key = "short"\n',
    ],
)
def test_corrupt_key_file_names_it(tmp_path, content):
    bad = tmp_path / "server.key_secret"
    bad.write_bytes(content)
    with pytest.raises(EmomonError) as err:
        load_server_keys(bad)
    assert str(bad) in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(EmomonError, match="not found"):
        load_client_keys(tmp_path / "missing.key_secret")


def test_corrupt_allowed_key_fails_publisher_start(tmp_path, keys):
    (keys["allowed"] / "broken.key").write_text("not a certificate\n")
    settings = PublisherSettings(
        address=ANY_PORT,
        curve_secret_key=str(keys["server_sec"]),
        curve_allowed_dir=str(keys["allowed"]),
    )
    with pytest.raises(EmomonError, match="broken.key"):
        Publisher(settings)


def test_cli_security_options_are_wired():
    parser = build_parser()
    args = parser.parse_args(
        ["stream", "--model", "m.onnx", "--curve-secret", "s", "--curve-allowed", "d"]
    )
    assert (str(args.curve_secret), str(args.curve_allowed)) == ("s", "d")
    assert not args.insecure
    args = parser.parse_args(["listen", "--curve-secret", "a", "--curve-server", "b"])
    assert (str(args.curve_secret), str(args.curve_server)) == ("a", "b")
    args = parser.parse_args(["broker", "--insecure"])
    assert args.insecure
    assert args.frontend == "tcp://127.0.0.1:5559"
