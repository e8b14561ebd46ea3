"""What every page event shares: errors said in words, the Stop of each browser session, the
buttons' busy and idle states, and named inputs (a dict of components, never an order)."""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Mapping

import gradio as gr

from ..core.errors import ZsdemoError
from ..core.progress import Stopped
from . import panels, state, toasts

log = logging.getLogger("zsdemo.app")
CONTROL = state.RunControl()      # the Stop button of each browser session
GENERIC_ERROR = ("Something went wrong on the server while doing this. Please try again; "
                 "if it keeps happening, try fewer images or classes.")


def problem(e: Exception, where: str) -> str:
    """The status line of a page action that failed (the page's outputs keep what they had): a
    stop says so, our errors say what to do (and show a toast), a ``gr.Error`` (ZeroGPU's "no GPU
    was available", say) is said as it is, anything else is logged."""
    if isinstance(e, Stopped):
        return panels.status_html("stopped", e.for_page())
    if isinstance(e, ZsdemoError):
        toasts.warning(e.for_page())
        return panels.status_html("error", e.for_page())
    if isinstance(e, gr.Error):        # said for the visitor by Gradio or the host (ZeroGPU's quota, say)
        return panels.status_html("error", str(e.message))
    log.exception("unexpected error in %s", where)
    return panels.status_html("error", GENERIC_ERROR)


def user_errors(fn: Callable, shown_in_page: bool = True) -> Callable:
    """Our errors become a short message on the page (escaped: it may quote what a visitor sent)
    or, for an API endpoint (``shown_in_page=False``), to its client as text; anything else too,
    without a traceback."""
    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ZsdemoError as e:
            raise (toasts.refuse(e.for_page()) if shown_in_page else toasts.error(e.for_page(), False)) from None
        except gr.Error:
            raise
        except Exception:
            log.exception("unexpected error in %s", fn.__name__)
            raise toasts.error(GENERIC_ERROR, shown_in_page) from None
    return wrapped


def api_errors(fn: Callable) -> Callable:
    """``user_errors`` for an API endpoint: its client reads the message as text."""
    return user_errors(fn, shown_in_page=False)


def session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "anonymous"


def busy(request: gr.Request) -> tuple:
    """A tab's button while its run goes: disabled, its Stop shown."""
    CONTROL.begin(session(request))
    return gr.update(interactive=False, value="Working…"), gr.update(visible=True)


def idle(label: str) -> Callable[[], tuple]:
    return lambda: (gr.update(interactive=True, value=label), gr.update(visible=False))


def stop_session(request: gr.Request) -> tuple:
    # The run ends at the model's next turn and says so; until then the button stays disabled
    # (a new run would wait behind the stopping one anyway).
    CONTROL.stop(session(request))
    return gr.update(value="Stopping…"), gr.update(visible=False)


def named(values: Mapping[Any, Any], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """An event's values (Gradio passes a dict by component when the inputs are a set) by name."""
    return {name: values.get(component) for name, component in inputs.items()}


def paths(gallery: list | None) -> list[str]:
    return [item[0] if isinstance(item, (list, tuple)) else item for item in (gallery or [])]
