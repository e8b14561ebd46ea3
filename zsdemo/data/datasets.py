"""The paper's five datasets (docs/METHODS.md §5): how their folders map to labels, and
the published numbers to compare with.

``evaluate --dataset NAME`` never guesses: each dataset's folders must look the way that dataset
ships, or the evaluation stops with what was found instead. Without ``--dataset`` a folder is a
plain ImageFolder whatever its folder names (``0`` .. ``9`` stay ten classes named by digits).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..prompts.classnames import imagenet_wnids
from ..core.errors import InputError
from .labelled import LabelledSet, open_labelled
from ..core.resources import asset

SUBSETS_FILE = asset("imagenet_subsets.json")
_WNID = re.compile(r"^n\d{8}$")


@dataclass(frozen=True)
class Dataset:
    id: str
    label: str
    folders: str                  # "wnid": folders named by WordNet id; "index": 0 .. 999, the class index
    subset: str | None            # the 200-class subset scored, a key of imagenet_subsets.json
    images: int                   # as published (a partial copy is evaluated, and said)


DATASETS: dict[str, Dataset] = {d.id: d for d in (
    Dataset("imagenet", "ImageNet (val)", "wnid", None, 50_000),
    Dataset("imagenet-v2", "ImageNet-V2 (matched frequency)", "index", None, 10_000),
    Dataset("imagenet-r", "ImageNet-R", "wnid", "imagenet-r", 30_000),
    Dataset("imagenet-a", "ImageNet-A", "wnid", "imagenet-a", 7_500),
    Dataset("imagenet-sketch", "ImageNet-Sketch", "wnid", None, 50_889),
)}

# Ge et al. (CVPR 2023), CLIP ViT-B/16, top-1 %: (low-confidence set before, after; full set before,
# after). Table 1: name-only -> hierarchy; Table 4: CLIP-80 ensemble -> ensemble + hierarchy.
PAPER: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "hierarchy": {
        "imagenet": (21.58, 38.71, 64.18, 67.78), "imagenet-v2": (17.77, 32.50, 58.06, 61.07),
        "imagenet-r": (16.79, 27.91, 56.88, 59.46), "imagenet-a": (10.13, 18.44, 26.12, 29.23),
        "imagenet-sketch": (13.74, 23.18, 44.71, 47.28),
    },
    "hierarchy80": {
        "imagenet": (41.05, 42.09, 68.48, 68.86), "imagenet-v2": (36.39, 36.34, 62.02, 62.00),
        "imagenet-r": (35.13, 36.12, 60.21, 60.62), "imagenet-a": (21.13, 22.00, 30.59, 31.07),
        "imagenet-sketch": (27.13, 26.56, 48.52, 48.26),
    },
}
PAPER_TABLE = {"hierarchy": "Table 1", "hierarchy80": "Table 4"}
PAPER_MODEL = ("ViT-B-16", "openai")
MEASURES = ("low_before", "low_after", "full_before", "full_after")


def parse_dataset(value: str | None) -> Dataset | None:
    if value is None:
        return None
    key = str(value).strip().lower()
    if key not in DATASETS:
        raise InputError(f"Unknown dataset {str(value)[:40]!r}; choose one of {', '.join(DATASETS)}.")
    return DATASETS[key]


@lru_cache(maxsize=1)
def subsets() -> dict[str, list[int]]:
    doc = json.loads(SUBSETS_FILE.read_text(encoding="utf-8"))
    return {k: v for k, v in doc.items() if isinstance(v, list)}


def open_dataset(path: str | Path, dataset: Dataset) -> LabelledSet:
    """The labelled set of one of the paper's datasets, its labels read the dataset's way."""
    names_by_wnid = {w: n for n, w in imagenet_wnids().items()}
    wnids = list(imagenet_wnids().values())
    classes = [names_by_wnid[w] for w in wnids]                    # ImageNet-1k, index order
    if dataset.subset is not None:
        chosen = subsets()[dataset.subset]
        classes = [classes[i] for i in chosen]
        allowed = [wnids[i] for i in chosen]
    else:
        allowed = wnids
    root = Path(path)
    folders = _class_folders(root)
    if dataset.folders == "index":
        bad = [f for f in folders if not (f.isdigit() and int(f) < len(wnids) and str(int(f)) == f)]
        if bad or not folders:
            raise InputError(_not_like(dataset, root, bad, "folders named 0 .. 999 (the ImageNet class index)"))
        mapping = {f: names_by_wnid[wnids[int(f)]] for f in folders}
    else:
        bad = [f for f in folders if f not in set(allowed)]
        if bad or not folders:
            what = (f"folders named by the WordNet ids of its {len(allowed)} classes" if dataset.subset
                    else "folders named by ImageNet WordNet ids (n01440764 ...)")
            raise InputError(_not_like(dataset, root, bad, what))
        mapping = {f: names_by_wnid[f] for f in folders}
    data = open_labelled(root, mapping, classes)
    data.senses = {names_by_wnid[w]: w for w in allowed}       # every class maps exactly through its id
    data.dataset = dataset.id
    if len(folders) < len(classes):
        data.problems.append(("(folders)", f"{len(folders)} of the {len(classes)} class folders of "
                                           f"{dataset.label} found: scored {len(classes)}-way anyway"))
    return data


def _class_folders(root: Path) -> list[str]:
    if not root.is_dir():
        raise InputError(f"{str(root)!r} is not a folder: --dataset needs the dataset's folder.")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _not_like(dataset: Dataset, root: Path, bad: list[str], expected: str) -> str:
    found = f"found {', '.join(repr(b[:30]) for b in bad[:3])}" + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    return (f"{str(root)!r} does not look like {dataset.label}: it has {expected}, but "
            + (found if bad else "there are no class folders") + ". Check the folder, or leave --dataset out to "
            "read it as a plain ImageFolder (folder names as class names).")


def paper_comparison(summary: dict[str, Any], dataset: str, model: dict[str, Any]) -> list[dict[str, Any]]:
    """Each hierarchy strategy's low-confidence and full-set accuracy (%) beside the paper's row."""
    rows = []
    same = (model.get("name"), model.get("pretrained")) == PAPER_MODEL
    for strategy, r in summary["low_confidence"]["reranking"].items():
        paper = PAPER.get(strategy, {}).get(dataset)
        if paper is None:
            continue
        for measure, published in zip(MEASURES, paper):
            ours = r[measure]
            rows.append({"strategy": strategy, "measure": measure,
                         "ours": None if ours is None else round(100 * ours, 2), "paper": published,
                         "paper_table": PAPER_TABLE[strategy],
                         "paper_model": "CLIP ViT-B/16 (OpenAI)", "same_model": same})
    return rows
