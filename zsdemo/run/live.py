"""Live frames: one camera frame at a time, scored by every strategy that needs a single pass of
the image tower (no Gradio here; ``app/live.py`` is the tab).

What a frame costs: the image tower once, and each strategy's scoring against class vectors that
are computed once per class set and strategy (an opened run is kept per request and model, its
text features in the shared text cache). Strategies that need many image passes (the hierarchy's
consistency views, TPT's augmented views) or labelled examples are not run live: ``split`` says
which and why, and the page offers them through "Send this frame to Classify".

Frames are never written to disk, cached or logged: a frame lives in memory for its answer.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Sequence

import torch
from PIL import Image, ImageOps

from ..core.errors import InputError
from ..engine.images import to_rgb
from ..engine.models import LoadedModel
from ..engine.results import StrategyResult
from ..engine.text import TextFeatureCache
from ..engine.zero_shot_classifier import class_vectors
from ..strategies.base import Request, Run, Strategy
from .pipeline import TEXT_CACHE, open_run, score_batch, strategy_result

LARGEST_FRAME = 1280        # a frame's longer side is cut to this before anything else (the model needs 224)
OPENED_RUNS = 8             # requests kept open (their class vectors made) at once, most recent first


def why_not_live(strategy: Strategy) -> str | None:
    """Why a strategy is not run on live frames (None: it is)."""
    if strategy.needs_consistency:
        return "checks ten views of every image first"
    if strategy.needs_pixels or strategy.tunes_per_image:
        return "tunes itself on many views of every image"
    if strategy.needs_support:
        return "needs labelled examples (a zip on the Classify tab)"
    return None


def split(chosen: Sequence[Strategy]) -> tuple[list[Strategy], dict[str, str]]:
    """The strategies run live, and the others with why (by label)."""
    live = [s for s in chosen if why_not_live(s) is None]
    return live, {s.label: why_not_live(s) or "" for s in chosen if why_not_live(s) is not None}


@dataclass
class Answer:
    """One frame's answer: each live strategy's result, what the model saw, and what it cost."""

    results: list[StrategyResult]
    frame: Image.Image           # the frame as scored (RGB, bounded): what Pause keeps
    seen: Image.Image            # the frame after the model's own resize and crop
    seconds: float               # from the frame's arrival to its answer
    encode_seconds: float        # of which the image tower's pass


def frame_image(frame: object) -> Image.Image:
    """A frame as an RGB picture of bounded size; anything else is refused in words."""
    if not isinstance(frame, Image.Image):
        raise InputError("No camera picture arrived: allow the camera in the browser, then press Record.")
    if frame.width < 1 or frame.height < 1:
        raise InputError("The camera sent an empty picture: check the camera, then try again.")
    image = to_rgb(frame)
    if max(image.size) > LARGEST_FRAME:
        image = ImageOps.contain(image, (LARGEST_FRAME, LARGEST_FRAME))
    return image


def model_view(loaded: LoadedModel, image: Image.Image) -> Image.Image:
    """The frame as the model sees it: its own preprocessing up to the tensor (resize and crop)."""
    seen = image
    for step in getattr(loaded.preprocess, "transforms", ()):
        name = type(step).__name__
        if "Tensor" in name or name in ("Normalize", "ConvertImageDtype"):
            break                      # from here on it is numbers, not a picture
        seen = step(seen)
    return seen if isinstance(seen, Image.Image) else image


class LiveScorer:
    """Scores frames; keeps an opened run per (model, request), safe under concurrent streams."""

    def __init__(self, cache: TextFeatureCache | None = TEXT_CACHE) -> None:
        self.cache = cache
        self._runs: OrderedDict[tuple, tuple[Run, list[Strategy]]] = OrderedDict()
        self._lock = threading.Lock()

    def opened(self, loaded: LoadedModel, request: Request) -> tuple[Run, list[Strategy]]:
        """The run of ``request``'s live strategies alone (WordNet and the views are not read for
        the others), opened once and kept."""
        live, _ = split(request.chosen)
        if not live:
            raise InputError("None of the ticked strategies runs live: tick Name only, a template ensemble or a "
                             "descriptor method, or send the frame to Classify.")
        request = replace(request, strategies=tuple(s.id for s in live), chosen=tuple(live))
        key = (loaded.identity, repr(request))
        with self._lock:
            if key in self._runs:
                self._runs.move_to_end(key)
                return self._runs[key]
        run = open_run(loaded, request, self.cache, senses_only=False).run
        for s in live:                      # the class vectors, made now rather than on the first frame
            for templates in s.classifiers(request):
                class_vectors(loaded, request.classnames, tuple(templates), self.cache)
        with self._lock:
            self._runs[key] = (run, live)
            while len(self._runs) > OPENED_RUNS:
                self._runs.popitem(last=False)
        return run, live

    def score(self, loaded: LoadedModel, request: Request, frame: object) -> Answer:
        began = time.perf_counter()
        image = frame_image(frame)
        run, live = self.opened(loaded, request)
        tensor = loaded.preprocess(image).unsqueeze(0)
        encoding = time.perf_counter()
        features = loaded.encode_images(tensor, 1)
        encode_seconds = time.perf_counter() - encoding
        with torch.no_grad():
            _, scores = score_batch(run, features, None, (), live)
        results = [strategy_result(s.id, scores[s.id].logits[0], run.request.classnames, run.request.top_k)
                   for s in live]
        return Answer(results, image, model_view(loaded, image), time.perf_counter() - began, encode_seconds)


SCORER = LiveScorer()
