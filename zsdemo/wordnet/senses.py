"""WordNet: the senses of a class name, parents and children, and the sense rule (docs/METHODS.md §3).

The data is found and installed by ``wordnet_data``; this module reads it.

Choosing a sense for free text (the paper leaves the rule open; this is ours, documented in docs/METHODS.md §3):
1. instance synsets (people, places, constellations) are dropped unless nothing else is left;
2. each remaining sense scores its fit with the other class names of the request plus a small
   bonus for senses that can be photographed (``KIND_BONUS``) plus ``FREQUENCY_WEIGHT`` times its
   share of the word's tagged uses (WordNet's usage counts). The other names count with the
   sense they get on their own (rule 1 and the bonus, or the sense given for them), so that
   "dog" next to "crane" is the animal and not an andiron. Fit: the mean of the ``NEAREST``
   highest Wu-Palmer similarities to those senses. The nearest names, not all of them: in a
   mixed list (ImageNet's birds, dogs and tools) the mean over all says little, while "crane"
   next to "heron" says a lot. On the ImageNet names read as free text this lands on ImageNet's
   own sense for 144 of the 216 ambiguous names, against 84 for WordNet's first sense
   (benchmarks/consistency_hierarchy.py);
3. ties keep WordNet's own order, which is by frequency.
"""

from __future__ import annotations

import heapq
import re
import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

from . import data as wordnet_data
from ..prompts.classnames import imagenet_wnids
from ..core.errors import InputError
from ..core.limits import LIMITS

# Finding and installing the data lives in wordnet_data; these names stay reachable from here.
from .data import (  # noqa: F401
    LEXNAMES,
    WordNetUnavailable,
    ensure_wordnet,
    install_from_system,
    is_loaded,
    nltk_target_dir,
    system_wordnet_dir,
    wordnet_status,
)

# Senses that can be photographed win near-ties against people and places, which win against
# abstractions. The bonus is small next to a real difference in fit with the other class names:
# "boxer, fencer, wrestler" stays the athlete although the dog sense is an animal.
PHOTOGRAPHABLE = frozenset({
    "noun.animal", "noun.artifact", "noun.food", "noun.plant", "noun.object", "noun.body",
    "noun.substance",
})
CONCRETE = frozenset({"noun.person", "noun.location", "noun.phenomenon", "noun.group", "noun.shape"})
KIND_BONUS = {"photographable": 0.1, "concrete": 0.05, "abstract": 0.0}
# How many of the most similar other class names decide the fit, and how many other names are
# looked at (evenly spaced beyond that, to bound the cost of a 10,000-class request).
NEAREST = 5
# How much WordNet's usage counts (how often each sense of this very word was tagged in the
# SemCor corpus) weigh against the context fit. Without them a mixed list ("cat, dog, car,
# bicycle") pulls "cat" to the caterpillar tractor and "dog" to the andiron; with them a sense
# nobody uses must fit the context much better to win. Words with no counts ("crane") are left
# to the context alone.
FREQUENCY_WEIGHT = 0.3
MAX_CONTEXT_NAMES = 1000
MAX_CHILDREN = 10
# Parents too abstract to say anything in "{c} which is a kind of {p}" (Ge et al. drop them).
ABSTRACT_PARENTS = frozenset({
    "entity.n.01", "physical_entity.n.01", "abstraction.n.06", "object.n.01", "whole.n.02",
    "artifact.n.01", "matter.n.03",
})
def reset() -> None:
    """Forget the loaded reader and any failure (tests; after installing the data)."""
    with wordnet_data.LOCK:
        wordnet_data.forget()
        _synsets.cache_clear()
        _usage_counts.cache_clear()
        _depths.cache_clear()


# ---------------------------------------------------------------------------------------------
# Senses, parents, children


@dataclass(frozen=True)
class Sense:
    synset: str          # "crane.n.05"
    wnid: str            # "n02012849": the ImageNet id
    lemmas: tuple[str, ...]
    gloss: str
    lexname: str         # "noun.animal"
    instance: bool       # a particular person, place or thing, not a kind


