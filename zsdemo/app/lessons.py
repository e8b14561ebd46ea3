"""The lessons on the page: the built-in ones as links, a link to what is on the page now
("Copy link", which also puts it in the address), and the page restored from its address."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..core.errors import ZsdemoError
from ..core.markup import md
from ..core.resources import SUS_POOL
from . import choices, links, panels, state, toasts
from .actions import Actions
from .events import named
from .inputs import Inputs

# The query string becomes the address (without a reload) and is copied when the browser allows.
SHARE_JS = """(query) => { const url = window.location.origin + window.location.pathname + (query ? '?' + query : '');
  window.history.replaceState(null, '', url); if (navigator.clipboard) navigator.clipboard.writeText(url).catch(() => {});
  return url; }"""


def lessons_markdown() -> str:
    """Each built-in lesson: a link, a link in presentation mode, and what to say and point at."""
    parts = []
    for lesson in links.LESSONS:
        parts.append(f"**[{md(lesson.title)}]({links.lesson_link(lesson)})** "
                     f"([at the projector]({links.lesson_link(lesson, present=True)})): {lesson.say}")
    return "\n\n".join(parts)


def build() -> tuple[gr.Button, gr.Textbox, gr.Accordion]:
    """The Lessons accordion (inside the tab): the lessons, Copy link and the link itself."""
    with gr.Accordion("Lessons: open one as a link, or share what is on the page", open=False,
                      elem_id="lessons") as area:
        gr.Markdown(lessons_markdown(), elem_id="lesson-list")
        with gr.Row(equal_height=False):
            copy = gr.Button("Copy link to this page", elem_id="copy-link", scale=0, min_width=220, size="md")
            link = gr.Textbox(label="Link to what is on the page (classes, strategies, settings, model, photos)",
                              elem_id="lesson-link", interactive=False, buttons=["copy"], scale=1)
    return copy, link, area


def wire(page: gr.Blocks, config: state.AppConfig, ins: Inputs, bar: Actions, copy: gr.Button,
         link: gr.Textbox, area: gr.Accordion, tabs: gr.Tabs, live_notes: gr.Markdown,
         map_area: gr.Accordion, map_follow: gr.Checkbox) -> None:
    """Copy link (and every Classify) writes the address; opening an address restores the page."""
    query = gr.Textbox(visible=False)

    def share(values: dict) -> str:
        return links.link_query(named(values, ins.values))

    everything = set(ins.values.values())
    copy.click(share, everything, query, queue=False, api_visibility="private").then(
        None, query, link, js=SHARE_JS, queue=False, api_visibility="private").then(
        lambda: toasts.info("Link copied: it opens this page with the same classes, strategies and settings."),
        None, None, queue=False, api_visibility="private")
    bar.run.click(share, everything, query, queue=False, api_visibility="private").then(
        None, query, link, js=SHARE_JS, queue=False, api_visibility="private")
    # A sense chosen in the WordNet picker (and re-run) is part of the page: the address says it too.
    ins["senses"].change(share, everything, query, queue=False, api_visibility="private").then(
        None, query, link, js=SHARE_JS, queue=False, api_visibility="private")

    def restore(request: gr.Request) -> dict:
        values, problems = links.from_query(list(request.query_params.multi_items()) if request else [])
        if "model" in values:
            try:
                choices.model_choice(config, values["model"])
            except ZsdemoError as e:
                problems.append(f"The link's model: {e.for_page()}")
                values.pop("model")
        for message in problems[:3]:
            toasts.warning(message)
        out: dict[Any, Any] = {ins.values[k]: v for k, v in values.items() if k in ins.values}
        if "preset" in values and ins.preset is not None:
            out[ins.preset] = values["preset"]
        # Gradio reads an empty dict as one value, not as "no updates": the status line is always set.
        out[bar.status] = (panels.status_html("done", "Lesson loaded from the link: press Classify.") if out
                           else gr.skip())
        # A lesson's link opens its teaching notes (what to say, what to point at), on its own tab.
        lesson = links.BY_ID.get(request.query_params.get("lesson", "")) if request else None
        out[area] = gr.Accordion(open=True) if lesson else gr.skip()
        elsewhere = lesson is not None and lesson.tab != "classify"
        out[tabs] = gr.Tabs(selected=lesson.tab) if elsewhere else gr.skip()
        out[live_notes] = f"**{md(lesson.title)}.** {lesson.say}" if elsewhere and lesson.tab == "live" else gr.skip()
        pooled = lesson is not None and lesson.pool
        if pooled:
            out[ins.values["sus_pool"]] = str(SUS_POOL)
        out[ins.few_shot] = gr.Accordion(open=True) if pooled else gr.skip()
        mapped = lesson is not None and lesson.embedding_map
        out[map_area] = gr.Accordion(open=True) if mapped else gr.skip()
        out[map_follow] = True if mapped else gr.skip()
        return out

    page.load(restore, None, [*ins.values.values(), bar.status, area, tabs, live_notes, map_area, map_follow,
                              ins.few_shot,
                              *([ins.preset] if ins.preset else [])], api_visibility="private")
