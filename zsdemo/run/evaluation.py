"""Batch evaluation on a labelled set: accuracy and selective prediction (docs/METHODS.md §2, §3, §5).

Data flows one way: labelled files -> image features (original + views, cached on disk by
content and model) -> every strategy's top-5 and the confidence scores, one small record per
image -> metrics -> one report (JSON, CSV files and a coverage plot).

Choices where the specification is silent, also in docs/architecture.md:
- The consistency analysis always runs (the scores and the low-confidence set need it), so the
  name-only and CLIP-80 classifiers are always computed and always reported, selected or not.
- AUROC and the coverage curves judge every score against the correctness of the name-only
  prediction, the base prediction that the method's confidence is about; the CLIP-80 max-logit
  and max-softmax baselines are also judged against CLIP-80's own correctness ("own").
- The binary rule is a score of 1 (confident) or 0 (low confidence); its ties count one half in
  the AUROC and its coverage curve has two real points.
- Features go through float16 on the way to the disk cache, and a fresh run uses the same
  rounded values, so a resumed run gives exactly the numbers of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from . import metrics
from ..engine.consistency import LowConfidenceRule, embed_with_views
from ..core.constants import DEFAULT_STRATEGIES, EVAL_BATCH_SIZE
from ..data.datasets import paper_comparison
from .distributed import SINGLE, World
from ..core.errors import ImageError, InputError
from ..engine.feature_store import ORIGINAL, FeatureStore, read_image_file
from ..engine.images import load_image
from ..data.labelled import LabelledSet
from ..engine.models import LoadedModel
from .pipeline import TEXT_CACHE, chosen_options, open_run, score_batch
from ..core.progress import Progress, advance, stage, track
from .request import Request, prepare_request
from .shots import SWEEP_SPAN, ShotsCurve, ShotsPlan, sweep as shots_sweep
from ..strategies import STRATEGIES, Batch, Run, chosen
from ..data.support import SupportFeatures, SupportSet
from ..engine.text import TextFeatureCache
from ..wordnet.sparse import Sparsity

ALWAYS = ("name", "clip80")        # computed for the consistency scores and the baselines anyway
TOP_K = 5
BATCH_SIZE = EVAL_BATCH_SIZE
UNIT = "labelled image"            # the progress line's unit (embedding an image's views counts as one)
CONFUSIONS = 10                    # most confused pairs reported per strategy

# Confidence scores: id -> label. Higher means more confident.
SCORES: dict[str, str] = {
    "s_t": "S_T (share of the 80 templates agreeing)",
    "s_b": "S_B (share of the views agreeing)",
    "consistency": "binary rule (confident 1, low confidence 0)",
    "max_logit_name": "max logit, name only",
    "max_softmax_name": "max softmax, name only",
    "max_logit_clip80": "max logit, CLIP-80",
    "max_softmax_clip80": "max softmax, CLIP-80",
}


@dataclass
class ImageRecord:
    """What the metrics need of one evaluated image."""

    file: str
    label: int
    top5: dict[str, list[int]]          # strategy -> class indices, best first
    scores: dict[str, float]            # SCORES id -> value
    low_confidence: bool
    # strategy -> its own top-1 probability (max softmax of its logits): every strategy's
    # confidence score, beside the paper's SCORES
    confidence: dict[str, float] = field(default_factory=dict)


@dataclass
class EvaluationReport:
    dataset: dict[str, Any]
    model: dict[str, Any]
    settings: dict[str, Any]
    classes: list[str]
    strategies: list[str]
    records: list[ImageRecord]
    corrupt: list[tuple[str, str]] = field(default_factory=list)      # (file, why): not evaluated
    timing: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    sparsity: Sparsity | None = None     # the sparse WordNet hierarchy, with a hierarchy strategy
    support: SupportFeatures | None = None   # the few-shot methods' labelled examples
    world_size: int = 1                      # processes that scored the images (torchrun)
    images_per_rank: list[int] = field(default_factory=list)
    shots_curve: ShotsCurve | None = None    # accuracy against shots per class (--shots)
    sus: dict[str, Any] | None = None        # what SuS found in the pool, per class (data/pool.Found)

    def correct(self, strategy: str) -> np.ndarray:
        return np.array([r.top5[strategy][0] == r.label for r in self.records], dtype=bool)

    def summary(self) -> dict[str, Any]:
        """Every metric of the issue, as plain JSON-ready data."""
        return summarize(self)

    def paper_comparison(self, summary: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """With one of the paper's datasets: the hierarchy's accuracies beside Ge et al.'s
        (``summary``: this report's, when the caller has it already)."""
        name = self.dataset.get("dataset")
        return paper_comparison(summary or self.summary(), name, self.model) if name else []

    def support_summary(self) -> dict[str, Any] | None:
        """The support set of the few-shot methods: its shots per class, the examples left out
        (leaked, unreadable) and the settings each method used."""
        if self.support is None:
            return None
        few_shot = {s.options_key for s in chosen(self.settings["strategies"]) if s.needs_support}
        return {**self.support.describe(), "shots_per_class": _shots(self.support),
                "options": {k: v for k, v in self.settings.get("options", {}).items() if k in few_shot}}

    def to_dict(self) -> dict[str, Any]:
        summary = self.summary()
        return {
            "dataset": self.dataset, "model": self.model, "settings": self.settings,
            "classes": self.classes, "strategies": self.strategies,
            "corrupt": [{"file": f, "error": e} for f, e in self.corrupt],
            "timing": self.timing, "warnings": self.warnings,
            "world_size": self.world_size, "images_per_rank": self.images_per_rank or [len(self.records)],
            **summary,
            "paper_comparison": self.paper_comparison(summary),
            "wordnet_sparsity": self.sparsity.summary() if self.sparsity else None,
            "wordnet_nodes": self.sparsity.node_list() if self.sparsity else [],
            "support": self.support_summary(),
            **({"sus": self.sus} if self.sus is not None else {}),
            "shots_curve": self.shots_curve.to_dict() if self.shots_curve is not None else None,
            "images": [asdict(r) for r in self.records],
        }


def _shots(support: SupportFeatures) -> str:
    """"16" when every class has 16 examples, else the range ("4-16")."""
    counts = sorted(n for n in support.shots().values() if n)
    return str(counts[0]) if counts[0] == counts[-1] else f"{counts[0]}-{counts[-1]}"


def evaluation_request(
    data: LabelledSet,
    strategies: str | Sequence[str] | None = None,
    templates: str | Sequence[str] | None = None,
    views: str | Sequence[str] | None = None,
    rerank_all: bool = False,
    senses: str | Sequence[str] | dict[str, str] | None = None,
    *,
    low_confidence: str | LowConfidenceRule | None = None,
    descriptors: str | dict[str, Any] | None = None,
    support: SupportSet | None = None,
    options: Mapping[str, Any] | None = None,
    served: bool = False,
    support_used: bool = False,
    **named: Any,
) -> Request:
    """The request that evaluates ``data``: its classes, the consistency check always on, top-5;
    checked once here (before a model loads), then handed to ``evaluate``. The methods' options
    come as ``prepare_request`` takes them; ``support_used``: the support set is read even
    without a few-shot strategy selected (the shots curve fits its own)."""
    request = prepare_request(data.classes, strategies or DEFAULT_STRATEGIES, templates, TOP_K,
                              consistency=True, views=views, rerank_all=rerank_all, senses=senses,
                              low_confidence=low_confidence, descriptors=descriptors, support=support,
                              options=options, served=served, support_used=support_used, **named)
    if request.needs_wordnet:
        # Classes read from WordNet ids use exactly those senses (the user's choices still win).
        # Added after the checks: without WordNet the hierarchy falls back to bare names and says so.
        request = dataclasses.replace(request, senses={**data.senses, **request.senses})
    if len(request.classnames) != len(data.classes):
        raise InputError(f"The labels give {len(data.classes)} class names but only {len(request.classnames)} "
                         "distinct ones: rename (or map) the classes so that no two differ only in case.")
    return request


def evaluate(
    loaded: LoadedModel,
    data: LabelledSet,
    request: Request | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    store: FeatureStore | None = None,
    cache: TextFeatureCache | None = TEXT_CACHE,
    progress: Progress | None = None,
    world: World = SINGLE,
    shots: ShotsPlan | None = None,
) -> EvaluationReport | None:
    """Evaluate every strategy of ``request`` (``evaluation_request``; by default the default
    strategies) on ``data``; a bad image is skipped and reported. With ``shots`` (``shots.plan``)
    the few-shot methods are also fitted on k examples per class of the support set, for each k
    and seed, on the features already computed (the report's ``shots_curve``).

    In a distributed run (``world``, from ``distributed.start``) each rank scores its shard and
    rank 0 gets the report of them all; the other ranks get None."""
    request = request if request is not None else evaluation_request(data)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"The batch size must be a whole number of at least 1 (got {batch_size!r}).")
    evaluated = list(dict.fromkeys([*ALWAYS, *request.strategies]))
    with track(progress) if progress is not None else contextlib.nullcontext():
        opened = open_run(loaded, request, cache, [it.path for it in data.items], store=store,
                          support_used=shots is not None, spans={s.id: (0.0, 1.0) for s in request.chosen})
    run, sparsity, missing = opened.run, opened.sparsity, opened.missing
    out = EvaluationReport(
        dataset=data.describe(), model=loaded.describe(),
        settings={"strategies": list(request.strategies), "views": list(request.views),
                  "rerank_all": request.rerank_all, "batch_size": batch_size, "top_k": TOP_K,
                  "senses": request.senses, "templates": list(request.custom_templates),
                  "feature_cache": store is not None, "low_confidence": str(request.low_confidence),
                  "options": chosen_options(request), **request.extra},
        classes=list(request.classnames), strategies=evaluated, records=[],
        warnings=list(request.warnings) + ([missing] if missing else [])
        + (run.support.warnings() if run.support is not None else []) + (run.sus.notes if run.sus else [])
        + run.warnings, sparsity=sparsity, support=run.support, sus=run.sus.to_dict() if run.sus else None,
    )
    stats = {"encoded": 0, "from_cache": 0}
    items = data.items
    mine = world.batches(len(items), batch_size)
    with track(progress) if progress is not None else contextlib.nullcontext():
        # One clock for the progress line and the report: both count from the first batch on.
        start = time.perf_counter()
        # With a shots curve, its fits take the last part of the bar (shots.SWEEP_SPAN).
        stage(0.0, 1.0 if shots is None else SWEEP_SPAN[0], "evaluating", len(items), UNIT)
        per_batch = [s for s in evaluated if not STRATEGIES[s].whole_set]
        whole_set = [s for s in evaluated if STRATEGIES[s].whole_set]
        keep = bool(whole_set) or shots is not None
        indexed: list[tuple[int, ImageRecord]] = []       # (item index, record): merged in item order
        kept: list[tuple[int, np.ndarray]] = []           # (item index, features): whole-set strategies, shots
        corrupt: list[tuple[int, tuple[str, str]]] = []
        for round_ in range(world.rounds(len(items), batch_size)):
            rows = list(mine[round_]) if round_ < len(mine) else []
            skipped: list[tuple[str, str]] = []
            found = _batch_features(loaded, [items[i] for i in rows], request.views, store, stats, skipped,
                                    decode=any(STRATEGIES[s].needs_pixels for s in evaluated)) if rows else []
            where = {items[i].name: i for i in rows}
            corrupt += [(where[name], (name, why)) for name, why in skipped]
            if found:
                records, feats = _records(run, found, per_batch)
                indexed += [(where[r.file], r) for r in records]
                if keep:
                    kept += [(where[r.file], f) for r, f in zip(records, feats.cpu().numpy())]
            advance(world.total(len(rows)), UNIT)      # one progress line counts every rank's images
        gathered = world.gather((indexed, kept, corrupt, stats, sum(len(b) for b in mine)))
        if gathered is None:
            return None                                # another rank's report: rank 0 writes it
        out.records = [r for _, r in sorted((x for part in gathered for x in part[0]), key=lambda x: x[0])]
        out.corrupt = [c for _, c in sorted((x for part in gathered for x in part[2]), key=lambda x: x[0])]
        stats = {k: sum(part[3][k] for part in gathered) for k in stats}
        out.world_size, out.images_per_rank = world.size, [part[4] for part in gathered]
        if keep and out.records:
            ordered = [f for _, f in sorted((x for part in gathered for x in part[1]), key=lambda x: x[0])]
            features = torch.from_numpy(np.stack(ordered)).to(loaded.device)
            if whole_set:
                _whole_set_records(run, out.records, features, whole_set)
        seconds = time.perf_counter() - start
        if shots is not None and out.records:
            labels = torch.tensor([r.label for r in out.records])
            zero = {s: float(out.correct(s).mean()) for s in shots.zero_shot}
            out.shots_curve = shots_sweep(run, features, labels, shots, zero)
    if not out.records:
        first = f" (the first: {out.corrupt[0][1]})" if out.corrupt else ""
        raise InputError(f"None of the {len(items)} images could be read{first}.")
    out.timing = {"seconds": round(seconds, 3), "images": len(items), **stats,
                  "images_per_second": round(len(items) / seconds, 3) if seconds > 0 else 0.0}
    return out


