"""The Classify tab's results: the status line, the summary of every image, the bars of the one
being inspected, its consistency check and every method's own panel (asked of the strategies;
no method is named here)."""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from . import classifying, inspecting, map_area, state

# A click (or Enter, or Space: each row is a button) on a row of the summary selects that image.
ROW_CLICK_JS = """
const pick = (e) => { const row = e.target.closest('[data-index]');
  if (row) trigger('click', {index: parseInt(row.dataset.index, 10)}); };
element.addEventListener('click', pick);
element.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') { if (e.key === ' ') e.preventDefault(); pick(e); } });
"""
# What each panel of ``panels.ImagePanels`` fills.
PANELS = ("title", "bars", "verdict", "consistency", "views", "wordnet", "methods")


@dataclass
class Outputs:
    """The results' components by name."""

    parts: dict[str, gr.Component] = field(default_factory=dict)

    def __getitem__(self, name: str) -> gr.Component:
        return self.parts[name]

    @property
    def panels(self) -> list[gr.Component]:
        return [self.parts[p] for p in PANELS]


def build_results(out: Outputs) -> None:
    """The column beside the inputs (called inside it)."""
    p = out.parts
    p["summary"] = gr.HTML(elem_id="summary", js_on_load=ROW_CLICK_JS)
    p["model_note"] = gr.Markdown(elem_id="model-note")
    p["notes"] = gr.Markdown()
    p["title"] = gr.Markdown(elem_id="image-title")
    p["bars"] = gr.HTML(elem_id="bars")
    with gr.Row(equal_height=False):
        p["prepare"] = gr.Button("Downloads: JSON, CSV, figure (PNG, SVG)", elem_id="downloads", size="sm",
                                 scale=0, min_width=280)
        p["files"] = gr.File(label="Take it home: the result (JSON, the CLI's schema), every probability (CSV), "
                                   "the bars of the image inspected (PNG at 1920x1080, SVG), the embedding map once drawn (PNG, SVG, JSON)", file_count="multiple",
                             interactive=False, visible=False, elem_id="download-files")
    build_occlusion(out)
    out.parts.update({f"map_{k}": v for k, v in map_area.build().items()})


def build_occlusion(out: Outputs) -> None:
    """Where the model looks: an occlusion map of the inspected image, its cost said first."""
    p = out.parts
    with gr.Accordion("Where the model looks: cover parts of the image and watch the probability", open=False,
                      elem_id="occlusion"):
        with gr.Row(equal_height=True):
            p["occlusion_class"] = gr.Dropdown(label="Class", choices=[inspecting.TOP1], value=inspecting.TOP1,
                                               elem_id="occlusion-class", scale=1)
            p["occlusion_grid"] = gr.Slider(4, 10, value=7, step=1, label="Grid (positions per side)",
                                            elem_id="occlusion-grid", scale=1)
        p["occlusion_cost"] = gr.Markdown(inspecting.occlusion_passes(7), elem_id="occlusion-cost")
        p["occlusion_run"] = gr.Button("Show where the model looks", elem_id="occlusion-run", size="md")
        p["occlusion_map"] = gr.HTML(elem_id="occlusion-map")


def build_consistency(out: Outputs) -> None:
    gr.Markdown("## Consistency: does the prediction survive rewording and flipping?")
    out.parts["verdict"] = gr.HTML(elem_id="verdict")
    out.parts["consistency"] = gr.Markdown()
    out.parts["views"] = gr.HTML(elem_id="views")


def build_methods(out: Outputs) -> None:
    gr.Markdown("## The methods: why each decided")
    out.parts["methods"] = gr.Markdown(elem_id="methods-panels")


def panel_values(config: state.AppConfig, out: Outputs, run: state.Run | None, index: int | None) -> dict:
    """The panels of one image of a run, by component (all empty without a run)."""
    p = classifying.panels(config, run, index)
    if p is None:
        return {c: "" for c in out.panels}
    values = {"title": p.title, "bars": p.bars, "verdict": p.verdict, "consistency": p.consistency,
              "views": p.views_html, "wordnet": p.wordnet, "methods": p.methods}
    return {out[name]: values[name] for name in PANELS}
