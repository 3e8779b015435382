"""liblsl's configuration, with liblsl's own console log turned down.

liblsl (the C library under pylsl) writes log lines of its own on stderr: two
``INFO`` lines when it loads its configuration (``Configuration loaded from
...`` or ``Loaded default config``, then its ``git:...`` build string) and
``ERR| Stream transmission broke off ...; re-connecting...`` when a sender
stops. In emomon's commands they cut into the status line and repeat what
emomon reports in its own words, so the commands that use LSL (``stream``,
``replay``, ``demo``) call :func:`quiet_liblsl` before anything loads liblsl.
This module imports nothing of pylsl: it must run first.

How liblsl reads its configuration
    (``src/api_config.cpp`` of liblsl 1.16 to 1.18) once per process, lazily,
    at the first call that needs it: creating a stream info, an outlet or a
    resolver, not ``import pylsl`` nor ``local_clock()`` (measured with
    liblsl 1.18: the two INFO lines appear at the first ``StreamInfo``). It
    reads the first readable file of :func:`config_candidates`: the file named
    by ``LSLAPICFG``, ``lsl_api.cfg`` in the working directory,
    ``~/lsl_api/lsl_api.cfg`` and ``/etc/lsl_api/lsl_api.cfg``; one it cannot
    parse is skipped with an error line; without any, its defaults.

The file's dialect
    (``src/util/inireader.cpp``) A line whose first character is ``;`` is a
    comment; one starting with ``[`` names the section (up to the first
    ``]``, not trimmed); any other non-blank line is ``key = value`` (both
    trimmed), stored as ``section.key``. Names are case-sensitive (``[Log]``
    or ``Level`` is not ``log.level``). A key set twice makes liblsl reject
    the whole file; a section header written twice does not.

The log level
    ``[log] level`` is a loguru verbosity: liblsl prints on stderr the messages
    at or below it, 0 ``INFO`` (the default), -1 ``WARN``, -2 ``ERR``, -3
    ``FATAL``. It accepts -3 to 9 and ignores a file with any other value
    entirely (loguru's "off", -9, cannot be set from a file: measured, the
    file's SessionID and peers are then lost too), so -3 (:data:`QUIET_LEVEL`)
    is the level that hides the ``ERR`` line. With ``[log] file`` set, liblsl
    logs to that file and nothing to stderr.

What :func:`quiet_liblsl` does
    It finds the file liblsl would read, as liblsl does, and writes a private
    copy (mode 0600, removed when the process exits) with ``level = -3`` added
    to its ``[log]`` section (or a ``[log]`` section added at the end), then
    points ``LSLAPICFG`` at the copy. Every other line stays as written, so
    a lab's ``KnownPeers``, ``SessionID``, ``ResolveScope`` and the rest keep
    applying. A file that sets ``[log] level`` or ``[log] file`` itself is
    honoured: nothing is changed (that is how to see liblsl's log again).
    Without any file, the copy holds only the ``[log]`` section.
"""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from emomon.errors import Notice, literal

__all__ = [
    "ENV_VAR",
    "QUIET_LEVEL",
    "ConfigFile",
    "config_candidates",
    "find_config",
    "parse_config",
    "quiet_config_text",
    "quiet_liblsl",
]

log = logging.getLogger(__name__)

#: The environment variable naming liblsl's configuration file.
ENV_VAR = "LSLAPICFG"
#: liblsl's ``[log] level`` that keeps only fatal errors (the lowest it accepts).
QUIET_LEVEL = -3

_WS = " \t\r\n"  # what liblsl's INI reader trims
_ENCODING = "latin-1"  # bytes <-> str one to one: the file is copied byte for byte
_written: Path | None = None  # this process's copy, once written


