"""The registry of strategies: every method a user can pick, in the order the page and tables list them.

A method is one module of this package with a ``Strategy`` (``base.py``) and one line below
(or, from outside, one call of ``register``). Its options (``options.py``) reach the command
line, the API, the page and the reports through the functions here, which read them from the
registry: nothing outside a method's module names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from ..core.constants import CLASSIFY_DEFAULT
from ..core.errors import InputError
from ..engine.results import ClassificationResult
from . import options as declared_options
from .base import Batch, Panel, PanelContext, Rates, Request, Run, Scores, Strategy  # noqa: F401 (the protocol)
from .coop import COOP
from .cupl import CUPL, CUPL80
from .dclip import DCLIP
from .gda import GDA
from .hierarchy import HIERARCHY, HIERARCHY80
from .linear_probe import LINEAR_PROBE
from .options import Option
from .perception import PERCEPTION
from .templates import CLIP7_ENSEMBLE, CLIP80_ENSEMBLE, CUSTOM, NAME, PHOTO
from .tip import TIP
from .tipx import TIPX
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
        GDA,
        LINEAR_PROBE,
        TIPX,
    )
}
ALL = "all"


def register(strategy: Strategy) -> Strategy:
    """Add a method from outside this package (a plug-in, a test): it is then listed, offered
    and evaluated like the shipped ones. Its options' names must not clash with others'."""
    if not strategy.id or strategy.id in STRATEGIES or strategy.id == ALL:
        raise ValueError(f"a strategy needs an id of its own ({strategy.id!r} is taken or empty)")
    if strategy.options is not None and strategy.options_key not in groups():
        taken = {o.name for g in groups().values() for _, o, _ in declared_options.declared(g.settings)}
        clash = taken & {o.name for _, o, _ in declared_options.declared(strategy.options)}
        if clash:
            raise ValueError(f"option names already taken: {sorted(clash)}")
    STRATEGIES[strategy.id] = strategy
    return strategy


def unregister(strategy_id: str) -> None:
    STRATEGIES.pop(strategy_id, None)


@dataclass(frozen=True)
class OptionGroup:
    """The options one or more strategies share (under their ``options_key``)."""

    key: str
    settings: type
    strategies: tuple[Strategy, ...]

    @property
    def label(self) -> str:
        return self.strategies[0].label

    def fields(self, where: str | None = None) -> Iterator[tuple[str, Option, Any]]:
        """(field, option, default) of the group's options offered ``where`` (cli, api, page; None: all)."""
        for name, opt, default in declared_options.declared(self.settings):
            if where is None or where in opt.where:
                yield name, opt, default


def groups() -> dict[str, OptionGroup]:
    """Every strategy's options, by key, in registry order."""
    found: dict[str, list[Strategy]] = {}
    settings: dict[str, type] = {}
    for s in STRATEGIES.values():
        if s.options is not None:
            found.setdefault(s.options_key, []).append(s)
            settings.setdefault(s.options_key, s.options)
    return {k: OptionGroup(k, settings[k], tuple(v)) for k, v in found.items()}


def named_options(where: str | None = None) -> dict[str, tuple[str, str, Option, Any]]:
    """Public option name -> (group key, field, option, default), for options offered ``where``."""
    return {opt.name: (g.key, name, opt, default)
            for g in groups().values() for name, opt, default in g.fields(where)}


def check_option_names(values: Mapping[str, Any], where: str | None = None) -> None:
    """Refuse a name no method declares (``where``: offered there), before anything is read or
    loaded; ``prepare_request`` routes the values."""
    known = named_options(where)
    for name in values:
        if name not in known:
            raise InputError(f"Unknown option {name[:60]!r}. The methods' options are: {', '.join(known)}.")


def route_options(values: Mapping[str, Any], where: str | None = None) -> dict[str, dict[str, Any]]:
    """Raw values by public name ({"tip_alpha": 2}) as raw settings by group ({"tip": {"alpha": 2}});
    a name no method declares is refused. ``prepare_request`` is its one caller."""
    check_option_names(values, where)
    known = named_options(where)
    out: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        key, field_name, _, _ = known[name]
        out.setdefault(key, {})[field_name] = value
    return out


def parse_options(raw: Mapping[str, Any] | None = None, served: bool = False) -> dict[str, Any]:
    """Every group's settings from raw values by group ({"tpt": {"steps": 2}}, or settings objects),
    each checked; groups not given keep their defaults. ``served``: a shared server's ceilings."""
    raw = dict(raw or {})
    unknown = set(raw) - set(groups())
    if unknown:
        raise InputError(f"Unknown options for {sorted(unknown)[0]!r}: no selected method has options by that name.")
    out = {}
    for key, g in groups().items():
        given = raw.get(key)
        out[key] = given if isinstance(given, g.settings) else declared_options.parse(g.settings, given, served)
    return out


def options_dict(parsed: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The settings as JSON data, by group (what a result and a report record)."""
    return {key: declared_options.to_dict(value) for key, value in parsed.items()}


def unused_options(parsed: Mapping[str, Any], chosen: Sequence[Strategy]) -> list[str]:
    """A warning for each group whose settings were changed while none of its strategies is chosen."""
    keys = {s.options_key for s in chosen}
    out = []
    for key, g in groups().items():
        if key not in keys and parsed[key] != g.settings():
            names = ", ".join(o.name for field_name, o, default in g.fields()
                              if getattr(parsed[key], field_name) != default)
            out.append(f"{g.label} settings ({names}) were given but its strategy is not selected; they are unused.")
    return out


def read_result(d: dict[str, Any]) -> ClassificationResult:
    """A result back from its JSON form, each strategy's details as its own dataclass."""
    return ClassificationResult.from_dict(
        d, lambda sid, details: STRATEGIES[sid].details_from_dict(details) if sid in STRATEGIES else details)


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
            page=", in the 'Custom templates' box under the strategies (e.g. 'a sketch of a {}.').",
        )
    return tuple(chosen)


def chosen(ids: Sequence[str]) -> list[Strategy]:
    """The strategy objects of checked ids, in their order."""
    return [STRATEGIES[s] for s in ids]


def describe_options(recorded: Mapping[str, Mapping[str, Any]]) -> str:
    """Recorded settings (``options_dict``'s form) in one line: "TPT (...): tpt_views 64, ..."."""
    parts = []
    for key, values in recorded.items():
        g = groups().get(key)
        if g is None:
            continue
        shown = []
        for field_name, opt, _ in g.fields():
            value = values.get(field_name)
            if opt.shown is not None and value is not None:
                value = " ".join(str(opt.shown(value)).split())
            shown.append(f"{opt.name} {'none' if value is None else format(value, 'g') if isinstance(value, float) else value}")
        parts.append(f"{g.label}: {', '.join(shown)}")
    return "; ".join(parts)
