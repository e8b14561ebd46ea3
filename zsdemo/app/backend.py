"""The web app's backend: one plain function per page event (the page itself is ``app.py``).

All users share one model registry and one text-feature cache (``pipeline.TEXT_CACHE``); what a
browser session keeps between events is a ``Run``: its result and the uploaded files' paths.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..core import arguments, resources
from ..engine import occlusion
from ..engine.occlusion import check_grid
from ..engine.zero_shot_classifier import class_vectors
from ..prompts.templates import SINGLE
from ..run import plots
from ..engine import models
from ..prompts.classnames import PRESET_LABELS, parse_classnames, preset_classnames
from ..prompts.classnames import PRESETS as CLASS_PRESETS
from ..core.constants import (
    DEFAULT_STRATEGIES,  # noqa: F401 (the page's default choice)
    MAX_TOP_K,  # noqa: F401 (the page's top-k slider)
)
from ..core.errors import ImageError, InputError, ModelLoadError
from ..run.evaluation import EvaluationReport, evaluate, evaluation_request
from ..run.shots import plan as shots_plan
from ..run.shots import check_seeds_alone
from ..run.shots import require_support as shots_require_support
from ..engine.feature_store import DEFAULT_DIR as DEFAULT_FEATURE_CACHE
from ..engine.feature_store import FeatureStore
from ..prompts.descriptors import MAX_CHARS as DESCRIPTOR_CHARS
from ..prompts.descriptors import parse_descriptors
from ..core.files import UploadPolicy, display_name, read_text
from ..engine.images import load_image
from ..data.labelled import open_zip
from ..core.limits import LIMITS

# The page's text helpers and tables, re-exported for app.py (which imports only this module).
from .panels import (  # noqa: F401
    EvaluationPanels,
    ImagePanels,
    evaluation_panels,
    image_panels,
    occlusion_html,
    thumbnail_url,
    md,
    model_notice,
    status_html,
    summary_html,
)
from .panels import sense_choices as _sense_choices
from ..run.pipeline import (
    DEFAULT_TOP_K,
    TEXT_CACHE,
    Progress,
    Rates,
    classify_request,
    estimate,
    prepare_request,
)
from ..core.progress import SLOW_SECONDS, StopFlag, StopSignal, count, track
from ..run.report import write_report
from ..engine.results import ClassificationResult
from ..strategies import STRATEGIES, chosen, named_options, parse_strategies, read_result, route_options
from ..run.request import Request
from ..data.support import SupportSet, open_support
from ..engine.views import DEFAULT_VIEWS, FLIP_VIEW, VIEW_LABELS, VIEWS
from .warmup import Example, WarmUp
from ..wordnet.senses import check_count, check_overrides, class_senses, parse_overrides
from ..wordnet.sparse import CACHE as WORDNET_SCORES

TEXT_CACHE_FILE = "text-features.sqlite"    # in the feature-cache folder: the warm-up's text features
SLOW_PROMPTS = 20_000       # a model whose speed is unknown: this many new prompts is announced as slow
EVAL_VIEWS: dict[str, tuple[str, ...]] = {"all": DEFAULT_VIEWS, "flip": (FLIP_VIEW,)}
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


def preset_text(preset: str | None) -> str:
    return "\n".join(preset_classnames(preset)) if preset else ""


def preset_choices() -> list[tuple[str, str]]:
    return [(PRESET_LABELS.get(p, p), p) for p in CLASS_PRESETS]


def strategy_choices() -> list[tuple[str, str]]:
    return [(s.label, s.id) for s in STRATEGIES.values()]


def strategy_legend() -> str:
    """What each strategy does, one line each (the check boxes show only the names)."""
    return "\n".join(f"- **{md(s.label)}**: {md(s.description)}" for s in STRATEGIES.values())


def model_choices(config: AppConfig) -> list[tuple[str, str]]:
    choices = [(p.label, p.id) for p in models.PRESETS.values()]
    if config.model not in models.PRESETS:
        choices.insert(0, (f"{config.model} (server default)", config.model))
    return choices


def view_choices() -> list[tuple[str, str]]:
    return [(VIEW_LABELS[v], v) for v in VIEWS]


def options(config: AppConfig) -> dict[str, Any]:
    """What a client may choose from (the API's ``options`` endpoint)."""
    return {
        "default_model": config.model,
        "models": {p.id: p.label for p in models.PRESETS.values()},
        "strategies": {s.id: s.description for s in STRATEGIES.values()},
        "class_presets": {p: PRESET_LABELS.get(p, p) for p in CLASS_PRESETS},
        "views": dict(VIEW_LABELS),
        "method_options": {name: {"method": key, "default": _jsonable(opt.shown(default) if opt.shown else default),
                                  "help": opt.help}
                           for name, (key, _, opt, default) in named_options("api").items()},
    }


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


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


# What the operator can do when the served model cannot be loaded (the page's banner and Classify).
NO_MODEL_ADVICE = ("whoever runs it can point it at a local checkpoint (--model ARCH --pretrained FILE, or "
                   "--model local-dir:FOLDER) or start it with --model tiny-random to see the page work "
                   "(random weights)")
# A Space (Hugging Face sets SPACE_ID) is started by the host, not by a command its owner types.
SPACE_NO_MODEL_ADVICE = ("the Space's owner can set its ZSDEMO_MODEL variable (Settings, Variables and secrets) to a "
                         "preset whose weights the Space preloads (preload_from_hub in README.md), or to tiny-random "
                         "to see the page work (random weights), and restart the Space")


def no_model_advice() -> str:
    return SPACE_NO_MODEL_ADVICE if os.environ.get("SPACE_ID") else NO_MODEL_ADVICE


def no_model(error: ModelLoadError) -> ModelLoadError:
    """The served model could not be loaded, so nothing can be classified: one sentence, the cause
    and what to do, for the page (the command line keeps the loading error itself)."""
    message = f"No model could be loaded on this server ({error.reason.rstrip('. ')}): {no_model_advice()}."
    return ModelLoadError(message, reason=error.reason)


def load_served(config: AppConfig) -> models.LoadedModel:
    """The server's own model; ``no_model`` when it cannot be loaded."""
    try:
        return models.get_model(config.model, config.pretrained, config.device)
    except ModelLoadError as e:
        raise no_model(e) from None


def pick_model(config: AppConfig, choice: str | None) -> models.LoadedModel:
    """The server's model, a preset, or an open_clip spec typed as ``ARCH TAG`` / ``hf-hub:ORG/REPO``."""
    return models.get_model(*model_choice(config, choice), config.device)


def model_choice(config: AppConfig, choice: str | None, what: str = "model") -> tuple[str, str | None]:
    """The (model, pretrained) a visitor's choice names, checked before anything loads.

    Files on the server (checkpoints, ``local-dir:``) can be named only when starting the server:
    a page visitor must not make the server read arbitrary paths. A bare architecture would run
    with random weights (and may be huge): refused unless the operator allowed it.
    """
    choice = arguments.text(choice, what).strip()
    if not choice or choice == config.model:
        return config.model, config.pretrained
    if len(choice) > 300:
        raise ModelLoadError("A model name is at most 300 characters: pick a preset or 'ARCH TAG'.")
    name, _, tag = choice.partition(" ")
    tag = tag.strip() or None
    names_a_file = name.startswith("local-dir:") or (not name.startswith("hf-hub:") and models.looks_like_path(name))
    if names_a_file or (tag is not None and models.looks_like_path(tag)):
        raise ModelLoadError("Models from files on the server can only be chosen by whoever starts the server. "
                             "Pick a preset or an open_clip name with a pretrained tag, e.g. "
                             "'ViT-B-32 laion2b_s34b_b79k'.")
    if name.startswith("hf-hub:"):
        models.hub_repo_id(name)
    elif name not in models.PRESETS and tag is None and not config.allow_random:
        raise ModelLoadError(
            f"{name[:80]!r} has no pretrained tag: it would run with random weights and predict nothing "
            "useful. Pick a preset, or add a pretrained tag such as 'ViT-B-32 laion2b_s34b_b79k' "
            "(open_clip's list of pretrained models names the tags).")
    return name, tag


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
    progress: Progress | None = None,
    stop: StopSignal | None = None,
    announce: Callable[[str], None] | None = None,
    low_confidence: str | None = None,
    descriptors: str | None = None,
    compare_model: str | None = None,
    support: object = None,
    **options: object,
) -> Run:
    """Validate everything (fast, before a model loads), then classify every image.

    Every argument may come straight from a hostile API caller: each is checked for its type
    first, and ``paths`` (file paths or Gradio file records) must name files the server was sent.
    ``options`` are the methods' own, by their public names (``strategies.named_options``).
    ``progress`` hears each stage with the time left; setting ``stop`` ends the run at the
    model's next turn (``progress.Stopped``); ``announce`` is told beforehand when a run will be
    slow, and why.
    """
    with prepared(config, paths, classes, strategies, templates=templates, top_k=top_k, views=views,
                  consistency=consistency, rerank_all=rerank_all, senses=senses, low_confidence=low_confidence,
                  descriptors=descriptors, support=support, **options) as (files, request):
        return _run(config, request, files, model, compare_model, progress, stop, announce)


