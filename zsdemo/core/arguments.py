"""Checks of raw arguments from an untrusted caller (the web API), before anything uses them.

JSON carries more than the API's types promise: ``null`` where text is due, ``"5"`` or ``2.5``
where a whole number is, ``NaN``, ``Infinity``, a list of a million items. Each check returns the
value in the type the backend expects, or raises InputError naming the argument, what it must
be and what came instead: never a ``TypeError`` deep inside that would reach the caller as
"something went wrong".
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .errors import InputError

MAX_LIST_ITEMS = 10_000        # strategies, views, templates or sense choices sent as a list


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def text(value: Any, name: str, default: str = "") -> str:
    """A string (``None`` gives ``default``)."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise InputError(f"{name} must be text, not {type(value).__name__} ({_shown(value)}).")
    return value


def text_or_list(value: Any, name: str) -> str | list[str] | None:
    """Text, or a list of strings (``None`` stays None: the backend's default)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_LIST_ITEMS:
            raise InputError(f"{name}: {len(value):,} items; at most {MAX_LIST_ITEMS:,}.")
        if all(isinstance(v, str) for v in value):
            return list(value)
    raise InputError(f"{name} must be text or a list of strings, not {type(value).__name__} ({_shown(value)}).")


def text_or_mapping(value: Any, name: str) -> str | list[str] | dict[str, str] | None:
    """Text, a list of strings, or an object of string -> string (sense choices)."""
    if isinstance(value, dict):
        if len(value) > MAX_LIST_ITEMS:
            raise InputError(f"{name}: {len(value):,} items; at most {MAX_LIST_ITEMS:,}.")
        if all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return dict(value)
        raise InputError(f"{name} must map text to text (class name -> sense), like {{'crane': 'crane.n.04'}}.")
    return text_or_list(value, name)


def flag(value: Any, name: str, default: bool = False) -> bool:
    """True or False (``None`` gives ``default``); "false" is not False, so text is refused."""
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false, not {type(value).__name__} ({_shown(value)}).")
    return value


def whole_number(value: Any, name: str, low: int, high: int, default: int | None = None) -> int | None:
    """A whole number in [low, high]; 3.0 is 3, while 2.5, NaN, infinities, text and booleans
    are refused (``None`` gives ``default``)."""
    if value is None:
        return default
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and isinstance(value, float):
        ok = math.isfinite(value) and value.is_integer()
    if not ok or not low <= value <= high:
        raise InputError(f"{name} must be a whole number from {low} to {high} (got {_shown(value)}).")
    return int(value)


def number(value: Any, name: str, default: float) -> float:
    """A finite number; text that reads as one ("0.4", from a command line or a form) is taken,
    while NaN, infinities, booleans and other text are refused (``None`` gives ``default``)."""
    if value is None:
        return default
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InputError(f"{name} must be a number (got {_shown(value)}).") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number (got {_shown(value)}).")
    return float(value)


def items(value: Any, name: str, limit: int) -> Sequence[Any]:
    """A list of at most ``limit`` items (``None`` is an empty list), counted before it is read."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise InputError(f"{name} must be a list, not {type(value).__name__}.")
    if len(value) > limit:
        raise InputError(f"{len(value):,} {name} given; at most {limit} are allowed per request. "
                         "Send them in smaller groups.")
    return value
