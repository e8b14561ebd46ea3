"""The embedding map's area on the page (an accordion under the results) and its events: drawn on
request, or after each Classify when asked; the figure follows the image inspected and
presentation mode with no model work (``embedding_map.map_view``)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..run import inputs as request_inputs
from . import gpu, panels, tasks
from .embedding_map import map_view
from .events import CONTROL, busy, idle, problem, session, user_errors
from .state import AppConfig

INTRO = ("Every image and every text the strategies use, as points of the model's space projected on its two "
         "main directions (PCA). Each class has a colour: its prompts are small dots, their mean (the ensemble "
         "the strategy classifies with) a large marker, its bare name a square; images are white stars. Hover "
         "a point for its words.")
SEPARATE = request_inputs.find("separate_modalities", "page", "map")


def build() -> dict[str, gr.Component]:
    """The map's area, an accordion under the results (called inside the results' column)."""
    parts: dict[str, gr.Component] = {}
    with gr.Accordion("The embedding map: where the images, the prompts and their ensembles sit", open=False,
                      elem_id="embedding-map") as parts["area"]:
        gr.Markdown(INTRO, elem_id="map-intro")
        with gr.Row(equal_height=True):
            parts["separate"] = gr.Checkbox(False, label=SEPARATE.label, info=SEPARATE.info, elem_id="map-separate",
                                            scale=2)
            parts["follow"] = gr.Checkbox(False, label="Draw it again after each Classify", elem_id="map-follow",
                                          scale=1)
        parts["draw"] = gr.Button("Draw the embedding map", elem_id="map-draw", size="md")
        parts["plot"] = gr.Plot(label="Embedding map", elem_id="map-plot", visible=False)
        parts["words"] = gr.HTML(elem_id="map-words")
    return parts


def wire(config: AppConfig, out: Any, bar: Any, state: gr.State, selected: gr.State) -> None:
    """The embedding map: drawn on request (and after each Classify when asked), from the last run;
    the figure follows the image inspected and presentation mode without any model work."""
    drawn = out["map_drawn"]

    def draw(run_state: dict | None, separate: bool, request: gr.Request, progress=gr.Progress()) -> tuple:
        key = session(request)
        flag = CONTROL.current(key)
        try:
            found = tasks.map_of_run(config, run_state, separate, flag, gpu.PageProgress(progress))
        except Exception as e:
            return gr.skip(), problem(e, "embedding map")
        finally:
            CONTROL.end(key, flag)
        return found, panels.status_html("done", f"The embedding map is drawn: {len(found['points']):,} points.")

    def busy_drawing(request: gr.Request) -> tuple:
        return (*busy(request), gr.update(interactive=False),
                panels.status_html("running", "Drawing the embedding map… (Stop ends it)"))

    def idle_drawing() -> tuple:
        return *idle("Classify")(), gr.update(interactive=True)

    def again(run_state: dict | None, follow: bool, separate: bool, request: gr.Request,
              progress=gr.Progress()) -> Any:
        # After a Classify the status line already says how the run went: a map drawn in its wake
        # says nothing there (a screen reader would hear the run's line twice), only a refusal.
        if not follow or not run_state:
            return None
        return draw(run_state, separate, request, progress)[0]

    started = out["map_draw"].click(busy_drawing, None, [bar.run, bar.stop, out["map_draw"], bar.status],
                                    queue=False, api_visibility="private")
    started.then(draw, [state, out["map_separate"]], [drawn, bar.status], api_name="ui_map",
                 api_visibility="private", concurrency_id="model").then(
        idle_drawing, None, [bar.run, bar.stop, out["map_draw"]], queue=False, api_visibility="private")
    state.change(again, [state, out["map_follow"], out["map_separate"]], drawn, api_name="ui_map_again",
                 api_visibility="private", concurrency_id="model", show_progress="hidden")
    for changed in (drawn, selected, bar.present):
        changed.change(user_errors(map_view), [drawn, selected, bar.present, state], [out["map_plot"], out["map_words"]],
                       api_visibility="private", queue=False)
