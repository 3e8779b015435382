"""Rigs shared by the offline tests."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from emomon.offline.runreport import VOLATILE_FIELDS


def _without_volatile(text: str) -> dict:
    assert VOLATILE_FIELDS == ("created", "results.<protocol>.seconds")
    data = json.loads(text)
    assert isinstance(data.pop("created"), str)
    for result in data["results"].values():
        assert result.pop("seconds") >= 0
    return data


@pytest.fixture
def without_volatile() -> Callable[[str], dict]:
    """report.json's text -> its object minus VOLATILE_FIELDS (timing, moment)."""
    return _without_volatile
