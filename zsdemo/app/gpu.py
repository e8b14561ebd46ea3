"""ZeroGPU: Hugging Face's shared GPUs for Spaces, booked per call.

On ZeroGPU (the Space sets ``SPACES_ZERO_GPU``) a real GPU exists only inside functions decorated
with ``@spaces.GPU``, which the ``spaces`` package runs in a worker process forked from the
server: their arguments and results are pickled across, and the GPU is booked for a duration
the call names beforehand. Everywhere else ``spaces.GPU`` returns the function itself, so the
page works as it always did.

What this means here:
- ``spaces`` is imported before anything touches CUDA (this module is the page's first import);
- the served model goes to ``cuda`` at start-up, as ZeroGPU requires (``build_app`` loads it
  before launch instead of in the warm-up thread);
- the page's GPU work (classify, its examples and sense re-runs, evaluate, and the API's
  ``/classify`` and ``/evaluate``) runs in ``task`` functions whose arguments are plain data, a
  ``StopFlag`` (a file both processes see) and a picklable progress reporter;
- each call books ``booked_seconds``: the request's own estimate (``classifying.run_seconds``) at
  ``RATES``, plus start-up ``OVERHEAD_S``, within ``[MIN_S, MAX_S]``.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

try:       # first: on ZeroGPU, importing spaces patches torch before CUDA is touched
    import spaces
except ImportError:      # a plain install without the Space's requirements: no ZeroGPU
    spaces = None

from ..core.errors import ZsdemoError
from ..run.pipeline import Rates

F = TypeVar("F", bound=Callable[..., Any])

# Speeds assumed on ZeroGPU's GPU for the booking (a ViT-B/32 at batch 64 on a GPU of that class
# embeds thousands of prompts and hundreds of images a second; a B/16 about a third of that):
# cautious figures, so that a booking runs out late rather than early.
RATES = Rates(prompts_per_second=1500.0, images_per_second=150.0)
OVERHEAD_S = 10.0        # starting or waking the GPU worker and moving the model onto the GPU
MIN_S = 15               # never book less: the worker's start alone can take seconds
MAX_S = 120              # never book more: a long booking waits longer in ZeroGPU's queue
EVALUATE_S = MAX_S       # an evaluation is bounded by the zip limits, not estimated beforehand


def on_zerogpu() -> bool:
    """Whether this process runs on ZeroGPU hardware."""
    return spaces is not None and os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def booked_seconds(work_seconds: float) -> int:
    """The GPU time to book for a request estimated at ``work_seconds`` on ZeroGPU's GPU."""
    if not math.isfinite(work_seconds):
        return MAX_S
    return int(min(MAX_S, max(MIN_S, math.ceil(OVERHEAD_S + max(0.0, work_seconds)))))


@dataclass(frozen=True)
class Outcome:
    """What a task hands back across the process boundary: its value, or our error. The spaces
    package turns any other exception into a bare "ZeroGPU worker error"; ours keep their message
    (and a Stop stays a Stop)."""

    value: Any = None
    error: ZsdemoError | None = None

    def get(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


def task(work_seconds: Callable[..., float]) -> Callable[[F], F]:
    """``@spaces.GPU`` booking ``booked_seconds(work_seconds(*args))``, where ``spaces`` is
    installed (off ZeroGPU spaces returns the function itself, so nothing changes there); the
    function itself where it is not.

    ``work_seconds`` takes the task's own arguments. It runs in the server before the GPU is
    booked, so it also refuses bad input (its errors reach the visitor as usual) without
    booking anything.
    """
    def wrap(fn: F) -> F:
        if spaces is None:
            return fn

        def carried(*args: Any, **kwargs: Any) -> Outcome:
            try:
                return Outcome(fn(*args, **kwargs))
            except ZsdemoError as e:
                return Outcome(error=e)

        booked = spaces.GPU(duration=lambda *a, **k: booked_seconds(work_seconds(*a, **k)))(carried)

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            return booked(*args, **kwargs).get()
        return call  # type: ignore[return-value]
    return wrap


class PageProgress:
    """The page's progress bar as ``progress.Progress`` (fraction, message): a class, not a
    lambda, so that it pickles into the GPU worker (``gr.Progress`` does; the spaces package
    relays its updates back to the page)."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def __call__(self, fraction: float, message: str) -> None:
        self.bar(fraction, desc=message)
