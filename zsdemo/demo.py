"""The web app's backend: one plain function per page event (the page itself is ``app.py``).

All users share one model registry and one text-feature cache (``pipeline.TEXT_CACHE``); what a
browser session keeps between events is a ``Run``: its result and the uploaded files' paths.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from . import arguments as A
from . import classnames as C
from . import consistency as K
from . import evaluate as E
from . import hierarchy as H
from . import models as M
from . import wordnet as W
from .errors import ImageError, InputError, ModelLoadError
from .feature_store import DEFAULT_DIR as DEFAULT_FEATURE_CACHE
from .feature_store import FeatureStore
from .files import UploadPolicy, display_name
from .images import load_image
from .labelled import open_zip
from .limits import LIMITS
from .panels import EvaluationPanels, evaluation_panels  # noqa: F401 (the evaluation tab's tables)
from .panels import ImagePanels, image_panels, md, model_notice, summary_table  # noqa: F401 (the page's text helpers)
from .panels import sense_choices as _sense_choices
from .pipeline import DEFAULT_TOP_K, Progress, classify_request, prepare_request
from .results import ClassificationResult
from .strategies import STRATEGIES
from .tpt import MAX_STEPS

DEFAULT_STRATEGIES: tuple[str, ...] = ("name", "photo", "clip80", "hierarchy")
MAX_TOP_K = 20
EVAL_VIEWS: dict[str, tuple[str, ...]] = {"all": K.DEFAULT_VIEWS, "flip": (K.FLIP_VIEW,)}
REPORTS_DIR = Path(tempfile.gettempdir()) / "zsdemo-reports"
REPORT_TTL_S = 3600              # downloads of an evaluation are kept this long
EXAMPLE_IMAGES = Path(__file__).resolve().parent.parent / "assets" / "images"


@dataclass(frozen=True)
class AppConfig:
    """What the server was started with; only these may name files on the server.

    ``uploads``: the folders whose files a request may name (the app adds Gradio's upload
    folder; the shipped examples are always allowed). ``allow_random``: visitors may pick a bare
    open_clip architecture, which runs with random weights (an operator's flag, off by default).
    """

    model: str = M.DEFAULT_PRESET
    pretrained: str | None = None
    device: str = "auto"
    feature_cache: str | None = str(DEFAULT_FEATURE_CACHE)   # None: evaluations keep no image features
    uploads: UploadPolicy = field(default_factory=lambda: UploadPolicy.of([EXAMPLE_IMAGES]))
    allow_random: bool = False

    def with_uploads(self, *folders: str | os.PathLike) -> "AppConfig":
        """This configuration with more folders whose files requests may name."""
        return replace(self, uploads=UploadPolicy.of([*self.uploads.roots, *folders]))


@dataclass
class Run:
    result: ClassificationResult
    paths: list[str] = field(default_factory=list)

    # The page keeps a run as JSON: Gradio can then store it with the cached examples.
    def to_state(self) -> dict[str, Any]:
        return {"result": self.result.to_dict(), "paths": list(self.paths)}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> "Run | None":
        if not state:
            return None
        # The state may come back from the browser (cached examples), so it may be forged.
        try:
            paths = [str(p) for p in state["paths"]]
            return cls(ClassificationResult.from_dict(state["result"]), paths)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InputError(f"This page's last result could not be read back ({e}); press Classify again.") from None


def preset_text(preset: str | None) -> str:
    return "\n".join(C.preset_classnames(preset)) if preset else ""


def preset_choices() -> list[tuple[str, str]]:
    return [(C.PRESET_LABELS.get(p, p), p) for p in C.PRESETS]


def strategy_choices() -> list[tuple[str, str]]:
    return [(f"{s.label}: {s.description}", s.id) for s in STRATEGIES.values()]


def model_choices(config: AppConfig) -> list[tuple[str, str]]:
    choices = [(p.label, p.id) for p in M.PRESETS.values()]
    if config.model not in M.PRESETS:
        choices.insert(0, (f"{config.model} (server default)", config.model))
    return choices


def view_choices() -> list[tuple[str, str]]:
    return [(K.VIEW_LABELS[v], v) for v in K.VIEWS]


def options(config: AppConfig) -> dict[str, Any]:
    """What a client may choose from (the API's ``options`` endpoint)."""
    return {
        "default_model": config.model,
        "models": {p.id: p.label for p in M.PRESETS.values()},
        "strategies": {s.id: s.description for s in STRATEGIES.values()},
        "class_presets": {p: C.PRESET_LABELS.get(p, p) for p in C.PRESETS},
        "views": dict(K.VIEW_LABELS),
    }


def sense_choices(result: ClassificationResult) -> dict[str, list[tuple[str, str]]]:
    return _sense_choices(result.senses)


def sense_in_use(result: ClassificationResult, classname: str | None) -> str | None:
    """The WordNet sense the run used for a class (what the sense picker must start on)."""
    for s in result.senses:
        if s.get("name") == classname and s.get("chosen"):
            return s["chosen"]["synset"]
    return None


def keep_classes(preset: str | None, current: str | None) -> str:
    """The class box after the preset dropdown fires: a chosen preset's names, else what was typed
    (closing the dropdown without choosing must not empty the box)."""
    return preset_text(preset) if preset else (current or "")


def pick_model(config: AppConfig, choice: str | None) -> M.LoadedModel:
    """The server's model, a preset, or an open_clip spec typed as ``ARCH TAG`` / ``hf-hub:ORG/REPO``.

    Files on the server (checkpoints, ``local-dir:``) can be named only when starting the server:
    a page visitor must not make the server read arbitrary paths. A bare architecture would run
    with random weights (and may be huge): refused unless the operator allowed it.
    """
    choice = A.text(choice, "model").strip()
    if not choice or choice == config.model:
        return M.get_model(config.model, config.pretrained, config.device)
    if len(choice) > 300:
        raise ModelLoadError("A model name is at most 300 characters: pick a preset or 'ARCH TAG'.")
    name, _, tag = choice.partition(" ")
    tag = tag.strip() or None
    names_a_file = name.startswith("local-dir:") or (not name.startswith("hf-hub:") and M.looks_like_path(name))
    if names_a_file or (tag is not None and M.looks_like_path(tag)):
        raise ModelLoadError("Models from files on the server can only be chosen when the server starts "
                             "(python app.py --model ... --pretrained ...). Pick a preset or an open_clip "
                             "name with a pretrained tag, e.g. 'ViT-B-32 laion2b_s34b_b79k'.")
    if name.startswith("hf-hub:"):
        M.hub_repo_id(name)
    elif name not in M.PRESETS and tag is None and not config.allow_random:
        raise ModelLoadError(
            f"{name[:80]!r} has no pretrained tag: it would run with random weights and predict nothing "
            "useful. Pick a preset, or add a tag such as 'ViT-B-32 laion2b_s34b_b79k' "
            "(python -m zsdemo models; open_clip.list_pretrained() lists the tags).")
    return M.get_model(name, tag, config.device)


def _tpt_settings(steps: object, views: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    steps = A.whole_number(steps, "TPT steps", 0, MAX_STEPS)
    views = A.whole_number(views, "TPT views", 2, LIMITS.tpt_views)
    if steps is not None:
        out["steps"] = steps
    if views is not None:
        out["views"] = views
    return out


def _check_top_k(top_k: object) -> int:
    return A.whole_number(top_k, "top-k", 1, MAX_TOP_K, DEFAULT_TOP_K) or DEFAULT_TOP_K


def run(
    config: AppConfig,
    paths: Sequence[object],
    classes: str,
    strategies: Sequence[str] | str | None,
    templates: str | None = None,
    model: str | None = None,
    top_k: int | float | None = DEFAULT_TOP_K,
    views: Sequence[str] | str | None = None,
    consistency: bool = False,
    rerank_all: bool = False,
    senses: dict[str, str] | str | None = None,
    tpt_steps: int | float | None = None,
    tpt_views: int | float | None = None,
    progress: Progress | None = None,
) -> Run:
    """Validate everything (fast, before a model loads), then classify every image.

    Every argument may come straight from a hostile API caller: each is checked for its type
    first, and ``paths`` (file paths or Gradio file records) must name files the server was sent.
    """
    items = [p for p in A.items(paths, "images", LIMITS.images) if p]
    if not items:
        raise InputError("No image yet: upload, drop, paste or photograph at least one image, then run.")
    files = config.uploads.check_all(items)
    strategies = A.text_or_list(strategies, "strategies")
    if not strategies:
        raise InputError("No strategy selected: tick at least one strategy.")
    request = prepare_request(
        A.text(classes, "classes"), strategies, A.text_or_list(templates, "templates") or None, _check_top_k(top_k),
        consistency=A.flag(consistency, "consistency"), views=A.text_or_list(views, "views") or None,
        rerank_all=A.flag(rerank_all, "rerank_all"), senses=A.text_or_mapping(senses, "senses") or None,
        tpt=_tpt_settings(tpt_steps, tpt_views),
    )
    if progress:
        progress(0.0, "loading the model")
    loaded = pick_model(config, model)
    names = [display_name(f) for f in files]
    return Run(classify_request(loaded, files, request, names=names, progress=progress), files)


def panels(config: AppConfig, state: Run | None, index: int | None) -> ImagePanels | None:
    """The panels of one image of the last run (the first when ``index`` is out of range)."""
    if state is None or not state.result.images:
        return None
    index = index if isinstance(index, int) and 0 <= index < len(state.result.images) else 0
    image = None
    if state.result.images[index].ok and index < len(state.paths):
        try:
            # The state can come back from the browser (cached examples): its paths are checked
            # like a request's.
            image = load_image(config.uploads.check(state.paths[index])).image
        except (ImageError, InputError):
            image = None  # gone since the run, or not a file this server was sent: no thumbnails
    return image_panels(state.result, index, image)


def choose_sense(chosen: dict[str, str] | None, classname: str | None, synset: str | None) -> dict[str, str]:
    """The session's sense choices with one more (or one removed, when ``synset`` is empty)."""
    out = dict(chosen or {})
    if not classname:
        raise InputError("Pick a class first, then one of its WordNet senses.")
    if synset:
        out[classname] = synset
    else:
        out.pop(classname, None)
    return out


def wordnet_senses(names: str, senses: str | dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Senses, parent and children of each class name, as the hierarchy strategies read them."""
    parsed = C.parse_classnames(A.text(names, "classes")).names
    W.check_count(parsed)
    senses = A.text_or_mapping(senses, "senses")
    chosen = W.check_overrides(W.parse_overrides(senses), parsed) if senses else {}
    return [c.to_dict() for c in H.class_senses(parsed, chosen)]


def eval_strategy_choices() -> list[tuple[str, str]]:
    """The evaluation tab's strategies: all but TPT, which tunes per image (the CLI offers it)."""
    return [c for c in strategy_choices() if c[1] != "tpt"]


def evaluate_upload(config: AppConfig, upload: object, strategies: str | Sequence[str] | None,
                    views: str = "all", rerank_all: bool = False, model: str | None = None,
                    progress: Progress | None = None) -> E.EvaluationReport:
    """Evaluate an uploaded zip of labelled images (the tab and the ``/evaluate`` API)."""
    if not upload:
        raise InputError("Upload a .zip of labelled images first: one folder per class (ImageFolder), "
                         "or images with a labels.csv of path,label.")
    upload = config.uploads.check(upload, "the zip")
    strategies = A.text_or_list(strategies, "strategies")
    if isinstance(strategies, str):
        strategies = [x.strip() for x in strategies.split(",") if x.strip()]
    views = A.text(views, "views", "all")
    rerank_all = A.flag(rerank_all, "rerank_all")
    if not strategies:
        raise InputError("No strategy selected: tick at least one.")
    if "tpt" in strategies:
        raise InputError("TPT is not offered here (it tunes a prompt per image); use python -m zsdemo evaluate.")
    if views not in EVAL_VIEWS:
        raise InputError(f"Unknown view set {views!r}; choose one of {', '.join(EVAL_VIEWS)}.")
    loaded = pick_model(config, model)
    with tempfile.TemporaryDirectory(prefix="zsdemo-upload-") as tmp:
        data = open_zip(upload, tmp, confine=True, max_images=LIMITS.eval_images)
        data.root = Path(Path(upload).name)          # what the report shows, not the server's temp path
        store = FeatureStore(config.feature_cache, loaded) if config.feature_cache else None
        return E.evaluate(loaded, data, list(strategies), views=EVAL_VIEWS[views], rerank_all=rerank_all,
                          store=store, progress=progress)


def evaluate_zip(config: AppConfig, upload: object, strategies: str | Sequence[str] | None,
                 views: str = "all", rerank_all: bool = False, model: str | None = None,
                 progress: Progress | None = None) -> tuple[EvaluationPanels, list[str]]:
    """The evaluation tab: the panels and the report files to download."""
    report = evaluate_upload(config, upload, strategies, views, rerank_all, model, progress)
    files = E.write_report(report, _report_dir())
    return evaluation_panels(report), [str(f) for f in files]


def _report_dir() -> Path:
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
