"""Descriptors per class, the input of the ``dclip`` and ``cupl`` strategies (docs/METHODS.md §6).

The format DCLIP and CuPL publish, a JSON object ``{"class name": ["descriptor", ...], ...}``, or
lines ``class name: descriptor; descriptor`` (easier to type in the page). Keys match the
request's class names case-insensitively, with ``_`` read as a space; descriptors for other
names are ignored and said, and a class without any is said too (the strategies then use its
bare name).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping, Sequence

import torch

from .classnames import clean_name
from ..core.errors import InputError
from ..core.jsontext import parse_json
from ..core.limits import LIMITS
from ..core.markup import md
from ..core.resources import DESCRIPTORS

MAX_CHARS = 8_000_000            # of the whole text: DCLIP's ImageNet file is 0.25 MB, CuPL's 3 MB
# zsdemo's own descriptors for the page's examples and class presets (written for this project),
# used by a strategy when a request brings none: dclip.json (attributes), cupl.json (sentences).
SHIPPED_DIR = DESCRIPTORS
MAX_DESCRIPTOR_CHARS = 1_000


@dataclass(frozen=True)
class Descriptors:
    """class name (as the request spells it) -> its descriptors, and what did not match."""

    by_class: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unmatched: tuple[str, ...] = ()          # keys that are none of the request's classes

    def of(self, classname: str) -> tuple[str, ...]:
        return self.by_class.get(classname, ())

    def count(self) -> int:
        return sum(len(v) for v in self.by_class.values())


def which(descriptor: str) -> str:
    """DCLIP's rule for joining a descriptor to a class name (its official code's, word for word)."""
    if descriptor.startswith(("a", "an", "used")):
        return f"which is {descriptor}"
    if descriptor.startswith(("has", "often", "typically", "may", "can")):
        return f"which {descriptor}"
    return f"which has {descriptor}"


def _key(name: str) -> str:
    return " ".join(clean_name(name.replace("_", " ")).casefold().split())


def _parse_lines(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if ":" not in line:
            raise InputError(f"Descriptors, line {number}: write 'class name: descriptor; descriptor' "
                             "(or give the JSON object DCLIP and CuPL publish).")
        name, rest = line.split(":", 1)
        out.setdefault(name.strip(), []).extend(d.strip() for d in rest.split(";") if d.strip())
    return out


def parse_descriptors(value: str | Mapping[str, Any] | None, classnames: Sequence[str]) -> Descriptors:
    """Descriptors from JSON text, ``class: d; d`` lines or a mapping, matched to ``classnames``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return Descriptors()
    if isinstance(value, str):
        if len(value) > MAX_CHARS:
            raise InputError(f"The descriptors are {len(value):,} characters; at most {MAX_CHARS:,} are allowed.")
        text = value.strip()
        if text.startswith(("{", "[")):
            raw: Any = parse_json(text, "The descriptors")
        else:
            raw = _parse_lines(text)
    else:
        raw = value
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
        raise InputError("Descriptors must map class names to lists of descriptors, like "
                         '{"cat": ["whiskers", "pointed ears"]}.')
    # Counted before anything is cleaned or matched: a request past the prompt limit is refused at once.
    given = sum(len(v) if isinstance(v, (list, tuple)) else 1 for v in raw.values())
    if given > LIMITS.prompts:
        raise InputError(f"{given:,} descriptors given; at most {LIMITS.prompts:,} prompts are allowed per request.")
    wanted = {_key(c): c for c in classnames}
    by_class: dict[str, list[str]] = {}
    seen: dict[str, set[str]] = {}
    unmatched = []
    for key, items in raw.items():
        if isinstance(items, str):
            items = [items]
        if not isinstance(items, (list, tuple)) or not all(isinstance(d, str) for d in items):
            raise InputError(f"The descriptors of {key[:60]!r} must be a list of text.")
        name = wanted.get(_key(key))
        if name is None:
            unmatched.append(key)
            continue
        for d in items:
            d = clean_name(d)
            if len(d) > MAX_DESCRIPTOR_CHARS:
                raise InputError(f"A descriptor of {name[:60]!r} is {len(d):,} characters; at most "
                                 f"{MAX_DESCRIPTOR_CHARS:,} are allowed.")
            if d and d not in seen.setdefault(name, set()):
                seen[name].add(d)
                by_class.setdefault(name, []).append(d)
    total = sum(len(v) for v in by_class.values())
    if total > LIMITS.prompts:
        raise InputError(f"{total:,} descriptors given; at most {LIMITS.prompts:,} prompts are allowed per request.")
    return Descriptors({c: tuple(by_class[c]) for c in classnames if by_class.get(c)}, tuple(unmatched))


