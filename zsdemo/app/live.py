"""The Live camera tab: hold something up to the camera and watch each strategy's answer follow it.

Gradio streams the webcam (``gr.Image(streaming=True)``): the browser sends the next frame only
when the last answer has come back, so a slow model drops frames instead of queueing them. Each
frame takes the model's turn like any request (``concurrency_id="model"``) and a stream ends after
``LIVE_SECONDS``. The classes and strategies are the Classify tab's, kept in step both ways.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gradio as gr
from PIL import Image

from ..core import markup
from ..core.errors import InputError, ZsdemoError
from ..engine.models import get_model
from ..run import live as live_frames
from ..run.request import prepare_request
from . import gpu, panels, state as app_state
from .events import GENERIC_ERROR, user_errors
from .inputs import Inputs

LIVE_SECONDS = 120            # one stream's length; Record again to go on
FRAME_EVERY_S = 0.25          # at most four frames a second are asked for
log = logging.getLogger("zsdemo.app.live")
SIDE = 640                    # the capture size asked of the camera (the model needs 224)
FACING = {"Back camera": "environment", "Front camera": "user"}
FPS_WINDOW = 8                # answers the frames-per-second figure is measured over
INTRO = f"""Hold something up to the camera: every ticked strategy that needs one look at the image answers
each frame, with the same classes as the Classify tab (change them on either tab). **Pause** keeps the
last frame and its answer; **Send this frame to Classify** runs the full analysis on it (consistency,
WordNet, every strategy, the occlusion map). A stream lasts {LIVE_SECONDS // 60} minutes: press Record
again to go on. No picture? Allow the camera when the browser asks (or in the address bar's site
settings, then reload); a computer without a camera can still use the Classify tab's uploads.

**Privacy:** frames are never written to disk, cached or logged; each lives in the server's memory for
its answer, and the last one for Pause. Only a frame you send to Classify becomes an uploaded photo."""


def constraints(facing: str) -> dict[str, Any]:
    """What the page asks of the camera: which one, at a modest size."""
    return {"video": {"facingMode": facing, "width": {"ideal": SIDE}, "height": {"ideal": SIDE * 3 // 4}}}


def camera(facing: str = "environment") -> gr.Image:
    # mirror=False: Gradio mirrors the frames it *sends* when mirroring, so text held up reached the
    # model reversed. The front camera's preview is mirrored by the page's CSS only (app.css).
    return gr.Image(sources=["webcam"], streaming=True, type="pil", label="Camera", elem_id="live-camera",
                    webcam_options=gr.WebcamOptions(mirror=False, constraints=constraints(facing)),
                    elem_classes=["zs-front"] if facing == "user" else [], height=360)


def live_model(config: app_state.AppConfig):
    """The model live frames run on: the server's; on ZeroGPU a CPU copy of it (a GPU booking
    per frame would cost more than the frame)."""
    return get_model(config.model, config.pretrained, "cpu" if gpu.on_zerogpu() else config.device)


def answer_html(answer: live_frames.Answer, skipped: dict[str, str]) -> str:
    """Large live bars: each strategy's top classes, its top-1 first and framed."""
    cards = []
    for r in answer.results:
        rows = "".join(
            f'<div class="zs-live-row{" zs-top1" if k == 0 else ""}" title="{markup.html(p.class_name)}: '
            f'{100 * p.prob:.1f}%"><span class="zs-label">{markup.html(p.class_name)}</span>'
            f'<span class="zs-track"><span class="zs-fill" style="width:{100 * p.prob:.1f}%;'
            f'background:{panels.class_fill(p.index)}"></span></span>'
            f'<span class="zs-pct">{100 * p.prob:.0f}%</span></div>'
            for k, p in enumerate(r.top_k[:3]))
        cards.append(f'<div class="zs-live-card"><div class="zs-card-title">{markup.html(r.label)}</div>'
                     f'<div class="zs-live-top">{markup.html(r.top1.class_name)}</div>{rows}</div>')
    not_live = "".join(f"<li>{markup.html(label)}: {markup.html(why)}</li>" for label, why in skipped.items())
    note = (f'<div class="zs-caption">Not run live (send the frame to Classify for them):<ul>{not_live}</ul></div>'
            if not_live else "")
    return f'<div class="zs-live-cards">{"".join(cards)}</div>{note}'


def seen_html(image: Image.Image) -> str:
    url = panels.thumbnail_url(image, 160)
    return (f'<figure class="zs-live-seen"><img src="{url}" alt="The frame as the model sees it: '
            f'{image.width}x{image.height} pixels, resized and cropped to a square"><figcaption>What the model '
            f'sees: {image.width}x{image.height}, cropped to a square</figcaption></figure>')


