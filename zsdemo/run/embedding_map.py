"""The embedding map of a request: where its images, each class's name, prompts and ensembles, and the
WordNet parents and children sit, projected together on two axes (``engine/embedding_map.py``).

The command line (``zsdemo map``), the ``/embedding_map`` endpoint and the page all build it here.
Text features come from the cache the strategies fill (after a Classify nothing is encoded again);
the images are embedded once (their original view). Each method says what its class vectors are
made of (``Strategy.map_clouds``); a method whose are not made of prompts (few-shot heads, TPT's
per-image tuning) is named in the notes, with no points.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ..core.errors import InputError
from ..core.files import check_writable, is_regular_file, read_head
from ..core.progress import Progress, count, stage, track
from ..engine.embedding_map import project
from ..engine.images import ImageSource, LoadedImage
from ..engine.models import LoadedModel
from ..engine.text import TextFeatureCache, encode_prompts
from ..prompts.templates import NAME_ONLY, fill
from ..prompts.templates import parse_templates
from ..strategies import STRATEGIES, Request, parse_strategies
from .pipeline import TEXT_CACHE, embed_images, load_images, open_run
from .request import prepare_request

SCHEMA = "zsdemo.embedding_map/1"
KINDS = ("image", "name", "prompt", "ensemble", "wordnet")
PAGE_POINTS = 4_000        # the page draws at most this many (plotly stays responsive on a phone)
IMAGE, TEXT = 0, 1         # the two modalities, centred apart on request
GAP = ("CLIP puts images and texts in two separate regions of its space (the modality gap, Liang et al. 2022): "
       "centring each on its own mean removes that offset, so the map shows where each image sits among the "
       "texts rather than the gap between them.")


@dataclass
class MapPoint:
    kind: str                       # one of KINDS
    class_name: str | None          # None for an image
    text: str                       # the prompt, the image's file name, or the WordNet name
    strategy: str | None = None     # for prompts, ensembles and WordNet points
    x: float = 0.0
    y: float = 0.0
    prompt: str | None = None       # WordNet: the phrase encoded
    relation: str | None = None     # WordNet: "parent" or "child"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["class"] = out.pop("class_name")
        return {k: v for k, v in out.items() if v is not None or k in ("class", "strategy")}


@dataclass
class Nearest:
    """For one image: the ensemble and the single prompt closest to it (cosine in the model's space)."""

    image: str
    ensemble: tuple[str, str, float] | None       # (strategy label, class, cosine)
    prompt: tuple[str, str, float] | None         # (prompt, class, cosine)


@dataclass
class EmbeddingMap:
    points: list[MapPoint]
    explained_variance: tuple[float, float]
    separate_modalities: bool
    model: dict[str, Any] = field(default_factory=dict)
    nearest: list[Nearest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    total: int = 0                                 # points before any thinning

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "model": self.model, "points": [p.to_dict() for p in self.points],
                "explained_variance": [round(v, 6) for v in self.explained_variance],
                "separate_modalities": self.separate_modalities,
                "nearest": [{"image": n.image,
                             "ensemble": None if n.ensemble is None else dict(zip(("strategy", "class", "cosine"),
                                                                                  n.ensemble)),
                             "prompt": None if n.prompt is None else dict(zip(("text", "class", "cosine"),
                                                                              n.prompt))} for n in self.nearest],
                "notes": list(self.notes), "total_points": self.total or len(self.points)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EmbeddingMap":
        """A map back from ``to_dict`` (the page keeps it in its state for the downloads)."""
        points = [MapPoint(p["kind"], p.get("class"), p["text"], p.get("strategy"), float(p["x"]), float(p["y"]),
                           p.get("prompt"), p.get("relation")) for p in d["points"]]
        nearest = [Nearest(n["image"], None if n["ensemble"] is None else tuple(n["ensemble"].values()),
                           None if n["prompt"] is None else tuple(n["prompt"].values())) for n in d["nearest"]]
        return cls(points, tuple(d["explained_variance"]), bool(d["separate_modalities"]), d.get("model", {}),
                   nearest, list(d.get("notes", [])), int(d.get("total_points", len(points))))

    def axis_label(self, k: int) -> str:
        return f"axis {k + 1}: {100 * self.explained_variance[k]:.1f}% of the variance"


def prepare_map(classnames: str | Sequence[str], strategies: str | Sequence[str] | None = None,
                templates: str | Sequence[str] | None = None, senses: Any = None, served: bool = False,
                where: str | None = None, **options: Any) -> tuple[Request, list[str]]:
    """A map's request, checked as a Classify's (``prepare_request``), of the strategies whose
    class vectors are made of prompts; and the labels of the others, which the map leaves out
    (a few-shot method is not refused for want of labelled examples: it has no points anyway)."""
    ids = parse_strategies(strategies, has_custom_templates=bool(parse_templates(templates)))
    drawn = [s for s in ids if STRATEGIES[s].on_map]
    skipped = [STRATEGIES[s].label for s in ids if not STRATEGIES[s].on_map]
    # With none left, the names alone (every map has them): "name" adds no other point.
    request = prepare_request(classnames, drawn or ["name"], templates, senses=senses, served=served, where=where,
                              **options)
    return request, skipped


def no_points_note(labels: Sequence[str]) -> str | None:
    if not labels:
        return None
    return (f"{', '.join(labels)} {'has' if len(labels) == 1 else 'have'} no prompt points: "
            f"{'its class vectors are' if len(labels) == 1 else 'their class vectors are'} not a mean of prompts "
            "(learned from labelled examples, tuned per image, or scored phrase by phrase).")


def embedding_map(loaded: LoadedModel, images: Sequence[ImageSource], request: Request,
                  cache: TextFeatureCache | None = TEXT_CACHE, names: Sequence[str | None] | None = None,
                  separate_modalities: bool = False, progress: Progress | None = None,
                  skipped: Sequence[str] = ()) -> EmbeddingMap:
    """The map of ``request`` (its strategies with prompt points: ``prepare_map``) and
    ``images`` (none: a map of the texts alone). ``skipped``: labels of strategies left out for
    having no prompt points (said in the notes)."""
    with track(progress) if progress is not None else contextlib.nullcontext():
        stage(0.0, 0.05, "decoding images")
        decoded = load_images(images, names)
        good = [d for d in decoded if isinstance(d, LoadedImage)]
        notes = list(request.warnings)
        notes += [f"Not on the map: {d.error}" for d in decoded if not isinstance(d, LoadedImage)]
        if (said := no_points_note(skipped)) is not None:
            notes.append(said)
        opened = open_run(loaded, request, cache, senses_only=True)
        if opened.missing:
            notes.append(opened.missing)
        stage(0.05, 0.4, "embedding images", len(good), "image")
        image_vectors = embed_images(loaded, good).float().cpu() if good else torch.empty(0, 0)
        stage(0.4, 0.95, "the prompts' features (from the cache a Classify filled, or encoded once)")
        texts, vectors = _text_points(opened.run, cache)
        stage(0.95, 1.0, "projecting")
        return _projected(loaded, good, image_vectors, texts, vectors, separate_modalities, notes)


def _text_points(run: Any, cache: TextFeatureCache | None) -> tuple[list[MapPoint], torch.Tensor]:
    """Every class's name, then each drawn strategy's clouds and ensembles, with their vectors."""
    request = run.request
    names = request.classnames
    points = [MapPoint("name", c, c) for c in names]
    vectors = [encode_prompts(run.loaded, [fill(NAME_ONLY[0], c) for c in names], cache)]
    for s in request.chosen:
        for cloud in s.map_clouds(run):
            name = names[cloud.class_index]
            if cloud.kind == "wordnet":
                points += [MapPoint("wordnet", name, t, s.id, prompt=p, relation=r)
                           for t, p, r in zip(cloud.texts, cloud.encoded, cloud.relations)]
                vectors.append(cloud.vectors)
                continue
            points += [MapPoint("prompt", name, t, s.id) for t in cloud.texts]
            vectors.append(cloud.vectors)
            if len(cloud.texts) > 1:          # one prompt's ensemble is that prompt
                points.append(MapPoint("ensemble", name, f"{s.label}: the mean of {len(cloud.texts)} prompts", s.id))
                vectors.append(F.normalize(cloud.vectors.float().mean(dim=0, keepdim=True), dim=-1))
    return points, torch.cat([v.float().cpu() for v in vectors])


def _projected(loaded: LoadedModel, good: Sequence[LoadedImage], image_vectors: torch.Tensor,
               texts: list[MapPoint], text_vectors: torch.Tensor, separate: bool,
               notes: list[str]) -> EmbeddingMap:
    images = [MapPoint("image", None, im.source) for im in good]
    points = images + texts
    every = torch.cat([image_vectors, text_vectors]) if len(images) else text_vectors
    modality = [IMAGE] * len(images) + [TEXT] * len(texts) if separate and images else None
    found = project(every, modality)
    for p, (x, y) in zip(points, found.xy.tolist()):
        p.x, p.y = x, y
    if separate and not images:
        notes.append("With no image there is one modality: nothing to centre apart.")
    nearest = _nearest([im.source for im in good], image_vectors, texts, text_vectors)
    return EmbeddingMap(points, found.explained, separate, loaded.describe(), nearest, notes, len(points))


def _nearest(names: Sequence[str], images: torch.Tensor, texts: Sequence[MapPoint],
             vectors: torch.Tensor) -> list[Nearest]:
    """Each image's nearest ensemble and nearest single prompt (a bare name counts as one), by
    cosine in the model's space: one [N, P] product, not a loop over 80,000 points."""
    if not len(names):
        return []
    cos = F.normalize(images.float(), dim=-1) @ F.normalize(vectors.float(), dim=-1).T
    out = []
    for group in ("ensemble", "prompt"):
        rows = torch.tensor([p.kind == group or (group == "prompt" and p.kind == "name") for p in texts])
        if not rows.any():
            out.append([None] * len(names))
            continue
        best, where = cos.masked_fill(~rows, float("-inf")).max(dim=1)
        picked = [texts[int(k)] for k in where]
        out.append([(STRATEGIES[p.strategy].label if group == "ensemble" else p.text, p.class_name, float(c))
                    for p, c in zip(picked, best)])
    return [Nearest(n, e, q) for n, e, q in zip(names, *out)]


def thinned(found: EmbeddingMap, limit: int = PAGE_POINTS) -> tuple[EmbeddingMap, str | None]:
    """At most ``limit`` points for a browser. Every image always; then every class, or every j-th
    class when their names and ensembles alone are too many; within those, the clouds (prompts,
    WordNet points) keep every k-th point of each class and strategy, so that each keeps its shape.
    Returns the map and what was left out, in words (None: nothing)."""
    if len(found.points) <= limit:
        return found, None
    images = [p for p in found.points if p.kind == "image"]
    by_class: dict[str | None, list[MapPoint]] = {}
    for p in found.points:
        if p.kind != "image":
            by_class.setdefault(p.class_name, []).append(p)
    room = max(limit - len(images), 1)
    weight = sum(_fixed(ps) + len(_clouds(ps)) for ps in by_class.values())
    every_class = math.ceil(weight / room) if weight > room else 1
    classes = list(by_class)[::every_class]
    fixed = sum(_fixed(by_class[c]) for c in classes)
    clouds = [cloud for c in classes for cloud in _clouds(by_class[c]).values()]
    room = max(limit - len(images) - fixed, len(clouds))
    step = max(1, math.ceil(sum(len(c) for c in clouds) / max(room, 1)))
    while sum(math.ceil(len(c) / step) for c in clouds) > room:
        step += 1
    keep = {id(p) for p in images} | {id(p) for c in classes for p in by_class[c] if p.kind not in CLOUDS}
    keep |= {id(p) for cloud in clouds for p in cloud[::step]}
    points = [p for p in found.points if id(p) in keep]
    parts = [f"every {_nth(step)} point of each prompt cloud and of the WordNet points" if step > 1 else "",
             f"every {_nth(every_class)} class" if every_class > 1 else ""]
    said = (f"Drawn: {len(points):,} of {found.total:,} points ({'; '.join(p for p in parts if p)}; every image, "
            f"and every name and ensemble of the classes drawn), so that the page stays responsive. "
            "`zsdemo map --json` and the /embedding_map API return every point.")
    return replace(found, points=points, notes=[*found.notes, said]), said


CLOUDS = ("prompt", "wordnet")


def _fixed(points: Sequence[MapPoint]) -> int:
    return sum(p.kind not in CLOUDS for p in points)


def _clouds(points: Sequence[MapPoint]) -> dict[tuple, list[MapPoint]]:
    out: dict[tuple, list[MapPoint]] = {}
    for p in points:
        if p.kind in CLOUDS:
            out.setdefault((p.kind, p.strategy), []).append(p)
    return out


def _nth(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


WORDS = {"image": ("image", "images"), "name": ("class name", "class names"), "prompt": ("prompt", "prompts"),
         "ensemble": ("ensemble", "ensembles"), "wordnet": ("WordNet point", "WordNet points")}


def summary_lines(found: EmbeddingMap) -> list[str]:
    """The map in words, for a screen reader and the command line: the axes, then each image's
    nearest ensemble and nearest single prompt (in the model's space, not on the map)."""
    kinds = {k: sum(p.kind == k for p in found.points) for k in KINDS}
    shown = ", ".join(count(n, *WORDS[k]) for k, n in kinds.items() if n)
    lines = [f"{shown}, on the top two principal axes ({found.axis_label(0)}, across; {found.axis_label(1)}, up)"
             + (", images and texts centred apart." if found.separate_modalities else ".")]
    for n in found.nearest:
        parts = []
        if n.ensemble is not None:
            parts.append(f"nearest ensemble: {n.ensemble[0]} of {n.ensemble[1]} (cosine {n.ensemble[2]:.3f})")
        if n.prompt is not None:
            parts.append(f"nearest single prompt: \"{n.prompt[0]}\" ({n.prompt[1]}, cosine {n.prompt[2]:.3f})")
        lines.append(f"{n.image}: " + ("; ".join(parts) if parts else "no text point to compare."))
    return lines


TITLE = "zsdemo embedding map"      # the files' own title: what tells an earlier map from another file


def check_out(path: str | os.PathLike) -> Path:
    """Refuse, before any work, a map file that could not be written or would replace what
    zsdemo did not draw: only a new name, or an earlier map (its title says so), is taken."""
    target = Path(path)
    if target.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"The map is drawn as .png or .svg, not {target.suffix or 'a name without one'!r}.")
    check_writable(target, "the map")
    if os.path.lexists(target):
        if target.is_symlink() or not is_regular_file(target):
            raise InputError(f"Cannot draw the map into {str(target)!r}: it is a link or not a regular file. "
                             "Choose another name.")
        if TITLE.encode() not in read_head(target, f"Cannot read {str(target)!r}", 8192):
            raise InputError(f"Cannot draw the map into {str(target)!r}: that file exists and is not a map zsdemo "
                             "drew, so it was left as it is. Choose another name, or remove that file yourself.")
    return target


def write_figure(found: EmbeddingMap, path: str | os.PathLike, highlighted: int | None = None) -> Path:
    """The map drawn into ``path`` (.png or .svg; ``check_out``), into a temporary file beside it
    renamed over it, so that a failure leaves the old file whole."""
    from . import plots

    target = check_out(path)
    suffix = target.suffix.lower()[1:]
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=f".{suffix}",
                                     dir=target.parent if str(target.parent) else ".")
    os.close(fd)
    try:
        plots.save(plots.map_figure(found, highlighted), temporary, suffix, TITLE)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
