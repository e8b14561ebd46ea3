"""A method's options, declared once: each field of its settings dataclass carries an ``Option``.

From that one declaration come the command line's flags (``cli.py``), the API's arguments (the
page's ``classify`` and ``evaluate``), the page's controls (grouped under the method, shown when
it is ticked), the checks with their messages (``parse``), and the settings a result and a
report record (``to_dict``). A method module writes, for example::

    @dataclass(frozen=True)
    class TipSettings:
        alpha: float = option(1.17, "tip_alpha", "Tip-Adapter: alpha (cache weight)",
                              "weight of the cache", low=0, high=100)

and names the class as its strategy's ``options``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from ..core import arguments
from ..core.errors import InputError

# Where an option is offered: the command line, the API (gradio_client, MCP) and the page.
EVERYWHERE = frozenset({"cli", "api", "page"})
CLI_ONLY = frozenset({"cli"})
KINDS = ("whole", "number", "choice", "text", "flag", "path")
Bound = float | Callable[[], float] | None


@dataclass(frozen=True)
class Option:
    """One knob: its public name, its words, its range and how the page shows it."""

    name: str                      # the API argument; the flag is --name with dashes unless ``flag``
    label: str                     # the page control's label; the subject of its messages
    help: str                      # one sentence: the CLI's help and the API's docstring
    kind: str = "number"           # one of KINDS
    low: Bound = None              # the range (a callable: a limit the operator may change)
    high: Bound = None
    above_low: bool = False        # the low end itself is refused (a learning rate of 0)
    served_high: Bound = None      # a lower ceiling on a shared server (the page and the API)
    choices: tuple[tuple[str, Any], ...] = ()     # (words, value) of a "choice" (or a radio's)
    custom: bool = False           # a "choice" whose box also takes typed values (``parse`` checks them)
    parse: Callable[[Any], Any] | None = None      # raw value -> field value, raising InputError
    shown: Callable[[Any], Any] | None = None      # field value -> what the page's control holds
    control: str = ""              # slider, number, radio, dropdown, textbox, checkbox (default: by kind)
    step: float | None = None      # a slider's step
    lines: int = 1                 # a textbox's height
    info: str = ""                 # a line under the page's control
    where: frozenset[str] = EVERYWHERE
    flag: str = ""                 # the CLI flag, when not --name
    metavar: str | None = None
    late: bool = False             # an API argument added after the request's last ones (positions kept)

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def bound(self, which: str, served: bool = False) -> float | None:
        value = self.served_high if which == "high" and served and self.served_high is not None else \
            getattr(self, which)
        return value() if callable(value) else value

    @property
    def page_control(self) -> str:
        if self.control:
            return self.control
        return {"whole": "slider", "number": "number", "choice": "radio", "flag": "checkbox"}.get(self.kind, "textbox")

    def check(self, value: Any, default: Any, served: bool = False) -> Any:
        """A raw value (None: the default) as the field's value, or InputError saying what is wrong."""
        if value is None:
            return default
        if self.parse is not None:
            if self.kind == "text" and not isinstance(value, (str, Mapping)):
                raise InputError(f"{self.label} must be text, not {type(value).__name__}.")
            return self.parse(value)
        if self.kind == "flag":
            if isinstance(value, bool):
                return value
            raise InputError(f"{self.label} must be true or false (got {_shown(value)}).")
        if self.kind in ("text", "path"):
            if not isinstance(value, str):
                raise InputError(f"{self.label} must be text, not {type(value).__name__}.")
            return value.strip() or (default if self.kind == "text" else None)
        if self.kind == "choice":
            text = str(value).strip().lower() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
            allowed = [v for _, v in self.choices]
            if text not in allowed:
                raise InputError(f"{self.label} must be {' or '.join(map(repr, allowed))} (got {_shown(value)}).")
            return text
        return self._number(value, served)

    def _number(self, value: Any, served: bool) -> int | float:
        low, high = self.bound("low"), self.bound("high", served)
        if self.kind == "whole":
            return arguments.whole_number(value, self.label, int(low if low is not None else -2**63),
                                          int(high if high is not None else 2**63 - 1))
        value = arguments.number(value, self.label, 0.0)
        if (low is not None and (value < low or (self.above_low and value == low))) \
                or (high is not None and value > high):
            if low is not None and high is not None:
                span = f"above {low:g} and at most {high:g}" if self.above_low else f"from {low:g} to {high:g}"
            else:
                span = f"at least {low:g}" if low is not None else f"at most {high:g}"
            raise InputError(f"{self.label} must be a number {span} (got {value!r}).")
        return value


def _shown(value: Any) -> str:
    return repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."


def option(default: Any, name: str, label: str, help: str, **spec: Any) -> Any:
    """A settings field with its ``Option`` (the arguments after ``help`` are ``Option``'s)."""
    meta = {"option": Option(name, label, help, **spec)}
    if isinstance(default, (dict, list, set)):
        return dataclasses.field(default_factory=lambda: default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def declared(settings: type) -> Iterator[tuple[str, Option, Any]]:
    """(field name, option, default) of every declared field of a settings dataclass, in order."""
    defaults = settings()
    for f in dataclasses.fields(settings):
        if "option" in f.metadata:
            yield f.name, f.metadata["option"], getattr(defaults, f.name)


def parse(settings: type, raw: Mapping[str, Any] | None, served: bool = False) -> Any:
    """The settings from raw values keyed by field name (a missing or None value keeps the
    default), each checked with its message; ``served``: the shared server's ceilings apply."""
    raw = dict(raw or {})
    unknown = set(raw) - {f.name for f in dataclasses.fields(settings)}
    if unknown:
        raise InputError(f"Unknown setting {sorted(unknown)[0]!r} for {settings.__name__}.")
    values = {name: opt.check(raw.get(name), default, served) for name, opt, default in declared(settings)}
    made = settings(**values)
    check = getattr(made, "check", None)
    if callable(check):                # what no single field can say (a file to write, say)
        check()
    return made


def without_files(settings: Any) -> Any:
    """The same settings with every file option back at its default (nothing loaded or saved):
    what a method fitted afresh many times over uses (the shots curve)."""
    paths = {name: default for name, opt, default in declared(type(settings)) if opt.kind == "path"}
    return dataclasses.replace(settings, **paths) if paths else settings


def to_dict(settings: Any) -> dict[str, Any]:
    """The settings as JSON data (what a result and a report record)."""
    return {name: _plain(getattr(settings, name)) for name, _, _ in declared(type(settings))}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value
