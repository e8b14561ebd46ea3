"""The one JSON reader for what users send: descriptors, attributes, class maps, saved contexts.

``json.loads`` recurses once per level of nesting, so ``[[[[...]]]]`` a few thousand levels deep
raises RecursionError (a crash, or a generic message) instead of a clear refusal. Here the depth
is counted first, in one pass over the text that never recurses, and past ``MAX_DEPTH`` the
caller gets one sentence naming what nested too deeply.
"""

from __future__ import annotations

from typing import Any

from .errors import InputError

MAX_DEPTH = 32      # the deepest of our formats (PerceptionCLIP's {attribute: {value: words}}) needs 2


def nesting_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (strings skipped, escapes honoured)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(text: str, what: str, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(text)``, or InputError saying what is wrong with ``what`` (e.g. "The descriptors")."""
    import json

    depth = nesting_depth(text)
    if depth > max_depth:
        raise InputError(f"{what}: the JSON nests too deeply ({depth:,} levels; at most {max_depth} are "
                         "allowed, and our formats need 2 or 3).")
    try:
        return json.loads(text)
    except ValueError as e:
        where = f" ({e.msg}, line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ""
        raise InputError(f"{what}: not valid JSON{where}.") from None
    except RecursionError:      # unreachable past the depth check; kept as the last guard
        raise InputError(f"{what}: the JSON nests too deeply.") from None
