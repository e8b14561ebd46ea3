"""A request, checked once: class names, strategies, templates and every option, before any model work.

The command line, the app, the API and the evaluation all build one with ``prepare_request`` (the
evaluation through ``evaluation.evaluation_request``), so every input is checked in one place.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..core.arguments import flag, whole_number
from ..core.constants import DEFAULT_TOP_K, MAX_SUS_K, MAX_TOP_K, SUS_K
from ..core.errors import InputError
from ..core.limits import LIMITS
from ..data.support import SupportSet
from ..engine.consistency import LowConfidenceRule, parse_rule
from ..engine.views import parse_views
from ..prompts.classnames import parse_classnames
from ..prompts.descriptors import Descriptors, descriptor_warnings, effective, parse_descriptors
from ..prompts.templates import CLIP80, NAME_ONLY, parse_templates
from ..strategies import STRATEGIES, Request, chosen, groups, parse_options, parse_strategies, route_options
from ..strategies import unused_options
from ..wordnet.senses import WordNetUnavailable, check_count, check_overrides, foreign_senses, parse_overrides
from .inputs import check_extra, is_extra

__all__ = ["Request", "prepare_request", "request_templates", "check_prompts"]


def prepare_request(
    classnames: str | Sequence[str],
    strategies: str | Sequence[str] | None = None,
    templates: str | Sequence[str] | None = None,
    top_k: int | float | None = DEFAULT_TOP_K,
    consistency: bool = False,
    views: str | Sequence[str] | None = None,
    rerank_all: bool = False,
    senses: str | Sequence[str] | dict[str, str] | None = None,
    low_confidence: str | LowConfidenceRule | None = None,
    descriptors: str | dict[str, Any] | Descriptors | None = None,
    support: SupportSet | None = None,
    options: Mapping[str, Any] | None = None,
    sus_pool: Any = None,
    sus_k: int | float | None = None,
    served: bool = False,
    support_used: bool = False,
    where: str | None = None,
    **named: Any,
) -> Request:
    """Validate everything but the images; raise InputError with a message for the user.

    The methods' options come by method in ``options`` ({"tpt": {"steps": 2}}, or a settings
    object), or by their public names in ``named`` (as the API and the command
    line name them), or a method's raw settings under its key (``tpt={"steps": 2}``); each is
    checked by its declaration (``strategies/options.py``). ``served``: a shared server's
    ceilings apply (the page and the API). ``support_used``: the support set is read even when no
    few-shot strategy is selected (the evaluation's shots curve).

    The one check of top-k for the CLI, the app and the API: a whole number from 1 to MAX_TOP_K
    (2.0 is 2; None is the default); more than the classes given lists them all (every class's
    probability is in the result whatever top-k is)."""
    extra = check_extra({k: named.pop(k) for k in list(named) if is_extra(k)})
    parsed = parse_classnames(classnames)
    custom = parse_templates(templates)
    ids = parse_strategies(strategies, has_custom_templates=bool(custom),
                           has_support=support is not None or sus_pool is not None)
    top_k = whole_number(top_k, "top-k", 1, MAX_TOP_K, DEFAULT_TOP_K)
    warnings = list(parsed.warnings)
    if custom and "custom" not in ids:
        warnings.append("Custom templates were given but the 'custom' strategy is not selected; they are unused.")
    if any(STRATEGIES[s].needs_wordnet for s in ids) or senses:
        check_count(parsed.names)
    methods = chosen(ids)
    settings = parse_options(_gathered(options, named, where), served)
    warnings.extend(unused_options(settings, methods))
    found = _descriptors(descriptors, parsed.names, methods, warnings)
    if sus_pool is not None and support is not None:
        raise InputError("Give either labelled examples (the support set) or photos to find them in (the SuS pool), "
                         "not both.", cli=" (--support or --sus-pool).")
    k = whole_number(sus_k, "SuS's examples per class", 1, MAX_SUS_K, SUS_K)
    if sus_pool is not None and not (support_used or any(s.needs_support for s in methods)):
        users = ", ".join(s.id for s in STRATEGIES.values() if s.needs_support)
        warnings.append(f"Photos to find examples in were given but no few-shot strategy ({users}) is selected; "
                        "they are unused.")
    if support is not None:
        if support.classes != parsed.names:
            raise InputError("The support set was read for other classes than the request's.")
        if support_used or any(s.needs_support for s in methods):
            warnings.extend(support.warnings())
        else:
            users = ", ".join(s.id for s in STRATEGIES.values() if s.needs_support)
            warnings.append(f"A support set was given but no few-shot strategy ({users}) is selected; "
                            "it is unused.")
    fields = dict(consistency=bool(consistency), views=parse_views(views), rerank_all=flag(rerank_all, "rerank_all"),
                  low_confidence=parse_rule(low_confidence), descriptors=found, support=support, options=settings,
                  chosen=tuple(methods), extra=extra, pool=sus_pool, sus_k=k)
    top_k = min(top_k, len(parsed.names))
    check_prompts(Request(parsed.names, ids, custom, top_k, **fields))
    chosen_senses = _check_senses(parse_overrides(senses), parsed.names, warnings)
    return Request(parsed.names, ids, custom, top_k, tuple(warnings), senses=chosen_senses, **fields)


def _gathered(options: Mapping[str, Any] | None, named: Mapping[str, Any], where: str | None) -> dict[str, Any]:
    """Raw settings by method from ``options`` and the keyword arguments (by method key, or by
    an option's public name, as offered ``where``): the one place options are routed."""
    out: dict[str, Any] = {}
    for key, value in (options or {}).items():
        out[key] = value
    by_key = {k: v for k, v in named.items() if k in groups()}
    for key, value in by_key.items():
        if value is not None and not isinstance(value, (Mapping, groups()[key].settings)):
            raise InputError(f"{key} settings must be a dictionary, not {type(value).__name__}.")
        out[key] = value
    for key, fields in route_options({k: v for k, v in named.items() if k not in by_key}, where).items():
        given = out.get(key)
        if isinstance(given, groups()[key].settings):
            raise InputError(f"Give {key}'s settings either as an object or by name, not both.")
        out[key] = {**(given or {}), **fields}
    return out


def _descriptors(value: object, names: Sequence[str], methods: Sequence[Any], warnings: list[str]) -> Descriptors:
    """The request's descriptors, and what to say about them (no descriptor method chosen, or
    zsdemo's own used in their place)."""
    if isinstance(value, Descriptors):
        found = value
    elif value is not None and not isinstance(value, (str, dict)):
        raise InputError(f"descriptors must be text (JSON, or 'class: descriptor; descriptor' lines), "
                         f"not {type(value).__name__}.")
    else:
        found = parse_descriptors(value, names)
    users = [s for s in methods if s.needs_descriptors]
    if users and found.count():
        warnings.extend(descriptor_warnings(found, names))
    elif users:
        for s in users:
            own = effective(found, s.shipped_descriptors, names)
            covered = sum(bool(own.of(c)) for c in names)
            warnings.append(f"No descriptors given: {s.label} uses zsdemo's own (assets/descriptors/"
                            f"{s.shipped_descriptors}), which cover {covered} of the {len(names)} "
                            "classes; the others keep their bare name.")
    elif found.count():
        readers = ", ".join(s.id for s in STRATEGIES.values() if s.needs_descriptors)
        warnings.append(f"Descriptors were given but no descriptor strategy ({readers}) is selected; they are unused.")
    return found


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
        # Where the check was asked for by the request alone, say where to switch it off.
        only_asked = request.consistency and not any(s.needs_consistency for s in request.chosen)
        raise InputError(
            f"{len(request.classnames):,} classes x {len(templates)} templates{why} = {count:,} text prompts; at most "
            f"{LIMITS.prompts:,} are allowed per request. Use fewer classes or a smaller template set "
            "(for example CLIP-7 instead of CLIP-80)",
            cli=", or leave out --consistency." if only_asked else ".",
            page=", or untick 'Run the consistency check' under Advanced settings." if only_asked else ".")


def _check_senses(chosen: dict[str, str], classnames: Sequence[str], warnings: list[str]) -> dict[str, str]:
    if not chosen:
        return {}
    try:
        checked = check_overrides(chosen, classnames)
        warnings.extend(foreign_senses(checked))
        return checked
    except WordNetUnavailable as e:
        raise InputError(str(e)) from None
