"""Prompt template sets (docs/METHODS.md §1) as plain format strings with exactly one ``{}``."""

from __future__ import annotations

from ..core.errors import InputError
from ..core.limits import LIMITS
from .open_clip_data import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES

PLACEHOLDER = "{}"


def _as_format_strings(templates) -> tuple[str, ...]:
    # open_clip ships templates as lambdas; calling each with the placeholder gives back the
    # format string, which is hashable, printable and usable as a cache key.
    return tuple(t(PLACEHOLDER) if callable(t) else str(t) for t in templates)


NAME_ONLY: tuple[str, ...] = (PLACEHOLDER,)
SINGLE: tuple[str, ...] = ("a photo of a {}.",)
CLIP7: tuple[str, ...] = _as_format_strings(SIMPLE_IMAGENET_TEMPLATES)
CLIP80: tuple[str, ...] = _as_format_strings(OPENAI_IMAGENET_TEMPLATES)



def fill(template: str, classname: str) -> str:
    # str.format would choke on class names or templates holding other braces.
    return template.replace(PLACEHOLDER, classname, 1)


def parse_templates(templates: list[str] | tuple[str, ...] | str | None) -> tuple[str, ...]:
    """Validate user templates: each non-empty line must hold exactly one ``{}``.

    A string is split on new lines (templates may contain commas, so commas never split).
    """
    if templates is None:
        return ()
    items = templates.splitlines() if isinstance(templates, str) else list(templates)
    cleaned: list[str] = []
    for raw in items:
        t = " ".join(str(raw).split())
        if not t:
            continue
        n = t.count(PLACEHOLDER)
        if n != 1:
            where = "has no" if n == 0 else f"has {n}"
            raise InputError(
                f"Template {t!r} {where} '{{}}' placeholder: each template needs exactly one '{{}}' "
                "where the class name goes, for example 'a photo of a {}.'"
            )
        if t not in cleaned:
            cleaned.append(t)
    if len(cleaned) > LIMITS.templates:
        raise InputError(
            f"{len(cleaned)} custom templates given; at most {LIMITS.templates} are allowed per request. "
            "Keep the ones that matter most."
        )
    return tuple(cleaned)
