"""open_clip's zero-shot data (ImageNet class names, CLIP's templates) without importing open_clip.

Importing open_clip imports torch and takes seconds; these are lists of strings. They are read
from open_clip's own ``zero_shot_metadata.py`` (plain data, no imports), executed on its own, so
that ``zsdemo --help`` and the parts that only need the names answer at once. Should open_clip
ever move that file, the normal import is the fallback.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

NAMES = ("IMAGENET_CLASSNAMES", "OPENAI_IMAGENET_TEMPLATES", "SIMPLE_IMAGENET_TEMPLATES")


def _load() -> Any:
    spec = importlib.util.find_spec("open_clip")     # finds the package without running it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "zero_shot_metadata.py"
        try:
            source = path.read_text(encoding="utf-8")
        except OSError:
            continue
        values: dict[str, Any] = {}
        exec(compile(source, str(path), "exec"), values)   # noqa: S102 (the installed package's own file)
        if all(n in values for n in NAMES):
            return SimpleNamespace(**{n: values[n] for n in NAMES})
    import open_clip
    return SimpleNamespace(**{n: getattr(open_clip, n) for n in NAMES})


_DATA = _load()
IMAGENET_CLASSNAMES: tuple[str, ...] = tuple(_DATA.IMAGENET_CLASSNAMES)
OPENAI_IMAGENET_TEMPLATES: tuple = tuple(_DATA.OPENAI_IMAGENET_TEMPLATES)
SIMPLE_IMAGENET_TEMPLATES: tuple = tuple(_DATA.SIMPLE_IMAGENET_TEMPLATES)