def config_candidates(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Return the files liblsl tries for its configuration, in its order.

    ``LSLAPICFG`` (when set), ``lsl_api.cfg`` (relative: the working directory
    when liblsl loads), ``~/lsl_api/lsl_api.cfg`` (``~`` from ``HOME``, else
    ``USERPROFILE``, else ``HOMEDRIVE`` + ``HOMEPATH``; left out without any)
    and ``/etc/lsl_api/lsl_api.cfg``.

    Parameters
    ----------
    environ : mapping, optional
        The environment (default ``os.environ``).

    Returns
    -------
    list of Path
    """
    env = os.environ if environ is None else environ
    out = []
    if ENV_VAR in env:
        out.append(Path(env[ENV_VAR]))
    out.append(Path("lsl_api.cfg"))
    home = env.get("HOME") or env.get("USERPROFILE")
    if not home and env.get("HOMEDRIVE") and env.get("HOMEPATH"):
        home = env["HOMEDRIVE"] + env["HOMEPATH"]
    if home:
        out.append(Path(home + "/lsl_api/lsl_api.cfg"))
    out.append(Path("/etc/lsl_api/lsl_api.cfg"))
    return out


def parse_config(text: str) -> dict[str, str]:
    """Read a liblsl configuration as liblsl's INI reader does.

    Parameters
    ----------
    text : str
        The file's content (lines end at a line feed; a carriage return
        before it is trimmed like other white space).

    Returns
    -------
    dict of str to str
        ``"section.key"`` -> value, case as written.

    Raises
    ------
    ValueError
        Where liblsl refuses the file: a section without ``]``, a line that is
        neither a comment nor ``key = value``, an empty key or value, a key set
        twice.
    """
    values: dict[str, str] = {}
    section = ""
    for nr, line in enumerate(text.split("\n"), 1):
        if line[:1] == ";" or not line.strip(_WS):
            continue
        if line[0] == "[":
            close = line.find("]")
            if close < 0:
                raise ValueError(f"line {nr}: no closing ] after [")
            section = line[1:close] + "."
            continue
        eq = line.find("=")
        if eq < 0:
            raise ValueError(
                f"line {nr}: neither key = value nor a comment (';' in column 1)"
            )
        # liblsl trims up to the '='; with '=' in column 1 it takes the whole line
        key = (line if eq == 0 else line[:eq]).strip(_WS)
        if not key:
            raise ValueError(f"line {nr}: empty key")
        if not line[eq + 1 :].strip(_WS):
            raise ValueError(f"line {nr}: empty value")
        name = section + key
        if name in values:
            raise ValueError(f"line {nr}: {name} is set twice")
        values[name] = line[eq + 1 :].strip(_WS)
    return values


@dataclass(frozen=True)
class ConfigFile:
    """The configuration liblsl would load (:func:`find_config`).

    Attributes
    ----------
    path : Path or None
        The file; None when liblsl would find none and use its defaults.
    text : str
        Its content, bytes decoded as latin-1 (one character per byte).
    values : dict of str to str
        What liblsl reads from it (:func:`parse_config`).
    """

    path: Path | None
    text: str
    values: Mapping[str, str]


def find_config(environ: Mapping[str, str] | None = None) -> ConfigFile:
    """Find the configuration file liblsl would load, as liblsl does.

    The first of :func:`config_candidates` that can be read and parsed. A file
    named by ``LSLAPICFG`` that cannot be read, and a file liblsl would refuse
    to parse, are skipped with a warning (on the ``emomon`` logger), as liblsl
    skips them with an error line of its own.

    Parameters
    ----------
    environ : mapping, optional
        The environment (default ``os.environ``).

    Returns
    -------
    ConfigFile
    """
    env = os.environ if environ is None else environ
    for i, path in enumerate(config_candidates(env)):
        named = i == 0 and ENV_VAR in env
        try:
            data = path.read_bytes()
        except OSError as exc:
            if named:
                log.warning(
                    Notice(
                        f"{ENV_VAR} names {literal(path)}, which cannot be read "
                        f"({literal(exc.strerror or exc)}); LSL uses the next "
                        "configuration file, or its defaults"
                    )
                )
            continue
        text = data.decode(_ENCODING)
        try:
            values = parse_config(text)
        except ValueError as exc:
            log.warning(
                Notice(
                    f"LSL configuration {literal(path)}, {literal(exc)}: liblsl "
                    "skips this file (a comment starts with ';')"
                )
            )
            continue
        return ConfigFile(path, text, values)
    return ConfigFile(None, "", {})


def quiet_config_text(config: ConfigFile, level: int = QUIET_LEVEL) -> str | None:
    """Return ``config``'s text with ``[log] level = level`` added.

    Parameters
    ----------
    config : ConfigFile
        From :func:`find_config`.
    level : int, default -3
        liblsl's log level (-3 to 9; -3 keeps only fatal errors).

    Returns
    -------
    str or None
        The text, every line of ``config`` kept as written: ``level`` added as
        the first line of its first ``[log]`` section, or a ``[log]`` section
        appended. None when ``config`` sets ``[log] level`` or ``[log] file``
        itself (honoured, nothing to add).
    """
    if "log.level" in config.values or "log.file" in config.values:
        return None
    text = config.text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line[:1] == "[" and line[1 : max(0, line.find("]"))] == "log":
            eol = "\r" if line.endswith("\r") else ""
            lines.insert(i + 1, f"level = {level}{eol}")
            return "\n".join(lines)
    eol = "\r\n" if "\r\n" in text else "\n"
    if text and not text.endswith("\n"):
        text += eol
    return f"{text}{eol if text else ''}[log]{eol}level = {level}{eol}"


def quiet_liblsl(
    *,
    level: int = QUIET_LEVEL,
    environ: MutableMapping[str, str] | None = None,
) -> Path | None:
    """Turn liblsl's console log down, keeping the rest of its configuration.

    Call it before anything in the process uses liblsl (liblsl reads its
    configuration once); the command line's LSL verbs call it first. Writes
    the configuration liblsl would load with ``[log] level`` set to ``level``
    to a private file removed at exit, and points ``LSLAPICFG`` at it. A
    configuration that sets ``[log] level`` or ``[log] file`` is left alone.
    Calling it again in the same process changes nothing.

    Parameters
    ----------
    level : int, default -3
        liblsl's log level for the console (-3: fatal errors only, which hides
        its INFO lines and ``ERR| Stream transmission broke off``).
    environ : mutable mapping, optional
        The environment to read and set (default ``os.environ``, which
        liblsl and child processes read).

    Returns
    -------
    Path or None
        The file written, or None when the user's configuration sets the log
        itself (``LSLAPICFG`` unchanged).
    """
    global _written
    env = os.environ if environ is None else environ
    if _written is not None and env.get(ENV_VAR) == str(_written):
        return _written
    config = find_config(env)
    text = quiet_config_text(config, level)
    if text is None:
        return None
    source = "liblsl's defaults" if config.path is None else str(config.path)
    head = f"; written by emomon: {source}, liblsl's console log at level {level}\n"
    fd, name = tempfile.mkstemp(prefix="emomon-lslcfg-", suffix=".cfg")
    path = Path(name)
    atexit.register(_remove, path)
    with os.fdopen(fd, "wb") as f:
        f.write(os.fsencode(head) + text.encode(_ENCODING))
    env[ENV_VAR] = str(path)
    _written = path
    return path


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
