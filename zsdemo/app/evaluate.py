"""The Evaluate tab: a zip of labelled images in, accuracy, selective prediction and downloads out."""

from __future__ import annotations

import gradio as gr

from ..core import constants
from ..core.limits import LIMITS
from ..run import shots
from . import choices as app_choices, controls, gpu, state, tasks
from .evaluation_panels import figure_html
from .events import CONTROL, busy, idle, named, problem, session, stop_session
from .inputs import advanced

EVAL_INTRO = """Measure the strategies on your own labelled images. Upload a **.zip** of either
- one folder per class (ImageFolder; a folder named by a WordNet id such as `n01440764` stands for that
  ImageNet class), or
- the images with a `labels.csv` of `path,label` rows.

You get top-1 and top-5 accuracy per strategy, the low-confidence set before and after WordNet
re-ranking, how well each confidence score separates right from wrong predictions (AUROC, coverage
curve), per-class accuracy, the most confused pairs, and CSV/JSON downloads. With a few-shot .zip
of labelled examples and a shots curve (1,2,4,8,16), the CLIP paper's question: how many labelled
examples per class is each zero-shot strategy worth here? Limits: the upload
size limit of this server, at most {max_images} images, {max_files} zip entries, {max_mb} MB
unzipped; links and paths leaving the zip are refused. Larger sets: the command line on your own machine
(`zsdemo evaluate`)."""
SHOW_EVAL_JS = """() => { const r = document.getElementById('eval-results');
  if (r) { r.classList.add('zs-stale'); r.scrollIntoView({behavior: 'smooth', block: 'start'}); } }"""
FRESH_EVAL_JS = "() => { document.getElementById('eval-results')?.classList.remove('zs-stale'); }"
# The report's parts, in the order the tab shows them.
TABLES = ("accuracy", "low_confidence", "auroc", "per_class", "confusions")
PLOTS = ("coverage", "strategy_coverage")
FIGURES = {"coverage": "Accuracy against coverage, one line per confidence score",
           "strategy_coverage": "Each strategy's accuracy against coverage",
           "shots_curve": "Accuracy against labelled examples per class"}


def build(config: state.AppConfig, model: str) -> None:
    """The tab's content (inside a gr.Tab), with its events."""
    gr.Markdown(EVAL_INTRO.format(max_images=LIMITS.eval_images, max_files=LIMITS.zip_files, max_mb=LIMITS.zip_mb))
    with gr.Row():
        with gr.Column(scale=2, min_width=340):
            inputs, run, stop = _inputs(config, model)
        with gr.Column(scale=3, min_width=340, elem_id="eval-results"):
            outputs = _outputs()

    def evaluate_page(values: dict, request: gr.Request, progress=gr.Progress()) -> dict:
        args = named(values, inputs)
        upload, strategies = args.pop("upload"), args.pop("strategies")
        key = session(request)
        flag = CONTROL.current(key)
        try:
            p, files = tasks.evaluate_page(config, upload, strategies, args, flag, gpu.PageProgress(progress))
        except Exception as e:
            # One message where the summary goes, not an "Error" badge on every table.
            hidden = {c: gr.update(value=None, visible=False) for k, c in outputs.items() if k != "summary"}
            return {outputs["summary"]: problem(e, "evaluate"), **hidden}
        finally:
            CONTROL.end(key, flag)
        shown = {outputs[t]: gr.update(value={"headers": getattr(p, t)[0], "data": getattr(p, t)[1]}, visible=True)
                 for t in TABLES}
        shown.update({outputs[k]: gr.update(value=figure_html(getattr(p, k), FIGURES[k], p.descriptions[k]),
                                            visible=True) for k in PLOTS})
        # The curve only when one was asked for; hidden again after an evaluation without it.
        shown[outputs["shots_text"]] = gr.update(value=p.shots_text or None, visible=bool(p.shots_text))
        drawn = p.shots_curve is not None
        shown[outputs["shots_curve"]] = gr.update(visible=drawn, value=figure_html(
            p.shots_curve, FIGURES["shots_curve"], p.descriptions["shots_curve"]) if drawn else "")
        return {outputs["summary"]: p.summary, outputs["files"]: gr.update(value=files, visible=True), **shown}

    started = run.click(busy, None, [run, stop], js=SHOW_EVAL_JS, queue=False, api_visibility="private")
    event = started.then(evaluate_page, set(inputs.values()), list(outputs.values()), api_name="ui_evaluate",
                         api_visibility="private", concurrency_limit=1, concurrency_id="evaluate",
                         show_progress_on=[outputs["summary"]])
    event.then(idle("Evaluate"), None, [run, stop], js=FRESH_EVAL_JS, queue=False, api_visibility="private")
    stop.click(stop_session, None, [run, stop], queue=False, api_visibility="private")


