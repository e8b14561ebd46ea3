"""Errors whose message is meant for the person using the tool, not for a developer.

A message says what was wrong and what to do. Where "what to do" differs between the command
line (a flag) and the web page (a box to fill in), the error carries both hints: the CLI shows
``for_cli()``, the page ``for_page()``, and ``str()`` is the message without either.
"""

from __future__ import annotations


class ZsdemoError(Exception):
    """Base class: the message says what was wrong and what to do about it."""

    def __init__(self, message: str = "", *, cli: str = "", page: str = ""):
        super().__init__(message)
        self.cli_hint = cli
        self.page_hint = page

    def __reduce__(self) -> tuple:
        # Pickled whole, hints and all: a ZeroGPU task hands its errors back from another process.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))

    def for_cli(self) -> str:
        return str(self) + self.cli_hint

    def for_page(self) -> str:
        return str(self) + self.page_hint


class InputError(ZsdemoError):
    """Bad class names, templates, strategy ids or settings."""


class ImageError(ZsdemoError):
    """An image that cannot be read or is refused by a limit."""


class ModelLoadError(ZsdemoError):
    """A model or its weights could not be loaded. ``reason`` is the cause in a few words, for
    a sentence such as "No model could be loaded (REASON): ..."; by default the message."""

    def __init__(self, message: str = "", *, cli: str = "", page: str = "", reason: str = ""):
        super().__init__(message, cli=cli, page=page)
        self.reason = reason or message


def _rebuild(cls: type, args: tuple, state: dict) -> ZsdemoError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error