@contextlib.contextmanager
def prepared(
    config: AppConfig, paths: Sequence[object], classes: str, strategies: Sequence[str] | str | None,
    templates: str | None = None, top_k: int | float | None = DEFAULT_TOP_K, views: Sequence[str] | str | None = None,
    consistency: bool = False, rerank_all: bool = False, senses: dict[str, str] | str | None = None,
    low_confidence: str | None = None, descriptors: str | None = None, support: object = None, **options: object,
) -> Iterator[tuple[list[str], Request]]:
    """A run's files and request, every raw argument checked (``run``'s); the support set, if
    any, is open inside."""
    items = [p for p in arguments.items(paths, "images", LIMITS.images) if p]
    if not items:
        raise InputError("No image yet: upload, drop, paste or photograph at least one image, then run.")
    files = config.uploads.check_all(items)
    strategies = arguments.text_or_list(strategies, "strategies")
    if not strategies:
        raise InputError("No strategy selected: tick at least one strategy.")
    methods = route_options(options, "api")
    support_set = _open_support(config, support, classes)
    try:
        yield files, prepare_request(
            arguments.text(classes, "classes"), strategies, arguments.text_or_list(templates, "templates") or None,
            top_k, consistency=arguments.flag(consistency, "consistency"),
            views=arguments.text_or_list(views, "views") or None, rerank_all=arguments.flag(rerank_all, "rerank_all"),
            senses=arguments.text_or_mapping(senses, "senses") or None, low_confidence=_rule(low_confidence),
            descriptors=arguments.text(descriptors, "descriptors") if descriptors is not None else None,
            support=support_set, options=methods, served=True)
    finally:
        if support_set is not None:
            support_set.close()