@dataclass(frozen=True)
class ClassSense:
    """How one class name maps into WordNet, and what the hierarchy method adds for it."""

    name: str                    # as the user typed it
    senses: tuple[Sense, ...]    # every noun sense, WordNet's order
    chosen: Sense | None         # None: no synset, the bare name is kept
    rule: str                    # user | imagenet-id | only-sense | context | kind | first | none
    reason: str                  # the rule in words, for the UI and the CLI
    parent: str | None           # readable lemma
    parent_synset: str | None
    children: tuple[str, ...]    # readable first lemmas, sorted, at most MAX_CHILDREN
    children_synsets: tuple[str, ...]
    # Nodes the sparse hierarchy took out (wordnet_sparse.py), as synset names: the parents skipped
    # on the way to the nearest kept ancestor (nearest first), and the children dropped.
    pruned_parents: tuple[str, ...] = ()
    pruned_children: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def readable_name(s: Any) -> str:
    """The text a synset stands for in prompts: its first lemma, underscores as spaces."""
    return _readable(s.lemmas()[0].name())


def _readable(lemma_name: str) -> str:
    return lemma_name.replace("_", " ")


def _sense(s: Any) -> Sense:
    return Sense(
        synset=s.name(),
        wnid=f"n{s.offset():08d}",
        lemmas=tuple(_readable(l.name()) for l in s.lemmas()),
        gloss=s.definition(),
        lexname=s.lexname(),
        instance=bool(s.instance_hypernyms()),
    )


def _lookup_forms(name: str) -> list[str]:
    base = " ".join(name.split())
    forms = [base, base.lower(), base.replace("-", " "), base.lower().replace("-", " "),
             base.lower().replace("-", "")]
    out: list[str] = []
    for f in forms:
        f = f.replace(" ", "_")
        if f and f not in out:
            out.append(f)
    return out


@lru_cache(maxsize=65536)
def _synsets(name: str) -> tuple[Any, ...]:
    """Noun synsets of a free-text name after WordNet's morphology (plurals, multiword names)."""
    wn = ensure_wordnet()
    for form in _lookup_forms(name):
        found = wn.synsets(form, pos="n")
        if found:
            return tuple(found)
    return ()


def noun_senses(name: str) -> tuple[Sense, ...]:
    return tuple(_sense(s) for s in _synsets(name))


# A noun sense as WordNet names it: word.n.NN, NN counted from 1. NLTK reads "crane.n.0" as the
# last sense and "crane.n.-1" too (a Python index): both are refused here.
_SENSE_NAME = re.compile(r"^[^\s]+\.n\.(0*[1-9]\d{0,2})$")
_WNID = re.compile(r"^n\d{8}$")
_OTHER_POS = re.compile(r"^[^\s]+\.[vasr]\.\d{1,3}$")


def synset_by_id(ident: str) -> Any:
    """A noun synset by name (``crane.n.04``) or ImageNet id (``n03126707``); InputError if none."""
    ident = ident.strip() if isinstance(ident, str) else ""
    if _OTHER_POS.match(ident):
        raise InputError(f"{ident[:80]!r} is not a noun sense; the hierarchy method needs nouns (like crane.n.04).")
    if not (_WNID.match(ident) or _SENSE_NAME.match(ident)):
        raise InputError(f"{ident[:80]!r} is not a WordNet noun sense; write it like crane.n.04 (senses are "
                         "numbered from 01) or as a WordNet id like n03126707.")
    wn = ensure_wordnet()
    try:
        if _WNID.match(ident):
            with warnings.catch_warnings():       # nltk warns, then returns None, for an unknown offset
                warnings.simplefilter("ignore")
                s = wn.synset_from_pos_and_offset("n", int(ident[1:]))
        else:
            s = wn.synset(ident)
    except Exception:  # nltk raises WordNetError, ValueError or KeyError depending on the form
        s = None
    if s is None:
        raise InputError(f"{ident!r} is not a WordNet noun sense; write it like crane.n.04 or n03126707.")
    if s.pos() != "n":
        raise InputError(f"{ident!r} is not a noun sense; the hierarchy method needs nouns (like crane.n.04).")
    return s


