"""The Classify tab's inputs: images, classes, strategies, models, the few-shot examples and
every method's settings. ``build`` returns them by name: the names are ``classifying.run``'s
arguments (the methods' settings under their public option names)."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from ..core.resources import EXAMPLE_IMAGES as PHOTOS
from ..run import inputs as request_inputs
from ..strategies import STRATEGIES
from . import choices as app_choices, controls, state

CUSTOM_PLACEHOLDER = "a sketch of a {}.\na close-up photo of a {}."
DESCRIPTOR_PLACEHOLDER = "cat: whiskers; pointed ears; a long tail\ndog: a wet nose; floppy ears"


@dataclass
class Inputs:
    """The tab's inputs by name, and the buttons and boxes the events need."""

    values: dict[str, gr.Component] = field(default_factory=dict)
    preset: gr.Radio | None = None
    descriptor_file: gr.UploadButton | None = None
    boxes: dict[str, gr.Group] = field(default_factory=dict)
    few_shot: gr.Accordion | None = None          # the examples' area (a lesson with a pool opens it)

    def __getitem__(self, name: str) -> gr.Component:
        return self.values[name]


def build(config: state.AppConfig, model: str) -> Inputs:
    """The inputs column (called inside a gr.Column)."""
    out = Inputs()
    v = out.values
    v["gallery"] = gr.Gallery(
        label=_label("images"), value=[str(p) for p in sorted(PHOTOS.glob("*"))], type="filepath",
        interactive=True, file_types=["image"], sources=["upload", "webcam", "clipboard"], columns=4, height=200,
        object_fit="contain", elem_id="images")     # whole photos: one photo alone was shown as a zoomed crop
    # Radio buttons: a screen reader cannot use Gradio's dropdowns (gradio#10532); there are eight.
    out.preset = gr.Radio(label="Class-name preset (fills the box below)", choices=app_choices.preset_choices(),
                          value=None, elem_id="preset")
    v["classes"] = gr.Textbox(label=_label("classes"), lines=4, max_lines=12,
                              value=app_choices.preset_text("lab-photos"), elem_id="classes")
    v["strategies"] = gr.CheckboxGroup(label=_label("strategies"), choices=app_choices.strategy_choices(),
                                       value=_declared("strategies").default_for("page", "classify"),
                                       elem_id="strategies")
    with gr.Accordion("What the strategies do", open=False, elem_id="legend"):
        gr.Markdown(app_choices.strategy_legend())
    v["templates"] = gr.Textbox(label=_label("templates"),
                                lines=2, placeholder=CUSTOM_PLACEHOLDER, elem_id="templates")
    _models(v, config, model)
    _few_shot(out)
    with gr.Accordion("Settings of the ticked methods", open=False, elem_id="method-settings"):
        found, boxes = controls.method_settings(lambda g: not controls.is_few_shot(g), v["strategies"].value)
        v.update(found)
        out.boxes.update(boxes)
        _descriptors(out)
    _advanced(v)
    controls.follow_ticks(v["strategies"], out.boxes)
    return out


def _declared(name: str) -> request_inputs.Input:
    found = request_inputs.find(name, "page", "classify")
    assert found is not None, name          # every input the page shows is declared for it
    return found


def _label(name: str) -> str:
    return _declared(name).label


def _models(v: dict[str, gr.Component], config: state.AppConfig, model: str) -> None:
    v["model"] = gr.Dropdown(
        label=_label("model"),
        choices=app_choices.model_choices(config), value=model, allow_custom_value=True, elem_id="model")
    v["compare_model"] = gr.Dropdown(
        label=_label("compare_model"),
        choices=[("none", ""), *app_choices.model_choices(config)], value="", allow_custom_value=True,
        elem_id="compare-model")


def _few_shot(out: Inputs) -> None:
    """The labelled examples, and the settings of the methods that learn from them."""
    few_shot = [s for s in STRATEGIES.values() if s.needs_support]
    if not few_shot:
        return
    with gr.Accordion(f"Few-shot: labelled examples, or your photos to find them in, for "
                      f"{controls.labels(few_shot)}", open=False, elem_id="few-shot") as out.few_shot:
        out.values["support"] = gr.File(label=_label("support"), file_types=[".zip"], type="filepath",
                                        elem_id="support")
        k = _declared("sus_k")
        with gr.Row(equal_height=False):
            out.values["sus_pool"] = gr.File(label=_label("sus_pool"), file_types=[".zip"], type="filepath",
                                             elem_id="sus-pool", scale=2)
            out.values["sus_k"] = gr.Slider(k.low, k.high, value=k.default, step=1, label=k.label, elem_id="sus-k",
                                            scale=1)
        found, boxes = controls.method_settings(controls.is_few_shot, out.values["strategies"].value)
        out.values.update(found)
        out.boxes.update(boxes)


def _descriptors(out: Inputs) -> None:
    readers = [s for s in STRATEGIES.values() if s.needs_descriptors]
    out.values["descriptors"] = gr.Textbox(
        label=f"Descriptors for {controls.labels(readers)}: one line per class, 'class: descriptor; descriptor', "
              "or the JSON object DCLIP and CuPL publish", lines=3, placeholder=DESCRIPTOR_PLACEHOLDER,
        elem_id="descriptors")
    out.descriptor_file = gr.UploadButton("Load descriptors from a file (.json, .txt)", file_types=[".json", ".txt"],
                                          type="filepath", size="sm", elem_id="descriptor-file")


def _advanced(v: dict[str, gr.Component]) -> None:
    with gr.Accordion("Advanced settings", open=False, elem_id="advanced"):
        v.update(advanced("classify"))


def advanced(endpoint: str) -> dict[str, gr.Component]:
    """The controls of a tab's request inputs that the page draws from their declarations, by name."""
    return {item.name: control(item, endpoint) for item in request_inputs.inputs("page", endpoint)
            if item.page_area == "advanced"}


def control(item: request_inputs.Input, endpoint: str) -> gr.Component:
    """A request input's control on the page, from its declaration (``run/inputs.py``)."""
    value = item.default_for("page", endpoint)
    if item.kind == "whole":
        return gr.Slider(item.low, item.high, value=value, step=1, label=item.label, info=item.info or None)
    if item.kind == "flag":
        return gr.Checkbox(label=item.label, value=bool(value), info=item.info or None)
    if item.choices and item.kind in ("views", "texts"):
        return gr.CheckboxGroup(label=item.label, choices=list(item.choices), value=value, info=item.info or None)
    if item.choices:
        return gr.Dropdown(label=item.label, choices=list(item.choices), value=value, allow_custom_value=True,
                           info=item.info or None)
    return gr.Textbox(label=item.label, value=value or "", info=item.info or None)
