"""Warming a server up after launch: the first visitor should not pay for loading the model,
WordNet and the text features of what the page offers (its examples and class presets).

Runs in a background thread and works like any visitor: it takes the model in the same short
turns, so a visitor arriving meanwhile waits at most one batch. Text features go to the on-disk
cache too, so a restarted server (a Space waking up) reads them instead of computing them.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..core.errors import ZsdemoError
from ..core.progress import count
from ..engine.models import LoadedModel
from ..engine.text import TextFeatureCache
from ..engine.zero_shot_classifier import class_vectors
from ..prompts.classnames import PRESETS as CLASS_PRESETS
from ..prompts.classnames import preset_classnames
from ..prompts.templates import CLIP80, NAME_ONLY, SINGLE
from ..run.pipeline import TEXT_CACHE, classify_request, prepare_request
from ..wordnet.senses import class_senses
from .choices import load_served
from .panels import status_html
from .state import AppConfig

log = logging.getLogger("zsdemo.app.warmup")

# The template sets of the page's default strategies (the hierarchy's fallback and the
# consistency check use CLIP-80 and the bare name).
PRESET_TEMPLATES: tuple[tuple[str, ...], ...] = (NAME_ONLY, SINGLE, CLIP80)
WORDNET_WARM_NAMES = ("crane", "heron", "excavator", "cat", "dog", "rocket")


@dataclass(frozen=True)
class Example:
    """A page example: its images, class names and strategies, classified once while warming."""

    images: tuple[str, ...]
    classes: str
    strategies: tuple[str, ...]


@dataclass
class WarmUp:
    """The state of a warm-up, read by the page every second while it runs.

    Each step runs on its own: one that fails is logged and named on the banner, and the next
    step still runs. Only a model that cannot be loaded skips the rest (they all need it).
    """

    steps: list[str] = field(default_factory=list)
    done: int = 0
    running: bool = False
    finished: bool = False
    failed: str = ""                       # why the model could not be loaded ("" when it was)
    problems: list[str] = field(default_factory=list)   # "step: what went wrong", one per failed step
    seconds: float = 0.0
    _thread: threading.Thread | None = field(default=None, repr=False)

    def status(self) -> str:
        """One line for the page; "" once there is nothing to say."""
        trouble = (f" {count(len(self.problems), 'step')} failed ({'; '.join(self.problems[:3])}); "
                   "those parts are computed on first use instead." if self.problems else "")
        if self.failed:
            return self.failed   # no model could be loaded: nothing works until the operator acts
        if not (self.running or self.finished):
            return ""
        if self.finished:
            return f"Warm-up finished in {self.seconds:.0f} s, but{trouble}" if trouble else ""
        step = self.steps[self.done] if self.done < len(self.steps) else "finishing"
        return (f"Warming up ({self.done + 1} of {len(self.steps)}: {step}). You can already classify; "
                f"the first runs may be slower until this ends.{trouble}")

    def start(self, load: Callable[[], LoadedModel], examples: Sequence[Example],
              presets: Sequence[str] = tuple(CLASS_PRESETS), cache: TextFeatureCache = TEXT_CACHE,
              background: bool = True) -> None:
        """Run the steps in a thread of their own, or (``background=False``) here, before returning:
        on ZeroGPU the model must be loaded on the main thread, where ``spaces`` emulates CUDA."""
        self.steps = (["loading the model", "reading WordNet"]
                      + [f"example {k + 1} of {len(examples)}" for k in range(len(examples))]
                      + [f"class preset '{p}' ({count(len(preset_classnames(p)), 'class', 'classes')})"
                         for p in _smallest_first(presets)])
        self.running = True
        if not background:
            self._run(load, list(examples), list(presets), cache)
            return
        self._thread = threading.Thread(target=self._run, args=(load, list(examples), list(presets), cache),
                                        name="zsdemo-warmup", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _step(self, label: str, work: Callable[[], object]) -> str:
        """Run one step; a failure is logged and kept for the banner, never raised. Returns what
        went wrong ("" when nothing did)."""
        try:
            work()
            return ""
        except ZsdemoError as e:
            message = e.for_cli()
        except Exception as e:       # a warm-up must never take the server down with it
            message = f"{type(e).__name__}: {e}"
            log.exception("warm-up step '%s' failed", label)
        log.warning("warm-up step '%s' failed: %s", label, message)
        return message

    def _run(self, load: Callable[[], LoadedModel], examples: list[Example], presets: list[str],
             cache: TextFeatureCache) -> None:
        began = time.perf_counter()
        try:
            held: list[LoadedModel] = []
            self.failed = self._step(self.steps[0], lambda: held.append(load()))
            if self.failed:
                return               # every other step needs the model; the banner says why
            self.done += 1
            loaded = held[0]
            work: list[Callable[[], object]] = [read_wordnet]
            work += [lambda ex=ex: classify_request(loaded, list(ex.images),
                                                    prepare_request(ex.classes, list(ex.strategies), None, 5), cache)
                     for ex in examples]
            work += [lambda names=preset_classnames(p): [class_vectors(loaded, names, t, cache)
                                                         for t in PRESET_TEMPLATES]
                     for p in _smallest_first(presets)]
            with cache.persisting():
                for label, step in zip(self.steps[1:], work):
                    message = self._step(label, step)
                    if message:
                        self.problems.append(f"{label}: {message[:200]}")
                    self.done += 1      # failed or not: the banner moves on
        finally:
            self.seconds = time.perf_counter() - began
            self.running, self.finished = False, True
            log.info("warm-up ended after %.1f s: %s", self.seconds, self.tally())

    def tally(self) -> str:
        """How the steps went, for the log: "12 of 14 steps done, 1 failed, 1 not run"."""
        failed = len(self.problems) + bool(self.failed)     # a model that failed stops the rest
        skipped = len(self.steps) - self.done - bool(self.failed)
        return (f"{self.done - len(self.problems)} of {len(self.steps)} steps done, {failed} failed"
                + (f", {skipped} not run" if skipped else ""))


def read_wordnet() -> None:
    """Load WordNet and read the senses of a few names (NLTK reads synsets from disk on first use)."""
    class_senses(WORDNET_WARM_NAMES)


def _smallest_first(presets: Sequence[str]) -> list[str]:
    return sorted(presets, key=lambda p: len(preset_classnames(p)))


TEXT_CACHE_FILE = "text-features.sqlite"    # in the feature-cache folder: the warm-up's text features


def start_warm_up(config: AppConfig, examples: Sequence[Example],
                  presets: Sequence[str] = tuple(CLASS_PRESETS), background: bool = True) -> WarmUp:
    """Warm the server's model up (see ``warmup``; in the background unless told otherwise); its
    text features are kept on disk beside the image-feature cache, so that a restart reads them."""
    if config.feature_cache:
        TEXT_CACHE.attach_disk(Path(config.feature_cache) / TEXT_CACHE_FILE, write_all=False)
    warm = WarmUp()
    warm.start(lambda: load_served(config), examples, presets, background=background)
    return warm


def warm_banner(warm: WarmUp | None) -> tuple[str, bool]:
    """The banner under the title (the warm-up's progress, a step that failed, or no model at
    all) and whether it may still change (the page polls it while it does)."""
    if warm is None:
        return "", False
    text = warm.status()
    kind = "error" if warm.failed or (warm.problems and warm.finished) else "warming"
    return (status_html(kind, text) if text else ""), warm.running
