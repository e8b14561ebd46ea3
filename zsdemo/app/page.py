"""zsdemo web app (Gradio): the page assembled from its areas (``server.py`` starts it). Each area of
the page is a module of this package: ``inputs``, ``outputs`` (the results and the methods'
panels), ``wordnet``, ``evaluate`` and ``api``; this one lays them out and wires the Classify
tab's events, by name.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from ..core import markup
from ..core.errors import InputError
from ..core.resources import EXAMPLE_IMAGES as PHOTOS
from ..core.resources import asset_text
from ..engine.feature_store import CACHE_HOME
from ..engine.models import DEFAULT_PRESET, REGISTRY
from . import actions, api, classifying, evaluate, gpu, inputs, inspecting, lessons, live, map_area, outputs
from . import panels, tasks
from . import toasts
from . import warmup
from . import choices as app_choices
from . import state as app_state
from . import wordnet
from .actions import FRESH_JS, SHOW_RESULTS_JS, STAY_JS
from .events import CONTROL, busy, idle, named, paths, problem, session, stop_session, user_errors
from .refusals import explain_refusals
from .warmup import Example as WarmExample

HOW_IT_WORKS = asset_text("how_it_works.md")
STATE_TTL_S = 3600            # a browser session's last result is dropped after an idle hour
STATE_SESSIONS = 256          # ... and at most this many sessions keep one
CSS = asset_text("app.css")
PAGE_JS = asset_text("page.js")     # the skip link, the announcer, Escape, repairs of Gradio widgets
EXAMPLES_CACHE = CACHE_HOME / "examples"   # Gradio's cached example outputs
log = logging.getLogger("zsdemo.app")


INTRO = """# zsdemo: a zero-shot image classification lab
Upload images, type the classes you care about, tick prompt strategies and press **Classify**.
Each strategy's probabilities appear side by side; the consistency panel says whether the
prediction is stable, the WordNet panel shows what the hierarchy method adds. Click an image
(or a row of the table) to inspect it. *How it works* is at the bottom of the page."""

EXAMPLES = [
    [[str(PHOTOS / "cat.png")], "tabby cat\ntiger cat\nPersian cat\nSiamese cat\nEgyptian Mau\nlynx\ntiger",
     ["name", "clip80", "hierarchy"]],
    [[str(PHOTOS / "coffee.png")], "coffee mug\nespresso\ncup\nteapot\nsoup bowl\nplate",
     ["name", "photo", "clip80", "hierarchy"]],
    [[str(PHOTOS / "rocket.jpg")], "rocket\nmissile\nspace shuttle\nlighthouse\nchimney\ncrane",
     ["name", "photo", "clip80", "hierarchy"]],
    [[str(PHOTOS / "astronaut.png")], "astronaut\npilot\nscuba diver\nfirefighter\nnurse\nrobot",
     ["name", "photo", "tpt"]],
]
# Whole labels: the page cuts longer ones with "..." (the strategies show once an example is picked).
EXAMPLE_LABELS = [
    "Chelsea the cat vs fine-grained cat breeds",
    "A coffee cup: mug, espresso or cup?",
    "A rocket launch, with 'crane' among the classes",
    "Eileen Collins in a flight suit: astronaut or pilot?",
]


def run_args(values: dict[str, Any]) -> dict[str, Any]:
    """The Classify tab's inputs (by name) as ``classifying.run``'s arguments, by name."""
    args = dict(values)
    args["paths"] = paths(args.pop("gallery"))
    return args


def build_app(model: str = DEFAULT_PRESET, pretrained: str | None = None, device: str = "auto",
              feature_cache: str | None = str(app_state.DEFAULT_FEATURE_CACHE), allow_random: bool = False,
              warm_up: bool = False) -> gr.Blocks:
    # Gradio keeps the examples' cached outputs in .gradio/cached_examples under the current folder
    # unless told otherwise: under a wheel install, wherever its user stands. Ours go under zsdemo's
    # cache folder (an operator's GRADIO_EXAMPLES_CACHE still wins).
    os.environ.setdefault("GRADIO_EXAMPLES_CACHE", str(EXAMPLES_CACHE))
    # Requests may name only files that Gradio received (its upload folder) or the examples.
    config = app_state.AppConfig(model, pretrained, device, feature_cache, allow_random=allow_random).with_uploads(
        get_upload_folder())
    REGISTRY.pin(model, pretrained, device)     # a visitor's model choice never evicts the served one
    app_state.attach_caches(config)
    warm = _warm_up(config, warm_up)
    with gr.Blocks(title="zsdemo: zero-shot classification lab") as page:
        gr.Markdown(INTRO, elem_id="intro")
        banner = gr.HTML(elem_id="warmup")
        timer = gr.Timer(1.0, active=warm is not None)
        with gr.Tabs() as tabs:
            with gr.Tab("Classify", id="classify"):
                bar, ins, share, out = _classify_tab(config, model)
            with gr.Tab("Live camera", id="live"):
                camera = live.build(config, ins)
            with gr.Tab("Evaluate", id="evaluate"):
                evaluate.build(config, model)

        def warm_status() -> tuple:
            text, changing = warmup.warm_banner(warm)
            return text, gr.Timer(active=changing)
        page.load(warm_status, None, [banner, timer], api_visibility="private")
        timer.tick(warm_status, None, [banner, timer], api_visibility="private", queue=False)
        actions.follow_url(page, bar)
        lessons.wire(page, config, ins, bar, *share, tabs, camera["notes"], out["map_area"], out["map_follow"])
        api.register(config)
    return explain_refusals(page)


def _warm_up(config: app_state.AppConfig, warm_up: bool) -> Any:
    if gpu.on_zerogpu():
        # ZeroGPU: the model must be on cuda before launch, loaded on the main thread (spaces'
        # CUDA emulation is a thread-local torch mode), and outside a GPU task no model work can
        # run. So load it (and WordNet) here, and let the examples and presets warm up in the GPU
        # worker on first use.
        return warmup.start_warm_up(config, [], presets=(), background=False)
    if warm_up:
        return warmup.start_warm_up(config, [WarmExample(tuple(e[0]), e[1], tuple(e[2])) for e in EXAMPLES])
    return None


def _classify_tab(config: app_state.AppConfig, model: str) -> tuple[actions.Actions, inputs.Inputs, tuple,
                                                                   outputs.Outputs]:
    """The tab's areas, then their events; what the page's load sets (the action bar, the inputs,
    the lessons' link, the results)."""
    examples_slot = gr.Column()      # filled below, once the inputs exist: examples first on the page
    out = outputs.Outputs()
    with gr.Row():
        with gr.Column(scale=2, min_width=340):
            ins = inputs.build(config, model)
        with gr.Column(scale=3, min_width=340, elem_id="results"):
            outputs.build_results(out)
    with gr.Row(equal_height=False):
        with gr.Column():
            outputs.build_consistency(out)
        with gr.Column(elem_id="wordnet"):
            picker = wordnet.build(out)
    with gr.Row(elem_id="methods"):
        with gr.Column():
            outputs.build_methods(out)
    with gr.Accordion("How it works", open=False, elem_id="how-it-works"):
        gr.Markdown(HOW_IT_WORKS)
    bar = actions.build()
    state = gr.State(None, time_to_live=STATE_TTL_S)
    out.parts["map_drawn"] = gr.State(None, time_to_live=STATE_TTL_S)    # the map of the last run, as drawn
    ins.values["senses"] = gr.State({})
    selected = gr.State(0)          # the image being inspected, kept across re-runs
    _run_events(config, ins, out, bar, picker, state)
    _inspect_events(config, ins, out, picker, state, selected)
    _occlusion_events(config, out, bar, state, selected)
    map_area.wire(config, out, bar, state, selected)
    with examples_slot:
        _examples(config, ins, bar, state)
        share = lessons.build()
    return bar, ins, share, out


def _run_events(config: app_state.AppConfig, ins: inputs.Inputs, out: outputs.Outputs, bar: actions.Actions,
                picker: dict, state: gr.State) -> None:
    """Classify, the sense picker's re-run and Stop: runs only set the state (and say how they
    went); its change event draws everything."""
    def classify_page(values: dict, request: gr.Request, progress=gr.Progress()) -> tuple:
        """A run from the page: progress with the time left, a Stop that ends it, and problems
        said in the status line (the page's outputs keep the last good result)."""
        key = session(request)
        flag = CONTROL.current(key)
        began = time.perf_counter()
        try:
            done = tasks.classify(config, run_args(named(values, ins.values)), flag, gpu.PageProgress(progress))
        except Exception as e:
            return gr.skip(), problem(e, "classify")
        finally:
            CONTROL.end(key, flag)
        return done, panels.status_html("done", classifying.done_message(done, time.perf_counter() - began))

    def busy_classify(request: gr.Request) -> tuple:
        return *busy(request), panels.status_html("running", "Working… (Stop ends the run)")

    running = [bar.run, bar.stop, bar.status]
    everything = set(ins.values.values())
    # Page events are private (api_name set so that they do not take the API's names).
    started = bar.run.click(busy_classify, None, running, js=SHOW_RESULTS_JS, queue=False, api_visibility="private")
    event = started.then(classify_page, everything, [state, bar.status], api_name="ui_run",
                         api_visibility="private", concurrency_id="model")
    event.then(idle("Classify"), None, [bar.run, bar.stop], js=FRESH_JS, queue=False, api_visibility="private")
    # A sense re-run keeps the reader beside the WordNet panel (no jump to the summary).
    rerun = picker["apply"].click(user_errors(app_choices.choose_sense),
                                  [ins["senses"], picker["sense_class"], picker["sense"]], ins["senses"],
                                  api_visibility="private").success(
        busy_classify, None, running, js=STAY_JS, queue=False, api_visibility="private")
    rerun = rerun.then(classify_page, everything, [state, bar.status], api_name="ui_rerun_sense",
                       api_visibility="private", concurrency_id="model")
    rerun.then(idle("Classify"), None, [bar.run, bar.stop], js=FRESH_JS, queue=False, api_visibility="private")
    bar.stop.click(stop_session, None, [bar.run, bar.stop], queue=False, api_visibility="private")
    # Resetting only forgets the choices; the next Classify uses the default senses.
    picker["reset"].click(wordnet.reset_sense_choices, None, ins["senses"], api_visibility="private")

    def check_upload(gallery: list | None) -> list[str]:
        kept, refused = classifying.check_uploads(config, paths(gallery))
        for message in refused[:5]:
            toasts.warning(message)
        return kept

    @user_errors
    def load_descriptors(upload: str | None, classes: str) -> str:
        text, message = app_choices.load_descriptors(config, upload, classes)
        toasts.info(message)
        return text

    ins["gallery"].upload(check_upload, ins["gallery"], ins["gallery"], api_visibility="private")
    ins.descriptor_file.upload(load_descriptors, [ins.descriptor_file, ins["classes"]], ins["descriptors"],
                               api_visibility="private")
    ins.preset.input(user_errors(app_choices.keep_classes), [ins.preset, ins["classes"]], ins["classes"],
                     api_visibility="private")


def _inspect_events(config: app_state.AppConfig, ins: inputs.Inputs, out: outputs.Outputs, picker: dict,
                    state: gr.State, selected: gr.State) -> None:
    """A new run, or a click on an image or a row, draws the panels of the image inspected."""
    @user_errors
    def refresh(run_state: dict | None, index: int | None, current_class: str | None) -> dict:
        """Everything drawn from a new run: the table, notes, sense picker and the panels of the image
        being inspected (a re-run with another sense stays on it)."""
        run = app_state.Run.from_state(run_state)
        sense_class, sense = wordnet.picker_values(run, current_class)
        # The occlusion map's class list follows the run too (read from the same parsed state).
        targets = gr.update(choices=[inspecting.TOP1, *(run.result.classes if run else [])], value=inspecting.TOP1)
        drawn = {picker["sense_class"]: sense_class, picker["sense"]: sense, out["occlusion_class"]: targets}
        if run is None:
            return {**drawn, out["summary"]: "", out["model_note"]: "", out["notes"]: "",
                    **outputs.panel_values(config, out, None, None)}
        index = index if isinstance(index, int) and 0 <= index < len(run.result.images) else 0
        notes = "\n".join(f"- {markup.md(w)}" for w in run.result.warnings)
        return {**drawn, out["summary"]: classifying.run_summary(run, index),
                out["model_note"]: classifying.run_models(run), out["notes"]: notes,
                **outputs.panel_values(config, out, run, index)}

    @user_errors
    def inspect(run_state: dict | None, index: object) -> dict:
        """The panels of another image, and the summary with that row marked."""
        run = app_state.Run.from_state(run_state)
        if run is None:
            return {**outputs.panel_values(config, out, None, None), selected: 0}
        index = index if isinstance(index, int) and 0 <= index < len(run.result.images) else 0
        return {**outputs.panel_values(config, out, run, index), selected: index,
                out["summary"]: classifying.run_summary(run, index)}

    def select_image(run_state: dict | None, evt: gr.SelectData) -> dict:
        return inspect(run_state, evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index)

    def select_row(run_state: dict | None, evt: gr.EventData) -> dict:
        data = getattr(evt, "_data", None)
        return inspect(run_state, data.get("index") if isinstance(data, dict) else None)

    @user_errors
    def prepare(run_state: dict | None, index: int | None, drawn: dict | None) -> dict:
        run = app_state.Run.from_state(run_state)
        if run is None:
            raise InputError("Nothing to download yet: press Classify first.")
        return gr.update(value=inspecting.downloads(run, index, drawn), visible=True)

    out["prepare"].click(prepare, [state, selected, out["map_drawn"]], out["files"], api_visibility="private")
    # A new run or another image: the last downloads no longer match what is shown.
    state.change(lambda: gr.update(value=None, visible=False), None, out["files"], api_visibility="private")
    shown = [*out.panels, selected, out["summary"]]
    ins["gallery"].select(select_image, [state], shown, api_visibility="private")
    out["summary"].click(select_row, [state], shown, api_visibility="private")
    state.change(refresh, [state, selected, picker["sense_class"]],
                 [out["summary"], out["model_note"], out["notes"], picker["sense_class"], picker["sense"],
                  out["occlusion_class"], *out.panels], api_visibility="private")
    picker["sense_class"].change(wordnet.senses_of, [state, picker["sense_class"]], picker["sense"],
                                 api_visibility="private")


def _occlusion_events(config: app_state.AppConfig, out: outputs.Outputs, bar: actions.Actions, state: gr.State,
                      selected: gr.State) -> None:
    """The occlusion map: its cost follows the grid; drawing it takes the model's turns like a
    run (busy buttons, progress, Stop)."""
    out["occlusion_grid"].change(user_errors(inspecting.occlusion_passes), out["occlusion_grid"], out["occlusion_cost"],
                                 queue=False, api_visibility="private")

    def draw(run_state: dict | None, index: int | None, class_name: str | None, grid: float,
             request: gr.Request, progress=gr.Progress()) -> tuple:
        key = session(request)
        flag = CONTROL.current(key)
        try:
            found = tasks.where_it_looks(config, run_state, index, class_name, grid, flag, gpu.PageProgress(progress))
        except Exception as e:
            return gr.skip(), problem(e, "occlusion")
        finally:
            CONTROL.end(key, flag)
        return found, panels.status_html("done", "The occlusion map is drawn under the bars.")

    def busy_drawing(request: gr.Request) -> tuple:
        # The status line says what runs now (not the last run's line under the progress), and the
        # map's own button waits with Classify.
        return (*busy(request), gr.update(interactive=False),
                panels.status_html("running", "Drawing the occlusion map… (Stop ends it)"))

    def idle_drawing() -> tuple:
        return *idle("Classify")(), gr.update(interactive=True)

    started = out["occlusion_run"].click(busy_drawing, None, [bar.run, bar.stop, out["occlusion_run"], bar.status],
                                         queue=False, api_visibility="private")
    started.then(draw, [state, selected, out["occlusion_class"], out["occlusion_grid"]],
                 [out["occlusion_map"], bar.status], api_name="ui_occlusion", api_visibility="private",
                 concurrency_id="model").then(idle_drawing, None, [bar.run, bar.stop, out["occlusion_run"]],
                                              queue=False, api_visibility="private")
    for changed in (state, selected):      # another run or another image: the map is no longer of it
        changed.change(lambda: "", None, out["occlusion_map"], api_visibility="private")


def _examples(config: app_state.AppConfig, ins: inputs.Inputs, bar: actions.Actions, state: gr.State) -> None:
    """The examples, cached on first use. gr.State cannot be stored with cached examples, and what
    Gradio caches goes through the browser, which may send anything back: so the cache holds only
    the example's number, and its run is computed and kept on the server (``ExampleRuns``)."""
    runs = ExampleRuns(config, {name: c.value for name, c in ins.values.items()})
    example_state = gr.JSON(visible=False)

    @user_errors
    def example(gallery, classes, strategies) -> dict:
        return {"example": runs.index_of(classes, strategies)}      # shown() computes its run, once

    @user_errors
    def shown(reference: object) -> tuple:
        # The status line says what is on show (it said "press Classify" under an example's result).
        if not reference:
            return gr.skip(), gr.skip()
        return runs.run(ExampleRuns.number(reference)), panels.status_html(
            "done", "Showing an example's result (computed once, then kept).")
    example_state.change(shown, example_state, [state, bar.status], api_visibility="private",
                         concurrency_id="model")
    gr.Examples(EXAMPLES, [ins["gallery"], ins["classes"], ins["strategies"]], [example_state], fn=example,
                cache_examples=True, cache_mode="lazy", api_visibility="private", example_labels=EXAMPLE_LABELS,
                label="Examples: click one, then look at the results")


class ExampleRuns:
    """Each example's run, computed once on the server and kept there (a few small results)."""

    def __init__(self, config: app_state.AppConfig, starting: dict[str, Any]):
        self.config, self.starting = config, starting
        self._runs: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def number(reference: object) -> int:
        """The example a cached reference names; anything else (a forged result, say) is refused."""
        index = reference.get("example") if isinstance(reference, dict) and len(reference) == 1 else None
        if type(index) is not int or not 0 <= index < len(EXAMPLES):
            raise InputError("Only this page's own examples can be shown this way (by their number): "
                             "nothing was changed. Press Classify to see a result.")
        return index

    def index_of(self, classes: object, strategies: object) -> int:
        for k, (_, names, chosen) in enumerate(EXAMPLES):
            if classes == names and list(strategies or []) == chosen:
                return k
        raise InputError("That is not one of this page's examples: press Classify instead.")

    def run(self, index: int) -> dict[str, Any]:
        with self._lock:          # two visitors opening an example at once compute it once
            if index not in self._runs:
                gallery, classes, strategies = EXAMPLES[index]
                # Every other input as the page starts with it.
                self._runs[index] = tasks.classify(self.config, run_args(
                    {**self.starting, "gallery": gallery, "classes": classes, "strategies": strategies}))
            return copy.deepcopy(self._runs[index])     # each session's state is its own