@lru_cache(maxsize=65536)
def _depths(synset_name: str) -> dict[str, int]:
    """Every ancestor of a synset (itself included) with its depth below the root."""
    s = ensure_wordnet().synset(synset_name)
    out: dict[str, int] = {}
    for path in s.hypernym_paths():  # instance hypernyms included
        for depth, node in enumerate(path):
            key = node.name()
            out[key] = max(out.get(key, -1), depth)
    return out


def wu_palmer(a: str, b: str) -> float:
    """Wu-Palmer similarity 2·depth(lcs) / (depth(a) + depth(b)), depths counted from 1.

    From cached ancestor sets: about 100 times faster than NLTK's and the same up to the choice
    of depth among several paths, which matters only for ranking senses.
    """
    da, db = _depths(a), _depths(b)
    common = da.keys() & db.keys()
    if not common:
        return 0.0
    lcs = max(min(da[c], db[c]) for c in common) + 1
    return 2.0 * lcs / (da[a] + 1 + db[b] + 1)


def _kind(lexname: str) -> str:
    if lexname in PHOTOGRAPHABLE:
        return "photographable"
    return "concrete" if lexname in CONCRETE else "abstract"


def parent_of(s: Any, drop_abstract: bool = True) -> Any | None:
    """The direct hypernym to name in prompts: the most specific (deepest), then by name.

    ``dog.n.01`` has ``canine.n.02`` and ``domestic_animal.n.01``; the deeper one says more.
    Instances use their instance hypernym (``crane.n.05``'s writer namesake: ``writer``).
    """
    parents = list(s.hypernyms()) + list(s.instance_hypernyms())
    if drop_abstract:
        parents = [p for p in parents if p.name() not in ABSTRACT_PARENTS]
    if not parents:
        return None
    return sorted(parents, key=lambda p: (-p.max_depth(), p.name()))[0]


def children_of(s: Any, limit: int = MAX_CHILDREN) -> list[Any]:
    """Direct hyponyms sorted by their first lemma (WordNet's own order may change), at most ``limit``."""
    kids = sorted(s.hyponyms(), key=lambda k: (k.lemmas()[0].name().lower(), k.name()))
    return kids[:limit]


def _candidates(synsets: Sequence[Any]) -> list[Any]:
    kinds = [s for s in synsets if not s.instance_hypernyms()]
    return kinds or list(synsets)


@lru_cache(maxsize=65536)
def _usage_counts(name: str) -> dict[str, int]:
    """Synset name -> how often ``name`` was tagged in that sense (empty without usage counts)."""
    wn = ensure_wordnet()
    forms = {f.lower() for f in _lookup_forms(name)}
    forms |= {m.lower() for f in list(forms) if (m := wn.morphy(f, "n"))}
    try:
        return {s.name(): sum(l.count() for l in s.lemmas() if l.name().lower() in forms) for s in _synsets(name)}
    except (OSError, LookupError):  # no usage counts in this WordNet copy
        return {}


def _usage_share(synsets: Sequence[Any], name: str | None) -> dict[str, float]:
    """Each synset's share of the tagged uses of ``name`` (all 0 when WordNet has no counts)."""
    if not name:
        return {}
    counts = _usage_counts(name)
    counts = {s.name(): counts.get(s.name(), 0) for s in synsets}
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}


