"""The strategy protocol: what a method declares, what it is given, and what it returns.

A strategy is one object in the registry (``strategies/__init__.py``). It declares what it needs
(class vectors of some template sets, the consistency check, WordNet, the decoded pixels), the
pipeline and the evaluation prepare that once per batch of images (a ``Batch``), and the strategy
turns it into logits over the request's classes plus, per image, its typed details. Everything
else (probabilities, top-k, JSON, evaluation records) is done by the callers the same way for
every strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from PIL import Image

from ..core.constants import SUS_K
from ..core.errors import InputError
from ..data.support import SupportFeatures, SupportSet
from ..engine.consistency import BINARY, Consistency, LowConfidenceRule
from ..engine.models import LoadedModel
from ..engine.results import ClassificationResult, ImageResult, StrategyResult
from ..engine.text import TextFeatureCache
from ..engine.views import DEFAULT_VIEWS
from ..engine.zero_shot_classifier import class_vectors, template_features
from ..prompts.templates import fill
from ..prompts.descriptors import Descriptors
from ..wordnet.senses import ClassSense


@dataclass(frozen=True)
class Request:
    """A validated request (``run/request.py`` makes it whole, then nothing changes it): what
    every strategy reads. What a run learns later (a warning, a fitted head) goes to its ``Run``.

    ``options`` holds each method's settings (its ``options`` dataclass) under its
    ``options_key``; a strategy reads its own with ``Strategy.settings``."""

    classnames: tuple[str, ...]
    strategies: tuple[str, ...]
    custom_templates: tuple[str, ...]
    top_k: int
    warnings: tuple[str, ...] = ()      # what the checks had to say about the request
    consistency: bool = False          # attach the consistency analysis to every image
    views: tuple[str, ...] = DEFAULT_VIEWS
    senses: dict[str, str] = field(default_factory=dict)   # class name -> chosen WordNet sense
    low_confidence: LowConfidenceRule = BINARY   # which images count as uncertain
    rerank_all: bool = False                     # ... or every image, for the methods that re-rank them
    descriptors: Descriptors = field(default_factory=Descriptors)   # per class, for the descriptor methods
    support: SupportSet | None = None             # few-shot: labelled examples of the classes
    pool: Any = None                              # or SuS: unlabeled photos to find them in (data/pool.py)
    sus_k: int = SUS_K                            # ... this many per class
    options: dict[str, Any] = field(default_factory=dict)
    chosen: tuple["Strategy", ...] = ()          # the strategies of ``strategies``, in order
    extra: dict[str, Any] = field(default_factory=dict)   # inputs of run/inputs.py no code reads by name yet

    @property
    def needs_consistency(self) -> bool:
        return self.consistency or any(s.needs_consistency for s in self.chosen)

    @property
    def needs_wordnet(self) -> bool:
        return any(s.needs_wordnet for s in self.chosen)


@dataclass
class Run:
    """One request, shared by all its batches of images (the evaluation has many)."""

    loaded: LoadedModel
    request: Request
    cache: TextFeatureCache | None
    senses: Sequence[ClassSense] = ()              # every class's WordNet reading (needs_wordnet)
    support: SupportFeatures | None = None         # the labelled examples' features (needs_support)
    sus: Any = None                                # what SuS found in the pool (data/pool.Found), when it ran
    warnings: list[str] = field(default_factory=list)   # what the run learned (a loaded context's classes)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """What a strategy computes once per request (TPT's prompt embeddings, say), under ``key``."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]


@dataclass
class Batch:
    """A batch of images as every strategy sees it."""

    run: Run
    features: torch.Tensor                          # [N, D] unit features of the originals
    view_features: torch.Tensor | None = None       # [N, V, D] the consistency check's views
    checks: list[Consistency] = field(default_factory=list)   # per image, when needed
    images: Sequence[Image.Image | None] = ()       # decoded pixels, for strategies with needs_pixels
    # The share of the progress bar this strategy's scoring fills, when it reports its own steps.
    span: tuple[float, float] | None = None
    _logits: dict[tuple[str, ...], torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def loaded(self) -> LoadedModel:
        return self.run.loaded

    @property
    def request(self) -> Request:
        return self.run.request

    @property
    def classnames(self) -> tuple[str, ...]:
        return self.run.request.classnames

    def __len__(self) -> int:
        return len(self.features)

    def logits(self, templates: Sequence[str]) -> torch.Tensor:
        """[N, C] = logit_scale x cos(image, class vector of ``templates``) (docs/METHODS.md §1), once per batch."""
        key = tuple(templates)
        if key not in self._logits:
            run = self.run
            weights = class_vectors(run.loaded, self.classnames, key, run.cache).to(self.features.device)
            self._logits[key] = (run.loaded.logit_scale * self.features @ weights.T).float()
        return self._logits[key]


@dataclass
class Scores:
    """A strategy's output for a batch: logits [N, C] (-inf: a class it did not score) and, per
    image, its details (a dataclass of the strategy's module), or None for a plain classifier."""

    logits: torch.Tensor
    details: Sequence[Any] | None = None

    def details_of(self, row: int) -> Any:
        return {} if self.details is None else self.details[row]


@dataclass(frozen=True)
class Panel:
    """What a strategy shows of one image on the page: a heading, then Markdown (user text
    through ``markup.md``) and/or HTML (through ``markup.html``; one line, no blank lines, so
    that it stays one HTML block of the page's Markdown)."""

    title: str
    markdown: str = ""
    html: str = ""


@dataclass
class PanelContext:
    """What a panel may read besides its own result: the whole result and image, and the
    thumbnails of support examples the page kept."""

    result: ClassificationResult
    image: ImageResult
    thumbnails: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Cloud:
    """What one method's class vector of one class is made of, as points of the embedding map
    (``run/embedding_map.py``): the prompts it averages, or the WordNet phrases it scores."""

    class_index: int
    kind: str                           # "prompt" (averaged into the class vector) or "wordnet"
    texts: tuple[str, ...]              # each point's words: the prompt, or the WordNet name
    vectors: torch.Tensor               # [T, D] unit vectors, encoded as the method encodes them
    encoded: tuple[str, ...] = ()       # what was encoded, where it is not ``texts`` (WordNet phrases)
    relations: tuple[str, ...] = ()     # "parent" or "child", per WordNet point

    @property
    def averaged(self) -> bool:
        """Its normalised mean is the method's class vector (the map draws that ensemble too)."""
        return self.kind == "prompt"


@dataclass(frozen=True)
class Rates:
    """The model's speed on this server (measured, or assumed before its first use)."""

    prompts_per_second: float
    images_per_second: float


# Where the page and the command line take labelled examples (said by every few-shot method).
SUPPORT_PAGE = (" (open 'Few-shot: labelled examples' under the strategies and upload a .zip of labelled images, "
                "or a .zip of your photos for the model to find them in).")
SUPPORT_CLI = " (--support FOLDER|ZIP, or --sus-pool FOLDER|ZIP of unlabeled photos)."


def require_support(request: Request, method: str, what: str = "a support set: labelled examples of the classes",
                    cli: str = SUPPORT_CLI) -> None:
    """Refuse a few-shot method without labelled examples (or a pool to find them in), saying where
    to give them."""
    if request.support is None and request.pool is None:
        raise InputError(f"{method} needs {what}", cli=cli, page=SUPPORT_PAGE)


class Strategy:
    """The protocol. A method subclasses it, sets its card and needs, and implements ``score``."""

    id: str = ""
    label: str = ""
    description: str = ""
    needs_consistency: bool = False  # the low-confidence rule on every image (its views get embedded)
    needs_wordnet: bool = False      # Run.senses holds every class's WordNet reading
    needs_pixels: bool = False       # Batch.images holds the decoded images
    tunes_per_image: bool = False    # learns per image: too slow for the shared server's evaluation
    whole_set: bool = False          # its scores depend on all the images at hand (the evaluation
                                     # scores it once every image's features are known)
    needs_support: bool = False      # few-shot: reads Run.support, the request's labelled examples
    needs_descriptors: bool = False  # reads descriptors per class (descriptors.py): the request's,
    shipped_descriptors: str = ""    # or, when it has none, this file of zsdemo's own
    fallback: str | None = None      # the strategy whose prediction it keeps for confident images
    # Its logits are the logit scale times a cosine (or a mean or weighted sum of such), so a
    # sigmoid-trained model's bias turns them into that model's own per-class scores.
    scaled_cosine_logits: bool = False
    # Its settings: a dataclass whose fields are declared with ``options.option`` (None: it has
    # none). Variants of one method share them under one key (the hierarchy's two template sets).
    options: type | None = None
    options_id: str = ""
    # Where the page shows its panel: "methods", or "wordnet" beside the sense picker.
    panel_area: str = "methods"
    # Its class vectors are made of prompts the embedding map can draw (``map_clouds``); the others
    # (few-shot heads, per-image tuning) are said to have no prompt points.
    on_map: bool = False

    @property
    def options_key(self) -> str:
        return self.options_id or self.id

    def settings(self, request: Request) -> Any:
        """Its settings in this request (the declared defaults where none were given)."""
        return request.options[self.options_key]

    def sparse_share(self, request: Request) -> float:
        """The share of WordNet it reads (the sparse hierarchy; 1: all of it), with needs_wordnet."""
        return 1.0

    def classifiers(self, request: Request) -> tuple[tuple[str, ...], ...]:
        """The template sets whose class vectors it reads through ``Batch.logits``."""
        return ()

    def prompt_templates(self, request: Request) -> tuple[str, ...]:
        """Every template it encodes once per class: what the request's prompt budget counts."""
        return tuple(t for templates in self.classifiers(request) for t in templates)

    def extra_prompts(self, request: Request) -> int:
        """Prompts it encodes that are not a template for every class (descriptors): counted too."""
        return 0

    def shown_templates(self, request: Request) -> tuple[str, ...] | None:
        """The templates that *are* the method, which the result lists (None: not a template set)."""
        return None

    def map_clouds(self, run: Run) -> list[Cloud]:
        """Its prompts per class for the embedding map: each template it averages, filled with the
        class (read from the text cache its scoring filled); [] when it is not a template set."""
        templates = self.shown_templates(run.request)
        if not self.on_map or not templates:
            return []
        names = run.request.classnames
        features = template_features(run.loaded, names, templates, run.cache)
        return [Cloud(c, "prompt", tuple(fill(t, name) for t in templates), features[c])
                for c, name in enumerate(names)]

    def check(self, request: Request, n_images: int) -> None:
        """Refuse (InputError) a request this method cannot serve within the limits."""

    def least_shots(self, request: Request) -> int:
        """The fewest labelled examples per class it can learn from with these settings (the
        shots curve's smallest count; a validation split needs two)."""
        return 1

    def cost(self, request: Request, n_images: int, rates: Rates) -> tuple[float, str] | None:
        """Seconds of model work beyond its class vectors, and that work in words (None: none)."""
        return None

    def prepare(self, run: Run, span: tuple[float, float] | None = None) -> None:
        """Work done once per request before any image is scored (CoOp's training), reporting its
        own steps within ``span`` of the progress bar; ``score`` finds it in ``run.once``.
        ``pipeline.open_run`` calls it, for classify and evaluate alike."""

    @property
    def prepares(self) -> bool:
        """Whether this method has once-per-request work (its ``prepare``): its cost then comes
        before the images' on the progress bar."""
        return type(self).prepare is not Strategy.prepare

    def score(self, batch: Batch) -> Scores:
        raise NotImplementedError

    def note(self, result: StrategyResult) -> str:
        """A short remark on one image's result for the command line's table ("" for none)."""
        return ""

    def card_note(self, result: StrategyResult) -> str:
        """A remark under the top-1 of the page's bar card ("" for none)."""
        return ""

    def explain(self, result: StrategyResult) -> str:
        """Why it decided, for one image, as Markdown for the page's arena panel (user text
        through ``markup.md``; "" when the method has nothing beyond its probabilities)."""
        return ""

    def panel(self, result: StrategyResult, context: PanelContext) -> Panel | None:
        """Its own view of one image's result on the page (None: nothing beyond ``explain``)."""
        text = self.explain(result) if result.details else ""
        return Panel(self.label, markdown=text) if text else None

    @property
    def has_panel(self) -> bool:
        """Whether it shows anything beyond its probabilities (the page's hints list those)."""
        return type(self).panel is not Strategy.panel or type(self).explain is not Strategy.explain

    def pictured(self, result: StrategyResult) -> list[str]:
        """Support files its panel pictures (the page keeps their thumbnails after the run)."""
        return []

    def details_from_dict(self, d: dict[str, Any]) -> Any:
        """The details back from their JSON form (a result saved by the page or the CLI)."""
        return d

