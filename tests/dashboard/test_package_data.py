"""The page ships inside the package: a built wheel holds the page and the
vendored uPlot (version and licence), and the dashboard installed from it
serves them (no CDN, no internet)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from emomon.dashboard.server import STATIC_DIR

REPO = Path(__file__).resolve().parents[2]

VENDOR = STATIC_DIR / "vendor" / "uplot"
UPLOT_VERSION = "1.6.32"
SHIPPED = (
    "index.html",
    "dashboard.js",
    "panels.js",
    "dashboard.css",
    "vendor/uplot/uPlot.iife.min.js",
    "vendor/uplot/uPlot.min.css",
    "vendor/uplot/LICENSE",
    "vendor/uplot/VERSION",
    "vendor/uplot/README.md",
)

#: Run with the unpacked wheel first on sys.path: serve, fetch the library.
SERVE_FROM_WHEEL = """
import hashlib, sys, urllib.request
import emomon
from emomon.dashboard import Dashboard, DashboardSettings
assert emomon.__file__.startswith(sys.argv[1]), emomon.__file__
settings = DashboardSettings(address="tcp://127.0.0.1:1", port=0)
with Dashboard(settings).start() as dash:
    for name in ("static/vendor/uplot/uPlot.iife.min.js", ""):
        with urllib.request.urlopen(dash.url + name, timeout=10) as r:
            print(name or "page", r.status, hashlib.sha256(r.read()).hexdigest())
"""


def test_the_vendored_library_is_the_published_one():
    assert (VENDOR / "VERSION").read_text().strip() == UPLOT_VERSION
    js = (VENDOR / "uPlot.iife.min.js").read_text()
    assert js.startswith(f"/*! https://github.com/leeoniya/uPlot (v{UPLOT_VERSION}) */")
    licence = (VENDOR / "LICENSE").read_text()
    assert "The MIT License (MIT)" in licence
    assert "Leon Sorokin" in licence
    # the checksums in the vendor README are those of the files shipped
    readme = (VENDOR / "README.md").read_text()
    table = dict(re.findall(r"\| `([^`]+)` \| [^|]+ \| `([0-9a-f]{64})` \|", readme))
    assert set(table) == {"uPlot.iife.min.js", "uPlot.min.css", "LICENSE"}
    for name, digest in table.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest


@pytest.mark.integration
def test_an_installed_package_serves_the_page_and_its_library(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--no-build-isolation", "--wheel-dir", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("emomon-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for name in SHIPPED:
            assert f"emomon/dashboard/static/{name}" in names, name
        site = tmp_path / "site"
        z.extractall(site)
    served = subprocess.run(
        [sys.executable, "-c", SERVE_FROM_WHEEL, str(site)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": ""},
    )  # fmt: skip
    assert served.returncode == 0, served.stderr
    lib, page = served.stdout.split("\n")[:2]
    digest = hashlib.sha256((VENDOR / "uPlot.iife.min.js").read_bytes()).hexdigest()
    assert lib == f"static/vendor/uplot/uPlot.iife.min.js 200 {digest}"
    page_digest = hashlib.sha256((STATIC_DIR / "index.html").read_bytes()).hexdigest()
    assert page == f"page 200 {page_digest}"
    assert Path(site / "emomon" / "dashboard" / "static" / "index.html").is_file()
