"""zsdemo web app (Gradio): layout and event wiring only; all work happens in ``zsdemo``.

    zsdemo serve [--model PRESET|SPEC] [--pretrained TAG|FILE] [--device auto|cpu|cuda]
                 [--host 127.0.0.1] [--port 7860] [--share] [--concurrency 2] [--queue-size 64]
                 [--allow-random-models] [--mcp]

(``python app.py`` in a checkout, and a Hugging Face Space, run the same ``main``.)
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import time
from typing import Any, Callable

import gradio as gr
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder

from .. import demo as backend
from ..errors import ZsdemoError
from ..limits import LIMITS, LIMITS_INFO, check_environment
from ..memory import start_trimming
from ..models import DEFAULT_PRESET, REGISTRY
from ..progress import Stopped
from ..resources import EXAMPLE_IMAGES as PHOTOS
from ..resources import asset_text
from ..warmup import Example as WarmExample
from . import gpu, remote, tasks
from .refusals import explain_refusals

HOW_IT_WORKS = asset_text("how_it_works.md")
STATE_TTL_S = 3600            # a browser session's last result is dropped after an idle hour
STATE_SESSIONS = 256          # ... and at most this many sessions keep one
log = logging.getLogger("zsdemo.app")

CSS = asset_text("app.css")
CONTROL = backend.RunControl()      # the Stop button of each browser session

# The click shows the results area (on a phone it is below the inputs) and dims the results of
# the previous run until the new ones arrive.
SHOW_RESULTS_JS = """() => { const r = document.getElementById('results');
  if (r) { r.classList.add('zs-stale'); r.scrollIntoView({behavior: 'smooth', block: 'start'}); } }"""
FRESH_JS = "() => { document.getElementById('results')?.classList.remove('zs-stale'); }"
SHOW_EVAL_JS = """() => { const r = document.getElementById('eval-results');
  if (r) { r.classList.add('zs-stale'); r.scrollIntoView({behavior: 'smooth', block: 'start'}); } }"""
FRESH_EVAL_JS = "() => { document.getElementById('eval-results')?.classList.remove('zs-stale'); }"
# A click (or Enter) on a row of the summary selects that image.
ROW_CLICK_JS = """
const pick = (e) => { const row = e.target.closest('[data-index]');
  if (row) trigger('click', {index: parseInt(row.dataset.index, 10)}); };
element.addEventListener('click', pick);
element.addEventListener('keydown', (e) => { if (e.key === 'Enter') pick(e); });
"""
GENERIC_ERROR = ("Something went wrong on the server while doing this. Please try again; "
                 "if it keeps happening, try fewer images or classes.")

INTRO = """# zsdemo: a zero-shot image classification lab
Upload images, type the classes you care about, tick prompt strategies and press **Classify**.
Each strategy's probabilities appear side by side; the consistency panel says whether the
prediction is stable, the WordNet panel shows what the hierarchy method adds. Click an image
(or a row of the table) to inspect it. *How it works* is at the bottom of the page."""

EVAL_INTRO = """Measure the strategies on your own labelled images. Upload a **.zip** of either
- one folder per class (ImageFolder; a folder named by a WordNet id such as `n01440764` stands for that
  ImageNet class), or
- the images with a `labels.csv` of `path,label` rows.

