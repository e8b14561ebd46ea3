"""What one request may ask for. Past a limit the request is refused with a message saying which
limit, its value and what to do; nothing is cut silently.

Every limit has a default, an environment variable (read when zsdemo is imported: the library,
the CLI and the app) and an app flag (``python app.py --max-images 16``). The table in docs/limits-and-safety.md is
this module's ``LIMITS_INFO``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from .errors import ZsdemoError


@dataclass(frozen=True)
class LimitInfo:
    name: str
    default: int
    what: str

    @property
    def env(self) -> str:
        return "ZSDEMO_MAX_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--max-" + self.name.replace("_", "-")


LIMITS_INFO: tuple[LimitInfo, ...] = (
    LimitInfo("upload_mb", 50, "size of one image file or upload, in MB (the app's upload limit too)"),
    LimitInfo("images", 64, "images per classification request"),
    LimitInfo("megapixels", 50, "pixels per image, in millions (read from the header, before decoding)"),
    LimitInfo("classes", 10_000, "class names per request"),
    LimitInfo("classname_chars", 1_000, "characters per class name"),
    LimitInfo("class_chars", 300_000, "characters of all class names of a request together"),
    LimitInfo("prompts", 100_000, "text prompts per request: classes x templates of the selected strategies "
                                  "(CLIP-80 counts 80; the consistency check adds CLIP-80)"),
    LimitInfo("wordnet_classes", 1_000, "class names read in WordNet per request (hierarchy strategies, /wordnet)"),
    LimitInfo("templates", 100, "custom templates per request"),
    LimitInfo("tpt_views", 256, "TPT views per image (the original included)"),
    LimitInfo("tpt_class_images", 2_000, "TPT: images x classes per request (each class costs a forward and "
                                         "backward pass of the text model, per image)"),
    LimitInfo("eval_images", 2_000, "images in one evaluation upload (app; the CLI has no limit)"),
    LimitInfo("zip_files", 20_000, "entries in an uploaded zip"),
    LimitInfo("zip_mb", 2_048, "uncompressed size of an uploaded zip, in MB"),
)


@dataclass
class Limits:
    upload_mb: int
    images: int
    megapixels: int
    classes: int
    classname_chars: int
    class_chars: int
    prompts: int
    wordnet_classes: int
    templates: int
    tpt_views: int
    tpt_class_images: int
    eval_images: int
    zip_files: int
    zip_mb: int

    @property
    def upload_bytes(self) -> int:
        return self.upload_mb * 2**20

    def set(self, name: str, value: object) -> None:
        """Change one limit; a value that is not a whole number of at least 1 is refused."""
        if name not in {f.name for f in fields(self)}:
            raise ZsdemoError(f"Unknown limit {name!r}; the limits are: {', '.join(i.name for i in LIMITS_INFO)}.")
        try:
            number = int(str(value).strip().replace("_", ""))
        except ValueError:
            number = 0
        if number < 1:
            info = next(i for i in LIMITS_INFO if i.name == name)
            raise ZsdemoError(f"Limit {name} ({info.env} / {info.flag}) must be a whole number of at least 1 "
                              f"(got {value!r}).")
        setattr(self, name, number)


def _from_env() -> tuple[Limits, list[str]]:
    limits = Limits(**{i.name: i.default for i in LIMITS_INFO})
    problems = []
    for info in LIMITS_INFO:
        raw = os.environ.get(info.env)
        if raw is not None and raw.strip():
            try:
                limits.set(info.name, raw)
            except ZsdemoError as e:
                problems.append(str(e))
    return limits, problems


# The process-wide limits. A bad environment value keeps the default here (importing must not
# fail) and is reported by ``check_environment``, which the CLI and the app call first.
LIMITS, _ENV_PROBLEMS = _from_env()


def check_environment() -> None:
    if _ENV_PROBLEMS:
        raise ZsdemoError(" ".join(_ENV_PROBLEMS))
