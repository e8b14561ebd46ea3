"""Class-name presets and parsing of the free-text class list a user types."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from ..core.errors import InputError
from ..core.limits import LIMITS
from .open_clip_data import IMAGENET_CLASSNAMES
from ..core.resources import asset

CIFAR10_CLASSNAMES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)

# Official CIFAR-100 label order, underscores written as spaces so that prompts read naturally.
CIFAR100_CLASSNAMES: tuple[str, ...] = (
    "apple", "aquarium fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup",
    "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
    "kangaroo", "keyboard", "lamp", "lawn mower", "leopard", "lion", "lizard", "lobster", "man",
    "maple tree", "motorcycle", "mountain", "mouse", "mushroom", "oak tree", "orange", "orchid",
    "otter", "palm tree", "pear", "pickup truck", "pine tree", "plain", "plate", "poppy",
    "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal",
    "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar",
    "sunflower", "sweet pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow tree", "wolf", "woman", "worm",
)


def _imagenet_classnames() -> tuple[str, ...]:
    """open_clip's curated ImageNet-1k names in class-index order, made unique.

    The curated list names two pairs of classes identically (657/744 "missile", 836/837
    "sunglasses"). Identical names give identical text vectors that split the probability, and
    dropping one would shift every later class index, so the second of each pair takes its next
    WordNet lemma instead (n04008634 "projectile", n04356056 "dark glasses").
    """
    names = list(IMAGENET_CLASSNAMES)
    names[744], names[837] = "projectile", "dark glasses"
    return tuple(names)


# Small sets that make a method visible in class. "crane" alone is ambiguous (a bird and a
# machine in WordNet; ImageNet has both); its neighbours decide which sense the hierarchy
# method reads. The fine-grained cats are where name-only CLIP is often unsure.
TEACHING_PRESETS: dict[str, tuple[str, ...]] = {
    "crane-birds": ("crane", "heron", "stork", "flamingo", "pelican", "egret"),
    "crane-machines": ("crane", "bulldozer", "forklift", "excavator", "tow truck", "tractor"),
    "imagenet-cranes": ("crane bird", "construction crane", "heron", "tow truck", "stork", "forklift"),
    "cats": ("tabby cat", "tiger cat", "Persian cat", "Siamese cat", "Egyptian Mau", "lynx", "tiger"),
    "lab-photos": ("cat", "dog", "coffee mug", "espresso", "rocket", "space shuttle", "astronaut",
                   "motorcycle", "bicycle", "brick wall"),
}

PRESETS: dict[str, tuple[str, ...]] = {
    "imagenet1k": _imagenet_classnames(),
    "cifar10": CIFAR10_CLASSNAMES,
    "cifar100": CIFAR100_CLASSNAMES,
    **TEACHING_PRESETS,
}

PRESET_LABELS: dict[str, str] = {
    "imagenet1k": "ImageNet-1k (1000 classes)",
    "cifar10": "CIFAR-10 (10 classes)",
    "cifar100": "CIFAR-100 (100 classes)",
    "crane-birds": "teaching: crane among birds",
    "crane-machines": "teaching: crane among machines",
    "imagenet-cranes": "teaching: ImageNet's two cranes",
    "cats": "teaching: fine-grained cats",
    "lab-photos": "the example photos (10 classes)",
}

_SPLIT = re.compile(r"[,\n\r]+")
_WHITESPACE = re.compile(r"\s+")
_SLACK = 10_000       # raw input may carry this much beyond the limits in separators and duplicates
# CLIP's tokenizer splits text into runs of letters and costs about L^2 per run of L letters
# (0.1 s for 1,000): past 100 letters (English's longest words have about 45) a name is noise,
# and 3,000 such words cost 3 s instead of 300 s.
MAX_WORD_LETTERS = 100
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class ClassList:
    """The cleaned class names of one request, with what was changed on the way."""

    names: tuple[str, ...]
    duplicates: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())


def clean_name(item: str) -> str:
    """One class name as every strategy reads it: printable characters, single spaces, trimmed.

    Whitespace of any kind (tab, no-break space, ideographic space) becomes one space before
    unprintable characters are dropped: "ice\u00a0cream" is "ice cream", not "icecream".
    """
    spaced = _WHITESPACE.sub(" ", item)
    return _WHITESPACE.sub(" ", "".join(ch for ch in spaced if ch.isprintable())).strip()


def parse_classnames(text: str | list[str] | tuple[str, ...]) -> ClassList:
    """Split comma- or newline-separated text (or take a list), trim, drop empties and duplicates.

    Duplicates are matched case-insensitively after whitespace is collapsed, because "Dog" and
    "dog " would give two classes with near-identical text vectors that split the probability.
    The request limits (number of classes, characters per name and in all) are checked here,
    on the raw input, before any work that grows with it.
    """
    if isinstance(text, str):
        if len(text) > LIMITS.class_chars + LIMITS.classes + _SLACK:   # names plus separators
            raise _too_many_characters(len(text))
        raw = _SPLIT.split(text)
    elif isinstance(text, (list, tuple)):
        if len(text) > LIMITS.classes + _SLACK:
            raise _too_many_classes(len(text))
        if not all(isinstance(t, str) for t in text):
            raise InputError("Class names must be text: a list of strings, or one string of names separated "
                             "by commas or new lines.")
        raw = list(text)
    else:
        raise InputError(f"Class names must be text (names separated by commas or new lines), not "
                         f"{type(text).__name__}.")
    names: list[str] = []
    seen: dict[str, str] = {}
    duplicates: list[str] = []
    for item in raw:
        name = clean_name(item)
        if not name:
            continue
        key = name.casefold()
        if key in seen:
            duplicates.append(name)
            continue
        seen[key] = name
        names.append(name)
    if not names:
        raise InputError(
            "No class names given: type at least one class, separated by commas or new lines "
            "(for example: cat, dog, bird)."
        )
    check_class_list(names)
    warnings: list[str] = []
    if duplicates:
        warnings.append(
            "Duplicate class names were removed: " + ", ".join(sorted(set(duplicates), key=str.casefold)) + "."
        )
    if len(names) == 1:
        warnings.append(
            f"Only one class ({names[0]!r}): its probability is always 1. "
            "Add more classes for a meaningful comparison."
        )
    return ClassList(names=tuple(names), duplicates=tuple(duplicates), warnings=tuple(warnings))


def _too_many_classes(n: int) -> InputError:
    return InputError(f"{n} classes given; at most {LIMITS.classes} are allowed per request. "
                      "Split them over several requests.")


def _too_many_characters(n: int) -> InputError:
    return InputError(f"The class names add up to {n:,} characters; at most {LIMITS.class_chars:,} are "
                      "allowed per request. Use fewer or shorter names.")


def check_class_list(names: tuple[str, ...] | list[str]) -> None:
    """The request limits on class names: how many, how long each, how long all together."""
    if len(names) > LIMITS.classes:
        raise _too_many_classes(len(names))
    too_long = [n for n in names if len(n) > LIMITS.classname_chars]
    if too_long:
        raise InputError(
            f"A class name has {len(too_long[0])} characters; at most {LIMITS.classname_chars} are allowed "
            f"(starts with {too_long[0][:40]!r})."
        )
    total = sum(len(n) for n in names)
    if total > LIMITS.class_chars:
        raise _too_many_characters(total)
    for name in names:
        word = max(_WORD.findall(name), key=len, default="")
        if len(word) > MAX_WORD_LETTERS:
            raise InputError(f"A class name has a word of {len(word)} letters (starts with {word[:30]!r}); words "
                             f"of at most {MAX_WORD_LETTERS} letters are allowed. Split it with spaces or hyphens.")


def preset_classnames(preset: str) -> tuple[str, ...]:
    try:
        return PRESETS[preset]
    except KeyError:
        raise InputError(
            f"Unknown class-name preset {preset!r}. Choose one of: {', '.join(PRESETS)}."
        ) from None


WNIDS_FILE = asset("imagenet_wnids.txt")


@lru_cache(maxsize=1)
def imagenet_wnids() -> dict[str, str]:
    """ImageNet-1k preset name -> WordNet id (``n`` + WordNet 3.0 noun offset), by class index."""
    wnids = WNIDS_FILE.read_text(encoding="ascii").split()
    names = PRESETS["imagenet1k"]
    if len(wnids) != len(names):
        raise RuntimeError(f"{WNIDS_FILE} has {len(wnids)} ids for {len(names)} ImageNet classes")
    return dict(zip(names, wnids))


@lru_cache(maxsize=1)
def imagenet_names_by_wnid() -> dict[str, str]:
    """WordNet id -> ImageNet-1k preset name (the inverse of ``imagenet_wnids``)."""
    return {w: n for n, w in imagenet_wnids().items()}
