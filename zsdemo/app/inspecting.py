"""What the page does with one run once it is there: its downloads (JSON, CSV, the bars as PNG and
SVG) and the occlusion map of the inspected image."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from ..core import arguments
from ..core.errors import InputError
from ..core.limits import LIMITS
from ..core.progress import StopSignal, track
from ..engine import models, occlusion
from ..engine.images import load_image
from ..engine.occlusion import check_grid
from ..engine.results import ClassificationResult
from ..engine.views import DEFAULT_VIEWS
from ..engine.zero_shot_classifier import class_vectors
from ..prompts.templates import SINGLE
from ..run import plots
from ..run.embedding_map import EmbeddingMap
from ..run.pipeline import (
    TEXT_CACHE,
    Progress,
)
from .choices import load_served
from .panels import (
    occlusion_html,
)
from .state import AppConfig, Run, report_folder

CSV_COLUMNS = ("image", "model", "strategy", "strategy_label", "class", "probability", "logit", "is_top1", "error")


def downloads(state: Run, index: int | None, drawn: dict[str, Any] | None = None) -> list[str]:
    """What a run can be taken home as: the result as JSON in the CLI's schema (and the second
    model's), a CSV of every image x strategy x class probability, and the inspected image's
    bars as the page draws them, as a slide-sized PNG and as SVG; with the embedding map drawn
    (``drawn``), that map as PNG, SVG and JSON (the points the page shows)."""
    results = [state.result] + ([state.compared] if state.compared is not None else [])
    index = index if isinstance(index, int) and 0 <= index < len(state.result.images) else 0
    folder = report_folder()
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
        plots.save(figure, files[-1], suffix)
    if drawn:
        found = EmbeddingMap.from_dict(drawn)
        drawing = plots.map_figure(found, index)
        for suffix in ("png", "svg"):
            files.append(folder / f"embedding-map.{suffix}")
            plots.save(drawing, files[-1], suffix)
        files.append(folder / "embedding-map.json")
        files[-1].write_text(json.dumps(found.to_dict(), ensure_ascii=False), encoding="utf-8")
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
        loaded = run_model(config, state.result.model)
        weights = class_vectors(loaded, classes, SINGLE, TEXT_CACHE)
        target = _top1(loaded, image, weights) if name == TOP1 else classes.index(name)
        found = occlusion.occlusion_map(loaded, image, weights, target, classes[target], grid)
    return occlusion_html(image, found)


def run_model(config: AppConfig, described: dict[str, Any]) -> models.LoadedModel:
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