def _rule(low_confidence: object) -> str | None:
    return arguments.text(low_confidence, "low_confidence", "binary") if low_confidence is not None else None


def run_seconds(config: AppConfig, paths: Sequence[object], classes: str, strategies: Sequence[str] | str | None,
                rates: Rates, model: str | None = None, compare_model: str | None = None,
                **options: Any) -> float:
    """The model work of ``run`` with these arguments, in seconds at ``rates`` (how long ZeroGPU
    books a GPU for it). Checks the arguments as ``run`` does; loads no model but the served one."""
    chosen = _models_of(config, model, compare_model)
    with prepared(config, paths, classes, strategies, **options) as (files, request):
        return len(chosen) * estimate(load_served(config), len(files), request, rates=rates).total


def _models_of(config: AppConfig, model: object, compare_model: object) -> list[tuple[str, str | None]]:
    """The (model, pretrained) of a run, and of its second model when it compares two."""
    first = model_choice(config, model)
    compare = arguments.text(compare_model, "compare_model").strip() if compare_model is not None else ""
    second = model_choice(config, compare, "compare_model") if compare.lower() not in ("", "none") else None
    return [first] if second is None or second == first else [first, second]   # the same twice compares nothing


def _run(config: AppConfig, request: Request, files: list[str], model: object, compare_model: object,
         progress: Progress | None, stop: StopSignal | None, announce: Callable[[str], None] | None) -> Run:
    chosen = _models_of(config, model, compare_model)
    second = chosen[1] if len(chosen) == 2 else None
    with track(progress, stop) as tracker:
        if second is not None:
            models.check_fit_together(chosen, config.device)
        loading = all(models.REGISTRY.has(m, t, config.device) for m, t in chosen)
        tracker.stage(0.0, 0.0, "loading the model" + ("s" if second else "") if loading else
                      "loading the model (its first use on this server: this can take a minute)")
        loaded = [load_served(config) if (m, t) == (config.model, config.pretrained) else
                  models.get_model(m, t, config.device) for m, t in chosen]
        work = [estimate(m, len(files), request) for m in loaded]
        seconds = sum(w.total for w in work)
        if announce and all(w.known for w in work) and seconds >= SLOW_SECONDS:
            announce(f"This run will take {' + '.join(w.summary() for w in work)}.")
        elif announce and not all(w.known for w in work) and sum(w.prompts for w in work) >= SLOW_PROMPTS:
            announce(f"This run may take a while: {' + '.join(w.summary() for w in work)}.")
        names = [display_name(f) for f in files]
        results = []
        for k, (m, w) in enumerate(zip(loaded, work)):
            # Each model fills its share of one bar, in proportion to its work.
            lo = sum(x.total for x in work[:k]) / max(seconds, 1e-9)
            hi = sum(x.total for x in work[:k + 1]) / max(seconds, 1e-9)
            part = _part(progress, lo, hi, m.spec.display) if progress is not None and second else None
            results.append(classify_request(m, files, request, names=names, work=w, progress=part))
        return Run(results[0], files, results[1] if second else None, _pictures(request, results[0]))


