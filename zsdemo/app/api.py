"""The API's endpoints (gradio_client, raw HTTP and MCP tools): ``classify``, ``evaluate``,
``wordnet`` and ``options``.

``classify`` and ``evaluate`` take the request's own arguments (written here) and then every
method's options as the methods declare them (``strategies/options.py``): a new method's
options become arguments, with their defaults, types and descriptions, without an edit here.
Gradio's MCP server names each tool after its function and reads its docstring's ``Args``
(``mcp_tools`` adapts what it makes of files and answers).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import gradio as gr
from gradio.data_classes import FileData

from ..core.limits import LIMITS
from ..run import inputs as request_inputs
from ..strategies import OptionGroup, groups
from . import choices, controls, remote, state, tasks
from .events import api_errors

P = inspect.Parameter
TYPES = {"whole": int, "number": float, "flag": bool, "choice": str, "text": str, "path": str}

CLASSIFY_DOC = """Classify images against class names with CLIP-style prompt strategies, side by side.

Returns the result as JSON (schema zsdemo.classify/1): per image, each strategy's top-k
classes and probabilities, the consistency check, the WordNet senses used; with
compare_model, the same request on that model under "compared"."""


# An API argument's type, by the kind its declaration gives (``run/inputs.py``).
INPUT_TYPES: dict[str, Any] = {"files": list[FileData], "zip": FileData, "file": FileData | None,
                               "pool": FileData | None, "whole": int, "flag": bool}


def request_arguments(endpoint: str, after_options: bool = False) -> list[tuple[P, str]]:
    """The request's own arguments of an endpoint, with their descriptions, from their
    declarations (the table's order: callers by position of earlier versions keep theirs)."""
    out = []
    for item in request_inputs.inputs("api", endpoint, after_options):
        default = item.default_for("api", endpoint)
        given = {} if default is request_inputs.REQUIRED else {"default": default}
        out.append((P(item.name, P.POSITIONAL_OR_KEYWORD, annotation=INPUT_TYPES.get(item.kind, str), **given),
                    item.help_for(endpoint)))
    return out


MAP_DOC = """The embedding map: where the images, each class's name, every prompt of the selected template
strategies, their ensembles and the hierarchy's WordNet parents and children sit in the model's
space, projected together on their top two principal axes (PCA).

Returns JSON (schema zsdemo.embedding_map/1): "points" (each with kind image, name, prompt,
ensemble or wordnet, its class, its text, its strategy, x and y), "explained_variance" (each
axis's share), "separate_modalities", each image's nearest ensemble and single prompt, and notes
(strategies with no prompt points, such as the few-shot heads, are named there)."""


EVALUATE_DOC = """Evaluate strategies on a .zip of labelled images; returns the report as JSON.

The report holds top-1 and top-5 accuracy per strategy, the low-confidence set before and
after WordNet re-ranking, AUROC and coverage of each confidence score, per-class accuracy
and the most confused pairs; with support and shots, the few-shot methods' accuracy against
labelled examples per class beside the zero-shot strategies (shots_curve)."""


def option_arguments(include: Callable[[OptionGroup], bool] = lambda g: True,
                     late: bool = False) -> list[tuple[P, str]]:
    """The methods' options offered to API callers, as parameters with their descriptions
    (``late``: those added after the request's last arguments, which keep their positions)."""
    out = []
    for g in groups().values():
        if not include(g):
            continue
        for _, opt, default in g.fields("api"):
            if opt.late != late:
                continue
            # Text a method parses (its attributes, say) defaults to "": the method's own default.
            value = "" if opt.parse is not None and opt.kind == "text" else default
            low, high = opt.bound("low"), opt.bound("high", served=True)
            span = f" ({low:g} to {high:g})" if opt.kind in ("whole", "number") and None not in (low, high) else ""
            out.append((P(opt.name, P.POSITIONAL_OR_KEYWORD, default=value, annotation=TYPES[opt.kind]),
                        f"{g.label}: {opt.help}{span}."))
    return out


def endpoint(name: str, doc: str, arguments: list[tuple[P, str]], body: Callable[..., Any]) -> Callable[..., Any]:
    """A function named ``name`` with exactly these parameters and an ``Args:`` docstring, which
    hands every argument by name to ``body`` (what Gradio and its MCP server read)."""
    signature = inspect.Signature([p for p, _ in arguments], return_annotation=dict)

    def call(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return body(**bound.arguments)

    call.__name__ = call.__qualname__ = name
    call.__signature__ = signature                      # type: ignore[attr-defined]
    call.__annotations__ = {p.name: p.annotation for p, _ in arguments} | {"return": dict}
    call.__doc__ = doc + "\n\nArgs:\n" + "\n".join(f"    {p.name}: {words}" for p, words in arguments)
    return call


def register(config: state.AppConfig) -> None:
    """The endpoints, inside the page's Blocks."""
    def classify(images: Any, support: Any, views: str, sus_pool: Any = None, **args: Any) -> dict:
        # Raw values: the backend checks every one (a string is not an uploaded file); URLs (what
        # MCP clients send) are downloaded first, with Gradio's SSRF protection; data: URLs decoded.
        with remote.fetched(images, "image", LIMITS.images) as images, \
                remote.fetched_one(support, "support set") as support, \
                remote.fetched_one(sus_pool, "pool") as sus_pool:
            return tasks.classify(config, dict(paths=images, support=support, views=views or None, sus_pool=sus_pool,
                                               **args), answer="api")

    def evaluate(archive: Any, support: Any, strategies: Any, sus_pool: Any = None, **args: Any) -> dict:
        with remote.fetched_one(archive, "zip") as archive, remote.fetched_one(support, "support set") as support, \
                remote.fetched_one(sus_pool, "pool") as sus_pool:
            return tasks.evaluate_api(config, archive, strategies, dict(support=support, sus_pool=sus_pool, **args))

    def embedding_map(images: Any, **args: Any) -> dict:
        with remote.fetched(images or [], "image", LIMITS.images) as images:
            return tasks.map_api(config, dict(paths=images, **args))

    def wordnet(classes: str, senses: str = "") -> list[dict]:
        """How class names map into WordNet: every noun sense, the one used and why, parent, children.
        Returns JSON: a list with one entry per class.

        Args:
            classes: the class names, one per line or comma-separated; each is read in the context of the others.
            senses: WordNet senses to force, e.g. "crane=crane.n.04" (comma-separated).
        """
        return choices.wordnet_senses(classes, senses)

    def options() -> dict:
        """What the other tools accept: model presets, strategy ids, class-name presets, image view ids
        and every method's options with their defaults. Returns JSON."""
        return choices.options(config)

    classify_args = (request_arguments("classify") + option_arguments() + request_arguments("classify", True)
                     + option_arguments(late=True))
    evaluate_args = (request_arguments("evaluate") + option_arguments(controls.evaluable)
                     + request_arguments("evaluate", True) + option_arguments(controls.evaluable, late=True))
    gr.api(api_errors(endpoint("classify", CLASSIFY_DOC, classify_args, classify)),
           api_name="classify", concurrency_id="model")
    gr.api(api_errors(endpoint("evaluate", EVALUATE_DOC, evaluate_args, evaluate)),
           api_name="evaluate", concurrency_limit=1, concurrency_id="evaluate")
    on_map = lambda g: any(s.on_map for s in g.strategies)        # noqa: E731
    map_args = request_arguments("map") + option_arguments(on_map) + request_arguments("map", True)
    gr.api(api_errors(endpoint("embedding_map", MAP_DOC, map_args, embedding_map)),
           api_name="embedding_map", concurrency_id="model")
    gr.api(api_errors(wordnet), api_name="wordnet")
    gr.api(api_errors(options), api_name="options")
