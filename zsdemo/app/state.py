"""What the server and each browser session keep: the server's configuration (``AppConfig``),
a session's last run (``Run``, kept by the page as JSON), each session's Stop (``RunControl``),
the caches attached at start and the folder downloads are written to."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..core import resources
from ..core.errors import InputError
from ..core.files import UploadPolicy
from ..core.progress import StopFlag
from ..engine import models
from ..engine.feature_store import DEFAULT_DIR as DEFAULT_FEATURE_CACHE
from ..engine.results import ClassificationResult
from ..strategies import read_result
from ..wordnet.sparse import CACHE as WORDNET_SCORES

REPORTS_DIR = Path(tempfile.gettempdir()) / "zsdemo-reports"
REPORT_TTL_S = 3600              # downloads of an evaluation are kept this long
EXAMPLE_IMAGES = resources.EXAMPLE_IMAGES


@dataclass(frozen=True)
class AppConfig:
    """What the server was started with; only these may name files on the server.

    ``uploads``: the folders whose files a request may name (the app adds Gradio's upload
    folder; the shipped examples are always allowed). ``allow_random``: visitors may pick a bare
    open_clip architecture, which runs with random weights (an operator's flag, off by default).
    """

    model: str = models.DEFAULT_PRESET
    pretrained: str | None = None
    device: str = "auto"
    feature_cache: str | None = str(DEFAULT_FEATURE_CACHE)   # None: evaluations keep no image features
    uploads: UploadPolicy = field(default_factory=lambda: UploadPolicy.of([], examples=[EXAMPLE_IMAGES]))
    allow_random: bool = False

    def with_uploads(self, *folders: str | os.PathLike) -> "AppConfig":
        """This configuration with more folders whose files requests may name."""
        return replace(self, uploads=UploadPolicy.of([*self.uploads.roots, *folders], self.uploads.examples))


@dataclass
class Run:
    result: ClassificationResult
    paths: list[str] = field(default_factory=list)
    compared: ClassificationResult | None = None     # the same request on a second model
    thumbnails: dict[str, str] = field(default_factory=dict)   # support file -> data URL (Tip-Adapter's nearest)

    # The page keeps a run as JSON: Gradio can then store it with the cached examples.
    def to_state(self) -> dict[str, Any]:
        state = {"result": self.result.to_dict(), "paths": list(self.paths)}
        if self.compared is not None:
            state["compared"] = self.compared.to_dict()
        if self.thumbnails:
            state["thumbnails"] = dict(self.thumbnails)
        return state

    def to_dict(self) -> dict[str, Any]:
        """The API's answer: the result, and the second model's under "compared" when there is one."""
        out = self.result.to_dict()
        if self.compared is not None:
            out["compared"] = self.compared.to_dict()
        return out

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> "Run | None":
        if not state:
            return None
        # The state may come back from the browser (cached examples), so it may be forged.
        try:
            paths = [str(p) for p in state["paths"]]
            compared = state.get("compared")
            thumbnails = {str(k): str(v) for k, v in (state.get("thumbnails") or {}).items()
                          if str(v).startswith("data:image/jpeg;base64,")}
            run = cls(read_result(state["result"]), paths,
                      read_result(compared) if compared is not None else None, thumbnails)
            if run.compared is not None and len(run.compared.images) != len(run.result.images):
                raise ValueError("the two models' results cover different images")
            return run
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InputError(f"This page's last result could not be read back ({e}); press Classify again.") from None


class RunControl:
    """A "Stop" per browser session: the page's Stop sets the flag of that session's running
    request, which then ends at the model's next turn (``progress.Stopped``). The flags are
    files (``progress.StopFlag``), so that a Stop also reaches a run working in another process
    (ZeroGPU)."""

    def __init__(self, max_sessions: int = 1024):
        self._flags: dict[str, StopFlag] = {}
        self._lock = threading.Lock()
        self.max_sessions = max_sessions

    def current(self, session: str) -> StopFlag:
        """The flag of the session's run: the one ``begin`` made when its button was pressed (a
        Stop pressed while the run still waits in the queue then stops it as soon as it starts)."""
        with self._lock:
            flag = self._flags.get(session)
        return flag if flag is not None else self.begin(session)

    def begin(self, session: str) -> StopFlag:
        flag = StopFlag()
        with self._lock:
            if len(self._flags) >= self.max_sessions:      # abandoned entries; never more than this
                self._flags.pop(next(iter(self._flags))).discard()
            self._flags[session] = flag      # a run still holding the old one discards it at its end
        return flag

    def stop(self, session: str) -> bool:
        with self._lock:
            flag = self._flags.get(session)
        if flag is None:
            return False
        flag.set()
        return True

    def end(self, session: str, flag: StopFlag) -> None:
        with self._lock:
            if self._flags.get(session) is flag:
                del self._flags[session]
        flag.discard()


def attach_caches(config: AppConfig) -> None:
    """Keep the sparse WordNet's node scores beside the image-feature cache: a restart reads them
    (at most one float per WordNet noun and model, so visitors cannot grow it past a few MB)."""
    WORDNET_SCORES.attach(config.feature_cache)


def report_folder() -> Path:
    """A fresh folder for one evaluation's downloads; folders older than REPORT_TTL_S are removed."""
    REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in REPORTS_DIR.iterdir():
        try:
            if now - old.stat().st_mtime > REPORT_TTL_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    folder = REPORTS_DIR / uuid.uuid4().hex
    folder.mkdir()
    return folder
