"""Headless Chromium for the dashboard's page: Debian's ``chromium`` through Playwright.

``playwright install`` downloads a browser build of its own and needs the
internet; Debian's package does not (``.ci/run`` installs it when missing).
Playwright drives it by path (``executable_path``). Used by the tests'
``browser`` fixture, ``benchmarks/bench_dashboard.py`` and
``benchmarks/tools/dashboard_screenshot.py``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

#: Where a Chromium may be, in order: ``$EMOMON_CHROMIUM``, then these on PATH.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
#: Chromium's flags for a container (no sandbox as root; /dev/shm may be small).
ARGS = ("--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu")


def find_chromium() -> Path | None:
    """The Chromium executable to drive, or None when there is none."""
    given = os.environ.get("EMOMON_CHROMIUM")
    if given:
        return Path(given) if Path(given).is_file() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def missing_reason() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if find_chromium() is None:
        return (
            "no Chromium found (apt-get install chromium, or set EMOMON_CHROMIUM "
            "to its path)"
        )
    return None


def launch(playwright: Any) -> Any:
    """A headless Chromium browser (Playwright ``Browser``)."""
    path = find_chromium()
    if path is None:
        raise RuntimeError(missing_reason() or "no Chromium")
    return playwright.chromium.launch(
        executable_path=str(path), headless=True, args=list(ARGS)
    )
