r"""CurveZMQ keys and authentication for remote subscribers (DESIGN.md section 10).

EEG-derived predictions are health data. The publisher (and ``emomon broker``)
binds to loopback by default; to serve other machines it acts as a CurveZMQ
*server*: traffic is encrypted, and only clients whose public key is in an
*allowed* directory may connect. Key files are ZeroMQ certificates as written by
:func:`zmq.auth.create_certificates`: ``NAME.key`` (public) and
``NAME.key_secret`` (public and secret).

Typical setup::

    emomon keys --out keys/server --name server
    emomon keys --out keys/clients --name client-alice   # on Alice's machine
    # copy keys/clients/client-alice.key (public only) to the allowed directory
    emomon stream ... --address tcp://0.0.0.0:5556 \
        --curve-secret keys/server/server.key_secret --curve-allowed keys/allowed
    emomon listen --address tcp://host:5556 \
        --curve-secret keys/clients/client-alice.key_secret \
        --curve-server keys/server/server.key
"""

from __future__ import annotations

import re
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from emomon.errors import EmomonError, literal
from emomon.realtime._closing import Closing

__all__ = [
    "CurveServer",
    "apply_client_keys",
    "apply_server_keys",
    "generate_keypair",
    "load_allowed_keys",
    "load_client_keys",
    "load_public_key",
    "load_server_keys",
]

_Z85_KEY = re.compile(rb"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def generate_keypair(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Write a new CurveZMQ key pair.

    Parameters
    ----------
    directory : str or Path
        Output directory (created if missing).
    name : str
        Base name: ``server`` or ``client-NAME`` by convention.

    Returns
    -------
    public_path, secret_path : Path
        ``directory/name.key`` (share it) and ``directory/name.key_secret``
        (keep it private; written with mode 0600).

    Raises
    ------
    EmomonError
        If the name is unusable, the pair exists already, or the directory
        cannot be written.
    """
    if not _NAME.match(name):
        raise EmomonError(
            f"key name {name!r} must be letters, digits, '-', '_' or '.' "
            "(e.g. server or client-alice)"
        )
    out = Path(directory)
    public, secret = out / f"{name}.key", out / f"{name}.key_secret"
    for path in (public, secret):
        if path.exists():
            raise EmomonError(
                f"{literal(path)} exists already; choose another {{name}} or "
                "{directory}, or delete the old pair",
                params=("name", "directory"),
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        pub_file, sec_file = zmq.auth.create_certificates(str(out), name)
        Path(sec_file).chmod(0o600)
    except OSError as exc:
        raise EmomonError(f"cannot write keys to {out}: {exc.strerror}") from None
    return Path(pub_file), Path(sec_file)


def _load(path: str | Path, *, need_secret: bool) -> tuple[bytes, bytes | None]:
    p = Path(path)
    what = "secret key file (NAME.key_secret)" if need_secret else "public key file"
    if not p.is_file():
        raise EmomonError(
            f"{what} {p} not found; generate a pair with `emomon keys --out DIR`"
        )
    try:
        public, secret = zmq.auth.load_certificate(p)
    except (OSError, ValueError):
        public, secret = None, None
    ok = public is not None and bool(_Z85_KEY.match(public))
    if need_secret:
        ok = ok and secret is not None and bool(_Z85_KEY.match(secret))
    if not ok:
        raise EmomonError(
            f"{what} {p} is corrupt or not a CurveZMQ certificate; "
            "regenerate it with `emomon keys`"
        )
    return public, secret  # type: ignore[return-value]


def load_server_keys(secret_file: str | Path) -> tuple[bytes, bytes]:
    """Public and secret key of a server certificate (``server.key_secret``).

    Raises
    ------
    EmomonError
        If the file is missing, corrupt, or holds no secret key (names the file).
    """
    public, secret = _load(secret_file, need_secret=True)
    assert secret is not None
    return public, secret


def load_client_keys(secret_file: str | Path) -> tuple[bytes, bytes]:
    """Public and secret key of a client certificate (``client-X.key_secret``).

    Raises
    ------
    EmomonError
        If the file is missing, corrupt, or holds no secret key (names the file).
    """
    return load_server_keys(secret_file)


def load_public_key(public_file: str | Path) -> bytes:
    """Read the public key of a certificate (``server.key``, for clients).

    Raises
    ------
    EmomonError
        If the file is missing or corrupt (names the file).
    """
    return _load(public_file, need_secret=False)[0]


def load_allowed_keys(directory: str | Path) -> list[bytes]:
    """Public keys of the allowed clients: every ``*.key`` file in ``directory``.

    Raises
    ------
    EmomonError
        If the directory is missing, holds no ``*.key`` file, or one is corrupt.
    """
    d = Path(directory)
    if not d.is_dir():
        raise EmomonError(
            f"allowed-clients directory {d} not found; put the clients' public "
            "NAME.key files there"
        )
    files = sorted(d.glob("*.key"))
    if not files:
        raise EmomonError(
            f"allowed-clients directory {d} holds no *.key file; copy the clients' "
            "public keys there (from `emomon keys --name client-NAME`)"
        )
    return [load_public_key(f) for f in files]


def apply_server_keys(sock: zmq.Socket, secret_file: str | Path) -> None:
    """Make ``sock`` a CurveZMQ server with the keys of ``secret_file``."""
    public, secret = load_server_keys(secret_file)
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)


def apply_client_keys(
    sock: zmq.Socket, secret_file: str | Path, server_public_file: str | Path
) -> None:
    """Make ``sock`` a CurveZMQ client of the server whose public key is given."""
    public, secret = load_client_keys(secret_file)
    server = load_public_key(server_public_file)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    sock.setsockopt(zmq.CURVE_SERVERKEY, server)


class CurveServer(Closing):
    """ZAP authenticator that admits only the clients in ``allowed_dir``.

    Starts a :class:`zmq.auth.thread.ThreadAuthenticator` on ``context``
    (one per context) configured with ``configure_curve(domain="*",
    location=allowed_dir)``; :meth:`close` stops it.

    Parameters
    ----------
    context : zmq.Context
        Context of the server sockets (use a private one: ZeroMQ allows a
        single authenticator per context).
    allowed_dir : str or Path
        Directory of allowed clients' public ``*.key`` files.

    Raises
    ------
    EmomonError
        If the directory is missing, empty or holds a corrupt key.
    """

    def __init__(self, context: zmq.Context, allowed_dir: str | Path) -> None:
        self.allowed_keys = load_allowed_keys(allowed_dir)
        self._auth: ThreadAuthenticator | None = ThreadAuthenticator(context)
        self._auth.start()
        self._auth.configure_curve(domain="*", location=str(allowed_dir))

    def close(self) -> None:
        """Stop the authenticator thread. Idempotent."""
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
