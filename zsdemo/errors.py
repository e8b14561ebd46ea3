"""Errors whose message is meant for the person using the tool, not for a developer."""


class ZsdemoError(Exception):
    """Base class: the message says what was wrong and what to do about it."""


class InputError(ZsdemoError):
    """Bad class names, templates, strategy ids or settings."""


class ImageError(ZsdemoError):
    """An image that cannot be read or is refused by a limit."""


class ModelLoadError(ZsdemoError):
    """A model or its weights could not be loaded."""