MAX_THUMBNAILS = 48                    # support examples pictured per run (the page keeps them)


def _open_support(config: AppConfig, upload: object, classes: object) -> SupportSet | None:
    """The uploaded support zip, checked against the classes (its folder lives until the run ends)."""
    if upload is None or upload == "":
        return None
    path = config.uploads.check(upload, "the support set")
    names = parse_classnames(arguments.text(classes, "classes")).names
    return open_support(path, names, confine=True, max_images=LIMITS.eval_images, shown=display_name(path))


def _pictures(request: Request, result: ClassificationResult) -> dict[str, str]:
    """Small pictures of the support examples the strategies' panels show (the support set's
    folder is gone after the run; the page keeps these)."""
    if request.support is None:
        return {}
    wanted = {f for im in result.images for sid, r in im.strategies.items() if sid in STRATEGIES
              for f in STRATEGIES[sid].pictured(r)}
    paths = {it.name: it.path for it in request.support.items}
    out = {}
    for name in sorted(wanted)[:MAX_THUMBNAILS]:
        try:
            out[name] = thumbnail_url(load_image(str(paths[name])).image)
        except (KeyError, ImageError):
            continue
    return out


def _part(report: Progress, lo: float, hi: float, label: str) -> Progress:
    return lambda f, message: report(lo + (hi - lo) * f, f"{label}: {message}")


def done_message(state: dict[str, Any], seconds: float) -> str:
    """The status line after a run: what was done, and in how long."""
    images = state["result"]["images"]
    failed = sum(1 for im in images if im.get("error"))
    text = f"Classified {count(len(images) - failed, 'image')} in {seconds:.1f} s."
    if failed:
        text += f" {count(failed, 'image')} could not be read: see the summary."
    return text


def attach_caches(config: AppConfig) -> None:
    """Keep the sparse WordNet's node scores beside the image-feature cache: a restart reads them
    (at most one float per WordNet noun and model, so visitors cannot grow it past a few MB)."""
    WORDNET_SCORES.attach(config.feature_cache)


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


def model_is_loaded(config: AppConfig, choice: object) -> bool:
    """Whether a run with this model choice finds the model in memory (else it loads it first)."""
    choice = choice.strip() if isinstance(choice, str) else ""
    if not choice or choice == config.model:
        return models.REGISTRY.has(config.model, config.pretrained, config.device)
    name, _, tag = choice.partition(" ")
    return models.REGISTRY.has(name, tag.strip() or None, config.device)


