"""SuS: a support set found by the model itself among the user's own unlabeled photos (Udandarao et
al., ICCV 2023, "SuS-X"; docs/METHODS.md §8).

The paper retrieves each class's examples from LAION-5B by the class's prompt (SuS-LC) or
generates them (SuS-SD); here the pool is a folder or zip of the user's photos. For each class,
ranked on its own as the paper ranks LAION, the k pool images whose features are nearest (cosine)
to the class's text vector (its CLIP-80 ensemble, or the mean of its CuPL sentences when
descriptors are given) become its examples: an image may serve two classes. The pool is read with
the support set's checks (a zip extracted safely, regular files only), embedded once per model
through the feature store, and may not hold the images being scored (refused by content).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..core.archive import count_entries, extract_zip
from ..core.errors import InputError
from ..core.files import is_folder, is_regular_file
from ..engine.feature_store import FeatureStore
from ..engine.models import LoadedModel
from .labelled import IMAGE_SUFFIXES, Item, is_image_file
from .support import SupportFeatures, embed_items

DEFAULT_K = 4            # images per class (see docs/METHODS.md §8 for why)
MAX_K = 64
MAX_POOL = 5_000         # pool images on a shared server (the page and the API)


@dataclass
class Pool:
    """The user's unlabeled photos, read and checked (no model yet)."""

    root: str                                    # what messages and reports show
    items: list[Item]
    skipped: int = 0                             # files that are not images
    problems: list[tuple[str, str]] = field(default_factory=list)
    folder: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def close(self) -> None:
        if self.folder is not None:
            self.folder.cleanup()
            self.folder = None


def open_pool(path: str | Path, *, confine: bool = False, max_images: int = MAX_POOL,
              shown: str | None = None) -> Pool:
    """Every image under a folder, or in a zip (extracted safely), in name order."""
    source = Path(path)
    name = shown or source.name
    folder = None
    try:
        if is_regular_file(source) and source.suffix.lower() == ".zip":
            images = count_entries(source, IMAGE_SUFFIXES)
            if images > max_images:
                raise InputError(f"The pool {name!r} holds {images:,} images; at most {max_images:,} are read here.")
            folder = tempfile.TemporaryDirectory(prefix="zsdemo-pool-")
            extracted = extract_zip(source, folder.name)
            root, problems = Path(extracted.root), [(f, f"damaged zip entry: {why}") for f, why in extracted.damaged]
        elif is_folder(source):
            root, problems = source, []
        else:
            raise InputError(f"The pool {name!r} is neither a folder nor a .zip of images.")
        items, skipped = _images_under(root, confine, problems)
        if len(items) > max_images:
            raise InputError(f"The pool {name!r} holds {len(items):,} images; at most {max_images:,} are read here.")
        if not items:
            raise InputError(f"The pool {name!r} holds no image (jpg, png, webp, bmp, gif or tiff): add photos "
                             "to find examples in.")
    except InputError:
        if folder is not None:
            folder.cleanup()
        raise
    return Pool(name, items, skipped, problems, folder)


def _images_under(root: Path, confine: bool, problems: list[tuple[str, str]]) -> tuple[list[Item], int]:
    items, skipped = [], 0
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root).as_posix()
        if confine and f.is_symlink():
            problems.append((rel, "symbolic link not followed"))
        elif not f.is_file() or any(part.startswith(".") or part == "__MACOSX" for part in f.relative_to(root).parts):
            continue
        elif is_image_file(f):
            items.append(Item(f, -1, rel))
        else:
            skipped += 1
    return items, skipped


@dataclass
class Found:
    """What SuS found: per class, its examples (file, cosine to the class's text, and the class
    the image is nearest to of all), and what to say about it."""

    pool: str
    k: int
    classes: dict[str, list[dict[str, Any]]]
    pool_size: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"pool": self.pool, "k": self.k, "pool_size": self.pool_size, "classes": self.classes,
                "notes": list(self.notes)}

    def files(self) -> list[str]:
        return [x["file"] for found in self.classes.values() for x in found]


def retrieve(text: torch.Tensor, pool: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices [C, k'], cosines [C, k']): each class's k' = min(k, pool) nearest pool images,
    nearest first (ties by pool order), each class ranked on its own."""
    cos = torch.nn.functional.normalize(text.float(), dim=-1) @ torch.nn.functional.normalize(pool.float(), dim=-1).T
    order = torch.sort(cos, dim=1, descending=True, stable=True)
    kept = min(k, pool.shape[0])
    return order.indices[:, :kept], order.values[:, :kept]


def find_support(loaded: LoadedModel, pool: Pool, classes: Sequence[str], text: torch.Tensor, k: int,
                 store: FeatureStore | None = None, exclude: set[str] | frozenset[str] = frozenset(),
                 ) -> tuple[SupportFeatures, Found]:
    """The support set SuS builds from ``pool`` for ``classes`` (their text vectors ``text`` [C, D]),
    and what it found. The pool may not hold an image being scored (``exclude``: their digests)."""
    embedded = embed_items(loaded, pool.items, store, exclude)
    if embedded.leaked:
        shown = ", ".join(repr(f) for f in embedded.leaked[:3])
        raise InputError(f"The pool holds {len(embedded.leaked)} of the images being classified or evaluated "
                         f"({shown}): an image would find itself. Take them out of the pool, or classify others.")
    if not embedded.files:
        why = f" ({embedded.corrupt[0][0]}: {embedded.corrupt[0][1]})" if embedded.corrupt else ""
        raise InputError(f"No image of the pool {pool.root!r} could be read{why}.")
    features = embedded.matrix()
    rows, cosines = retrieve(text, features, k)
    nearest = (torch.nn.functional.normalize(text.float(), dim=-1) @ features.T).argmax(dim=0)   # [P]
    chosen = rows.flatten().tolist()
    labels = torch.arange(len(classes)).repeat_interleave(rows.shape[1])
    support = SupportFeatures(tuple(classes), features[chosen], labels, [embedded.files[r] for r in chosen],
                              [embedded.digests[r] for r in chosen], [], embedded.corrupt, f"SuS from {pool.root}")
    found = {c: [{"file": embedded.files[r], "cosine": float(cos), "nearest_class": classes[int(nearest[r])]}
                 for r, cos in zip(rows[i].tolist(), cosines[i].tolist())] for i, c in enumerate(classes)}
    return support, Found(pool.root, k, found, len(embedded.files), _notes(found, k, len(embedded.files),
                                                                           len(classes), embedded.corrupt))


def _notes(found: dict[str, list[dict[str, Any]]], k: int, size: int, classes: int,
           corrupt: list[tuple[str, str]]) -> list[str]:
    notes = []
    if size < k * classes:
        notes.append(f"The pool has {size} readable image(s) for {classes} classes x k={k}: each class still takes "
                     f"its {min(k, size)} nearest, so some images serve several classes.")
    alone = [c for c, xs in found.items() if not any(x["nearest_class"] == c for x in xs)]
    if alone:
        shown = ", ".join(repr(c) for c in alone[:5]) + (f" and {len(alone) - 5} more" if len(alone) > 5 else "")
        notes.append(f"Nothing in the pool looks most like {shown}: {'its' if len(alone) == 1 else 'their'} "
                     "examples are the least unlike ones, each nearer another class's text. Add photos of "
                     f"{'it' if len(alone) == 1 else 'them'} to the pool.")
    if corrupt:
        notes.append(f"{len(corrupt)} image(s) of the pool could not be read and were skipped, e.g. "
                     f"{corrupt[0][0]!r}: {corrupt[0][1]}")
    return notes
