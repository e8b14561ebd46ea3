"""The registry of strategies: every method a user can pick, in the order the page and tables list them.

A method is one module of this package with a ``Strategy`` (``base.py``) and one line below.
"""

from __future__ import annotations

from typing import Sequence

from ..constants import CLASSIFY_DEFAULT
from ..errors import InputError
from .base import Batch, Rates, Run, Scores, Strategy  # noqa: F401 (the protocol, for method modules)
from .coop import COOP
from .cupl import CUPL, CUPL80
from .dclip import DCLIP
from .hierarchy import HIERARCHY, HIERARCHY80
from .perception import PERCEPTION
from .templates import CLIP7_ENSEMBLE, CLIP80_ENSEMBLE, CUSTOM, NAME, PHOTO
from .tip import TIP
from .tpt import TPT
from .waffle import WAFFLE
from .zpe import ZPE

STRATEGIES: dict[str, Strategy] = {
    s.id: s
    for s in (
        NAME,
        PHOTO,
        CUSTOM,
        CLIP7_ENSEMBLE,
        CLIP80_ENSEMBLE,
        HIERARCHY,
        HIERARCHY80,
        TPT,
        DCLIP,
        CUPL,
        CUPL80,
        WAFFLE,
        ZPE,
        PERCEPTION,
        TIP,
        COOP,
    )
}
ALL = "all"


def parse_strategies(value: str | Sequence[str] | None, has_custom_templates: bool,
                     has_support: bool = False) -> tuple[str, ...]:
    """Strategy ids from ``"name,clip80"`` or a list; ``all`` picks every available one.

    ``custom`` is available only when templates were given, the few-shot methods only with a
    support set; asking for them without is an error, while ``all`` simply leaves them out.
    """
    if value is None:
        items = list(CLASSIFY_DEFAULT)
    elif isinstance(value, str):
        items = [v.strip().lower() for v in value.replace("\n", ",").split(",")]
    else:
        items = [str(v).strip().lower() for v in value]
    items = [v for v in items if v]
    if not items:
        raise InputError("No strategy selected: choose at least one of " + ", ".join(STRATEGIES) + ".")
    chosen: list[str] = []
    for item in items:
        if item == ALL:
            expanded = [s for s in STRATEGIES if (s != "custom" or has_custom_templates)
                        and (not STRATEGIES[s].needs_support or has_support)]
        elif item in STRATEGIES:
            expanded = [item]
        else:
            raise InputError(
                f"Unknown strategy {item!r}. Choose from: {', '.join(STRATEGIES)}, or '{ALL}'."
            )
        chosen.extend(s for s in expanded if s not in chosen)
    if "custom" in chosen and not has_custom_templates:
        raise InputError(
            "The 'custom' strategy needs templates: give at least one, each with one '{}'",
            cli=" (--templates 'a photo of a {}.').",
            page=", in the 'Custom templates' box (e.g. 'a sketch of a {}.').",
        )
    return tuple(chosen)


def chosen(ids: Sequence[str]) -> list[Strategy]:
    """The strategy objects of checked ids, in their order."""
    return [STRATEGIES[s] for s in ids]