You get top-1 and top-5 accuracy per strategy, the low-confidence set before and after WordNet
re-ranking, how well each confidence score separates right from wrong predictions (AUROC, coverage
curve), per-class accuracy, the most confused pairs, and CSV/JSON downloads. Limits: the upload
size limit of this server, at most {max_images} images, {max_files} zip entries, {max_mb} MB
unzipped; links and paths leaving the zip are refused. Larger sets: the command line on your own machine
(`zsdemo evaluate`)."""

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


def problem(e: Exception, where: str) -> str:
    """The status line of a page action that failed (the page's outputs keep what they had): a
    stop says so, our errors say what to do (and show a toast), anything else is logged."""
    if isinstance(e, Stopped):
        return backend.status_html("stopped", e.for_page())
    if isinstance(e, ZsdemoError):
        gr.Warning(e.for_page())
        return backend.status_html("error", e.for_page())
    log.exception("unexpected error in %s", where)
    return backend.status_html("error", GENERIC_ERROR)


def user_errors(fn: Callable) -> Callable:
    """Our errors become a short message on the page; anything else too, without a traceback."""
    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ZsdemoError as e:
            raise gr.Error(e.for_page(), print_exception=False) from None
        except gr.Error:
            raise
        except Exception:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(GENERIC_ERROR, print_exception=False) from None
    return wrapped


def hierarchy_settings() -> tuple[gr.Slider, gr.Dropdown, gr.Radio]:
    """The WordNet re-ranking's variants (Ge et al.): the sparse hierarchy, the low-confidence rule
    and how many candidates are re-ranked."""
    keep = gr.Slider(0.05, 1.0, value=0.4, step=0.05,
                     label="Hierarchy: share of WordNet kept (sparse hierarchy; 0.4 as in the paper, 1 = all)")
    rule = gr.Dropdown(label="Hierarchy: which images are uncertain (re-ranked)",
                       choices=[("binary rule: prompt groups or flip disagree (the paper's)", "binary"),
                                ("S_T below 0.6 (share of the 80 templates agreeing)", "s_t<0.6"),
                                ("S_B below 0.5 (share of the views agreeing)", "s_b<0.5")],
                       value="binary", allow_custom_value=True,
                       info="or type a rule such as s_t<0.7")
    top = gr.Radio(label="Hierarchy: candidates re-ranked", choices=[("top 5 (the paper's)", 5), ("top 10", 10)],
                   value=5)
    return keep, rule, top


def _paths(gallery: list | None) -> list[str]:
    return [item[0] if isinstance(item, (list, tuple)) else item for item in (gallery or [])]


def build_app(model: str = DEFAULT_PRESET, pretrained: str | None = None, device: str = "auto",
              feature_cache: str | None = str(backend.DEFAULT_FEATURE_CACHE), allow_random: bool = False,
              warm_up: bool = False) -> gr.Blocks:
    # Requests may name only files that Gradio received (its upload folder) or the examples.
    config = backend.AppConfig(model, pretrained, device, feature_cache, allow_random=allow_random).with_uploads(
        get_upload_folder())
    REGISTRY.pin(model, pretrained, device)     # a visitor's model choice never evicts the served one
    backend.attach_caches(config)
    if gpu.on_zerogpu():
        # ZeroGPU: the model must be on cuda before launch, and outside a GPU task no model work
        # can run. So load it (and WordNet) now, and let the examples and presets warm up in the
        # GPU worker on first use.
        warm = backend.start_warm_up(config, [], presets=())
        warm.join()
    elif warm_up:
        warm = backend.start_warm_up(config, [WarmExample(tuple(e[0]), e[1], tuple(e[2])) for e in EXAMPLES])
    else:
        warm = None

    def panel_values(run: backend.Run | None, index: int | None) -> tuple:
        p = backend.panels(config, run, index)
        if p is None:
            return ("", "", "", "", "", "", "", "", "", "", "")
        return (p.title, p.bars, p.verdict, p.consistency, p.views_html, p.wordnet, p.tree, p.tpt, p.tpt_bars,
                p.methods, p.nearest)

    def run_args(gallery, classes, strategies, templates, model_choice, compare_model, top_k, consistency, views,
                 rerank_all, wordnet_keep, low_confidence, rerank_top, descriptors, attributes, perception_temperature,
                 support, tip_alpha, tip_beta, val_fraction, coop_context, coop_epochs, tpt_steps, tpt_views,
                 senses) -> dict:
        """The page's inputs as ``demo.run``'s arguments, by name."""
        return dict(paths=_paths(gallery), classes=classes, strategies=strategies, templates=templates,
                    model=model_choice, compare_model=compare_model, top_k=top_k, views=views,
                    consistency=consistency, rerank_all=rerank_all, senses=senses, tpt_steps=tpt_steps,
                    tpt_views=tpt_views, wordnet_keep=wordnet_keep, low_confidence=low_confidence,
                    rerank_top=rerank_top, descriptors=descriptors, attributes=attributes,
                    perception_temperature=perception_temperature, support=support, tip_alpha=tip_alpha,
                    tip_beta=tip_beta, val_fraction=val_fraction, coop_context=coop_context, coop_epochs=coop_epochs)

    def classify_page(gallery, classes, strategies, templates, model_choice, compare_model, top_k, consistency, views,
                 rerank_all, wordnet_keep, low_confidence, rerank_top, descriptors, attributes, perception_temperature,
                 support, tip_alpha, tip_beta, val_fraction, coop_context, coop_epochs, tpt_steps, tpt_views, senses,
                 request: gr.Request, progress=gr.Progress()) -> tuple:
        """A run from the page: progress with the time left, a Stop that ends it, and problems
        said in the status line (the page's outputs keep the last good result)."""
        session = _session(request)
        stop = CONTROL.current(session)
        began = time.perf_counter()
        try:
            args = run_args(gallery, classes, strategies, templates, model_choice, compare_model, top_k, consistency,
                            views, rerank_all, wordnet_keep, low_confidence, rerank_top, descriptors, attributes,
                            perception_temperature, support, tip_alpha, tip_beta, val_fraction, coop_context,
                            coop_epochs, tpt_steps, tpt_views, senses)
            state = tasks.classify(config, args, stop, gpu.PageProgress(progress))
        except Exception as e:
            return gr.skip(), problem(e, "classify")
        finally:
            CONTROL.end(session, stop)
        return state, backend.status_html("done", backend.done_message(state, time.perf_counter() - began))

    # Both tabs' buttons: busy while a run goes (its Stop shown), idle again after it.
    def busy(request: gr.Request) -> tuple:
        CONTROL.begin(_session(request))
        return gr.update(interactive=False, value="Working…"), gr.update(visible=True)

    def busy_classify(request: gr.Request) -> tuple:
        return *busy(request), backend.status_html("running", "Working… (Stop ends the run)")

    def idle(label: str) -> Callable[[], tuple]:
        return lambda: (gr.update(interactive=True, value=label), gr.update(visible=False))

    def stop_session(request: gr.Request) -> tuple:
        # The run ends at the model's next turn and says so; until then the button stays
        # disabled (a new run would wait behind the stopping one anyway).
        CONTROL.stop(_session(request))
        return gr.update(value="Stopping…"), gr.update(visible=False)

    @user_errors
    def refresh(state: dict | None, selected: int | None, current_class: str | None) -> tuple:
        """Everything drawn from a new run: the table, notes, sense picker and the panels of the image
        being inspected (a re-run with another sense stays on it)."""
        run = backend.Run.from_state(state)
        if run is None:
            return ("", "", "", gr.update(choices=[], value=None), gr.update(choices=[], value=None),
                    *panel_values(None, None))
        selected = selected if isinstance(selected, int) and 0 <= selected < len(run.result.images) else 0
        notes = "\n".join(f"- {backend.md(w)}" for w in run.result.warnings)
        by_class = backend.sense_choices(run.result)
        name = current_class if current_class in by_class else next(iter(by_class), None)
        senses_here = by_class.get(name or "", [])
        return (backend.run_summary(run, selected), backend.run_models(run), notes,
                gr.update(choices=list(by_class), value=name),
                gr.update(choices=senses_here, value=backend.sense_in_use(run.result, name)),
                *panel_values(run, selected))

    @user_errors
    def inspect(state: dict | None, index: object) -> tuple:
        """The panels of another image, and the summary with that row marked."""
        run = backend.Run.from_state(state)
        if run is None:
            return (*panel_values(None, None), 0, gr.skip())
        index = index if isinstance(index, int) and 0 <= index < len(run.result.images) else 0
        return (*panel_values(run, index), index, backend.run_summary(run, index))

    def select_image(state: dict | None, evt: gr.SelectData) -> tuple:
        return inspect(state, evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index)

    def select_row(state: dict | None, evt: gr.EventData) -> tuple:
        data = getattr(evt, "_data", None)
        return inspect(state, data.get("index") if isinstance(data, dict) else None)

    def check_upload(gallery: list | None) -> list[str]:
        kept, refused = backend.check_uploads(config, _paths(gallery))
        for message in refused[:5]:
            gr.Warning(message)
        return kept

    def evaluate_page(upload, strategies, views, rerank_all, wordnet_keep, low_confidence, rerank_top, model_choice,
                 support, request: gr.Request, progress=gr.Progress()) -> tuple:
        session = _session(request)
        stop = CONTROL.current(session)
        try:
            p, files = tasks.evaluate_page(config, upload, strategies,
                                           dict(views=views, rerank_all=rerank_all, model=model_choice,
                                                wordnet_keep=wordnet_keep, low_confidence=low_confidence,
                                                rerank_top=rerank_top, support=support),
                                           stop, gpu.PageProgress(progress))
        except Exception as e:
            # One message where the summary goes, not an "Error" badge on every table.
            return problem(e, "evaluate"), *([gr.update(value=None, visible=False)] * 8)
        finally:
            CONTROL.end(session, stop)

        def table(t: tuple) -> dict:
            return gr.update(value={"headers": t[0], "data": t[1]}, visible=True)

        return (p.summary, table(p.accuracy), table(p.low_confidence), table(p.auroc),
                gr.update(value=p.coverage, visible=True), gr.update(value=p.strategy_coverage, visible=True),
                table(p.per_class), table(p.confusions), gr.update(value=files, visible=True))

    @user_errors
    def load_descriptors(upload: str | None, classes: str) -> str:
        text, message = backend.load_descriptors(config, upload, classes)
        gr.Info(message)
        return text

    def reset_sense_choices() -> dict:
        gr.Info("Sense choices cleared: the next Classify uses the default senses.")
        return {}

    def senses_of(state: dict | None, classname: str | None):
        run = backend.Run.from_state(state)
        choices = backend.sense_choices(run.result).get(classname or "", []) if run else []
        return gr.update(choices=choices, value=backend.sense_in_use(run.result, classname) if run else None)

    def warm_status() -> tuple:
        banner, changing = backend.warm_banner(warm)
        return banner, gr.Timer(active=changing)

    with gr.Blocks(title="zsdemo: zero-shot classification lab") as page:
        state = gr.State(None, time_to_live=STATE_TTL_S)
        # gr.State cannot be stored with cached examples: an example's run (the result as JSON)
        # comes back through this hidden component and is copied into the state. Examples are
        # small, so the round trip to the browser is too.
        example_state = gr.JSON(visible=False)
        senses = gr.State({})
        selected = gr.State(0)          # the image being inspected, kept across re-runs
        gr.Markdown(INTRO)
        warm_banner = gr.HTML(elem_id="warmup")
        warm_timer = gr.Timer(1.0, active=warm is not None)
        with gr.Tab("Classify images", id="classify"):
            examples_slot = gr.Column()      # filled below, once the inputs exist: examples first on the page
            with gr.Row():
                with gr.Column(scale=2, min_width=340):
                    gallery = gr.Gallery(
                        label="Images (click one to inspect it)",
                        value=[str(p) for p in sorted(PHOTOS.glob("*"))], type="filepath", interactive=True,
                        file_types=["image"], sources=["upload", "webcam", "clipboard"], columns=4, height=200,
                        elem_id="images")
                    preset = gr.Dropdown(label="Class-name preset (fills the box below)",
                                         choices=backend.preset_choices(),
                                         value=None, elem_id="preset")
                    classes = gr.Textbox(label="Class names, one per line or comma-separated", lines=4, max_lines=12,
                                         value=backend.preset_text("lab-photos"), elem_id="classes")
                    strategies = gr.CheckboxGroup(label="Strategies", choices=backend.strategy_choices(),
                                                  value=list(backend.DEFAULT_STRATEGIES), elem_id="strategies")
                    with gr.Row():
                        run = gr.Button("Classify", variant="primary", elem_id="run", scale=3)
                        stop = gr.Button("Stop", variant="stop", elem_id="stop", visible=False, scale=1)
                    with gr.Accordion("What the strategies do", open=False):
                        gr.Markdown(backend.strategy_legend())
                    templates = gr.Textbox(label="Custom templates for the 'Custom templates' strategy, one per "
                                                 "line with {}", lines=2,
                                           placeholder="a sketch of a {}.\na close-up photo of a {}.")
                    model_choice = gr.Dropdown(
                        label="Model: a preset, or an open_clip name and tag (e.g. 'ViT-B-32 laion2b_s34b_b79k', "
                              "'hf-hub:ORG/REPO')",
                        choices=backend.model_choices(config), value=model, allow_custom_value=True)
                    compare_model = gr.Dropdown(
                        label="Compare with a second model (side by side; both must fit the server's memory)",
                        choices=[("none", ""), *backend.model_choices(config)], value="", allow_custom_value=True,
                        elem_id="compare-model")
                    with gr.Accordion("Few-shot: labelled examples for Tip-Adapter and CoOp", open=False):
                        support = gr.File(label="A .zip of labelled examples of your classes: one folder per class, "
                                                "or images with a labels.csv (never the images you classify)",
                                          file_types=[".zip"], type="filepath", elem_id="support")
                        with gr.Row():
                            tip_alpha = gr.Number(value=backend.TIP_ALPHA, label="Tip-Adapter: alpha (cache weight)",
                                                  minimum=0, maximum=100)
                            tip_beta = gr.Number(value=backend.TIP_BETA, label="Tip-Adapter: beta (sharpness)",
                                                 minimum=0, maximum=100)
                        val_fraction = gr.Slider(0, 0.5, value=0, step=0.05,
                                                 label="Tip-Adapter: share of the examples held out to search alpha "
                                                       "and beta (0: use the values above)")
                        with gr.Row():
                            coop_context = gr.Radio(label="CoOp: context", value="16",
                                                    choices=[("16 learned vectors", "16"),
                                                             ("4, from 'a photo of a'", "init")])
                            coop_epochs = gr.Slider(1, backend.MAX_PAGE_EPOCHS, value=backend.COOP_EPOCHS, step=1,
                                                    label="CoOp: training epochs")
                    with gr.Accordion("Advanced settings", open=False):
                        top_k = gr.Slider(1, backend.MAX_TOP_K, value=5, step=1,
                                          label="Top-k classes shown per strategy")
                        consistency = gr.Checkbox(label="Run the consistency check even without a hierarchy strategy",
                                                  value=True)
                        views = gr.CheckboxGroup(label="Image views for S_B (left-right flip always included)",
                                                 choices=backend.view_choices(),
                                                 value=[v for _, v in backend.view_choices()])
                        rerank_all = gr.Checkbox(label="Hierarchy: re-rank every image, not only uncertain ones")
                        wordnet_keep, low_confidence, rerank_top = hierarchy_settings()
                        descriptors = gr.Textbox(
                            label="Descriptors for DCLIP and CuPL: one line per class, 'class: descriptor; "
                                  "descriptor', or the JSON object DCLIP and CuPL publish", lines=3,
                            placeholder="cat: whiskers; pointed ears; a long tail\ndog: a wet nose; floppy ears",
                            elem_id="descriptors")
                        descriptor_file = gr.UploadButton("Load descriptors from a file (.json, .txt)",
                                                          file_types=[".json", ".txt"], type="filepath", size="sm",
                                                          elem_id="descriptor-file")
                        attributes = gr.Textbox(
                            label="PerceptionCLIP: contextual attributes, 'attribute: value, value' per line "
                                  "('-' adds nothing)", lines=2, value=backend.attributes_text(), elem_id="attributes")
                        perception_temperature = gr.Slider(0.5, 10, value=backend.TEMPERATURE, step=0.5,
                                                           label="PerceptionCLIP: temperature of p(z|x)")
                        tpt_steps = gr.Slider(0, 20, value=1, step=1, label="TPT: tuning steps")
                        tpt_views = gr.Slider(8, LIMITS.tpt_views, value=min(64, LIMITS.tpt_views), step=8,
                                              label="TPT: views (random crops + the original)")
                with gr.Column(scale=3, min_width=340, elem_id="results"):
                    status = gr.HTML('<div class="zs-caption">Results appear here: press Classify, or click an '
                                     'example above.</div>', elem_id="run-status")
                    summary = gr.HTML(elem_id="summary", js_on_load=ROW_CLICK_JS)
                    model_note = gr.Markdown()
                    notes = gr.Markdown()
                    title = gr.Markdown(elem_id="image-title")
                    bars = gr.HTML(elem_id="bars")
            with gr.Row(equal_height=False):
                with gr.Column():
                    gr.Markdown("## Consistency: does the prediction survive rewording and flipping?")
                    verdict = gr.HTML(elem_id="verdict")
                    consistency_md = gr.Markdown()
                    view_grid = gr.HTML(elem_id="views")
                with gr.Column(elem_id="wordnet"):
                    gr.Markdown("## WordNet: what the hierarchy method adds")
                    wordnet_md = gr.Markdown()
                    tree = gr.HTML(elem_id="wordnet-tree")
                    with gr.Row():
                        sense_class = gr.Dropdown(label="Class with several senses", choices=[], elem_id="sense-class")
                        sense = gr.Dropdown(label="WordNet sense to use", choices=[], elem_id="sense")
                    with gr.Row():
                        apply_sense = gr.Button("Re-run with this sense", elem_id="apply-sense")
                        reset_senses = gr.Button("Reset senses", elem_id="reset-senses")
            with gr.Row(equal_height=False):
                with gr.Column():
                    gr.Markdown("## Test-time prompt tuning: before and after")
                    tpt_md = gr.Markdown()
                    tpt_bars = gr.HTML(elem_id="tpt-bars")
                with gr.Column(elem_id="methods"):
                    gr.Markdown("## The other methods: why each decided")
                    methods_md = gr.Markdown(elem_id="methods-why")
                    nearest = gr.HTML(elem_id="nearest")
            with gr.Accordion("How it works", open=False):
                gr.Markdown(HOW_IT_WORKS)

            panel_outputs = [title, bars, verdict, consistency_md, view_grid, wordnet_md, tree, tpt_md, tpt_bars,
                             methods_md, nearest]
            run_inputs = [gallery, classes, strategies, templates, model_choice, compare_model, top_k, consistency,
                          views, rerank_all, wordnet_keep, low_confidence, rerank_top, descriptors, attributes,
                          perception_temperature, support, tip_alpha, tip_beta, val_fraction, coop_context,
                          coop_epochs, tpt_steps, tpt_views, senses]
            # Runs only set the state (and say how they went); its change event draws everything,
            # whether the run came from the button, the sense picker or a cached example.
            # Page events are private (api_name set so that they do not take the API's names).
            running = [run, stop, status]
            started = run.click(busy_classify, None, running, js=SHOW_RESULTS_JS, queue=False, api_visibility="private")
            classify_event = started.then(classify_page, run_inputs, [state, status], api_name="ui_run",
                                          api_visibility="private", concurrency_id="model")
            classify_event.then(idle("Classify"), None, [run, stop], js=FRESH_JS, queue=False, api_visibility="private")
            rerun_started = apply_sense.click(user_errors(backend.choose_sense), [senses, sense_class, sense], senses,
                                              api_visibility="private").success(
                busy_classify, None, running, js=SHOW_RESULTS_JS, queue=False, api_visibility="private")
            rerun_event = rerun_started.then(classify_page, run_inputs, [state, status], api_name="ui_rerun_sense",
                                             api_visibility="private", concurrency_id="model")
            rerun_event.then(idle("Classify"), None, [run, stop], js=FRESH_JS, queue=False, api_visibility="private")
            stop.click(stop_session, None, [run, stop], queue=False, api_visibility="private")
            gallery.upload(check_upload, gallery, gallery, api_visibility="private")
            descriptor_file.upload(load_descriptors, [descriptor_file, classes], descriptors, api_visibility="private")
            gallery.select(select_image, [state], [*panel_outputs, selected, summary], api_visibility="private")
            summary.click(select_row, [state], [*panel_outputs, selected, summary], api_visibility="private")
            preset.input(user_errors(backend.keep_classes), [preset, classes], classes, api_visibility="private")
            state.change(refresh, [state, selected, sense_class],
                         [summary, model_note, notes, sense_class, sense, *panel_outputs], api_visibility="private")
            sense_class.change(senses_of, [state, sense_class], sense, api_visibility="private")
            # Resetting only forgets the choices; the next Classify uses the default senses.
            reset_senses.click(reset_sense_choices, None, senses, api_visibility="private")

            @user_errors
            def example(gallery, classes, strategies) -> dict:
                # Every other input as the page starts with it.
                return tasks.classify(config, run_args(gallery, classes, strategies,
                                                       *(c.value for c in run_inputs[3:])))

            example_state.change(lambda s: s, example_state, state, api_visibility="private")
            with examples_slot:
                gr.Examples(EXAMPLES, [gallery, classes, strategies], [example_state], fn=example,
                            cache_examples=True, cache_mode="lazy", api_visibility="private",
                            example_labels=EXAMPLE_LABELS, label="Examples: click one, then look at the results")

        with gr.Tab("Evaluate a labelled set", id="evaluate"):
            gr.Markdown(EVAL_INTRO.format(max_images=LIMITS.eval_images, max_files=LIMITS.zip_files,
                                          max_mb=LIMITS.zip_mb))
            with gr.Row():
                with gr.Column(scale=2, min_width=340):
                    eval_zip = gr.File(label="A .zip of labelled images", file_types=[".zip"], type="filepath",
                                       elem_id="eval-zip")
                    eval_strategies = gr.CheckboxGroup(label="Strategies (name only and CLIP-80 always run: "
                                                             "the baselines need them)",
                                                       choices=backend.eval_strategy_choices(),
                                                       value=list(backend.DEFAULT_STRATEGIES),
                                                       elem_id="eval-strategies")
                    eval_views = gr.Radio(label="Image views for S_B",
                                          choices=[("all 10 views (S_B as in the paper)", "all"),
                                                   ("left-right flip only (the binary rule's O_B; ~5x faster)", "flip")],
                                          value="all")
                    eval_rerank_all = gr.Checkbox(label="Hierarchy: re-rank every image, not only uncertain ones")
                    with gr.Accordion("Hierarchy settings", open=False):
                        eval_keep, eval_rule, eval_top = hierarchy_settings()
                    eval_model = gr.Dropdown(label="Model", choices=backend.model_choices(config), value=model,
                                             allow_custom_value=True)
                    eval_support = gr.File(label="Few-shot (Tip-Adapter, CoOp): a .zip of labelled examples, "
                                                 "separate from the evaluated set", file_types=[".zip"],
                                           type="filepath", elem_id="eval-support")
                    with gr.Row():
                        eval_run = gr.Button("Evaluate", variant="primary", elem_id="eval-run", scale=3)
                        eval_stop = gr.Button("Stop", variant="stop", elem_id="eval-stop", visible=False, scale=1)
                with gr.Column(scale=3, min_width=340, elem_id="eval-results"):
                    eval_summary = gr.Markdown("*The results appear here: upload a zip and press Evaluate.*",
                                               elem_id="eval-summary")
                    # Hidden until there is something to show (no empty placeholder grids).
                    eval_accuracy = gr.Dataframe(label="Accuracy per strategy", visible=False, interactive=False,
                                                 wrap=True, elem_id="eval-accuracy")
                    eval_low = gr.Dataframe(label="Low-confidence set (by the chosen rule) before and after WordNet "
                                                  "re-ranking (Ge et al., Table 1)", visible=False, interactive=False,
                                            wrap=True)
                    eval_auroc = gr.Dataframe(label="Selective prediction: AUROC of each confidence score",
                                              visible=False, interactive=False, wrap=True)
            eval_coverage = gr.Plot(label="Accuracy against coverage", show_label=False, format="png", visible=False)
            eval_strategy_coverage = gr.Plot(label="Each strategy's accuracy against coverage", show_label=False,
                                             format="png", visible=False)
            with gr.Row():
                eval_per_class = gr.Dataframe(label="Per-class top-1 accuracy", visible=False, interactive=False,
                                              max_height=400)
                eval_confusions = gr.Dataframe(label="Most confused class pairs", visible=False, interactive=False,
                                               max_height=400)
            eval_files = gr.File(label="Downloads: report.json and the CSV tables", file_count="multiple",
                                 interactive=False, elem_id="eval-files", visible=False)
        eval_started = eval_run.click(busy, None, [eval_run, eval_stop], js=SHOW_EVAL_JS, queue=False,
                                      api_visibility="private")
        eval_event = eval_started.then(
            evaluate_page, [eval_zip, eval_strategies, eval_views, eval_rerank_all, eval_keep, eval_rule, eval_top,
                       eval_model, eval_support],
            [eval_summary, eval_accuracy, eval_low, eval_auroc, eval_coverage, eval_strategy_coverage, eval_per_class,
             eval_confusions, eval_files], api_name="ui_evaluate", api_visibility="private", concurrency_limit=1,
            concurrency_id="evaluate", show_progress_on=[eval_summary])
        eval_event.then(idle("Evaluate"), None, [eval_run, eval_stop], js=FRESH_EVAL_JS, queue=False,
                        api_visibility="private")
        eval_stop.click(stop_session, None, [eval_run, eval_stop], queue=False, api_visibility="private")
        page.load(warm_status, None, [warm_banner, warm_timer], api_visibility="private")
        warm_timer.tick(warm_status, None, [warm_banner, warm_timer], api_visibility="private", queue=False)

        # API endpoints for gradio_client and MCP clients (documented in the README).
        def classify(images: list[FileData], classes: str, strategies: str = "name,photo,clip80",
                         templates: str = "", top_k: int = 5, consistency: bool = False, views: str = "",
                         rerank_all: bool = False, senses: str = "", tpt_steps: int = 1, tpt_views: int = 64,
                         model: str = "", wordnet_keep: float = 0.4, low_confidence: str = "binary",
                         rerank_top: int = 5, descriptors: str = "", attributes: str = "",
                         perception_temperature: float = 3.0, compare_model: str = "",
                         support: FileData | None = None, tip_alpha: float = 1.17, tip_beta: float = 1.0,
                         val_fraction: float = 0.0, coop_context: str = "16", coop_epochs: int = 50) -> dict:
            """Classify images against class names with CLIP-style prompt strategies, side by side.

            Returns the result as JSON (schema zsdemo.classify/1): per image, each strategy's top-k
            classes and probabilities, the consistency check, the WordNet senses used; with
            compare_model, the same request on that model under "compared".

            Args:
                images: the images to classify (uploaded files; MCP clients send http(s) URLs), at most 64.
                classes: the class names, one per line or comma-separated.
                strategies: strategy ids, comma-separated ("all" for every one; the options tool lists them).
                templates: custom prompt templates, one per line with {} for the class name ("custom" strategy).
                top_k: how many classes to return per strategy (1 to 20).
                consistency: run the self-consistency check even without a hierarchy strategy.
                views: image views for the consistency check, comma-separated ids (empty: all of them).
                rerank_all: re-rank every image with WordNet, not only the low-confidence ones.
                senses: WordNet senses to force, e.g. "crane=crane.n.04" (comma-separated).
                tpt_steps: test-time prompt tuning steps (0 to 20).
                tpt_views: test-time prompt tuning views (random crops plus the original).
                model: another model to use: a preset id or "ARCH TAG" (empty: the server's model).
                wordnet_keep: share of WordNet kept by the sparse hierarchy (0.05 to 1; 0.4 as in the paper).
                low_confidence: which images count as uncertain: "binary", or a rule such as "s_t<0.6".
                rerank_top: how many candidates WordNet re-ranks (5 or 10).
                descriptors: descriptors for dclip and cupl: DCLIP's JSON, or "class: d; d" lines.
                attributes: PerceptionCLIP's contextual attributes, "attribute: value, value" per line.
                perception_temperature: PerceptionCLIP's temperature of p(z|x).
                compare_model: a second model to run the same request on (empty or "none": no comparison).
                support: a .zip of labelled examples for tip and coop (one folder per class, or a labels.csv).
                tip_alpha: Tip-Adapter's cache weight alpha.
                tip_beta: Tip-Adapter's sharpness beta.
                val_fraction: share of the support set held out to search alpha and beta (0: use them as given).
                coop_context: CoOp's context: "16" learned vectors, or "init" from "a photo of a".
                coop_epochs: CoOp's training epochs (1 to 200).
            """
            # Raw values: the backend checks every one (a string is not an uploaded file); URLs
            # (what MCP clients send) are downloaded first, with Gradio's SSRF protection.
            with remote.fetched(images, "image", LIMITS.images) as images, \
                    remote.fetched_one(support, "support set") as support:
                return tasks.classify(config, dict(
                    paths=images, classes=classes, strategies=strategies, templates=templates, model=model, top_k=top_k,
                    views=views or None, consistency=consistency, rerank_all=rerank_all, senses=senses,
                    tpt_steps=tpt_steps, tpt_views=tpt_views, wordnet_keep=wordnet_keep, low_confidence=low_confidence,
                    rerank_top=rerank_top, descriptors=descriptors, attributes=attributes,
                    perception_temperature=perception_temperature, compare_model=compare_model, support=support,
                    tip_alpha=tip_alpha, tip_beta=tip_beta, val_fraction=val_fraction, coop_context=coop_context,
                    coop_epochs=coop_epochs), answer="api")

        def wordnet(classes: str, senses: str = "") -> list[dict]:
            """How class names map into WordNet: every noun sense, the one used and why, parent, children.

            Args:
                classes: the class names, one per line or comma-separated; each is read in the context of the others.
                senses: WordNet senses to force, e.g. "crane=crane.n.04" (comma-separated).
            """
            return backend.wordnet_senses(classes, senses)

        def options() -> dict:
            """What the other tools accept: model presets, strategy ids, class-name presets and image view ids."""
            return backend.options(config)

        def evaluate(archive: FileData, strategies: str = "name,photo,clip80,hierarchy", views: str = "all",
                         rerank_all: bool = False, model: str = "", wordnet_keep: float = 0.4,
                         low_confidence: str = "binary", rerank_top: int = 5, descriptors: str = "",
                         attributes: str = "", perception_temperature: float = 3.0,
                         support: FileData | None = None) -> dict:
            """Evaluate strategies on a .zip of labelled images; returns the report as JSON.

            The report holds top-1 and top-5 accuracy per strategy, the low-confidence set before and
            after WordNet re-ranking, AUROC and coverage of each confidence score, per-class accuracy
            and the most confused pairs.

            Args:
                archive: a .zip of labelled images: a folder per class, or a labels.csv (path,label); a URL over MCP.
                strategies: strategy ids, comma-separated (name only and CLIP-80 always run).
                views: image views for S_B: "all" (the paper's) or "flip" (faster).
                rerank_all: re-rank every image with WordNet, not only the low-confidence ones.
                model: another model to use: a preset id or "ARCH TAG" (empty: the server's model).
                wordnet_keep: share of WordNet kept by the sparse hierarchy (0.05 to 1).
                low_confidence: which images count as uncertain: "binary", or a rule such as "s_t<0.6".
                rerank_top: how many candidates WordNet re-ranks (5 or 10).
                descriptors: descriptors for dclip and cupl: DCLIP's JSON, or "class: d; d" lines.
                attributes: PerceptionCLIP's contextual attributes, "attribute: value, value" per line.
                perception_temperature: PerceptionCLIP's temperature of p(z|x).
                support: a .zip of labelled examples for tip and coop, separate from the evaluated set.
            """
            with remote.fetched_one(archive, "zip") as archive, remote.fetched_one(support, "support set") as support:
                return tasks.evaluate_api(config, archive, strategies, dict(
                    views=views, rerank_all=rerank_all, model=model, wordnet_keep=wordnet_keep,
                    low_confidence=low_confidence, rerank_top=rerank_top, descriptors=descriptors,
                    attributes=attributes, perception_temperature=perception_temperature, support=support))

        # Gradio's MCP server names each tool after its function and reads its docstring's Args.
        gr.api(user_errors(classify), api_name="classify", concurrency_id="model")
        gr.api(user_errors(evaluate), api_name="evaluate", concurrency_limit=1, concurrency_id="evaluate")
        gr.api(user_errors(wordnet), api_name="wordnet")
        gr.api(user_errors(options), api_name="options")
    return explain_refusals(page)


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "anonymous"


def launch(page: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False,
           concurrency: int = 2, queue_size: int = 64, mcp: bool = False, **kwargs: Any) -> tuple:
    # One model and one text cache serve everyone; the queue bounds how many requests run at once
    # (the model's lock serialises forward passes; decoding and plotting overlap) and how many wait.
    # mcp: the public endpoints also become MCP tools (Gradio's MCP server, /gradio_api/mcp/).
    page.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    start_trimming()
    return page.launch(server_name=host, server_port=port, share=share, max_file_size=LIMITS.upload_bytes,
                       state_session_capacity=STATE_SESSIONS, css=CSS, show_error=False, mcp_server=mcp, **kwargs)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="zsdemo serve", description="zsdemo web app")
    parser.add_argument("--model", default=os.environ.get("ZSDEMO_MODEL", DEFAULT_PRESET),
                        help="model preset or open_clip spec (default %(default)s)")
    parser.add_argument("--pretrained", default=os.environ.get("ZSDEMO_PRETRAINED"),
                        help="pretrained tag or checkpoint file for an architecture name")
    parser.add_argument("--device", default=os.environ.get("ZSDEMO_DEVICE", "auto"),
                        help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    parser.add_argument("--concurrency", type=int, default=2, help="requests worked on at once")
    parser.add_argument("--queue-size", type=int, default=64, help="requests that may wait; more are refused")
    parser.add_argument("--feature-cache", default=str(backend.DEFAULT_FEATURE_CACHE),
                        help="folder of the evaluation tab's image-feature cache ('none': keep none; "
                             "default %(default)s)")
    parser.add_argument("--max-models", type=int, default=1,
                        help="models kept in memory besides the served one when visitors switch models")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="do not load the model and compute the examples' and presets' text features at start")
    parser.add_argument("--allow-random-models", action="store_true",
                        help="let visitors pick a bare open_clip architecture (random weights; off by default)")
    parser.add_argument("--mcp", action="store_true", default=_env_flag("ZSDEMO_MCP"),
                        help="also serve /classify, /evaluate, /wordnet and /options as MCP tools at "
                             "/gradio_api/mcp/ (env ZSDEMO_MCP=1)")
    for info in LIMITS_INFO:
        parser.add_argument(info.flag, default=None, metavar="N",
                            help=f"limit: {info.what} (default {getattr(LIMITS, info.name)}; env {info.env})")
    args = parser.parse_args(argv)
    try:
        check_environment()
        for info in LIMITS_INFO:
            value = getattr(args, "max_" + info.name)
            if value is not None:
                LIMITS.set(info.name, value)
    except ZsdemoError as e:
        parser.error(e.for_cli())   # before anything starts: one line, exit status 2
    logging.basicConfig(level=logging.INFO)
    REGISTRY.max_models = max(0, args.max_models)
    cache = None if args.feature_cache.lower() == "none" else args.feature_cache
    try:
        page = build_app(args.model, args.pretrained, args.device, cache, args.allow_random_models,
                         warm_up=not args.no_warm_up)
    except ZsdemoError as e:
        parser.error(e.for_cli())
    launch(page, args.host, args.port, args.share, args.concurrency, args.queue_size, mcp=args.mcp)


if __name__ == "__main__":
    main()
