"""Exception types that the CLI turns into exit code 2 with a one-line message.

Anything raised from these classes is a problem with the user's input (a file, a
directory, an argument, a config value): the message must name the culprit and say
what to do. Everything else is a bug and exits 1.

Library code names its own parameters (``hop_s``, ``data_dir``), never command-line
flags: a message that names a parameter writes it as a ``{field}`` of the message
and lists it in ``params``. ``str(error)`` shows the library's name; a caller that
knows the parameter by another name (the CLI's ``--hop``) renders the message with
:meth:`EmomonError.render`.

Examples
--------
>>> err = ConfigError("{hop_s} must be > 0, got 0", params=("hop_s",))
>>> str(err)
'hop_s must be > 0, got 0'
>>> err.render({"hop_s": "--hop"})
'--hop must be > 0, got 0'

A value written into such a template (a path, an address) goes through
:func:`literal`, so that its braces stay text.

Warnings follow the same rule: the library logs them to the ``emomon`` loggers
(it never prints) with a :class:`Notice` as the message, whose ``str`` names the
library's parameters and whose :meth:`Notice.render` takes the caller's names.

>>> Notice("not encrypted ({insecure})", params={"insecure": "insecure=True"})
Notice('not encrypted (insecure=True)')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class _Template:
    """A one-line message whose ``{name}`` fields are the parameters it names."""

    template: str
    params: dict[str, str]

    def _set_template(
        self, message: str, params: Sequence[str] | Mapping[str, str]
    ) -> None:
        self.template = message
        self.params = (
            dict(params) if isinstance(params, Mapping) else {p: p for p in params}
        )

    def render(self, names: Mapping[str, str] | None = None) -> str:
        """Return the message, each parameter named as in ``names`` where it is there.

        Line breaks in the message (a file's damaged names quoted in it) become
        spaces: an error is one line.

        Parameters
        ----------
        names : mapping of str to str, optional
            Parameter -> the name the caller knows it by (a CLI flag).

        Returns
        -------
        str
            The one-line message.
        """
        text = self.template
        if self.params:
            names = names or {}
            text = text.format_map({p: names.get(p, t) for p, t in self.params.items()})
        # One line whatever the message quotes (a damaged file's field names).
        return " ".join(text.splitlines())


class EmomonError(_Template, Exception):
    """Base class of input and usage errors (CLI exit code 2).

    Parameters
    ----------
    message : str
        One line. With ``params``, a template whose ``{name}`` fields are the
        parameters it names (other braces doubled, as for :meth:`str.format`).
    params : sequence of str or mapping of str to str, optional
        The parameters the message names; a mapping gives the text shown for
        each where it is not the parameter's own name (``{"no_cache":
        "cache_dir=None"}``).
    """

    def __init__(
        self,
        message: str = "",
        *,
        params: Sequence[str] | Mapping[str, str] = (),
    ) -> None:
        self._set_template(message, params)
        super().__init__(self.render())


class Notice(_Template):
    """A one-line warning that names parameters: the message of a log record.

    Parameters
    ----------
    message : str
        One line; with ``params``, a template as for :class:`EmomonError`.
    params : sequence of str or mapping of str to str, optional
        The parameters the message names, as for :class:`EmomonError`.

    Notes
    -----
    ``str(notice)`` (and so ``LogRecord.getMessage()``) names the library's
    parameters; the command line renders it with its flags instead.
    """

    def __init__(
        self,
        message: str,
        *,
        params: Sequence[str] | Mapping[str, str] = (),
    ) -> None:
        self._set_template(message, params)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"Notice({self.render()!r})"


def literal(value: object) -> str:
    """``str(value)`` with its braces doubled, for a message with ``params``.

    Parameters
    ----------
    value : object
        A value shown in the message (a path, an address).

    Returns
    -------
    str
        Text that :meth:`str.format` turns back into ``str(value)``.

    Examples
    --------
    >>> str(EmomonError(f"{literal('a{b}')}: {{out}}", params=("out",)))
    'a{b}: out'
    """
    return str(value).replace("{", "{{").replace("}", "}}")


class DatasetError(EmomonError):
    """A dataset directory or file is missing, truncated or in the wrong layout."""


class ConfigError(EmomonError):
    """A config file or value is invalid (unknown key, wrong type, out of range)."""


class ModelError(EmomonError):
    """A model file is not an emomon ONNX model or has an unsupported contract."""