@dataclass
class _Found:
    file: str
    label: int
    features: dict[str, np.ndarray]
    image: Any = None                   # the decoded image, when TPT needs it


def _batch_features(loaded: LoadedModel, batch: Sequence[Any], views: Sequence[str],
                    store: FeatureStore | None, stats: dict[str, int], corrupt: list[tuple[str, str]],
                    decode: bool) -> list[_Found]:
    """Features of the batch's original images and views: from the store, else encoded and stored."""
    keys = [ORIGINAL, *views]
    found: list[_Found] = []
    todo: list[tuple[_Found, str]] = []
    for item in batch:
        try:
            data, digest = read_image_file(item.path, item.name)
        except ImageError as e:
            corrupt.append((item.name, str(e)))
            continue
        cached = store.get(digest, keys) if store is not None else None
        image = None
        if cached is None or decode:
            try:
                image = load_image(data, name=item.name).image
            except ImageError as e:
                corrupt.append((item.name, str(e)))
                continue
        entry = _Found(item.name, item.label, cached or {}, image)
        found.append(entry)
        if cached is None:
            todo.append((entry, digest))
        else:
            stats["from_cache"] += 1
    if todo:
        orig, views_feats = embed_with_views(loaded, [e.image for e, _ in todo], views)
        orig = orig.cpu().numpy().astype(np.float16)
        views_feats = views_feats.cpu().numpy().astype(np.float16)
        for row, (entry, digest) in enumerate(todo):
            entry.features = {ORIGINAL: orig[row], **{v: views_feats[row, j] for j, v in enumerate(views)}}
            if store is not None:
                store.put(digest, entry.features)
            if not decode:
                entry.image = None        # free the pixels; only TPT needs them later
        stats["encoded"] += len(todo)
    return found


