"""liblsl's configuration with its console log turned down (``quiet_liblsl``).

The file search and the INI dialect are liblsl's (``src/api_config.cpp``,
``src/util/inireader.cpp``); these tests pin them on text, and check with a
real liblsl in a subprocess that the copy is what liblsl loads: nothing on
stderr, and the user's settings kept. What the commands print is in
``test_console.py``.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from emomon.realtime import lslconfig
from emomon.realtime.lslconfig import (
    ENV_VAR,
    QUIET_LEVEL,
    ConfigFile,
    config_candidates,
    find_config,
    parse_config,
    quiet_config_text,
    quiet_liblsl,
)

from .helpers import LIBLSL_LOG_MARKS, REPO, lsl_user_config, unique

ETC = Path("/etc/lsl_api/lsl_api.cfg")


@pytest.fixture(autouse=True)
def _fresh_module_state(monkeypatch):
    """Each test starts as a new process would: no copy written yet."""
    monkeypatch.setattr(lslconfig, "_written", None)


def _config(text: str, path: Path | None = None) -> ConfigFile:
    return ConfigFile(path, text, parse_config(text))


# -- where liblsl looks ------------------------------------------------------------
def test_candidates_follow_liblsl_order():
    env = {ENV_VAR: "/lab/lsl.cfg", "HOME": "/home/x"}
    assert config_candidates(env) == [
        Path("/lab/lsl.cfg"),
        Path("lsl_api.cfg"),
        Path("/home/x/lsl_api/lsl_api.cfg"),
        ETC,
    ]
    # '~' as liblsl expands it: HOME, else USERPROFILE, else HOMEDRIVE+HOMEPATH
    assert config_candidates({"USERPROFILE": "C:/Users/x"})[1] == Path(
        "C:/Users/x/lsl_api/lsl_api.cfg"
    )
    assert config_candidates({"HOMEDRIVE": "D:", "HOMEPATH": "/u"})[1] == Path(
        "D:/u/lsl_api/lsl_api.cfg"
    )
    assert config_candidates({}) == [Path("lsl_api.cfg"), ETC]


def test_find_config_takes_the_first_readable_parseable_file(
    tmp_path, monkeypatch, caplog
):
    if ETC.exists():
        pytest.skip(f"{ETC} exists on this machine")
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    env = {"HOME": str(home)}
    assert find_config(env) == ConfigFile(None, "", {})  # liblsl's defaults

    (home / "lsl_api").mkdir(parents=True)
    (home / "lsl_api" / "lsl_api.cfg").write_text("[lab]\nSessionID = home\n")
    assert find_config(env).values == {"lab.SessionID": "home"}
    Path("lsl_api.cfg").write_text("[lab]\nSessionID = cwd\n")
    assert find_config(env).path == Path("lsl_api.cfg")
    named = tmp_path / "named.cfg"
    named.write_text("[lab]\nSessionID = named\n")
    assert find_config({**env, ENV_VAR: str(named)}).path == named

    # a named file that cannot be read, or a file liblsl cannot parse: skipped,
    # as liblsl skips them, with a warning instead of liblsl's error line
    caplog.set_level(logging.WARNING, logger="emomon")
    missing = tmp_path / "missing.cfg"
    assert find_config({**env, ENV_VAR: str(missing)}).path == Path("lsl_api.cfg")
    Path("lsl_api.cfg").write_text("# not a comment for liblsl\n[lab]\n")
    assert find_config({**env, ENV_VAR: str(missing)}).values == {
        "lab.SessionID": "home"
    }
    warnings = [r.getMessage() for r in caplog.records]
    assert any(
        f"LSLAPICFG names {missing}, which cannot be read" in w for w in warnings
    )
    assert any(
        "lsl_api.cfg, line 1: neither key = value nor a comment" in w for w in warnings
    )


# -- liblsl's INI dialect ------------------------------------------------------------
def test_parse_config_reads_like_liblsl():
    text = (
        "; comment\n"
        "\n"
        "[lab]\r\n"
        "  KnownPeers = {127.0.0.1, 10.0.0.2}  \r\n"
        "SessionID=lab-7\n"
        "[Log]\n"  # a different section: names are case-sensitive
        "Level = 2\n"
        "[lab]\n"  # a section again is fine, a key again is not
        "ResolveScope = machine\n"
        "[tuning]\n"
        "=odd\n"  # liblsl's reader takes the whole line as the key
    )
    assert parse_config(text) == {
        "lab.KnownPeers": "{127.0.0.1, 10.0.0.2}",
        "lab.SessionID": "lab-7",
        "Log.Level": "2",
        "lab.ResolveScope": "machine",
        "tuning.=odd": "odd",
    }


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[log\nlevel = 1\n", "line 1: no closing ]"),
        ("# a comment?\n", "line 1: neither key = value nor a comment"),
        ("[lab]\n  ; indented\n", "line 2: neither key = value"),
        ("[lab]\n = x\n", "line 2: empty key"),
        ("[lab]\nSessionID =\n", "line 2: empty value"),
        ("[log]\nlevel = 1\n[log]\nlevel = 2\n", "line 4: log.level is set twice"),
    ],
)
def test_parse_config_refuses_what_liblsl_refuses(text, why):
    with pytest.raises(ValueError, match=why):
        parse_config(text)


# -- the quiet copy --------------------------------------------------------------------
def _without_inserted(text: str) -> str:
    lines = text.split("\n")
    return "\n".join(ln for ln in lines if ln.rstrip("\r") != f"level = {QUIET_LEVEL}")


def test_level_goes_into_the_log_section_keeping_every_line():
    text = (
        "[lab]\nSessionID = A\nKnownPeers = {127.0.0.1}\n\n"
        "[log]\n; keep this\nfile_x = y\n\n[tuning]\nUnicastMaxRTT = 0.25"
    )
    out = quiet_config_text(_config(text))
    assert out is not None
    assert out.count("[log]") == 1  # no second [log] section
    assert _without_inserted(out) == text  # the user's text, byte for byte
    values = parse_config(out)
    assert values["log.level"] == str(QUIET_LEVEL)
    assert values["lab.SessionID"] == "A"
    assert values["tuning.UnicastMaxRTT"] == "0.25"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "[log]\nlevel = -3\n"),
        ("[lab]\nSessionID = A\n", "[lab]\nSessionID = A\n\n[log]\nlevel = -3\n"),
        ("[lab]\nSessionID = A", "[lab]\nSessionID = A\n\n[log]\nlevel = -3\n"),
        ("[lab]\r\nA = 1\r\n", "[lab]\r\nA = 1\r\n\r\n[log]\r\nlevel = -3\r\n"),
        ("[log]\r\nLevel = 1\r\n", "[log]\r\nlevel = -3\r\nLevel = 1\r\n"),
        # [Log] is not liblsl's [log]: its level does not count
        ("[Log]\nlevel = 1\n", "[Log]\nlevel = 1\n\n[log]\nlevel = -3\n"),
    ],
)
def test_level_is_added_where_liblsl_reads_it(text, expected):
    out = quiet_config_text(_config(text))
    assert out == expected
    assert parse_config(out)["log.level"] == "-3"


@pytest.mark.parametrize("text", ["[log]\nlevel = 2\n", "[log]\nfile = lsl.log\n"])
def test_a_log_the_user_configured_is_honoured(text):
    assert quiet_config_text(_config(text)) is None


def test_quiet_liblsl_points_lslapicfg_at_a_private_copy(tmp_path):
    user = lsl_user_config(tmp_path / "lab.cfg", "lab-session")
    env = {ENV_VAR: str(user), "HOME": str(tmp_path)}
    path = quiet_liblsl(environ=env)
    try:
        assert path is not None
        assert env[ENV_VAR] == str(path)
        assert path.name.startswith("emomon-lslcfg-")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        text = path.read_text(encoding="latin-1")
        assert text.startswith(f"; written by emomon: {user}, ")
        values = parse_config(text)
        assert values == {**parse_config(user.read_text()), "log.level": "-3"}
        assert quiet_liblsl(environ=env) == path  # once per process
    finally:
        if path is not None:
            path.unlink()
    # a configuration with its own log level is left as it is
    honoured = tmp_path / "verbose.cfg"
    honoured.write_text("[log]\nlevel = 0\n")
    env = {ENV_VAR: str(honoured)}
    assert quiet_liblsl(environ=env) is None
    assert env == {ENV_VAR: str(honoured)}


# -- with a real liblsl --------------------------------------------------------------
_CHILD = """\
import sys
from emomon.realtime.lslconfig import quiet_liblsl
path = quiet_liblsl()
print(path)
print("pylsl" in sys.modules)
import pylsl
info = pylsl.StreamInfo(sys.argv[1], "EEG", 1, 100.0, "float32", sys.argv[1])
outlet = pylsl.StreamOutlet(info)
print(outlet.get_info().session_id())
"""


@pytest.mark.integration
def test_liblsl_loads_the_copy_quietly_and_it_is_removed_at_exit(tmp_path):
    """A real liblsl, which would print two INFO lines with the user's file as
    it is: nothing on stderr, the user's SessionID in force, and the copy gone
    once the process has exited."""
    session = unique("lab")
    user = lsl_user_config(tmp_path / "lab.cfg", session)
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, unique()],
        cwd=REPO,
        env={**os.environ, ENV_VAR: str(user)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    path, pylsl_loaded, session_id = proc.stdout.splitlines()
    assert pylsl_loaded == "False"  # the module runs before pylsl is imported
    assert session_id == session
    assert not Path(path).exists()
    assert not any(mark in proc.stdout for mark in LIBLSL_LOG_MARKS)