def build(config: app_state.AppConfig, ins: Inputs) -> dict[str, gr.Component]:
    """The tab's content (inside a gr.Tab), with its events; returns its components by name."""
    gr.Markdown(INTRO, elem_id="live-intro")
    parts: dict[str, gr.Component] = {"notes": gr.Markdown(elem_id="live-notes")}   # a camera lesson's
    # The camera, then its answer (on a phone: one under the other), then what to ask.
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            parts["camera"] = camera()
            parts["facing"] = gr.Radio(list(FACING), value="Back camera", label="Which camera (a phone or tablet)",
                                       elem_id="live-facing")
        with gr.Column(scale=3, min_width=300):
            parts["status"] = gr.HTML(panels.status_html("stopped", "Press Record under the camera to start."),
                                      elem_id="live-status")
            parts["bars"] = gr.HTML(elem_id="live-bars")       # first under the camera on a phone
            with gr.Row():
                parts["pause"] = gr.Button("Pause", elem_id="live-pause", scale=0, min_width=120)
                parts["send"] = gr.Button("Send this frame to Classify", elem_id="live-send", scale=0, min_width=260)
            parts["seen"] = gr.HTML(elem_id="live-seen")
    with gr.Row():
        parts["classes"] = gr.Textbox(label="Class names (the Classify tab's)", lines=3, max_lines=8,
                                      value=ins["classes"].value, elem_id="live-classes", scale=2)
        parts["strategies"] = gr.CheckboxGroup(label="Strategies (the Classify tab's)",
                                               choices=ins["strategies"].choices, value=ins["strategies"].value,
                                               elem_id="live-strategies", scale=3)
    session = gr.State({"paused": False, "times": [], "frame": None})
    _wire(config, ins, parts, session)
    return parts


def _wire(config: app_state.AppConfig, ins: Inputs, parts: dict[str, gr.Component], session: gr.State) -> None:
    def frame(image: object, classes: str, strategies: list[str], kept: dict) -> tuple:
        kept = kept if isinstance(kept, dict) else {}
        if kept.get("paused"):
            return gr.skip(), gr.skip(), gr.skip(), kept
        try:
            request = prepare_request(classes or "", list(strategies or []), served=True, where="api")
            answer = live_frames.SCORER.score(live_model(config), request, image)
        except ZsdemoError as e:
            return gr.skip(), gr.skip(), panels.status_html("error", e.for_page()), kept
        except Exception:
            log.exception("unexpected error on a live frame")
            return gr.skip(), gr.skip(), panels.status_html("error", GENERIC_ERROR), kept
        times = [*kept.get("times", []), time.monotonic()][-FPS_WINDOW:]
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        _, skipped = live_frames.split(request.chosen)
        said = (f"Live: {fps:.1f} frames a second served, {1000 * answer.seconds:.0f} ms a frame "
                f"({1000 * answer.encode_seconds:.0f} ms in the image tower).")
        kept = {"paused": False, "times": times, "frame": answer.frame}
        return (answer_html(answer, skipped), seen_html(answer.seen),
                panels.status_html("done", said), kept)

    parts["camera"].stream(frame, [parts["camera"], parts["classes"], parts["strategies"], session],
                           [parts["bars"], parts["seen"], parts["status"], session], stream_every=FRAME_EVERY_S,
                           time_limit=LIVE_SECONDS, concurrency_id="model", show_progress="hidden",
                           api_visibility="private")

    def pause(kept: dict) -> tuple:
        paused = not kept.get("paused")
        status = ("Paused: the last frame and its answer stay. Press Resume to go on." if paused
                  else "Resumed: the next frame is answered.")
        return ({**kept, "paused": paused}, gr.update(value="Resume" if paused else "Pause"),
                panels.status_html("stopped" if paused else "done", status))

    parts["pause"].click(pause, session, [session, parts["pause"], parts["status"]], queue=False,
                         api_visibility="private")

    def facing(choice: str) -> gr.Image:
        return camera(FACING.get(choice, "environment"))

    parts["facing"].change(facing, parts["facing"], parts["camera"], queue=False, api_visibility="private")
    # The classes and strategies are the Classify tab's: typing on either tab changes both.
    for mine, theirs in (("classes", "classes"), ("strategies", "strategies")):
        parts[mine].input(lambda v: v, parts[mine], ins[theirs], queue=False, api_visibility="private")
        ins[theirs].change(lambda v: v, ins[theirs], parts[mine], queue=False, api_visibility="private")

    @user_errors
    def send(kept: dict) -> list[str]:
        picture = kept.get("frame") if isinstance(kept, dict) else None
        if not isinstance(picture, Image.Image):
            raise InputError("No frame yet: press Record under the camera first, then send a frame.")
        path = app_state.report_folder() / "camera-frame.png"
        picture.save(path)
        return [str(path)]

    parts["send"].click(send, session, ins["gallery"], api_visibility="private").success(
        None, None, None, js=SEND_JS, api_visibility="private")


# After the frame is in the Classify tab's images: show that tab and press Classify.
SEND_JS = """() => { document.querySelector('button[role="tab"][data-tab-id="classify"]')?.click();
  setTimeout(() => document.getElementById('run')?.click(), 400); }"""
