"""Errors are one line that names the culprit, whatever the message quotes."""

from __future__ import annotations

import pytest

from emomon.errors import ConfigError, DatasetError, EmomonError, literal


@pytest.mark.parametrize("brk", ["\n", "\r\n", "\r", "\x0b", "\x85", "\u2028"])
def test_a_message_quoting_a_line_break_is_still_one_line(brk):
    """A damaged file can hold a line break in a name the message quotes (the
    reader fuzz found one in a DREAMER field name)."""
    err = DatasetError(f"DREAMER.mat: no field 'Data' (fields: {brk}ata, EEG)")
    assert str(err) == "DREAMER.mat: no field 'Data' (fields:  ata, EEG)"
    assert str(err).count("\n") == 0


def test_parameters_are_rendered_and_braces_of_values_stay_text():
    err = ConfigError(
        f"{literal('/data/{x}')}: {{cache_dir}} is a\nfile", params=("cache_dir",)
    )
    assert str(err) == "/data/{x}: cache_dir is a file"
    assert (
        err.render({"cache_dir": "--cache-dir"}) == "/data/{x}: --cache-dir is a file"
    )
    assert isinstance(err, EmomonError)
