"""The Classify tab's WordNet area: the panels of the methods that read WordNet, and the sense
picker that re-runs the request with another sense of a class."""

from __future__ import annotations

import gradio as gr

from . import choices as app_choices, state as app_state, toasts
from .outputs import Outputs


def build(out: Outputs) -> dict[str, gr.Component]:
    """The area (inside a column); its WordNet panel goes into ``out``, the picker is returned."""
    gr.Markdown("## WordNet: what the hierarchy method adds")
    out.parts["wordnet"] = gr.Markdown(elem_id="wordnet-panels")
    picker: dict[str, gr.Component] = {}
    with gr.Row():
        # Radio buttons, not dropdowns: Gradio's dropdowns cannot be used with a screen reader
        # (gradio#10532), and a sense is chosen by reading its gloss.
        picker["sense_class"] = gr.Radio(label="Class with several senses", choices=[], elem_id="sense-class")
    picker["sense"] = gr.Radio(label="WordNet sense to use", choices=[], elem_id="sense")
    with gr.Row():
        picker["apply"] = gr.Button("Re-run with this sense", elem_id="apply-sense")
        picker["reset"] = gr.Button("Reset senses", elem_id="reset-senses")
    return picker


def picker_values(run: app_state.Run | None, current_class: str | None) -> tuple[dict, dict]:
    """The class and sense pickers after a run: the class being looked at stays when it can."""
    if run is None:
        return gr.update(choices=[], value=None), gr.update(choices=[], value=None)
    by_class = app_choices.sense_choices(run.result)
    name = current_class if current_class in by_class else next(iter(by_class), None)
    return (gr.update(choices=list(by_class), value=name),
            gr.update(choices=by_class.get(name or "", []), value=app_choices.sense_in_use(run.result, name)))


def senses_of(state: dict | None, classname: str | None) -> dict:
    run = app_state.Run.from_state(state)
    choices = app_choices.sense_choices(run.result).get(classname or "", []) if run else []
    return gr.update(choices=choices, value=app_choices.sense_in_use(run.result, classname) if run else None)


def reset_sense_choices() -> dict:
    toasts.info("Sense choices cleared: the next Classify uses the default senses.")
    return {}
