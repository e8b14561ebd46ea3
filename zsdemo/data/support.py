"""A few-shot support set: labelled examples of the request's classes (docs/METHODS.md §8).

Read with the evaluation's readers (an ImageFolder or a ``labels.csv``, a zip extracted safely),
checked against the request's classes before a model loads (``open_support``), then embedded
once per model, original view only, through the feature store like evaluation images
(``embed_support``). Leakage: a support image whose bytes equal an image being classified or
evaluated is dropped from the support set and reported, never used. Hyper-parameters are tuned
only on a held-out part of the support set (``validation_split``), never on the images scored.
"""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..core.errors import ImageError, InputError
from ..engine.feature_store import ORIGINAL, FeatureStore, file_digest, model_key, read_image_file
from ..core.files import is_regular_file
from ..engine.images import load_image
from .labelled import Item, open_labelled, open_zip
from ..engine.models import LoadedModel

MAX_SUPPORT = 20_000                # images in a support set on the command line (16 shots x 1000 classes)
MEMORY_FEATURES = 20_000            # support features kept in memory between requests (about 20 MB)


@dataclass
class SupportSet:
    """A support set read and checked against the request's classes (no model yet)."""

    root: str                                    # what reports show
    classes: tuple[str, ...]                     # the request's classes; labels index them
    items: list[Item]
    skipped: int = 0                             # files that are not images
    problems: list[tuple[str, str]] = field(default_factory=list)
    folder: tempfile.TemporaryDirectory | None = field(default=None, repr=False)   # a zip's extraction

    def shots(self) -> dict[str, int]:
        counts = dict.fromkeys(self.classes, 0)
        for it in self.items:
            counts[self.classes[it.label]] += 1
        return counts

    def warnings(self) -> list[str]:
        notes = []
        if self.problems:
            # Rows and entries left out (a labels.csv row pointing outside the zip, a missing
            # file, a damaged entry): the shots that remain are fewer than the file suggests.
            first = "; ".join(f"{where[:80]!r} ({why})" for where, why in self.problems[:3])
            notes.append(f"{len(self.problems)} row(s) or file(s) of the support set were left out: {first}"
                         + (f"; and {len(self.problems) - 3} more." if len(self.problems) > 3 else "."))
        empty = [c for c, n in self.shots().items() if n == 0]
        if empty:
            shown = ", ".join(repr(c) for c in empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
            notes.append(f"The support set has no example of {shown}: the few-shot methods still score "
                         f"{'it' if len(empty) == 1 else 'them'}, from the text alone (Tip-Adapter) or the learned "
                         "context (CoOp).")
        return notes

    def close(self) -> None:
        if self.folder is not None:
            self.folder.cleanup()
            self.folder = None


def open_support(path: str | Path, classnames: Sequence[str], *, confine: bool = False,
                 max_images: int = MAX_SUPPORT, shown: str | None = None) -> SupportSet:
    """Read a support set (folder, CSV or zip); every label must be one of ``classnames``."""
    source = Path(path)
    folder = None
    try:
        if is_regular_file(source) and source.suffix.lower() == ".zip":
            folder = tempfile.TemporaryDirectory(prefix="zsdemo-support-")
            data = open_zip(source, folder.name, confine=confine, max_images=max_images, shown=shown)
        else:
            data = open_labelled(source, confine=confine, max_images=max_images, shown=shown)
    except InputError as e:
        if folder is not None:
            folder.cleanup()
        raise InputError(f"Support set: {e}") from None
    index = {c.casefold(): i for i, c in enumerate(classnames)}
    unknown = sorted({c for c in data.classes if c.casefold() not in index})
    if unknown:
        if folder is not None:
            folder.cleanup()
        listed = ", ".join(repr(c) for c in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5
                                                             else "")
        raise InputError(f"The support set has labels that are not among the classes: {listed}. Every example "
                         "must be of one of the classes you classify: add them to the classes, or remove them.")
    remap = [index[c.casefold()] for c in data.classes]
    items = [Item(it.path, remap[it.label], it.name) for it in data.items]
    support = SupportSet(shown or source.name, tuple(classnames), items, len(data.skipped), list(data.problems),
                         folder)
    if sum(n > 0 for n in support.shots().values()) < 2:
        support.close()
        raise InputError("The support set has examples of only one class: a few-shot classifier needs labelled "
                         "examples of at least two of the classes.")
    return support


@dataclass
class SupportFeatures:
    """A support set as the few-shot methods use it: unit features of the kept examples."""

    classes: tuple[str, ...]
    features: torch.Tensor                  # [K, D] float32, unit length (original view)
    labels: torch.Tensor                    # [K] class indices
    files: list[str]
    digests: list[str]
    leaked: list[str] = field(default_factory=list)          # dropped: the same bytes as a scored image
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    root: str = ""

    def __len__(self) -> int:
        return len(self.files)

    def shots(self) -> dict[str, int]:
        counts = np.bincount(self.labels.numpy(), minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts)}

    def one_hot(self) -> torch.Tensor:
        return torch.nn.functional.one_hot(self.labels, len(self.classes)).float()

    def subset(self, rows: Sequence[int]) -> "SupportFeatures":
        rows = list(rows)
        return SupportFeatures(self.classes, self.features[rows], self.labels[rows], [self.files[r] for r in rows],
                               [self.digests[r] for r in rows], self.leaked, self.corrupt, self.root)

    def key(self) -> tuple:
        """What a model learned from it depends on: the classes and the examples, in order."""
        return (self.classes, tuple(self.digests), tuple(self.labels.tolist()))

    def describe(self) -> dict[str, object]:
        return {"root": self.root, "images": len(self), "shots": self.shots(), "leaked_excluded": list(self.leaked),
                "unreadable": [{"file": f, "error": e} for f, e in self.corrupt]}

    def warnings(self) -> list[str]:
        notes = []
        if self.leaked:
            notes.append(f"{len(self.leaked)} support image(s) are also among the images scored (the same file "
                         f"content), e.g. {self.leaked[0]!r}: they were left out of the support set, so no image "
                         "is classified by its own label.")
        if self.corrupt:
            notes.append(f"{len(self.corrupt)} support image(s) could not be read and were skipped, e.g. "
                         f"{self.corrupt[0][0]!r}: {self.corrupt[0][1]}")
        return notes


