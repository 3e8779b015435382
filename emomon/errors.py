"""Exception types that the CLI turns into exit code 2 with a one-line message.

Anything raised from these classes is a problem with the user's input (a file, a
directory, an argument, a config value): the message must name the culprit and say
what to do. Everything else is a bug and exits 1.
"""

from __future__ import annotations


class EmomonError(Exception):
    """Base class of input and usage errors (CLI exit code 2)."""


class DatasetError(EmomonError):
    """A dataset directory or file is missing, truncated or in the wrong layout."""


class ConfigError(EmomonError):
    """A config file or value is invalid (unknown key, wrong type, out of range)."""


class ModelError(EmomonError):
    """A model file is not an emomon ONNX model or has an unsupported contract."""