def _records(run: Run, found: Sequence[_Found], evaluated: Sequence[str],
             ) -> tuple[list[ImageRecord], torch.Tensor]:
    """The batch's records (their top-5 of ``evaluated``) and its original-image features."""
    request, device = run.request, run.loaded.device
    feats = torch.from_numpy(np.stack([f.features[ORIGINAL] for f in found]).astype(np.float32)).to(device)
    view_feats = torch.from_numpy(np.stack([np.stack([f.features[v] for v in request.views]) for f in found])
                                  .astype(np.float32)).to(device)
    batch, scores = score_batch(run, feats, view_feats, [f.image for f in found],
                                [STRATEGIES[s] for s in evaluated])
    k = min(TOP_K, len(request.classnames))
    tops = {s: torch.topk(scores[s].logits, k, dim=-1).indices.tolist() for s in evaluated}
    baselines = {f"{stat}_{s}": values.tolist()
                 for s in ALWAYS
                 for stat, values in (("max_logit", scores[s].logits.max(dim=-1).values),
                                      ("max_softmax", scores[s].logits.softmax(dim=-1).max(dim=-1).values))}
    confidence = {s: _max_softmax(scores[s].logits) for s in evaluated}
    records = []
    for row, f in enumerate(found):
        check = batch.checks[row]
        scores_of_image = {"s_t": check.s_t, "s_b": check.s_b, "consistency": 0.0 if check.low_confidence else 1.0,
                           **{key: values[row] for key, values in baselines.items()}}
        records.append(ImageRecord(f.file, f.label, {s: tops[s][row] for s in evaluated}, scores_of_image,
                                   request.low_confidence.is_low(check),
                                   {s: confidence[s][row] for s in evaluated}))
    return records, feats


