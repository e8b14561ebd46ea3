"""Labelled image sets for evaluation: an ImageFolder tree or a CSV of ``path,label``.

- ImageFolder: one subfolder per class under the root, images anywhere below it. The class name
  is the subfolder's name with ``_`` read as a space, or, for a WordNet id such as
  ``n01440764``, the ImageNet-1k name of that id (other ids: the synset's first lemma).
- CSV: a file ``labels.csv`` (or any ``.csv`` given directly) with rows ``path,label``; an
  optional header row; paths relative to the CSV's folder. Labels are read like folder names.
- An optional class-name mapping (JSON object, or two-column CSV/TSV lines ``key,name``) renames
  raw labels first; it wins over the WordNet-id rule.
- ``classes`` (optional) fixes the candidate classes, e.g. all 1000 ImageNet names for a sample
  of a few classes; every label must then be one of them. Otherwise the candidates are the
  labels found (folder order for ImageFolder, sorted for CSV).

Files whose suffix is not an image format are skipped and counted; a file that claims to be an
image but does not decode is reported later by the evaluation, never fatal.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..core.archive import count_entries, extract_zip
from ..prompts.classnames import clean_name, imagenet_names_by_wnid
from ..core.errors import InputError
from ..core.files import MAX_PATH_CHARS, display_name, is_folder, is_regular_file, read_text
from ..core.jsontext import parse_json
from ..core.limits import LIMITS
from ..wordnet.senses import WordNetUnavailable, synset_by_id

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
LABELS_CSV = "labels.csv"
WNID = re.compile(r"^n\d{8}$")
_IGNORED_DIRS = {"__MACOSX"}        # what macOS adds to zips: resource forks, never images


@dataclass(frozen=True)
class Item:
    path: Path
    label: int
    name: str                       # the path shown in reports (relative to the root)


@dataclass
class LabelledSet:
    root: Path
    kind: str                                        # "folder" or "csv"
    classes: list[str]
    items: list[Item]
    skipped: list[str] = field(default_factory=list)                 # not image files
    problems: list[tuple[str, str]] = field(default_factory=list)    # (file or row, why)
    senses: dict[str, str] = field(default_factory=dict)             # class -> WordNet id (from wnids)
    dataset: str | None = None          # one of the paper's datasets (datasets.py), read its way

    def describe(self) -> dict[str, object]:
        return {"root": str(self.root), "kind": self.kind, "classes": len(self.classes),
                "images": len(self.items), "skipped_non_images": len(self.skipped),
                "problems": [{"file": f, "problem": p} for f, p in self.problems], "dataset": self.dataset}


def read_class_map(path: str | Path) -> dict[str, str]:
    """Raw label -> class name, from a JSON object or two-column CSV/TSV lines (``#`` comments)."""
    text = read_text(path, f"Cannot read the class-name mapping {str(path)!r}", LIMITS.upload_bytes)
    if text.lstrip().startswith(("{", "[")):   # JSON (an array is refused below)
        data = parse_json(text, f"The class-name mapping {display_name(str(path))!r}")
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise InputError("A JSON class-name mapping must be an object of label -> class name strings.")
        return {str(k).strip(): v.strip() for k, v in data.items()}
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            row = next(csv.reader([line], delimiter="\t" if "\t" in line else ","))
        except csv.Error as e:      # a field past the csv module's size limit, say
            raise InputError(f"Line {n} of the class-name mapping is not readable ({e}).") from None
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise InputError(f"Line {n} of the class-name mapping should read 'label,class name': {line[:80]!r}.")
        out[row[0].strip()] = row[1].strip()
    return out


def _wnid_name(wnid: str) -> str:
    imagenet = imagenet_names_by_wnid()
    if wnid in imagenet:
        return imagenet[wnid]
    try:
        return synset_by_id(wnid).lemmas()[0].name().replace("_", " ")
    except (InputError, WordNetUnavailable):
        return wnid


def _class_name(raw: str, mapping: dict[str, str]) -> str:
    """The class name of a raw label, cleaned as the classifier reads names ("" when none is left)."""
    raw = raw.strip()
    if raw in mapping:
        return clean_name(mapping[raw])
    if WNID.match(raw):
        return _wnid_name(raw)
    return clean_name(raw.replace("_", " "))


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _hidden(rel: Path) -> bool:
    return any(p.startswith(".") or p in _IGNORED_DIRS for p in rel.parts)


def _dataset_root(root: Path) -> Path:
    """Step into a lone wrapping folder (what zipping a folder produces) when it holds the data."""
    while True:
        if (root / LABELS_CSV).is_file():
            return root
        entries = [p for p in root.iterdir() if not _hidden(Path(p.name))]
        dirs = [p for p in entries if p.is_dir()]
        if len(dirs) == 1 and len(entries) == 1 and (
                (dirs[0] / LABELS_CSV).is_file() or any(p.is_dir() for p in dirs[0].iterdir())):
            root = dirs[0]
        else:
            return root


def open_labelled(
    path: str | Path,
    class_map: dict[str, str] | None = None,
    classes: Sequence[str] | None = None,
    confine: bool = False,
    max_images: int | None = None,
    shown: str | None = None,
) -> LabelledSet:
    """Read a labelled set from a folder (ImageFolder, or with a ``labels.csv``) or a CSV file.

    ``confine`` (for uploads): CSV paths must stay inside the set's folder, and symbolic links
    are not followed, so an upload can never make the server read its other files. ``shown``:
    what messages call the set (an upload's own name, never the server's path to it).
    """
    path = Path(path)
    named = repr(shown if shown is not None else str(path))
    mapping = dict(class_map or {})
    if is_regular_file(path) and path.suffix.lower() == ".csv":
        found = _from_csv(path, mapping, confine)
    elif is_folder(path):
        root = _dataset_root(path)
        found = (_from_csv(root / LABELS_CSV, mapping, confine) if is_regular_file(root / LABELS_CSV)
                 else _from_folder(root, mapping, confine))
    elif os.path.lexists(path):
        raise InputError(f"{named} is neither a folder nor a .csv file. Give an ImageFolder "
                         "folder (one subfolder per class) or a CSV of path,label.",
                         page=" Upload a .zip of one folder per class, or of the images with a labels.csv.")
    else:
        raise InputError(f"{named} does not exist.")
    if not found.items:
        raise InputError(
            f"No labelled images found in {named}: expected one subfolder per class (ImageFolder) "
            f"or a {LABELS_CSV} of path,label rows"
            + (f"; {len(found.skipped)} files were skipped as not images" if found.skipped else "") + ".")
    if max_images is not None and len(found.items) > max_images:
        raise InputError(f"{len(found.items)} images found; at most {max_images} can be evaluated here. "
                         "Evaluate a sample, or use the command line (python -m zsdemo evaluate).")
    if classes is not None:
        _use_candidates(found, list(classes))
    return found


def open_zip(archive: str | Path, dest: str | Path, class_map: dict[str, str] | None = None,
             classes: Sequence[str] | None = None, confine: bool = False,
             max_images: int | None = None, shown: str | None = None) -> LabelledSet:
    """``open_labelled`` on a zip, safely extracted into ``dest`` (the caller's temporary folder).

    Entries that could not be extracted are reported among the set's problems.
    """
    if max_images is not None:
        # Counted from the zip's directory first: 10,000 tiny files are refused before extraction.
        images = count_entries(archive, IMAGE_SUFFIXES)
        if images > max_images:
            raise InputError(f"{images} images found; at most {max_images} can be evaluated here. "
                             "Evaluate a sample, or use the command line (python -m zsdemo evaluate).")
    extracted = extract_zip(archive, dest)
    found = open_labelled(extracted.root, class_map, classes, confine, max_images,
                          shown=shown if shown is not None else Path(archive).name)
    found.problems += [(f, f"damaged zip entry: {why}") for f, why in extracted.damaged]
    return found


def _use_candidates(found: LabelledSet, candidates: list[str]) -> None:
    index = {c.casefold(): i for i, c in enumerate(candidates)}
    missing = sorted({c for c in found.classes if c.casefold() not in index})
    if missing:
        raise InputError(f"{len(missing)} label(s) are not among the candidate classes, e.g. {missing[0]!r}. "
                         "Add them to the class list or map them with a class-name mapping.")
    remap = [index[c.casefold()] for c in found.classes]
    found.items = [Item(it.path, remap[it.label], it.name) for it in found.items]
    found.senses = {candidates[index[c.casefold()]]: s for c, s in found.senses.items()}
    found.classes = candidates


class _Classes:
    """Class names in first-seen order, with the WordNet id of each that came from one."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.senses: dict[str, str] = {}
        self._by_raw: dict[str, int | None] = {}    # a CSV repeats each label once per image

    def add(self, raw: str) -> int | None:
        if raw not in self._by_raw:
            self._by_raw[raw] = self._add(raw)
        return self._by_raw[raw]

    def _add(self, raw: str) -> int | None:
        name = _class_name(raw, self.mapping)
        if not name:
            return None
        if name.casefold() not in self.index:
            self.index[name.casefold()] = len(self.names)
            self.names.append(name)
            if WNID.match(raw.strip()) and raw.strip() not in self.mapping and name != raw.strip():
                self.senses[name] = raw.strip()     # a WordNet id that named a real synset
        return self.index[name.casefold()]


def _from_folder(root: Path, mapping: dict[str, str], confine: bool) -> LabelledSet:
    classes = _Classes(mapping)
    out = LabelledSet(root, "folder", [], [])
    for entry in sorted(root.iterdir()):
        rel = Path(entry.name)
        if confine and entry.is_symlink():
            out.problems.append((entry.name, "symbolic link not followed"))
        elif _hidden(rel):
            out.skipped.append(entry.name)
        elif entry.is_file():
            out.problems.append((entry.name, "not inside a class folder"))
        elif entry.is_dir():
            label = classes.add(entry.name)
            if label is None:
                out.problems.append((entry.name, "folder name gives an empty class name: skipped"))
                continue
            for f in sorted(entry.rglob("*")):
                rel = f.relative_to(root)
                if confine and f.is_symlink():
                    out.problems.append((rel.as_posix(), "symbolic link not followed"))
                elif not f.is_file():
                    continue
                elif _hidden(rel) or not is_image_file(f):
                    out.skipped.append(rel.as_posix())
                else:
                    out.items.append(Item(f, label, rel.as_posix()))
    out.classes, out.senses = classes.names, classes.senses
    return out


def _from_csv(path: Path, mapping: dict[str, str], confine: bool) -> LabelledSet:
    text = read_text(path, f"Cannot read {path.name}", LIMITS.upload_bytes)
    base = path.parent.resolve()
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:   # a field over the csv module's size limit, a stray quote...
        raise InputError(f"{path.name} is not a readable CSV ({e}); each row should read path,label.") from None
    if rows and [c.strip().casefold() for c in rows[0][:2]] in (["path", "label"], ["file", "label"],
                                                                ["filename", "label"], ["image", "label"]):
        rows = rows[1:]
    found: list[tuple[str, Path, str]] = []
    out = LabelledSet(base, "csv", [], [])
    for n, row in enumerate(rows, 1):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            out.problems.append((f"{path.name} row {n}", "should read path,label"))
            continue
        rel, label = row[0].strip(), row[1].strip()
        if "\x00" in rel or len(rel) > MAX_PATH_CHARS:
            out.problems.append((rel[:80].replace("\x00", "\\0"), "not a usable file path (NUL character or too long)"))
            continue
        file = (base / rel).resolve() if not confine else (base / rel)
        if confine and (Path(rel).is_absolute() or ".." in Path(rel.replace("\\", "/")).parts
                        or not _inside(file, base)):
            out.problems.append((rel, "path outside the uploaded folder: refused"))
        elif not is_regular_file(file):
            out.problems.append((rel, "file not found"))
        elif not is_image_file(file):
            out.skipped.append(rel)
        else:
            found.append((rel, file, label))
    classes = _Classes(mapping)
    for raw in sorted({label for _, _, label in found}, key=lambda r: _class_name(r, mapping).casefold()):
        classes.add(raw)
    for rel, file, label in found:
        index = classes.add(label)
        if index is None:
            out.problems.append((rel, f"label {label[:60]!r} gives an empty class name: skipped"))
        else:
            out.items.append(Item(file, index, rel))
    out.classes, out.senses = classes.names, classes.senses
    return out


def _inside(file: Path, base: Path) -> bool:
    """True when ``file`` resolves inside ``base`` through no symbolic link."""
    try:
        resolved = file.resolve(strict=True)
    except OSError:
        return True   # a missing file is reported as missing, not as unsafe
    if resolved != file.absolute():
        return False  # a symlink somewhere on the way
    return resolved.is_relative_to(base)
