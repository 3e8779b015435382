"""``emomon dashboard``'s bad input: one line naming what to do, exit 2."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from emomon.cli import main
from emomon.dashboard.settings import DashboardSettings, is_loopback_host
from emomon.errors import ConfigError
from tests.realtime.helpers import free_tcp_port

NOBODY = "tcp://127.0.0.1:1"  # never contacted: these runs stop before receiving


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse
        rc = exc.code  # type: ignore[assignment]
    return rc, capsys.readouterr().err.strip().splitlines()


@pytest.mark.integration
def test_a_port_in_use_is_one_line_naming_it(capsys):
    with socket.socket() as taken:  # a real server on the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rc, err = _run(["dashboard", "--port", str(port), "--address", NOBODY], capsys)
    assert rc == 2
    assert err == [
        f"emomon: error: cannot serve the dashboard on 127.0.0.1:{port}: the port "
        "is in use (another `emomon dashboard`?); choose another --port or stop "
        "the process that uses it"
    ]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "labpc.local"])
def test_a_non_loopback_host_needs_insecure(capsys, host):
    rc, err = _run(["dashboard", "--host", host, "--address", NOBODY], capsys)
    assert rc == 2
    (line,) = err
    assert line.startswith(f"emomon: error: serving the dashboard on {host} needs ")
    assert "--insecure" in line
    assert "health data" in line
    # the explicit choice is accepted (nothing is bound here)
    assert DashboardSettings(host=host, insecure=True).host == host


def test_loopback_names():
    for host in ("127.0.0.1", "127.8.0.1", "localhost", "::1", "[::1]"):
        assert is_loopback_host(host), host
    for host in ("0.0.0.0", "", "::", "10.0.0.1", "example.org"):
        assert not is_loopback_host(host), host


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--port", "70000"], "argument --port: must be a port in 0-65535"),
        (["--history", "0"], "argument --history: must be a finite number > 0"),
        (["--address", "tcp://x"], "argument --address"),
        (["--allow-host", "a/b"], "--allow-host takes host names"),
        (["--curve-secret", "none.key_secret"], "Curve needs both --curve-secret"),
        (["--curve-secret", "none.key_secret", "--curve-server", "s.key"],
         "none.key_secret not found"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line(capsys, argv, needle):
    rc, err = _run(
        ["dashboard", "--address", NOBODY, "--port", str(free_tcp_port()), *argv],
        capsys,
    )
    assert rc == 2
    assert needle in err[-1]
    assert err[-1].startswith(("emomon: error: ", "emomon dashboard: error: "))


def test_settings_name_their_parameters():
    with pytest.raises(ConfigError) as err:
        DashboardSettings(port=70000)
    assert err.value.render({"port": "--port"}).startswith("--port must be a TCP port")
    with pytest.raises(ConfigError, match="max_points must be an integer >= 1"):
        DashboardSettings(max_points=0)


@pytest.mark.integration
def test_without_aiohttp_it_says_what_to_install():
    code = (
        "import sys; sys.modules['aiohttp'] = None\n"
        "from emomon.cli import main\n"
        f"raise SystemExit(main(['dashboard', '--address', '{NOBODY}']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "emomon: error: the dashboard needs aiohttp, which is not installed: "
        "pip install 'emomon[dashboard]'"
    ]