_MEMORY: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()


@dataclass
class Embedded:
    """Image files embedded (original view): the readable ones, those left out and why."""

    files: list[str]
    digests: list[str]
    labels: list[int]
    features: list[np.ndarray]          # float16, unit length, as the feature store keeps them
    leaked: list[str]                   # the same bytes as an image scored
    corrupt: list[tuple[str, str]]

    def matrix(self) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.from_numpy(np.stack(self.features).astype(np.float32)), dim=-1)


def embed_items(loaded: LoadedModel, items: Sequence[Item], store: FeatureStore | None = None,
                exclude: set[str] | frozenset[str] = frozenset(), batch_size: int = 32) -> Embedded:
    """Every readable item's feature (original view), from the store or the memory of earlier
    requests, else encoded once; an item whose bytes are among ``exclude`` (the digests of the
    images scored) is left out and reported."""
    mkey = model_key(loaded)
    out = Embedded([], [], [], [], [], [])
    todo: list[tuple[int, object]] = []
    for it in items:
        try:
            data, digest = read_image_file(it.path, it.name)
        except ImageError as e:
            out.corrupt.append((it.name, str(e)))
            continue
        if digest in exclude:
            out.leaked.append(it.name)
            continue
        cached = _MEMORY.get((mkey, digest))
        if cached is None and store is not None:
            found = store.get(digest, [ORIGINAL])
            cached = found[ORIGINAL] if found else None
        if cached is None:
            try:
                image = load_image(data, name=it.name).image
            except ImageError as e:
                out.corrupt.append((it.name, str(e)))
                continue
            todo.append((len(out.features), image))
        out.files.append(it.name)
        out.digests.append(digest)
        out.labels.append(it.label)
        out.features.append(cached)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        batch = torch.stack([loaded.preprocess(image) for _, image in chunk])
        encoded = loaded.encode_images(batch).cpu().numpy().astype(np.float16)
        for (row, _), f in zip(chunk, encoded):
            out.features[row] = f
            if store is not None:
                store.put(out.digests[row], {ORIGINAL: f})
    for digest, f in zip(out.digests, out.features):
        _MEMORY[(mkey, digest)] = f
        _MEMORY.move_to_end((mkey, digest))
    while len(_MEMORY) > MEMORY_FEATURES:
        _MEMORY.popitem(last=False)
    return out


def embed_support(loaded: LoadedModel, support: SupportSet, store: FeatureStore | None = None,
                  exclude: set[str] | frozenset[str] = frozenset(), batch_size: int = 32) -> SupportFeatures:
    """Every readable example's feature (``embed_items``); an example whose bytes are among
    ``exclude`` (the digests of the images scored) is left out and reported."""
    found = embed_items(loaded, support.items, store, exclude, batch_size)
    if not found.files:
        why = f" ({found.corrupt[0][0]}: {found.corrupt[0][1]})" if found.corrupt else ""
        raise InputError(f"No support image could be used{why}"
                         + (f"; {len(found.leaked)} were the very images being scored" if found.leaked else "") + ".")
    label_tensor = torch.tensor(found.labels, dtype=torch.long)
    if len(torch.unique(label_tensor)) < 2:
        raise InputError("After leaving out the support images that are also being scored (or unreadable), "
                         "examples of only one class remain: a few-shot classifier needs at least two.")
    return SupportFeatures(support.classes, found.matrix(), label_tensor, found.files, found.digests, found.leaked,
                           found.corrupt, support.root)


def validation_split(support: SupportFeatures, fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train rows, validation rows): ``fraction`` of each class's examples held out (at least
    one where a class has two or more), chosen by a seeded generator. Not scikit-learn's
    ``train_test_split(stratify=...)``: it draws other rows (and refuses a class of one), which
    would change every validated setting the earlier rounds reported."""
    gen = torch.Generator().manual_seed(seed)
    train, val = [], []
    for c in range(len(support.classes)):
        rows = (support.labels == c).nonzero().flatten()
        rows = rows[torch.randperm(len(rows), generator=gen)].tolist()
        held = min(len(rows) - 1, max(1, round(fraction * len(rows)))) if len(rows) >= 2 else 0
        val += rows[:held]
        train += rows[held:]
    if not val:
        raise InputError("The validation split is empty: every class has a single example. Give more shots per "
                         "class, or no --val-fraction (the defaults are then used).")
    return sorted(train), sorted(val)


def digests_of(paths: Sequence[object]) -> set[str]:
    """The content digests of image files (the leakage check's other side); unreadable ones are skipped."""
    out = set()
    for p in paths:
        if isinstance(p, bytes):
            out.add(file_digest(p))
        elif isinstance(p, (str, Path)):
            try:
                out.add(read_image_file(p, str(p))[1])
            except ImageError:
                continue
    return out