def _inputs(config: state.AppConfig, model: str) -> tuple[dict[str, gr.Component], gr.Button, gr.Button]:
    v: dict[str, gr.Component] = {}
    v["upload"] = gr.File(label="A .zip of labelled images", file_types=[".zip"], type="filepath", elem_id="eval-zip")
    v["strategies"] = gr.CheckboxGroup(label="Strategies (name only and CLIP-80 always run: the baselines need them)",
                                       choices=app_choices.eval_strategy_choices(),
                                       value=list(constants.DEFAULT_STRATEGIES), elem_id="eval-strategies")
    v["views"] = gr.Radio(label="Image views for S_B",
                          choices=[("all 10 views (S_B as in the paper)", "all"),
                                   ("left-right flip only (the binary rule's O_B; ~5x faster)", "flip")], value="all")
    v["model"] = gr.Dropdown(label="Model", choices=app_choices.model_choices(config), value=model,
                             allow_custom_value=True)
    v["support"] = gr.File(label="Few-shot: a .zip of labelled examples, separate from the evaluated set",
                           file_types=[".zip"], type="filepath", elem_id="eval-support")
    with gr.Row(elem_id="eval-shots-row"):
        v["shots"] = gr.Textbox(label="Shots curve: examples per class to draw from that .zip",
                                placeholder="e.g. 1,2,4,8,16 (empty: no curve)", elem_id="eval-shots", scale=3,
                                info="fits the linear probe, GDA and Tip-Adapter on each count, beside the "
                                     "zero-shot strategies ticked")
        v["seeds"] = gr.Number(label="Draws per count", value=shots.DEFAULT_SEEDS, minimum=1,
                               maximum=shots.MAX_SEEDS, precision=0, elem_id="eval-seeds", scale=1,
                               info="the curve's spread")
    with gr.Accordion("Settings of the ticked methods", open=False, elem_id="eval-method-settings"):
        v.update(advanced("evaluate"))
        found, boxes = controls.method_settings(controls.evaluable, v["strategies"].value)
        v.update(found)
    controls.follow_ticks(v["strategies"], boxes)
    with gr.Row():
        run = gr.Button("Evaluate", variant="primary", elem_id="eval-run", scale=3)
        stop = gr.Button("Stop", variant="stop", elem_id="eval-stop", visible=False, scale=1)
    return v, run, stop


def _outputs() -> dict[str, gr.Component]:
    o: dict[str, gr.Component] = {}
    o["summary"] = gr.Markdown("*The results appear here: upload a zip and press Evaluate.*", elem_id="eval-summary")
    # Hidden until there is something to show (no empty placeholder grids).
    o["accuracy"] = gr.Dataframe(label="Accuracy per strategy", visible=False, interactive=False, wrap=True,
                                 elem_id="eval-accuracy")
    with gr.Row():
        o["low_confidence"] = gr.Dataframe(label="Low-confidence set (by the chosen rule) before and after WordNet "
                                                 "re-ranking (Ge et al., Table 1)", visible=False, interactive=False,
                                           wrap=True)
        o["auroc"] = gr.Dataframe(label="Selective prediction: AUROC of each confidence score", visible=False,
                                  interactive=False, wrap=True)
    o["shots_text"] = gr.Markdown(visible=False, elem_id="eval-shots-text")
    # Figures as HTML (evaluation_panels.figure_html): a picture with its own words, which gr.Plot
    # cannot give (its alternative text is "matplotlib plot visualising provided data").
    o["shots_curve"] = gr.HTML(visible=False, elem_id="eval-shots-curve", elem_classes="zs-eval-plot")
    o["coverage"] = gr.HTML(visible=False, elem_id="eval-coverage", elem_classes="zs-eval-plot")
    o["strategy_coverage"] = gr.HTML(visible=False, elem_id="eval-strategy-coverage", elem_classes="zs-eval-plot")
    # One above the other: side by side, the per-class table (a column per strategy) was cut at 1280 px.
    o["per_class"] = gr.Dataframe(label="Per-class top-1 accuracy", visible=False, interactive=False,
                                  max_height=400, wrap=True, elem_id="eval-per-class")
    o["confusions"] = gr.Dataframe(label="Most confused class pairs", visible=False, interactive=False,
                                   max_height=400, wrap=True)
    o["files"] = gr.File(label="Downloads: report.json and the CSV tables", file_count="multiple", interactive=False,
                         elem_id="eval-files", visible=False)
    return o
