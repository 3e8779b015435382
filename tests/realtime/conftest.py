"""Realtime test setup: keep liblsl on this machine and apart from other runs.

liblsl reads its configuration once, lazily, at the first call that needs it, from
the file named by the ``LSLAPICFG`` environment variable if set (then
``./lsl_api.cfg``, ``~/lsl_api/lsl_api.cfg``, ``/etc/lsl_api/lsl_api.cfg``; see
liblsl's ``api_config.cpp`` and https://labstreaminglayer.readthedocs.io/info/
lslapicfg.html). This conftest is imported while pytest collects, before any
test creates an outlet or resolves a stream, and points ``LSLAPICFG`` at a
per-session file that

* resolves on this machine only (``ResolveScope = machine``: queries go to the
  ``MachineAddresses``, ``{127.0.0.1}``) plus a unicast query to
  ``KnownPeers = {127.0.0.1}``, so discovery works where multicast is filtered and
  nothing leaves the loopback interface;
* sets a unique ``SessionID``: liblsl outlets answer only queries of their own
  session, so concurrent test runs (other engineers on the same machine) and real
  lab streams never see each other, on top of the unique stream names per test;
* disables IPv6 and lowers liblsl's stderr log to errors;
* shortens ``UnicastMaxRTT``: with a machine-only or IPv4-only configuration,
  liblsl 1.18's one-shot ``resolve_byprop``/``resolve_bypred`` that finds
  nothing returns only after its timeout *plus* ``UnicastMaxRTT`` (5 s by
  default; measured here), which would slow down every "not found" resolve.
  (:class:`~emomon.realtime.sources.LSLSource` polls a continuous resolver
  instead and is not affected.)

Subprocesses started by the tests inherit the variable, hence the same session.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import uuid
from pathlib import Path

_SESSION = f"emomon-tests-{os.getpid()}-{uuid.uuid4().hex[:8]}"
_CFG_TEXT = f"""\
[ports]
IPv6 = disable

[multicast]
ResolveScope = machine

[lab]
KnownPeers = {{127.0.0.1}}
SessionID = {_SESSION}

[tuning]
UnicastMinRTT = 0.1
UnicastMaxRTT = 0.25

[log]
level = -2
"""


def _write_config() -> Path:
    fd, name = tempfile.mkstemp(prefix="emomon-lsl-", suffix=".cfg")
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(_CFG_TEXT)
    path = Path(name)
    atexit.register(path.unlink, missing_ok=True)
    return path


LSL_CONFIG = _write_config()
os.environ["LSLAPICFG"] = str(LSL_CONFIG)