def check_uploads(config: AppConfig, items: Sequence[object]) -> tuple[list[str], list[str]]:
    """The uploaded files that are images, and a message for each one that is not (the page
    drops those at upload, instead of showing a blank tile until a run says why)."""
    kept, refused = [], []
    for item in arguments.items(items, "images", LIMITS.images * 4):
        path = item[0] if isinstance(item, (list, tuple)) and item else item
        try:
            path = config.uploads.check(path, image=True)
            load_image(path, name=display_name(path))       # the visitor's file name, not the server's path
            kept.append(path)
        except (ImageError, InputError) as e:
            refused.append(e.for_page())
    return kept, refused


def run_summary(state: Run, selected: int | None) -> str:
    """The summary table of a run: one column of top-1s per model when two were compared."""
    return summary_html(state.result, selected, state.compared)


def run_models(state: Run) -> str:
    """The line about the model (each model, when two were compared)."""
    if state.compared is None:
        return model_notice(state.result.model)
    return "\n\n".join([model_notice(state.result.model), model_notice(state.compared.model),
                         f"Two models side by side: the summary and the bars show both; the panels below "
                         f"(consistency, WordNet, TPT, the methods' reasons) are those of "
                         f"{md(state.result.model.get('label', 'the first model'))}."])


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
            image = load_image(config.uploads.check(state.paths[index], image=True)).image
        except (ImageError, InputError):
            image = None  # gone since the run, or not a file this server was sent: no thumbnails
    return image_panels(state.result, index, image, state.compared, state.thumbnails)


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
    parsed = parse_classnames(arguments.text(names, "classes")).names
    check_count(parsed)
    senses = arguments.text_or_mapping(senses, "senses")
    chosen = check_overrides(parse_overrides(senses), parsed) if senses else {}
    return [c.to_dict() for c in class_senses(parsed, chosen)]


def load_descriptors(config: AppConfig, upload: object, classes: object) -> tuple[str, str]:
    """An uploaded descriptors file (DCLIP/CuPL JSON or 'class: d; d' lines) as the box's text,
    checked against the class box now, and a line saying how much of it matched."""
    path = config.uploads.check(upload, "the descriptors file")
    text = read_text(path, "The descriptors file", DESCRIPTOR_CHARS * 4)
    if len(text) > DESCRIPTOR_CHARS:
        raise InputError(f"The descriptors file has {len(text):,} characters; at most {DESCRIPTOR_CHARS:,} are "
                         "allowed. Keep only the classes you classify.")
    names = parse_classnames(arguments.text(classes, "classes")).names if arguments.text(classes, "classes") else ()
    found = parse_descriptors(text, names)
    if not names:
        return text, "Descriptors loaded; type the class names to match them."
    covered = sum(bool(found.of(c)) for c in names)
    extra = f"; {len(found.unmatched)} entries name other classes (ignored)" if found.unmatched else ""
    return text, f"Descriptors loaded: {found.count():,} for {covered} of the {len(names)} classes{extra}."


def eval_strategy_choices() -> list[tuple[str, str]]:
    """The evaluation tab's strategies: all but those that learn per image (TPT; the CLI offers them)."""
    return [(s.label, s.id) for s in STRATEGIES.values() if not s.tunes_per_image]


