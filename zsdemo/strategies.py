"""The prompt strategies a user can pick, as data: id, label, description, templates (SPEC §1).

Their class vectors are built in ``zero_shot_classifier``; this module needs no model, so the
command line lists strategies without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from . import templates as T
from .errors import InputError


@dataclass(frozen=True)
class StrategyInfo:
    id: str
    label: str
    description: str
    # The template set; None for "custom", whose templates come with the request.
    templates: tuple[str, ...] | None = None
    # "templates": a classifier from a template set (SPEC §1); other kinds are methods of their
    # own module: "hierarchy" (hierarchy.py, SPEC §4), "tpt" (tpt.py, SPEC §5).
    kind: str = "templates"


STRATEGIES: dict[str, StrategyInfo] = {
    s.id: s
    for s in (
        StrategyInfo("name", "Name only", "the bare class name, no template (the papers' base predictor)",
                     T.NAME_ONLY),
        StrategyInfo("photo", "Single template", "one prompt per class: 'a photo of a {}.'", T.SINGLE),
        StrategyInfo("custom", "Custom templates", "your own templates, averaged in embedding space"),
        StrategyInfo("clip7", "CLIP-7 ensemble", "the 7 templates CLIP chose by forward selection, averaged",
                     T.CLIP7),
        StrategyInfo("clip80", "CLIP-80 ensemble", "CLIP's 80 ImageNet templates, averaged", T.CLIP80),
        StrategyInfo("hierarchy", "WordNet re-ranking",
                     "uncertain images: re-rank the top 5 with '{class} which is a kind of {parent}' "
                     "and the children's names (Ge et al.)", kind="hierarchy"),
        StrategyInfo("hierarchy80", "WordNet re-ranking + CLIP-80",
                     "the same phrases, each in all 80 templates; confident images keep CLIP-80",
                     kind="hierarchy"),
        StrategyInfo("tpt", "TPT (test-time prompt tuning)",
                     "tunes the 4 words of 'a photo of a {}.' on 64 views of each image, then predicts "
                     "(Shu et al.)", kind="tpt"),
    )
}
ALL = "all"
# The app's and the evaluation's default choice; the CLI's classify and the API default to
# CLASSIFY_DEFAULT (no WordNet needed).
DEFAULT_STRATEGIES: tuple[str, ...] = ("name", "photo", "clip80", "hierarchy")
CLASSIFY_DEFAULT: tuple[str, ...] = ("name", "photo", "clip80")


def parse_strategies(value: str | Sequence[str] | None, has_custom_templates: bool) -> tuple[str, ...]:
    """Strategy ids from ``"name,clip80"`` or a list; ``all`` picks every available one.

    ``custom`` is available only when templates were given; asking for it without templates is
    an error, while ``all`` simply leaves it out.
    """
    if value is None:
        items = ["name", "photo", "clip80"]
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
            expanded = [s for s in STRATEGIES if s != "custom" or has_custom_templates]
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


def is_template_strategy(strategy: str) -> bool:
    return STRATEGIES[strategy].kind == "templates"


def strategy_templates(strategy: str, custom_templates: tuple[str, ...]) -> tuple[str, ...]:
    """The templates of a template strategy; () for the method strategies."""
    info = STRATEGIES[strategy]
    if info.kind != "templates":
        return ()
    return info.templates if info.templates is not None else custom_templates
