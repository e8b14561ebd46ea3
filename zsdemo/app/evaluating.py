"""The Evaluate tab's backend and the ``/evaluate`` endpoint's: an uploaded zip of labelled images
evaluated on the served model (or another), with a support set and the shots curve; the report's
panels and files."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Sequence

from ..core import arguments
from ..core.errors import InputError
from ..core.files import display_name
from ..core.limits import LIMITS
from ..core.progress import StopSignal, track
from ..data.labelled import open_zip
from ..data.support import open_support
from .classifying import open_pool_upload
from ..engine import models
from ..engine.feature_store import FeatureStore
from ..engine.views import DEFAULT_VIEWS, FLIP_VIEW
from ..run import inputs as request_inputs
from ..run.evaluation import EvaluationReport, evaluate, evaluation_request
from ..run.pipeline import (
    Progress,
)
from ..run.report import write_report
from ..run.shots import check_seeds_alone
from ..run.shots import plan as shots_plan
from ..run.shots import require_support as shots_require_support
from ..strategies import chosen, parse_strategies
from .choices import model_is_loaded, pick_model
from .evaluation_panels import EvaluationPanels, evaluation_panels
from .state import AppConfig, report_folder

EVAL_VIEWS: dict[str, tuple[str, ...]] = {"all": DEFAULT_VIEWS, "flip": (FLIP_VIEW,)}


def evaluate_upload(config: AppConfig, upload: object, strategies: str | Sequence[str] | None, *,
                    views: str = "all", rerank_all: bool = False, model: str | None = None,
                    progress: Progress | None = None, stop: StopSignal | None = None,
                    low_confidence: object = None, descriptors: object = None, support: object = None,
                    shots: object = None, seeds: object = None, sus_pool: object = None, sus_k: object = None,
                    **options: object) -> EvaluationReport:
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
    request_inputs.check_names(options, "api")
    given = request_inputs.checked(dict(rerank_all=rerank_all, low_confidence=low_confidence,
                                        descriptors=descriptors), "evaluate")
    inputs = dict(**given, served=True, support_used=curve is not None, where="api", sus_k=sus_k, **options)
    with track(progress, stop) as tracker:
        tracker.stage(0.0, 0.0, "loading the model" if model_is_loaded(config, model) else
                      "loading the model (its first use on this server: this can take a minute)")
        loaded = pick_model(config, model)
        tracker.stage(0.0, 0.0, "unpacking the zip")
        return _evaluate_zip(config, upload, loaded, list(strategies), views, progress, inputs, support,
                             (curve, seeds), sus_pool)


def _evaluate_zip(config: AppConfig, upload: str, loaded: models.LoadedModel, strategies: list[str], views: str,
                  progress: Progress | None, inputs: dict[str, Any], support: str | None = None,
                  curve: tuple[object, object] = (None, None), sus_pool: object = None) -> EvaluationReport:
    with tempfile.TemporaryDirectory(prefix="zsdemo-upload-") as tmp:
        data = open_zip(upload, tmp, confine=True, max_images=LIMITS.eval_images)
        data.root = Path(Path(upload).name)          # what the report shows, not the server's temp path
        store = FeatureStore(config.feature_cache, loaded) if config.feature_cache else None
        examples = open_support(support, data.classes, confine=True, max_images=LIMITS.eval_images,
                                shown=display_name(support)) if support else None
        pool = open_pool_upload(config, sus_pool)
        try:
            request = evaluation_request(data, strategies, views=EVAL_VIEWS[views], support=examples, sus_pool=pool,
                                         **inputs)
            plan = shots_plan(*curve, request, served=True)
            return evaluate(loaded, data, request, store=store, progress=progress, shots=plan)
        finally:
            for opened in (examples, pool):
                if opened is not None:
                    opened.close()


def evaluate_zip(config: AppConfig, upload: object, strategies: str | Sequence[str] | None, *,
                 progress: Progress | None = None, stop: StopSignal | None = None,
                 **arguments_by_name: object) -> tuple[EvaluationPanels, list[str]]:
    """The evaluation tab: the panels and the report files to download (``evaluate_upload``'s
    other arguments by name)."""
    report = evaluate_upload(config, upload, strategies, progress=progress, stop=stop, **arguments_by_name)
    files = write_report(report, report_folder())
    return evaluation_panels(report), [str(f) for f in files]