def evaluate_upload(config: AppConfig, upload: object, strategies: str | Sequence[str] | None, *,
                    views: str = "all", rerank_all: bool = False, model: str | None = None,
                    progress: Progress | None = None, stop: StopSignal | None = None,
                    low_confidence: object = None, descriptors: object = None, support: object = None,
                    shots: object = None, seeds: object = None, **options: object) -> EvaluationReport:
    """Evaluate an uploaded zip of labelled images (the tab and the ``/evaluate`` API);
    ``options``: the methods' own, by their public names; ``shots`` ("1,2,4,8,16"; empty: none)
    and ``seeds``: the shots curve, drawn from ``support``."""
    if not upload:
        raise InputError("Upload a .zip of labelled images first: one folder per class (ImageFolder), "
                         "or images with a labels.csv of path,label.")
    upload = config.uploads.check(upload, "the zip")
    support = config.uploads.check(support, "the support set") if support not in (None, "") else None
    strategies = arguments.text_or_list(strategies, "strategies")
    if isinstance(strategies, str):
        strategies = [x.strip() for x in strategies.split(",") if x.strip()]
    views = arguments.text(views, "views", "all")
    if not strategies:
        raise InputError("No strategy selected: tick at least one.")
    for s in chosen(parse_strategies(strategies, has_custom_templates=False)):
        if s.tunes_per_image:
            raise InputError(f"{s.label} is not offered here: it learns per image, too slow for a shared server. "
                             f"Evaluate it on your own machine with the command line (zsdemo evaluate).")
    if views not in EVAL_VIEWS:
        raise InputError(f"Unknown view set {views!r}; choose one of {', '.join(EVAL_VIEWS)}.")
    curve = None if shots is None or (isinstance(shots, str) and not shots.strip()) else shots
    if curve is not None:
        shots_require_support(support)
    else:
        check_seeds_alone(seeds)
    inputs = dict(rerank_all=arguments.flag(rerank_all, "rerank_all"), low_confidence=_rule(low_confidence),
                  descriptors=arguments.text(descriptors, "descriptors") if descriptors is not None else None,
                  options=route_options(options, "api"), served=True, support_used=curve is not None)
    with track(progress, stop) as tracker:
        tracker.stage(0.0, 0.0, "loading the model" if model_is_loaded(config, model) else
                      "loading the model (its first use on this server: this can take a minute)")
        loaded = pick_model(config, model)
        tracker.stage(0.0, 0.0, "unpacking the zip")
        return _evaluate_zip(config, upload, loaded, list(strategies), views, progress, inputs, support,
                             (curve, seeds))


def _evaluate_zip(config: AppConfig, upload: str, loaded: models.LoadedModel, strategies: list[str], views: str,
                  progress: Progress | None, inputs: dict[str, Any], support: str | None = None,
                  curve: tuple[object, object] = (None, None)) -> EvaluationReport:
    with tempfile.TemporaryDirectory(prefix="zsdemo-upload-") as tmp:
        data = open_zip(upload, tmp, confine=True, max_images=LIMITS.eval_images)
        data.root = Path(Path(upload).name)          # what the report shows, not the server's temp path
        store = FeatureStore(config.feature_cache, loaded) if config.feature_cache else None
        examples = open_support(support, data.classes, confine=True, max_images=LIMITS.eval_images,
                                shown=display_name(support)) if support else None
        try:
            request = evaluation_request(data, strategies, views=EVAL_VIEWS[views], support=examples, **inputs)
            plan = shots_plan(*curve, request, served=True)
            return evaluate(loaded, data, request, store=store, progress=progress, shots=plan)
        finally:
            if examples is not None:
                examples.close()


def evaluate_zip(config: AppConfig, upload: object, strategies: str | Sequence[str] | None, *,
                 progress: Progress | None = None, stop: StopSignal | None = None,
                 **arguments_by_name: object) -> tuple[EvaluationPanels, list[str]]:
    """The evaluation tab: the panels and the report files to download (``evaluate_upload``'s
    other arguments by name)."""
    report = evaluate_upload(config, upload, strategies, progress=progress, stop=stop, **arguments_by_name)
    files = write_report(report, _report_dir())
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


CSV_COLUMNS = ("image", "model", "strategy", "strategy_label", "class", "probability", "logit", "is_top1", "error")