def _max_softmax(logits: torch.Tensor) -> list[float]:
    return logits.float().softmax(dim=-1).max(dim=-1).values.tolist()


def _whole_set_records(run: Run, records: list[ImageRecord], features: torch.Tensor,
                       strategies: Sequence[str]) -> None:
    """Adds the top-5 of strategies scored on the whole set at once (ZPE's weights come from every
    evaluated image, as its paper does), in the records' order. The top-5 join each record's
    in the evaluation's own strategy order."""
    order = list(run.request.strategies)
    k = min(TOP_K, len(run.request.classnames))
    scores = {s: STRATEGIES[s].score(Batch(run, features)) for s in strategies}
    tops = {s: torch.topk(scores[s].logits, k, dim=-1).indices.tolist() for s in strategies}
    confidence = {s: _max_softmax(scores[s].logits) for s in strategies}
    for row, record in enumerate(records):
        merged = {**record.top5, **{s: tops[s][row] for s in strategies}}
        record.top5 = {s: merged[s] for s in [*ALWAYS, *order] if s in merged}
        merged = {**record.confidence, **{s: confidence[s][row] for s in strategies}}
        record.confidence = {s: merged[s] for s in record.top5}


def summarize(report: EvaluationReport) -> dict[str, Any]:
    records, classes = report.records, report.classes
    labels = np.array([r.label for r in records], dtype=np.int64)
    top5 = {s: np.array([r.top5[s] for r in records], dtype=np.int64) for s in report.strategies}
    correct = {s: top5[s][:, 0] == labels for s in report.strategies}
    low = np.array([r.low_confidence for r in records], dtype=bool)

    def acc(mask_correct: np.ndarray, mask: np.ndarray | None = None) -> float | None:
        chosen = mask_correct if mask is None else mask_correct[mask]
        return float(chosen.mean()) if len(chosen) else None

    strategies = {
        s: {"label": STRATEGIES[s].label, "selected": s in report.settings["strategies"],
            "top1": metrics.topk_accuracy(top5[s], labels, 1), "top5": metrics.topk_accuracy(top5[s], labels, TOP_K)}
        for s in report.strategies
    }
    reranking = {}
    for s in report.strategies:
        fb = STRATEGIES[s].fallback
        if fb is not None:
            reranking[s] = {"baseline": fb, "low_before": acc(correct[fb], low), "low_after": acc(correct[s], low),
                            "full_before": acc(correct[fb]), "full_after": acc(correct[s])}
    target = correct["name"]
    scores = {k: np.array([r.scores[k] for r in records], dtype=np.float64) for k in SCORES}
    selective = {
        "target": "the name-only prediction is correct",
        "auroc": {k: metrics.auroc(v, target) for k, v in scores.items()},
        "auroc_own": {k: metrics.auroc(scores[k], correct["clip80"])
                      for k in ("max_logit_clip80", "max_softmax_clip80")},
        "coverage": {k: metrics.coverage_curve(v, target) for k, v in scores.items()},
        "by_strategy": by_strategy(report, correct),
    }
    by_class = {s: metrics.per_class_accuracy(top5[s][:, 0], labels, len(classes)) for s in report.strategies}
    per_class = [{"class": name, "images": by_class["name"][c][0], **{s: by_class[s][c][1] for s in by_class}}
                 for c, name in enumerate(classes)]
    confusions = {
        s: [{"true": classes[t], "predicted": classes[p], "count": k}
            for t, p, k in metrics.confused_pairs(top5[s][:, 0], labels, CONFUSIONS)]
        for s in report.strategies
    }
    return {
        "n_images": len(records),
        "accuracy": strategies,
        "low_confidence": {"size": int(low.sum()), "share": float(low.mean()),
                           "name_accuracy_low": acc(target, low), "name_accuracy_confident": acc(target, ~low),
                           "reranking": reranking},
        "selective": selective,
        "per_class": per_class,
        "confusions": confusions,
        "arena": arena(report, correct),
    }


