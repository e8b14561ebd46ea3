"""A request, checked once: class names, strategies, templates and every option, before any model work.

The command line, the app, the API and the evaluation all build one with ``prepare_request`` (the
evaluation through ``evaluation.evaluation_request``), so every input is checked in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .arguments import whole_number
from .classnames import parse_classnames
from .consistency import BINARY, LowConfidenceRule, parse_rule
from .constants import DEFAULT_TOP_K
from .descriptors import Descriptors, descriptor_warnings, effective, parse_descriptors
from .errors import InputError
from .limits import LIMITS
from .strategies import STRATEGIES, Strategy, parse_strategies
from .strategies.coop import CoOpSettings
from .strategies.coop import parse_settings as coop_settings
from .strategies.perception import PerceptionSettings
from .strategies.perception import parse_settings as perception_settings
from .strategies.tip import TipSettings
from .strategies.tip import parse_settings as tip_settings
from .strategies.tpt import TPTSettings, parse_settings
from .support import SupportSet
from .templates import CLIP80, NAME_ONLY, parse_templates
from .views import DEFAULT_VIEWS, parse_views
from .wordnet import (
    WordNetUnavailable,
    check_count,
    check_overrides,
    foreign_senses,
    parse_overrides,
)
from .wordnet_sparse import KEEP_DEFAULT, parse_keep

RERANK_TOP_DEFAULT = 5           # the paper's candidates; its appendix also reports 10
RERANK_TOP_MAX = 20


@dataclass
class Request:
    """A validated request: what every strategy reads."""

    classnames: tuple[str, ...]
    strategies: tuple[str, ...]
    custom_templates: tuple[str, ...]
    top_k: int
    warnings: list[str] = field(default_factory=list)
    consistency: bool = False          # attach the consistency analysis to every image
    views: tuple[str, ...] = DEFAULT_VIEWS
    rerank_all: bool = False           # hierarchy: re-rank confident images too
    senses: dict[str, str] = field(default_factory=dict)   # class name -> chosen WordNet sense
    tpt: TPTSettings = field(default_factory=TPTSettings)
    wordnet_keep: float = KEEP_DEFAULT  # hierarchy: the sparse WordNet's kept fraction (1: all of it)
    low_confidence: LowConfidenceRule = BINARY   # hierarchy: which images are re-ranked
    rerank_top: int = RERANK_TOP_DEFAULT         # hierarchy: candidates re-ranked
    descriptors: Descriptors = field(default_factory=Descriptors)   # dclip, cupl: per class
    perception: PerceptionSettings = field(default_factory=PerceptionSettings)   # its attributes, T
    support: SupportSet | None = None             # few-shot: labelled examples of the classes
    tip: TipSettings = field(default_factory=TipSettings)
    coop: CoOpSettings = field(default_factory=CoOpSettings)

    @property
    def chosen(self) -> list[Strategy]:
        return [STRATEGIES[s] for s in self.strategies]

    @property
    def needs_consistency(self) -> bool:
        return self.consistency or any(s.needs_consistency for s in self.chosen)

    @property
    def needs_wordnet(self) -> bool:
        return any(s.needs_wordnet for s in self.chosen)


def prepare_request(
    classnames: str | Sequence[str],
    strategies: str | Sequence[str] | None = None,
    templates: str | Sequence[str] | None = None,
    top_k: int | float | None = DEFAULT_TOP_K,
    consistency: bool = False,
    views: str | Sequence[str] | None = None,
    rerank_all: bool = False,
    senses: str | Sequence[str] | dict[str, str] | None = None,
    tpt: TPTSettings | dict[str, object] | None = None,
    wordnet_keep: float | str | None = None,
    low_confidence: str | LowConfidenceRule | None = None,
    rerank_top: int | float | None = None,
    descriptors: str | dict[str, Any] | Descriptors | None = None,
    perception: PerceptionSettings | dict[str, Any] | None = None,
    support: SupportSet | None = None,
    tip: TipSettings | dict[str, Any] | None = None,
    coop: CoOpSettings | dict[str, Any] | None = None,
) -> Request:
    """Validate everything but the images; raise InputError with a message for the user.

    The one check of top-k for the CLI, the app and the API: a whole number (2.0 is 2; None is
    the default), at most the class limit; more than the classes given lists them all."""
    parsed = parse_classnames(classnames)
    custom = parse_templates(templates)
    ids = parse_strategies(strategies, has_custom_templates=bool(custom), has_support=support is not None)
    top_k = whole_number(top_k, "top-k", 1, LIMITS.classes, DEFAULT_TOP_K)
    warnings = list(parsed.warnings)
    if custom and "custom" not in ids:
        warnings.append("Custom templates were given but the 'custom' strategy is not selected; they are unused.")
    if any(STRATEGIES[s].needs_wordnet for s in ids) or senses:
        check_count(parsed.names)
    tpt_settings = tpt if isinstance(tpt, TPTSettings) else parse_settings(**(tpt or {}))  # type: ignore[arg-type]
    request = Request(parsed.names, ids, custom, min(top_k, len(parsed.names)), warnings,
                      consistency=bool(consistency), views=parse_views(views), rerank_all=bool(rerank_all),
                      tpt=tpt_settings, wordnet_keep=parse_keep(wordnet_keep),
                      low_confidence=parse_rule(low_confidence),
                      rerank_top=whole_number(rerank_top, "re-rank top-k", 2, RERANK_TOP_MAX, RERANK_TOP_DEFAULT))
    if isinstance(descriptors, Descriptors):
        request.descriptors = descriptors
    elif descriptors is not None and not isinstance(descriptors, (str, dict)):
        raise InputError(f"descriptors must be text (JSON, or 'class: descriptor; descriptor' lines), "
                         f"not {type(descriptors).__name__}.")
    else:
        request.descriptors = parse_descriptors(descriptors, parsed.names)
    users = [s for s in request.chosen if s.needs_descriptors]
    if users and request.descriptors.count():
        request.warnings.extend(descriptor_warnings(request.descriptors, parsed.names))
    elif users:
        for s in users:
            own = effective(request.descriptors, s.shipped_descriptors, parsed.names)
            covered = sum(bool(own.of(c)) for c in parsed.names)
            request.warnings.append(f"No descriptors given: {s.label} uses zsdemo's own (assets/descriptors/"
                                    f"{s.shipped_descriptors}), which cover {covered} of the {len(parsed.names)} "
                                    "classes; the others keep their bare name.")
    elif request.descriptors.count():
        request.warnings.append("Descriptors were given but no descriptor strategy (dclip, cupl, cupl80) is "
                                "selected; they are unused.")
    if isinstance(perception, PerceptionSettings):
        request.perception = perception
    elif perception is not None:
        if not isinstance(perception, dict):
            raise InputError(f"perception settings must be a dictionary, not {type(perception).__name__}.")
        request.perception = perception_settings(**perception)
        if request.perception != PerceptionSettings() and "perception" not in ids:
            request.warnings.append("PerceptionCLIP settings (attributes, temperature) were given but its strategy "
                                    "is not selected; they are unused.")
    request.support = support
    request.tip = tip if isinstance(tip, TipSettings) else tip_settings(**(tip or {}))
    request.coop = coop if isinstance(coop, CoOpSettings) else coop_settings(**(coop or {}))
    if support is not None:
        if support.classes != request.classnames:
            raise InputError("The support set was read for other classes than the request's.")
        if any(s.needs_support for s in request.chosen):
            request.warnings.extend(support.warnings())
        else:
            request.warnings.append("A support set was given but no few-shot strategy (tip, coop) is selected; "
                                    "it is unused.")
    check_prompts(request)
    request.senses = _check_senses(parse_overrides(senses), parsed.names, request.warnings)
    return request


def request_templates(request: Request) -> set[str]:
    """Every template the request's prompts are made of (one prompt per class each)."""
    templates = {t for s in request.chosen for t in s.prompt_templates(request)}
    if request.needs_consistency:   # S_T's 80 single-template classifiers and the name-only one
        templates.update(CLIP80, NAME_ONLY)
    return templates


def check_prompts(request: Request) -> None:
    """Classes x templates is what text encoding costs; refuse a request past the prompt limit."""
    templates = request_templates(request)
    count = len(request.classnames) * len(templates) + sum(s.extra_prompts(request) for s in request.chosen)
    if count > LIMITS.prompts:
        why = " (the consistency check and the hierarchy use CLIP-80)" if request.needs_consistency else ""
        raise InputError(
            f"{len(request.classnames):,} classes x {len(templates)} templates{why} = {count:,} text prompts; at most "
            f"{LIMITS.prompts:,} are allowed per request. Use fewer classes or a smaller template set "
            "(for example CLIP-7 instead of CLIP-80, or no consistency check).")


def _check_senses(chosen: dict[str, str], classnames: Sequence[str], warnings: list[str]) -> dict[str, str]:
    if not chosen:
        return {}
    try:
        checked = check_overrides(chosen, classnames)
        warnings.extend(foreign_senses(checked))
        return checked
    except WordNetUnavailable as e:
        raise InputError(str(e)) from None
