"""zsdemo: zero-shot image classification with CLIP-style models, strategy by strategy.

The public API (everything else is the app's and the command line's machinery)::

    import zsdemo

    model = zsdemo.load_model("openai-b32")     # a preset, or an open_clip name with a tag
    result = zsdemo.classify(model, ["cat.jpg"], "cat, dog, lynx", strategies="name,clip80,hierarchy")
    best = result.images[0].strategies["clip80"].top1           # a Prediction: class_name, prob
    data = zsdemo.open_labelled("my_images/")
    report = zsdemo.evaluate(model, data, zsdemo.evaluation_request(data, ["name", "clip80"]))

Names are loaded on first use, so ``import zsdemo`` (and ``zsdemo --help``) does not import
PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute)
_EXPORTS: dict[str, tuple[str, str]] = {
    "load_model": ("engine.models", "get_model"),
    "classify": ("run.pipeline", "classify"),
    "evaluate": ("run.evaluation", "evaluate"),
    "evaluation_request": ("run.evaluation", "evaluation_request"),
    "open_labelled": ("data.labelled", "open_labelled"),
    "write_report": ("run.report", "write_report"),
    "STRATEGIES": ("strategies", "STRATEGIES"),
    "LoadedModel": ("engine.models", "LoadedModel"),
    "ClassificationResult": ("engine.results", "ClassificationResult"),
    "ImageResult": ("engine.results", "ImageResult"),
    "StrategyResult": ("engine.results", "StrategyResult"),
    "Prediction": ("engine.results", "Prediction"),
    "EvaluationReport": ("run.evaluation", "EvaluationReport"),
    "ZsdemoError": ("core.errors", "ZsdemoError"),
    "InputError": ("core.errors", "InputError"),
    "ImageError": ("core.errors", "ImageError"),
    "ModelLoadError": ("core.errors", "ModelLoadError"),
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'zsdemo' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value          # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
