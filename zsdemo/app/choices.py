"""What the page and the API offer to choose from (presets, strategies, views, models, WordNet
senses, descriptors), and the model a choice names: checked before anything loads, the served one
loaded or said to be missing in one sentence."""

from __future__ import annotations

import os
from typing import Any

from ..core import arguments
from ..core.errors import InputError, ModelLoadError
from ..core.files import read_text
from ..core.markup import md
from ..engine import models
from ..engine.results import ClassificationResult
from ..engine.views import VIEW_LABELS
from ..prompts.classnames import PRESET_LABELS, parse_classnames, preset_classnames
from ..prompts.classnames import PRESETS as CLASS_PRESETS
from ..prompts.descriptors import MAX_CHARS as DESCRIPTOR_CHARS
from ..prompts.descriptors import parse_descriptors
from ..strategies import STRATEGIES, named_options
from ..wordnet.senses import check_count, check_overrides, class_senses, parse_overrides
from .panels import sense_choices as _sense_choices
from .state import AppConfig


def preset_text(preset: str | None) -> str:
    return "\n".join(preset_classnames(preset)) if preset else ""


def preset_choices() -> list[tuple[str, str]]:
    return [(PRESET_LABELS.get(p, p), p) for p in CLASS_PRESETS]


def strategy_choices() -> list[tuple[str, str]]:
    return [(s.label, s.id) for s in STRATEGIES.values()]


def strategy_legend() -> str:
    """What each strategy does, one line each (the check boxes show only the names)."""
    return "\n".join(f"- **{md(s.label)}**: {md(s.description)}" for s in STRATEGIES.values())


def model_choices(config: AppConfig) -> list[tuple[str, str]]:
    choices = [(p.label, p.id) for p in models.PRESETS.values()]
    if config.model not in models.PRESETS:
        choices.insert(0, (f"{config.model} (server default)", config.model))
    return choices


def options(config: AppConfig) -> dict[str, Any]:
    """What a client may choose from (the API's ``options`` endpoint)."""
    return {
        "default_model": config.model,
        "models": {p.id: p.label for p in models.PRESETS.values()},
        "strategies": {s.id: s.description for s in STRATEGIES.values()},
        "class_presets": {p: PRESET_LABELS.get(p, p) for p in CLASS_PRESETS},
        "views": dict(VIEW_LABELS),
        "method_options": {name: {"method": key, "default": _jsonable(opt.shown(default) if opt.shown else default),
                                  "help": opt.help}
                           for name, (key, _, opt, default) in named_options("api").items()},
    }


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def sense_choices(result: ClassificationResult) -> dict[str, list[tuple[str, str]]]:
    return _sense_choices(result.senses)


def sense_in_use(result: ClassificationResult, classname: str | None) -> str | None:
    """The WordNet sense the run used for a class (what the sense picker must start on)."""
    for s in result.senses:
        if s.get("name") == classname and s.get("chosen"):
            return s["chosen"]["synset"]
    return None


def keep_classes(preset: str | None, current: str | None) -> str:
    """The class box after the preset dropdown fires: a chosen preset's names, else what was typed
    (closing the dropdown without choosing must not empty the box)."""
    return preset_text(preset) if preset else (current or "")


# What the operator can do when the served model cannot be loaded (the page's banner and Classify).
NO_MODEL_ADVICE = ("whoever runs it can point it at a local checkpoint (--model ARCH --pretrained FILE, or "
                   "--model local-dir:FOLDER) or start it with --model tiny-random to see the page work "
                   "(random weights)")


# A Space (Hugging Face sets SPACE_ID) is started by the host, not by a command its owner types.
SPACE_NO_MODEL_ADVICE = ("the Space's owner can set its ZSDEMO_MODEL variable (Settings, Variables and secrets) to a "
                         "preset whose weights the Space preloads (preload_from_hub in README.md), or to tiny-random "
                         "to see the page work (random weights), and restart the Space")


def no_model_advice() -> str:
    return SPACE_NO_MODEL_ADVICE if os.environ.get("SPACE_ID") else NO_MODEL_ADVICE


def no_model(error: ModelLoadError) -> ModelLoadError:
    """The served model could not be loaded, so nothing can be classified: one sentence, the cause
    and what to do, for the page (the command line keeps the loading error itself)."""
    message = f"No model could be loaded on this server ({error.reason.rstrip('. ')}): {no_model_advice()}."
    return ModelLoadError(message, reason=error.reason)


def load_served(config: AppConfig) -> models.LoadedModel:
    """The server's own model; ``no_model`` when it cannot be loaded."""
    try:
        return models.get_model(config.model, config.pretrained, config.device)
    except ModelLoadError as e:
        raise no_model(e) from None