def downloads(state: Run, index: int | None) -> list[str]:
    """What a run can be taken home as: the result as JSON in the CLI's schema (and the second
    model's), a CSV of every image x strategy x class probability, and the inspected image's
    bars as the page draws them, as a slide-sized PNG and as SVG."""
    results = [state.result] + ([state.compared] if state.compared is not None else [])
    index = index if isinstance(index, int) and 0 <= index < len(state.result.images) else 0
    folder = _report_dir()
    files = [folder / "result.json"]
    files[0].write_text(state.result.to_json(), encoding="utf-8")
    if state.compared is not None:
        files.append(folder / "result-compared.json")
        files[-1].write_text(state.compared.to_json(), encoding="utf-8")
    files.append(folder / "probabilities.csv")
    _write_probabilities(files[-1], results)
    stem = Path(state.result.images[index].source).stem[:60] or "image"
    figure = plots.bars_figure(results, index)
    for suffix in ("png", "svg"):
        files.append(folder / f"bars-{stem}.{suffix}")
        figure.savefig(files[-1], dpi=plots.DPI, format=suffix)
    return [str(f) for f in files]


def _write_probabilities(path: Path, results: Sequence[ClassificationResult]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(CSV_COLUMNS)
        for result in results:
            model = result.model.get("label", "")
            for im in result.images:
                if im.error:
                    out.writerow([im.source, model, "", "", "", "", "", "", im.error])
                    continue
                for sid, r in im.strategies.items():
                    for c, name in enumerate(result.classes):
                        logit = r.logits[c]
                        out.writerow([im.source, model, sid, r.label, name, f"{r.probs[c]:.6g}",
                                      "" if logit is None else f"{logit:.6g}", c == r.top1.index, ""])


TOP1 = "top-1"                  # the occlusion map's default class: the single template's top-1


def occlusion_passes(grid: object) -> str:
    """What a map will cost, said before it is drawn."""
    grid = check_grid(grid)
    return (f"{grid} x {grid} positions + the whole image = **{occlusion.passes(grid)} forward passes** of the "
            "image tower.")


def where_it_looks(config: AppConfig, state: Run | None, index: object, class_name: object, grid: object,
                   progress: Progress | None = None, stop: StopSignal | None = None) -> str:
    """The occlusion map of the inspected image (``engine/occlusion.py``) for a class, on the
    run's model, with the single-template classifier 'a photo of a {}.', as the page's HTML."""
    if state is None or not state.result.images:
        raise InputError("Nothing to look at yet: press Classify first, then pick an image.")
    grid = check_grid(grid)
    if occlusion.passes(grid) > LIMITS.images * (1 + len(DEFAULT_VIEWS)):
        raise InputError(f"{occlusion.passes(grid)} forward passes are more than a request may take here; "
                         "choose a coarser grid.")
    index = index if isinstance(index, int) and 0 <= index < len(state.result.images) else 0
    if not state.result.images[index].ok or index >= len(state.paths):
        raise InputError("This image could not be read, so there is no map of it.")
    image = load_image(config.uploads.check(state.paths[index], image=True)).image
    classes = state.result.classes
    name = arguments.text(class_name, "class", TOP1).strip() or TOP1
    if name != TOP1 and name not in classes:
        raise InputError(f"{name[:60]!r} is not one of this run's classes.")
    with track(progress, stop) as tracker:
        tracker.stage(0.0, 0.0, "finding the run's model")
        loaded = _run_model(config, state.result.model)
        weights = class_vectors(loaded, classes, SINGLE, TEXT_CACHE)
        target = _top1(loaded, image, weights) if name == TOP1 else classes.index(name)
        found = occlusion.occlusion_map(loaded, image, weights, target, classes[target], grid)
    return occlusion_html(image, found)


def _run_model(config: AppConfig, described: dict[str, Any]) -> models.LoadedModel:
    """The model a result came from: the served one, or one still in memory. A state can come
    back from the browser, so nothing it names is loaded from scratch."""
    served = load_served(config)
    spec = (described.get("name"), described.get("pretrained"))
    if spec == (served.spec.name, served.spec.pretrained):
        return served
    if isinstance(spec[0], str) and models.REGISTRY.has(spec[0], spec[1], config.device):
        return models.get_model(spec[0], spec[1], config.device)
    raise InputError("The model of this result is no longer in memory: press Classify again, then draw the map.")


def _top1(loaded: models.LoadedModel, image: Any, weights: Any) -> int:
    feats = loaded.encode_images(loaded.preprocess(image).unsqueeze(0), 1)
    return int((feats @ weights.to(feats.device).T).argmax())