def by_strategy(report: EvaluationReport, correct: dict[str, np.ndarray]) -> dict[str, Any]:
    """Every strategy's own top-1 probability as its confidence score: how well it separates the
    strategy's right predictions from its wrong ones (AUROC) and its accuracy against coverage."""
    out = {}
    for s in report.strategies:
        confidence = np.array([r.confidence[s] for r in report.records], dtype=np.float64)
        out[s] = {"label": STRATEGIES[s].label, "score": "max softmax of its own probabilities",
                  "auroc": metrics.auroc(confidence, correct[s]),
                  "auroc_name_correct": metrics.auroc(confidence, correct["name"]),
                  "coverage": metrics.coverage_curve(confidence, correct[s])}
    return out


ARENA_FILES = 20                 # files listed per side of a pair in report.json


def arena(report: EvaluationReport, correct: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """For every pair of selected strategies: the images one fixed and the other broke (top-1),
    with McNemar's exact test of the difference."""
    selected = {s: correct[s] for s in report.settings["strategies"]}
    files = [r.file for r in report.records]
    rows = []
    for a, b, only_a, only_b, both, neither, p in metrics.pairwise(selected):
        rows.append({"a": a, "b": b, "only_a_right": only_a, "only_b_right": only_b, "both_right": both,
                     "both_wrong": neither, "mcnemar_p": p,
                     "files_only_a_right": [f for f, x, y in zip(files, selected[a], selected[b]) if x and not y]
                     [:ARENA_FILES],
                     "files_only_b_right": [f for f, x, y in zip(files, selected[a], selected[b]) if y and not x]
                     [:ARENA_FILES]})
    return rows
