"""The methods' settings on the page, made from their declarations (``strategies/options.py``):
one small group of controls per method, shown while one of its strategies is ticked."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import gradio as gr

from ..strategies import OptionGroup, Strategy, groups
from ..strategies.options import Option


def control(opt: Option, default: Any) -> gr.Component:
    """The page's control of one option, its default shown, its range the served one."""
    value = opt.shown(default) if opt.shown is not None else default
    low, high = opt.bound("low"), opt.bound("high", served=True)
    common = dict(label=opt.label, info=opt.info or None, elem_id=opt.name.replace("_", "-"))
    kind = opt.page_control
    if kind == "slider":
        value = min(max(value, low), high) if low is not None and high is not None else value
        step = opt.step or (1 if opt.kind == "whole" else 0.05)
        return gr.Slider(low, high, value=value, step=step, **common)
    if kind == "number":
        return gr.Number(value=value, minimum=low, maximum=high, **common)
    if kind == "radio":
        return gr.Radio(choices=list(opt.choices), value=value, **common)
    if kind == "dropdown":
        return gr.Dropdown(choices=list(opt.choices), value=value, allow_custom_value=opt.custom, **common)
    if kind == "checkbox":
        return gr.Checkbox(value=value, **common)
    return gr.Textbox(value=value, lines=opt.lines, **common)


def method_settings(include: Callable[[OptionGroup], bool], ticked: Sequence[str]
                    ) -> tuple[dict[str, gr.Component], dict[str, gr.Group]]:
    """Controls (by option name) and their boxes (by method key) for the groups ``include``
    accepts; a box is visible while one of its strategies is in ``ticked``."""
    controls: dict[str, gr.Component] = {}
    boxes: dict[str, gr.Group] = {}
    for g in groups().values():
        fields = list(g.fields("page"))
        if not fields or not include(g):
            continue
        with gr.Group(visible=_shown(g, ticked), elem_classes=["zs-method-settings"]) as box:
            gr.Markdown(f"**{g.label}**", elem_classes=["zs-method-name"])
            for _, opt, default in fields:
                controls[opt.name] = control(opt, default)
        boxes[g.key] = box
    return controls, boxes


def _shown(group: OptionGroup, ticked: Sequence[str] | None) -> bool:
    return any(s.id in (ticked or ()) for s in group.strategies)


def follow_ticks(strategies: gr.CheckboxGroup, boxes: dict[str, gr.Group]) -> None:
    """Show each method's settings while it is ticked."""
    if not boxes:
        return
    keys = list(boxes)

    def visible(ticked: list[str] | None) -> list[dict]:
        return [gr.update(visible=_shown(groups()[k], ticked)) for k in keys]
    strategies.change(visible, strategies, [boxes[k] for k in keys], queue=False, api_visibility="private")


def is_few_shot(group: OptionGroup) -> bool:
    return any(s.needs_support for s in group.strategies)


def evaluable(group: OptionGroup) -> bool:
    """A group the shared server's evaluation can use (not of methods that learn per image)."""
    return not all(s.tunes_per_image for s in group.strategies)


def labels(strategies: Sequence[Strategy]) -> str:
    names = [s.label for s in strategies]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
