"""A request's own inputs, declared once (each method's options are declared by the method:
``strategies/options.py``).

One ``Input`` per input: its name (the API argument, ``prepare_request``'s keyword and the link
parameter), its words, its kind and range, its defaults where they differ, and where it
appears: ``on`` holds surface:endpoint pairs ("api:classify", "cli:evaluate", "page:classify",
"link:classify"). From this table come the API's arguments and their descriptions
(``app/api.py``; gradio_client and MCP read them), the command line's flags (``cli.py``), the
page's advanced controls (``app/inputs.py``), the link's parameters (``app/links.py``), the
checks of a raw value (``Input.check``) and, for an input no code reads by name, its place in
the request (``Request.extra``) and in a report's settings. ``register`` adds one at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..core import arguments
from ..core.constants import CLASSIFY_DEFAULT, DEFAULT_STRATEGIES, DEFAULT_TOP_K, MAX_SUS_K, MAX_TOP_K, SUS_K
from ..engine.views import VIEW_LABELS, VIEWS

REQUIRED = object()          # no default: the caller must give it
SURFACES = ("api", "cli", "page", "link")
ENDPOINTS = ("classify", "evaluate", "map")
RUNS = ("classify", "evaluate")     # what a bare surface names: the two runs (a map names itself)


def on(*pairs: str) -> frozenset[str]:
    """surface:endpoint pairs from "api:classify", "api" (classify and evaluate) or "*:classify"
    (every surface)."""
    out = set()
    for pair in pairs:
        surface, _, endpoint = pair.partition(":")
        for s in SURFACES if surface == "*" else (surface,):
            for e in RUNS if endpoint in ("", "*") else (endpoint,):
                out.add(f"{s}:{e}")
    return frozenset(out)


@dataclass(frozen=True)
class Input:
    """One input of a request: its name and words, its kind, range and defaults, where it appears."""

    name: str                       # the API argument, prepare_request's keyword, the link parameter
    label: str                      # the page control's label
    help: str                       # the API's description (and the command line's help, unless cli_help)
    kind: str                       # files (a list), zip, file, pool, text, lines, texts, views, view_set,
    #                                 whole, flag, senses, rule or model
    default: Any = None             # REQUIRED: no default
    on: frozenset[str] = frozenset()
    defaults: Mapping[str, Any] = field(default_factory=dict)   # "page", "evaluate" or "cli:evaluate": its own
    helps: Mapping[str, str] = field(default_factory=dict)      # an endpoint's own description
    low: int | None = None          # the range of a "whole"
    high: int | None = None
    after_options: bool = False     # an API argument after the methods' options (added later: positions kept)
    cli_flag: str = ""              # the flag, when not --name with dashes
    cli_help: str = ""
    cli_repeat: bool = False        # given once per value (--templates T --templates T)
    cli_file: bool = False          # the flag names a file whose text is the value (--descriptors FILE)
    metavar: str | None = None
    page_area: str = ""             # "advanced": the page draws its control from this declaration
    choices: tuple[tuple[str, Any], ...] = ()    # a page control's (words, value)
    info: str = ""                  # a line under the page's control

    def offered(self, surface: str, endpoint: str) -> bool:
        return f"{surface}:{endpoint}" in self.on

    def default_for(self, surface: str, endpoint: str) -> Any:
        for key in (f"{surface}:{endpoint}", surface, endpoint):
            if key in self.defaults:
                return self.defaults[key]
        return self.default

    def help_for(self, endpoint: str, surface: str = "api") -> str:
        """Its words on a surface: the API's description, or the command line's help."""
        if f"{surface}:{endpoint}" in self.helps:
            return self.helps[f"{surface}:{endpoint}"]
        if surface == "cli" and self.cli_help:
            return self.cli_help
        return self.helps.get(endpoint, self.help)

    @property
    def flag(self) -> str:
        return self.cli_flag or "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> Any:
        """A raw value from an untrusted caller in the type the request takes (None stays None:
        the request's default), or InputError naming the argument and what it must be."""
        if value is None:
            return None
        if self.kind == "flag":
            return arguments.flag(value, self.name)
        if self.kind == "whole":
            low = -2**63 if self.low is None else self.low
            return arguments.whole_number(value, self.label, low, 2**63 - 1 if self.high is None else self.high)
        if self.kind in ("texts", "lines", "views"):
            return arguments.text_or_list(value, self.name) or None
        if self.kind == "senses":
            return arguments.text_or_mapping(value, self.name) or None
        if self.kind in ("text", "rule", "model", "view_set"):
            return arguments.text(value, self.name)
        return value            # files: the upload policy checks them


_TABLE: list[Input] = [
    Input("archive", "A .zip of labelled images", "a .zip of labelled images: a folder per class, or a labels.csv "
          "(path,label).", "zip", REQUIRED, on("api:evaluate")),
    Input("images", "Images (click one to inspect it)", "the images to classify, at most 64: uploaded files, or "
          "public http(s) URLs, or data: URLs with the image's bytes in base64 (data:image/png;base64,...), each "
          "within the upload limit.", "files", REQUIRED, on("api:classify", "page:classify", "link:classify", "api:map"),
          helps={"map": "the images to place on the map (an empty list: a map of the texts alone), at most 64, "
                        "as for classify."}),
    Input("classes", "Class names, one per line or comma-separated",
          "the class names, one per line or comma-separated.", "text", REQUIRED,
          on("api:classify", "page:classify", "link:classify", "api:map")),
    Input("strategies", "Strategies", 'strategy ids, comma-separated ("all" for every one; the options tool lists '
          "them).", "texts", ",".join(CLASSIFY_DEFAULT), on("api", "cli", "page:classify", "link:classify", "api:map",
                                                               "cli:map"),
          defaults={"evaluate": ",".join(DEFAULT_STRATEGIES), "page": list(DEFAULT_STRATEGIES)},
          helps={"evaluate": "strategy ids, comma-separated (name only and CLIP-80 always run).",
                 "cli:evaluate": "comma-separated ids (default %(default)s); name and clip80 are always computed; "
                                 "tpt is slow (off by default)"},
          cli_help="comma-separated strategy ids (zsdemo strategies lists them), or all (default %(default)s)"),
    Input("templates", "Custom templates for the 'Custom templates' strategy, one per line with {}",
          'custom prompt templates, one per line with {} for the class name ("custom" strategy).', "lines", "",
          on("api:classify", "cli", "page:classify", "link:classify", "api:map", "cli:map"), cli_repeat=True,
          metavar="T",
          cli_help="a custom template with one {} (repeat the flag for several)"),
    Input("top_k", f"Top-k classes shown per strategy (1 to {MAX_TOP_K})",
          f"how many classes to return per strategy (1 to {MAX_TOP_K}).", "whole", DEFAULT_TOP_K,
          on("*:classify"), low=1, high=MAX_TOP_K, page_area="advanced",
          cli_help=f"classes listed per strategy, 1 to {MAX_TOP_K} (default %(default)s)"),
    Input("consistency", "Run the consistency check even without a hierarchy strategy",
          "run the self-consistency check even without a hierarchy strategy.", "flag", False,
          on("api:classify", "cli:classify", "page:classify"),
          defaults={"page": True}, page_area="advanced",      # the page shows the check unless unticked
          cli_help="attach the self-consistency analysis (S_T, S_B, O_T, O_B) to every image; always on with a "
                   "hierarchy strategy"),
    Input("views", "Image views for S_B (left-right flip always included)",
          "image views for the consistency check, comma-separated ids (empty: all of them).", "views", "",
          on("api:classify", "page:classify", "cli"), defaults={"page": list(VIEWS), "cli": None},
          page_area="advanced", choices=tuple((VIEW_LABELS[v], v) for v in VIEWS),
          cli_help=f"image views for S_B, comma-separated (default all: {', '.join(VIEWS)})",
          helps={"cli:evaluate": f"image views for S_B (default all: {', '.join(VIEWS)}); 'hflip' alone is about 5x "
                                 "faster but S_B then has one view"}),
    Input("views", "Image views for S_B", 'image views for S_B: "all" (the paper\'s) or "flip" (faster).',
          "view_set", "all", on("api:evaluate")),
    Input("rerank_all", "Re-rank every image, not only the uncertain ones (the hierarchy)",
          "re-rank every image with WordNet, not only the low-confidence ones.", "flag", False,
          on("api", "cli", "page"), page_area="advanced",
          cli_help="hierarchy strategies re-rank every image, not only low-confidence ones",
          helps={"cli:evaluate": "hierarchy strategies re-rank every image"}),
    Input("senses", "WordNet senses", 'WordNet senses to force, e.g. "crane=crane.n.04" (comma-separated).',
          "senses", "", on("api:classify", "cli", "link:classify", "api:map", "cli:map"), cli_flag="--sense",
          cli_repeat=True,
          metavar="CLASS=SENSE", defaults={"cli": None},
          cli_help="the WordNet sense of a class, e.g. crane=crane.n.04 or crane=n03126707 (repeatable)",
          helps={"cli:evaluate": "the WordNet sense of a class (repeatable)"}),
    Input("model", "Model: a preset, or an open_clip name and tag (e.g. 'ViT-B-32 laion2b_s34b_b79k', "
          "'hf-hub:ORG/REPO')", 'another model to use: a preset id or "ARCH TAG" (empty: the server\'s model).',
          "model", "", on("api", "page:classify", "link:classify", "api:map")),
    Input("low_confidence", "Which images are uncertain (the hierarchy re-ranks them)",
          'which images count as uncertain: "binary", or a rule such as "s_t<0.6".', "rule", "binary",
          on("api", "cli", "page"), defaults={"cli": None}, page_area="advanced", metavar="RULE",
          choices=(("binary rule: prompt groups or flip disagree (the paper's)", "binary"),
                   ("S_T below 0.6 (share of the 80 templates agreeing)", "s_t<0.6"),
                   ("S_B below 0.5 (share of the views agreeing)", "s_b<0.5")),
          info="or type a rule such as s_t<0.7",
          cli_help="which images count as uncertain (the hierarchy re-ranks them): 'binary' (O_T or O_B, "
                   "default) or a score below a threshold, 's_t<0.6' or 's_b<0.5' (the paper's Table 5)"),
    Input("descriptors", "Descriptors", 'descriptors for dclip and cupl: DCLIP\'s JSON, or "class: d; d" lines.',
          "text", "", on("api", "cli"), defaults={"cli": None}, cli_file=True, metavar="FILE",
          cli_help="descriptors per class for dclip, cupl and cupl80: the JSON object DCLIP and CuPL publish "
                   "({class: [descriptor, ...]}), or lines 'class: descriptor; descriptor'"),
    Input("compare_model", "Compare with a second model (side by side; both must fit the server's memory)",
          'a second model to run the same request on (empty or "none": no comparison).', "model", "",
          on("api:classify", "page:classify")),
    Input("support", "A .zip of labelled examples of your classes: one folder per class, or images with a "
          "labels.csv (never the images you classify)", "a .zip of labelled examples for the few-shot methods (one "
          "folder per class, or a labels.csv).", "file", None, on("api", "cli", "page:classify"), metavar="FOLDER|ZIP",
          helps={"evaluate": "a .zip of labelled examples for the few-shot methods, separate from the evaluated "
                             "set."},
          cli_help="few-shot (tip, coop, gda, linear-probe) and the shots curve: labelled examples of the classes, "
                   "an ImageFolder, a folder with labels.csv, a CSV of path,label or a zip of one; never the images "
                   "scored (an identical file is left out and reported)"),
    Input("shots", "Shots per class", "the shots curve: examples per class to draw from support for the linear "
          'probe, GDA and Tip-Adapter, e.g. "1,2,4,8,16" (empty: no curve; report.json\'s shots_curve).', "text", "",
          on("api:evaluate"), after_options=True),
    Input("separate_modalities", "Centre images and texts apart (remove the modality gap)",
          "centre the images and the texts each on its own mean before projecting (removes CLIP's modality gap: "
          "images and texts sit in two separate regions of its space).", "flag", False,
          on("api:map", "cli:map", "page:map"), after_options=True,
          info="CLIP puts images and texts in two separate regions (the modality gap): centring each on its own "
               "mean shows where an image sits among the texts."),
    Input("seeds", "Draws per shot count", "draws per shot count for the curve's spread (1 to 10).", "whole", 3,
          on("api:evaluate"), low=1, high=10, after_options=True),
    # Added later than the others: after them (positions kept).
    Input("sus_pool", "Find examples in my photos, no labels needed: a .zip of unlabeled photos (never the images "
          "you classify)", "a .zip (or folder) of unlabeled photos in which SuS finds each class's examples, the k "
          "nearest to the class's text, as the few-shot methods' support set (SuS-X; instead of support).", "pool",
          None, on("api", "cli", "page:classify"), after_options=True, metavar="FOLDER|ZIP",
          cli_help="SuS (SuS-X's name-only transfer): a folder or zip of unlabeled photos; each class takes the "
                   "--sus-k nearest to its text as its examples, the support set of tipx, tip, gda, linear-probe and "
                   "coop (instead of --support); never the images scored"),
    Input("sus_k", f"Examples found per class (1 to {MAX_SUS_K})", f"SuS: pool images taken per class (1 to "
          f"{MAX_SUS_K}).", "whole", SUS_K, on("api", "cli", "page:classify"), low=1, high=MAX_SUS_K,
          after_options=True, cli_help=f"SuS: pool images per class, 1 to {MAX_SUS_K} (default %(default)s)"),
]
# What prepare_request and the surfaces read by name; any other input of the table is carried
# to the request as it was checked (``Request.extra``) and recorded in a report's settings.
NAMED = frozenset(i.name for i in _TABLE)


def inputs(surface: str, endpoint: str, after_options: bool | None = None) -> list[Input]:
    """The inputs a surface offers on an endpoint, in the table's order (the API's positions)."""
    return [i for i in _TABLE if i.offered(surface, endpoint)
            and (after_options is None or i.after_options == after_options)]


def find(name: str, surface: str, endpoint: str) -> Input | None:
    return next((i for i in inputs(surface, endpoint) if i.name == name), None)


def extra(surface: str, endpoint: str) -> list[Input]:
    """The inputs no code reads by name (added to the table since): carried as they are."""
    return [i for i in inputs(surface, endpoint) if i.name not in NAMED]


def is_extra(name: str) -> bool:
    return name not in NAMED and any(i.name == name for i in _TABLE)


def check_extra(values: Mapping[str, Any]) -> dict[str, Any]:
    """Extra inputs by name (``is_extra``), each checked by its declaration."""
    known = {i.name: i for i in _TABLE if i.name not in NAMED}
    return {name: known[name].check(value) for name, value in values.items()}


def checked(values: Mapping[str, Any], endpoint: str) -> dict[str, Any]:
    """Raw API arguments by name, each checked by its declaration: the type it must have, said in
    words, never guessed (None stays None: the request's default)."""
    declared = {i.name: i for i in inputs("api", endpoint)}
    return {name: declared[name].check(value) for name, value in values.items()}


def check_names(values: Mapping[str, Any], where: str) -> None:
    """Refuse, before anything is read or loaded, a keyword that is neither an input of this
    table nor a method's option offered ``where`` (``prepare_request`` routes them)."""
    from ..strategies import check_option_names      # the methods need PyTorch; the command line's help does not

    check_option_names({k: v for k, v in values.items() if not is_extra(k)}, where)


def register(item: Input) -> Callable[[], None]:
    """Add an input to the table (after the others); returns what removes it again."""
    if any(i.name == item.name for i in _TABLE):
        raise ValueError(f"an input named {item.name!r} exists")
    _TABLE.append(item)
    return lambda: _TABLE.remove(item)