@lru_cache(maxsize=64)
def shipped(file: str, classnames: tuple[str, ...]) -> Descriptors:
    """zsdemo's own descriptors (``assets/descriptors/<file>``) for these classes."""
    raw = json.loads((SHIPPED_DIR / file).read_text(encoding="utf-8"))
    found = parse_descriptors(raw, classnames)
    return Descriptors(found.by_class, ())          # the file covers other classes too: not worth a warning


def effective(given: Descriptors, file: str, classnames: Sequence[str]) -> Descriptors:
    """The request's descriptors, or, when it brings none, zsdemo's own from ``file``."""
    return given if given.count() else shipped(file, tuple(classnames))


def descriptor_warnings(descriptors: Descriptors, classnames: Sequence[str]) -> list[str]:
    """What the user should know: classes left without descriptors, and names that matched no class."""
    notes = []
    missing = [c for c in classnames if not descriptors.of(c)]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        notes.append(f"No descriptors for {shown}: the descriptor strategies use the bare class name for "
                     f"{'it' if len(missing) == 1 else 'them'}.")
    if descriptors.unmatched:
        shown = ", ".join(repr(k[:40]) for k in descriptors.unmatched[:5])
        notes.append(f"Descriptors given for {len(descriptors.unmatched)} name(s) that are not among the classes "
                     f"(ignored): {shown}.")
    return notes


@dataclass
class DescriptorDetails:
    """Why: for each of the image's top classes, every phrase with its cosine (best first)."""

    classes: list[dict[str, Any]]        # {"class_name", "score", "described", "phrases": [{"text", "cosine"}]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DescriptorDetails":
        return cls(**d)


def explain(cos: torch.Tensor, score: torch.Tensor, texts: list[list[str]], classnames: Sequence[str],
            descriptors: Descriptors, top: int) -> list[DescriptorDetails]:
    """Each image's details: ``cos`` [N, P] over all phrases (class by class), ``score`` [N, C]."""
    cos, score = cos.cpu(), score.cpu()
    starts = [0]
    for t in texts:
        starts.append(starts[-1] + len(t))
    details = []
    for row in range(len(score)):
        out = []
        for c in torch.argsort(score[row], descending=True, stable=True)[:top].tolist():
            part = cos[row, starts[c]:starts[c + 1]]
            order = torch.argsort(part, descending=True, stable=True).tolist()
            out.append({"class_name": classnames[c], "score": float(score[row, c]),
                        "described": bool(descriptors.of(classnames[c])),
                        "phrases": [{"text": texts[c][k], "cosine": float(part[k])} for k in order]})
        details.append(DescriptorDetails(out))
    return details


def per_class(prompts: list[list[str]], encode: Any, device: torch.device,
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit features [P, D] of every class's prompts (class after class, ``encode`` making them),
    the class of each prompt [P], and each class's number of prompts [C]."""
    vectors = encode([p for ps in prompts for p in ps]).to(device)
    owner = torch.tensor([c for c, ps in enumerate(prompts) for _ in ps], device=device)
    counts = torch.tensor([len(ps) for ps in prompts], device=device, dtype=vectors.dtype)
    return vectors, owner, counts


def class_mean(values: torch.Tensor, owner: torch.Tensor, counts: torch.Tensor, dim: int) -> torch.Tensor:
    """The mean of ``values`` over each class's prompts, along ``dim`` (the prompt axis)."""
    shape = list(values.shape)
    shape[dim] = len(counts)
    sums = torch.zeros(shape, device=values.device, dtype=values.dtype).index_add_(dim, owner, values)
    return sums / counts.view([-1 if k == dim else 1 for k in range(values.dim())])


def explain_markdown(details: DescriptorDetails, unit: str, score: str, shown: int = 4) -> str:
    """The page's account of a descriptor method's decision: for each top class, its ``unit``s
    (phrases, sentences) that matched the image best, with their cosines."""
    lines = []
    for k, c in enumerate(details.classes[:3]):
        name = f"**{md(c['class_name'])}**" if k == 0 else md(c["class_name"])
        if not c["described"]:
            lines.append(f"- {name} ({score} {c['score']:.3f}): no {unit}s for this class, its bare name was used")
            continue
        best = "; ".join(f"{md(x['text'])} ({x['cosine']:.3f})" for x in c["phrases"][:shown])
        more = len(c["phrases"]) - shown
        lines.append(f"- {name} ({score} {c['score']:.3f}): {best}" + (f"; and {more} more" if more > 0 else ""))
    return "\n".join(lines)
