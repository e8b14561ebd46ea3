"""Progress of one long request: its stage, the share done, the time left, and a way to stop it.

A request runs in one thread; ``track`` makes a ``Tracker`` current for that thread (a context
variable), so the loops that do the work (prompt batches, image batches, TPT's images) report
steps without every function between them passing a callback along. Without a tracker the
reports cost nothing (tests, the library). Each turn of the model's lock checks for a stop, so
"Stop" ends a request within one batch, not after it.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

from .errors import ZsdemoError

# progress(fraction done in [0, 1], what is happening); the app turns it into a progress bar.
Progress = Callable[[float, str], None]

MIN_ETA_FRACTION = 0.05      # before this share is done, a time-left guess is mostly noise
MIN_ETA_SECONDS = 1.0
SLOW_SECONDS = 10.0          # a request estimated to take longer is announced before it starts


def no_progress(fraction: float, message: str) -> None:
    return None


class Stopped(ZsdemoError):
    """The user stopped the request; nothing was produced."""


class StopSignal(Protocol):
    """What a Stop looks like to the work: ``threading.Event`` or ``StopFlag``."""

    def is_set(self) -> bool: ...


STOP_DIR = os.path.join(tempfile.gettempdir(), f"zsdemo-stop-{os.getuid() if hasattr(os, 'getuid') else 0}")


class StopFlag:
    """The page's Stop for one run: a file that exists once Stop is pressed.

    On ZeroGPU the run works in another process (forked from the server, its arguments pickled),
    where a ``threading.Event`` that the server sets would never be seen; a file is seen by
    both. A flag pickles as its path. Checking it is one ``stat`` per model turn.
    """

    def __init__(self, folder: str = STOP_DIR) -> None:
        self.path = os.path.join(folder, uuid.uuid4().hex)

    def set(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        with open(self.path, "w"):
            pass

    def is_set(self) -> bool:
        return os.path.exists(self.path)

    def discard(self) -> None:
        """The run is over: remove the file (if Stop made one)."""
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def count(n: int, one: str, many: str | None = None) -> str:
    """'1 image', '2 images', '1,000 classes'."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def duration(seconds: float) -> str:
    """'about 40 s', 'about 3 min': a guess, worded as one."""
    if seconds < 1.5:
        return "about 1 s"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


@dataclass
class Tracker:
    """One request's progress. ``stage(lo, hi, message, total, unit)`` starts a stage covering
    [lo, hi] of the whole and needing ``total`` units of work (prompts, images); the loops doing
    that work ``advance`` it. Every report checks ``stop``."""

    report: Progress = no_progress
    stop: StopSignal | None = None
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    span: tuple[float, float] = (0.0, 1.0)
    message: str = ""
    fraction: float = 0.0
    unit: str = ""
    total: int = 0
    done: int = 0
    stage_started: float = 0.0
    own_estimate: bool = False      # the time left is the current stage's (``restage(..., heavy=True)``)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def check(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Stopped("Stopped: nothing was computed for this request. Change what you need and run again.")

    def stage(self, lo: float, hi: float, message: str, total: int = 0, unit: str = "",
              own_estimate: bool = False) -> None:
        self.span, self.message = (lo, max(lo, hi)), message
        self.unit, self.total, self.done = unit, max(0, total), 0
        self.stage_started, self.own_estimate = self.clock(), own_estimate
        self._emit(lo, message)

    def advance(self, units: int, unit: str) -> None:
        """``units`` more of ``unit`` done; work of another unit only checks for a stop."""
        if unit != self.unit or self.total <= 0:
            self.check()
            return
        self.done += units
        lo, hi = self.span
        share = min(1.0, self.done / self.total)
        done = min(self.done, self.total)
        self._emit(lo + (hi - lo) * share, f"{self.message}: {done:,} of {count(self.total, unit)}")

    def time_left(self) -> float | None:
        if self.own_estimate:
            elapsed, share = self.clock() - self.stage_started, self.done / max(1, self.total)
            if share <= 0 or elapsed < MIN_ETA_SECONDS:
                return None
            return elapsed * (1 - min(1.0, share)) / share
        elapsed = self.clock() - self.started
        if self.fraction < MIN_ETA_FRACTION or elapsed < MIN_ETA_SECONDS:
            return None
        return elapsed * (1 - self.fraction) / self.fraction

    def _emit(self, fraction: float, message: str) -> None:
        self.check()
        self.fraction = min(1.0, max(self.fraction, fraction))   # the bar never goes back
        left = self.time_left()
        self.report(self.fraction, message + (f" · {duration(left)} left" if left is not None else ""))


_CURRENT: contextvars.ContextVar[Tracker | None] = contextvars.ContextVar("zsdemo_progress", default=None)


@contextlib.contextmanager
def track(report: Progress | None = None, stop: StopSignal | None = None) -> Iterator[Tracker]:
    """Make a tracker current for the work done inside (in this thread). A tracker made inside
    another keeps the outer one's stop: a Stop reaches the work however deep it is nested."""
    outer = _CURRENT.get()
    tracker = Tracker(report or no_progress, stop if stop is not None else (outer.stop if outer else None))
    token = _CURRENT.set(tracker)
    try:
        yield tracker
    finally:
        _CURRENT.reset(token)


def current() -> Tracker | None:
    return _CURRENT.get()


def stage(lo: float, hi: float, message: str, total: int = 0, unit: str = "") -> None:
    t = _CURRENT.get()
    if t is not None:
        t.stage(lo, hi, message, total, unit)


HEAVY_SHARE = 0.9      # of what is left of the bar, for work found heavy once under way


def restage(message: str, total: int = 0, unit: str = "", heavy: bool = False) -> None:
    """A new message and count of work within the current stage's share of the bar (work found
    only once the stage is under way, such as the WordNet nodes a request needs scored).

    ``heavy``: this work outweighs the rest of the request (minutes of scoring on a model not
    warmed up), so it takes most of what is left of the bar, which then moves with it, and the
    time left is measured on it alone. The bar never goes back: the stages after it hold it where
    it is until their own share passes it."""
    t = _CURRENT.get()
    if t is None:
        return
    lo, hi = t.span
    if heavy:
        lo = max(lo, t.fraction)
        hi = max(hi, lo + (1 - lo) * HEAVY_SHARE)
    t.stage(lo, hi, message, total, unit, own_estimate=heavy)


def advance(units: int, unit: str) -> None:
    t = _CURRENT.get()
    if t is not None:
        t.advance(units, unit)


def check() -> None:
    """Raises ``Stopped`` when the current request was stopped (called at each turn of the model)."""
    t = _CURRENT.get()
    if t is not None:
        t.check()


@dataclass
class Throughput:
    """How fast a model has worked on this machine, per kind of work (units per second of model
    time, smoothed). Estimates of a request's duration read it; it is empty until the model ran."""

    rates: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, kind: str, units: int, seconds: float) -> None:
        if units <= 0 or seconds <= 0:
            return
        rate = units / seconds
        with self._lock:
            old = self.rates.get(kind)
            self.rates[kind] = rate if old is None else 0.7 * old + 0.3 * rate

    def rate(self, kind: str) -> float | None:
        return self.rates.get(kind)
