"""The Classify tab's action bar: Classify, Stop and the status line, kept in view at the foot of
the window at every size (a sticky bar), with the presentation-mode switch.

Presentation mode (the switch, or ``?present=1`` in the address) enlarges every text of the
lesson to at least 20 px at 1280x720 and hides the advanced controls (``app.css``,
``body.zs-present``); it lives in the browser, so it costs the server nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

WAITING = '<div class="zs-caption">Results appear here: press Classify, or click an example above.</div>'
# Toasts of an earlier problem are closed when a new run starts (they would sit over its result).
CLOSE_TOASTS = "document.querySelectorAll('.toast-close').forEach(b => b.click());"
# A run from the button shows the results (on a phone they are below the inputs) and dims the
# previous ones until the new ones arrive.
SHOW_RESULTS_JS = """() => { %s const r = document.getElementById('results');
  if (r) { r.classList.add('zs-stale'); r.scrollIntoView({behavior: 'smooth', block: 'start'}); } }""" % CLOSE_TOASTS
# A re-run from the sense picker keeps the reader where they are (next to the WordNet panel).
STAY_JS = """() => { %s document.getElementById('results')?.classList.add('zs-stale'); }""" % CLOSE_TOASTS
FRESH_JS = "() => { document.getElementById('results')?.classList.remove('zs-stale'); }"
PRESENT_JS = "(on) => { document.body.classList.toggle('zs-present', !!on); return on; }"
# ?present=1 (or true, on, yes) in the address starts the page in presentation mode.
PRESENT_FROM_URL_JS = """() => { const v = (new URLSearchParams(window.location.search).get('present') || '').toLowerCase();
  const on = ['1', 'true', 'on', 'yes'].includes(v); document.body.classList.toggle('zs-present', on); return on; }"""


@dataclass
class Actions:
    run: gr.Button
    stop: gr.Button
    status: gr.HTML
    present: gr.Checkbox


def build() -> Actions:
    """The bar (inside the tab, after everything else: it sticks to the foot of the window)."""
    with gr.Row(elem_id="action-bar"):
        run = gr.Button("Classify", variant="primary", elem_id="run", scale=0, min_width=140)
        stop = gr.Button("Stop", variant="stop", elem_id="stop", visible=False, scale=0, min_width=90)
        with gr.Column(scale=1, min_width=0, elem_id="status-slot"):
            status = gr.HTML(WAITING, elem_id="run-status", min_height=0, padding=False)
        with gr.Column(scale=0, min_width=200, elem_id="present-slot"):
            present = gr.Checkbox(label="Presentation mode", value=False, elem_id="present", container=False)
    present.change(None, present, None, js=PRESENT_JS, queue=False, api_visibility="private")
    return Actions(run, stop, status, present)


def follow_url(page: gr.Blocks, actions: Actions) -> None:
    """On load, the address's ?present=1 switches presentation mode on (and ticks the switch)."""
    page.load(None, None, actions.present, js=PRESENT_FROM_URL_JS, api_visibility="private")