def choose_sense(synsets: Sequence[Any], context: Sequence[Any] = (),
                 name: str | None = None) -> tuple[Any | None, str, str]:
    """(chosen synset, rule, reason) by the rule in the module docstring.

    ``context``: one synset for each other class name (its own reading), or none; ``name``: the
    class name as typed, for WordNet's usage counts of that word.
    """
    if not synsets:
        return None, "none", "not in WordNet: the bare name is used"
    pool = _candidates(synsets)
    if len(pool) == 1:
        why = "the only sense" if len(synsets) == 1 else "the only sense that is not a named person or place"
        return pool[0], "only-sense", why
    others = list(context)[::-(-len(context) // MAX_CONTEXT_NAMES)] if context else []

    def fit(s: Any) -> float:
        sims = heapq.nlargest(NEAREST, (wu_palmer(s.name(), o.name()) for o in others))
        return sum(sims) / len(sims) if sims else 0.0

    usage = _usage_share(pool, name)

    def by_kind(s: Any) -> float:
        return KIND_BONUS[_kind(s.lexname())] + FREQUENCY_WEIGHT * usage.get(s.name(), 0.0)

    order = {id(s): i for i, s in enumerate(pool)}
    best = max(pool, key=lambda s: (fit(s) + by_kind(s), -order[id(s)]))
    without_context = max(pool, key=lambda s: (by_kind(s), -order[id(s)]))
    if best is not without_context:
        return best, "context", f"fits the other class names best ({best.lexname()})"
    if best is not pool[0]:
        return best, "kind", f"the most common sense that can be photographed ({best.lexname()})"
    return best, "first", "WordNet's most common sense" + (" and it fits the other class names" if others else "")


def describe(
    name: str, s: Any | None, rule: str, reason: str, synsets: Sequence[Any], drop_abstract: bool = True,
) -> ClassSense:
    parent = parent_of(s, drop_abstract) if s is not None else None
    kids = children_of(s) if s is not None else []
    return ClassSense(
        name=name,
        senses=tuple(_sense(x) for x in synsets),
        chosen=_sense(s) if s is not None else None,
        rule=rule,
        reason=reason,
        parent=_readable(parent.lemmas()[0].name()) if parent is not None else None,
        parent_synset=parent.name() if parent is not None else None,
        children=tuple(_readable(k.lemmas()[0].name()) for k in kids),
        children_synsets=tuple(k.name() for k in kids),
    )


def resolve(
    names: Sequence[str],
    overrides: Mapping[str, str] | None = None,
    known_ids: Mapping[str, str] | None = None,
    drop_abstract: bool = True,
) -> list[ClassSense]:
    """A ``ClassSense`` for every class name, each read in the context of the others.

    ``overrides`` maps a class name to the sense a user picked (synset name or ImageNet id);
    ``known_ids`` maps class names to ImageNet ids that are exact (the ImageNet preset).
    """
    overrides = check_overrides(overrides or {}, names)
    known_ids = dict(known_ids or {})
    wn_synsets = [_synsets(n) for n in names]
    given = {n: synset_by_id(overrides[n] if n in overrides else known_ids[n])
             for n in names if n in overrides or n in known_ids}
    # Each name read on its own first: that reading is what the other names see as context. A
    # user's pin is not part of it: pinning one class (even to the sense it already had) must
    # never change another class's sense. Exact ImageNet ids are.
    alone = [synset_by_id(known_ids[n]) if n in known_ids else choose_sense(wn_synsets[i], name=n)[0]
             for i, n in enumerate(names)]
    out = []
    for i, name in enumerate(names):
        if name in given:
            s = given[name]
            syns = wn_synsets[i] if s in wn_synsets[i] else (*wn_synsets[i], s)
            rule, reason = (("user", "the sense you picked") if name in overrides
                            else ("imagenet-id", f"the ImageNet class {known_ids[name]}"))
            out.append(describe(name, s, rule, reason, syns, drop_abstract))
            continue
        context = [alone[j] for j in range(len(names)) if j != i and alone[j] is not None]
        s, rule, reason = choose_sense(wn_synsets[i], context, name)
        out.append(describe(name, s, rule, reason, wn_synsets[i], drop_abstract))
    return out


def check_overrides(overrides: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    """Sense choices keyed by the request's own spelling of each class; each sense must exist."""
    by_key = {n.casefold(): n for n in names}
    out = {}
    for name, sense in overrides.items():
        if name.casefold() not in by_key:
            raise InputError(f"A sense was chosen for {name!r}, which is not one of the class names.")
        synset_by_id(sense)
        out[by_key[name.casefold()]] = sense
    return out


def check_count(names: Sequence[str]) -> None:
    """Each free-text name is read in the context of up to 1,000 others, so the cost grows with
    the square of the count (1,000 names: about 13 s on a CPU core): a request reads at most
    ``LIMITS.wordnet_classes`` names (the hierarchy strategies, sense choices, ``/wordnet``)."""
    if len(names) > LIMITS.wordnet_classes:
        raise InputError(f"{len(names)} classes: at most {LIMITS.wordnet_classes} are read in WordNet per "
                         "request. Untick the hierarchy strategies (and sense choices), or use fewer classes.")


def foreign_senses(chosen: Mapping[str, str]) -> list[str]:
    """A note for each chosen sense that is not one of WordNet's senses of that class name.

    Such a choice is allowed (a free-text name like "crane bird" has no entry, and an ImageNet id
    names its class exactly) but is said, so that "crane=dog.n.01" cannot pass unnoticed.
    """
    notes = []
    for name, ident in chosen.items():
        s = synset_by_id(ident)
        own = _synsets(name)
        if own and s not in own:
            notes.append(f"The sense chosen for {name!r}, {s.name()} ({s.definition()}), is not one of "
                         f"WordNet's senses of {name!r} ({', '.join(x.name() for x in own[:6])}"
                         f"{', ...' if len(own) > 6 else ''}); it is used as you asked.")
    return notes


def parse_overrides(value: str | Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``"crane=crane.n.04, seal=seal.n.09"`` (or a list of such items, or a dict) -> dict."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        items = [(str(k), str(v)) for k, v in value.items()]
    else:
        parts = value.replace("\n", ",").split(",") if isinstance(value, str) else list(value)
        items = []
        for part in parts:
            part = str(part).strip()
            if not part:
                continue
            if "=" not in part:
                raise InputError(f"Sense choice {part!r} must look like 'crane=crane.n.04' (class name = sense).")
            k, v = part.rsplit("=", 1)
            items.append((k, v))
    out = {}
    for k, v in items:
        k, v = " ".join(k.split()), v.strip()
        if not k or not v:
            raise InputError("A sense choice needs a class name and a sense, like 'crane=crane.n.04'.")
        out[k] = v
    return out


# ---------------------------------------------------------------------------------------------
# A request's classes


def imagenet_ids(classnames: Sequence[str]) -> dict[str, str]:
    """The class names that resolve exactly through ImageNet ids.

    When every name is an ImageNet-1k preset name (the preset, or a pick from it) all of them
    do. Otherwise only the preset names WordNet cannot find as typed (``crane bird``,
    ``construction crane``) do, so that a name like ``bow`` is still read in its request's context.
    """
    wnids = imagenet_wnids()
    if all(n in wnids for n in classnames):
        return {n: wnids[n] for n in classnames}
    return {n: wnids[n] for n in classnames if n in wnids and not noun_senses(n)}


def class_senses(classnames: Sequence[str], overrides: Mapping[str, str] | None = None) -> list[ClassSense]:
    """The WordNet reading of every class of a request (raises WordNetUnavailable without data).

    Cached per class list: reading 1000 free-text names in context takes seconds.
    """
    ensure_wordnet()
    return list(_class_senses(tuple(classnames), tuple(sorted((overrides or {}).items()))))


@lru_cache(maxsize=64)
def _class_senses(classnames: tuple[str, ...], overrides: tuple[tuple[str, str], ...]) -> tuple[ClassSense, ...]:
    return tuple(resolve(list(classnames), dict(overrides), imagenet_ids(classnames)))


def bare_sense(name: str) -> ClassSense:
    """What a class contributes without WordNet: its bare name."""
    return ClassSense(name, (), None, "none", "WordNet unavailable: the bare name is used",
                      None, None, (), ())