def pick_model(config: AppConfig, choice: str | None) -> models.LoadedModel:
    """The server's model, a preset, or an open_clip spec typed as ``ARCH TAG`` / ``hf-hub:ORG/REPO``."""
    return models.get_model(*model_choice(config, choice), config.device)


def model_choice(config: AppConfig, choice: str | None, what: str = "model") -> tuple[str, str | None]:
    """The (model, pretrained) a visitor's choice names, checked before anything loads.

    Files on the server (checkpoints, ``local-dir:``) can be named only when starting the server:
    a page visitor must not make the server read arbitrary paths. A bare architecture would run
    with random weights (and may be huge): refused unless the operator allowed it.
    """
    choice = arguments.text(choice, what).strip()
    if not choice or choice == config.model:
        return config.model, config.pretrained
    if len(choice) > 300:
        raise ModelLoadError("A model name is at most 300 characters: pick a preset or 'ARCH TAG'.")
    name, _, tag = choice.partition(" ")
    tag = tag.strip() or None
    names_a_file = name.startswith("local-dir:") or (not name.startswith("hf-hub:") and models.looks_like_path(name))
    if names_a_file or (tag is not None and models.looks_like_path(tag)):
        raise ModelLoadError("Models from files on the server can only be chosen by whoever starts the server. "
                             "Pick a preset or an open_clip name with a pretrained tag, e.g. "
                             "'ViT-B-32 laion2b_s34b_b79k'.")
    if name.startswith("hf-hub:"):
        models.hub_repo_id(name)
    elif name not in models.PRESETS and tag is None and not config.allow_random:
        raise ModelLoadError(
            f"{name[:80]!r} has no pretrained tag: it would run with random weights and predict nothing "
            "useful. Pick a preset, or add a pretrained tag such as 'ViT-B-32 laion2b_s34b_b79k' "
            "(open_clip's list of pretrained models names the tags).")
    return name, tag


def model_is_loaded(config: AppConfig, choice: object) -> bool:
    """Whether a run with this model choice finds the model in memory (else it loads it first)."""
    choice = choice.strip() if isinstance(choice, str) else ""
    if not choice or choice == config.model:
        return models.REGISTRY.has(config.model, config.pretrained, config.device)
    name, _, tag = choice.partition(" ")
    return models.REGISTRY.has(name, tag.strip() or None, config.device)


def choose_sense(chosen: dict[str, str] | None, classname: str | None, synset: str | None) -> dict[str, str]:
    """The session's sense choices with one more (or one removed, when ``synset`` is empty)."""
    out = dict(chosen or {})
    if not classname:
        raise InputError("Pick a class first, then one of its WordNet senses.")
    if synset:
        out[classname] = synset
    else:
        out.pop(classname, None)
    return out


def wordnet_senses(names: str, senses: str | dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Senses, parent and children of each class name, as the hierarchy strategies read them."""
    parsed = parse_classnames(arguments.text(names, "classes")).names
    check_count(parsed)
    senses = arguments.text_or_mapping(senses, "senses")
    chosen = check_overrides(parse_overrides(senses), parsed) if senses else {}
    return [c.to_dict() for c in class_senses(parsed, chosen)]


def load_descriptors(config: AppConfig, upload: object, classes: object) -> tuple[str, str]:
    """An uploaded descriptors file (DCLIP/CuPL JSON or 'class: d; d' lines) as the box's text,
    checked against the class box now, and a line saying how much of it matched."""
    path = config.uploads.check(upload, "the descriptors file")
    text = read_text(path, "The descriptors file", DESCRIPTOR_CHARS * 4)
    if len(text) > DESCRIPTOR_CHARS:
        raise InputError(f"The descriptors file has {len(text):,} characters; at most {DESCRIPTOR_CHARS:,} are "
                         "allowed. Keep only the classes you classify.")
    names = parse_classnames(arguments.text(classes, "classes")).names if arguments.text(classes, "classes") else ()
    found = parse_descriptors(text, names)
    if not names:
        return text, "Descriptors loaded; type the class names to match them."
    covered = sum(bool(found.of(c)) for c in names)
    extra = f"; {len(found.unmatched)} entries name other classes (ignored)" if found.unmatched else ""
    return text, f"Descriptors loaded: {found.count():,} for {covered} of the {len(names)} classes{extra}."


def eval_strategy_choices() -> list[tuple[str, str]]:
    """The evaluation tab's strategies: all but those that learn per image (TPT; the CLI offers them)."""
    return [(s.label, s.id) for s in STRATEGIES.values() if not s.tunes_per_image]
