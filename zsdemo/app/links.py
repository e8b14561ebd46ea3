"""A lesson as a link: the Classify tab's inputs in the address, and back.

``link_query`` writes the inputs a lesson needs (classes, strategies, templates, senses, top-k,
model, the example photos shown, each method's options) as a query string; ``from_query`` reads
one back, each value checked as the API checks it, so that a hostile address can set nothing an
API call could not, and no message names anything on the server. The built-in lessons
(``LESSONS``) are such links, with what to say and what to point at.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import urlencode

from ..core import arguments
from ..core.constants import MAX_TOP_K
from ..core.errors import InputError, ZsdemoError
from ..core.resources import EXAMPLE_IMAGES
from ..prompts.classnames import PRESETS as CLASS_PRESETS
from ..prompts.classnames import parse_classnames
from ..prompts.templates import parse_templates
from ..run import inputs as request_inputs
from ..strategies import STRATEGIES, groups, named_options
from ..strategies import options as declared
from ..wordnet.senses import parse_overrides

MAX_QUERY = 20_000            # characters of a query string read at all
MAX_PARAMETERS = 64
# Bytes of an address's query string (and of its path) that reach Gradio at all: it parses every
# address with httpx, which refuses one over 65,536 characters (a server error, no page).
MAX_ADDRESS = 32_768
TOO_LONG = "zsdemo-link-too-long"       # the query an over-long one is replaced with
PAGE_FIELDS = ("preset",)     # the page's own, beside the request's inputs a link carries (run/inputs.py)


def fields() -> tuple[str, ...]:
    """The link's parameters: the request's inputs declared for links, and the page's own."""
    return (*(i.name for i in request_inputs.inputs("link", "classify")), *PAGE_FIELDS)


@dataclass(frozen=True)
class Lesson:
    id: str
    title: str
    query: dict[str, str]
    say: str                  # what to say, and what to point at (Markdown)
    tab: str = "classify"     # the tab the lesson opens on ("live": it needs a camera)
    embedding_map: bool = False   # opens the embedding map, drawn after each Classify
    pool: bool = False            # loads the shipped unlabeled photos as the SuS pool (core/resources.SUS_POOL)


LESSONS = (
    Lesson("crane", "Crane: a bird, or a machine?",
           {"images": "rocket.jpg", "classes": "crane, heron, stork, excavator, bulldozer, rocket",
            "strategies": "name,clip80,hierarchy"},
           "A launch tower looks like a construction crane, and *crane* is also a bird. Classify, then open the "
           "WordNet panel: the hierarchy read *crane* next to heron and stork, so it took the bird "
           "(`crane.n.05`, parent *wading bird*). Point at its parent and children. In the sense picker choose "
           "`crane.n.04` (the machine) and re-run: the parent becomes *lifting device*, the phrases change, and "
           "the other classes keep their senses. Ask: which reading did the picture need?"),
    Lesson("cats", "Fine-grained cats",
           {"images": "cat.png", "classes": "tabby cat, tiger cat, Persian cat, Siamese cat, Egyptian Mau, lynx, tiger",
            "strategies": "name,photo,clip80,hierarchy"},
           "Seven kinds of cat, one photo. Point at the bars: the classes are close, so the probabilities are "
           "spread thin, and the strategies may disagree (the summary marks a changed top-1 with ≠). Then the "
           "consistency panel: do the prompt groups and the flipped image agree? Where they do not, the image "
           "is *uncertain* and the hierarchy re-ranks it with each breed's parent."),
    Lesson("prompt", "What the prompt does",
           {"images": "coffee.png", "classes": "coffee mug, espresso, cup, teapot, soup bowl, plate",
            "strategies": "name,photo,clip7,clip80,custom",
            "templates": "a close-up photo of a {}.\na drawing of a {}."},
           "The same image and classes, five ways of asking. *Name only* is the bare word; *Single template* says "
           "'a photo of a {}.'; CLIP-7 and CLIP-80 average many templates; *Custom* uses the two templates in the "
           "box. Point at how the bars change from card to card, and at the summary's ≠ marks: the words around "
           "the class name move the answer. Then the *embedding map* under the bars (it opens with this lesson "
           "and is drawn after each Classify): each class's 80 CLIP-80 prompts spread into a cloud of small dots, "
           "and the large marker at the cloud's centre is the ensemble the strategy classifies with; the square, "
           "the bare name, sits off to one side. Type another class (a *saucer*, say) and Classify again: a new "
           "cloud and its centre appear. Tick *Centre images and texts apart* to take away the gap between "
           "pictures and words, and ask which centre the photo is nearest.", embedding_map=True),
    Lesson("unsure", "When CLIP is unsure",
           {"images": "astronaut.png", "classes": "astronaut, pilot, scuba diver, firefighter, nurse, robot",
            "strategies": "name,photo,clip80,hierarchy"},
           "Eileen Collins in a flight suit: astronaut or pilot? Point at the verdict first: the consistency check "
           "asks four prompt groups and ten views of the image. Open the views: which ones change the answer "
           "(✗)? An image whose answer moves when it is flipped or reworded is one to distrust; the hierarchy "
           "re-ranks exactly those."),
    Lesson("sus", "Name-only: let CLIP find its own examples",
           {"images": "cat.png,coffee.png,rocket.jpg,astronaut.png",
            "classes": "cat, coffee mug, rocket, astronaut, motorcycle, clock, moon, coins, galaxy, horse, flower, "
                       "temple", "strategies": "name,clip80,tipx"},
           "No label anywhere. The lesson loads 20 photos shipped with zsdemo (a motorcycle twice, a wall clock, "
           "the moon, Greek coins, the Hubble deep field, a horse, a flower, a temple, textures, a page of text) "
           "as *your photos to find examples in*, under Few-shot. Classify: for each class the model takes the four "
           "photos nearest to the class's text as its examples, without anyone labelling them. Open *What the "
           "model found in your photos* under the methods: *motorcycle* and *clock* find their own pictures; "
           "*cat* and *rocket* find nothing close (the notes say so), so their examples are just the least "
           "unlike photos. Then TIP-X's panel: how much of each score comes from CLIP-80, and how much from "
           "those found examples. Ask: what would a better pile of photos change?", pool=True),
    Lesson("hold", "Hold it up (a camera)",
           {"classes": "apple, banana, orange, coffee mug, cup, water bottle, pen, pencil, book, smartphone, "
                       "keyboard, scissors", "strategies": "name,photo,clip80"},
           "The Live camera tab opens. Press Record and hold up one object at a time, close to the camera: the "
           "top-1 of each strategy follows what is in the picture, with no training, from names typed a second "
           "ago. Point at the small square under the bars: what the model sees is a cropped 224-pixel square, so "
           "an object at the edge of the picture is lost. Pause on an object and press *Send this frame to "
           "Classify*: the WordNet panel names its parent (a banana is an *edible fruit*, a pen a *writing "
           "implement*) and the consistency check says whether the answer is stable.", tab="live"),
    Lesson("reads", "CLIP reads (a camera)",
           {"classes": "apple, iPod, pen, cup, banana", "strategies": "name,photo,clip80"},
           "The Live camera tab opens. Hold up an apple (or any fruit in the list): the answer is *apple*. Now "
           "hold a sheet of paper with the word *iPod* written large next to it: the answer moves toward the "
           "word. CLIP learned from pictures with captions, so it learned to read, and a written word can "
           "outweigh the object (OpenAI's multimodal neurons study showed exactly this apple). Try other words "
           "from the class list; ask the class what that means for a model used to sort photos.", tab="live"),
)
BY_ID = {lesson.id: lesson for lesson in LESSONS}


def lesson_link(lesson: Lesson, present: bool = False) -> str:
    return "?" + urlencode({"lesson": lesson.id, **({"present": "1"} if present else {})})


def link_query(values: Mapping[str, Any]) -> str:
    """The inputs (by the page's names) as a query string: what differs from nothing, and the
    example photos only when every image shown is one of them."""
    out: dict[str, str] = {}
    for name in ("classes", "templates", "model"):
        text = values.get(name)
        if isinstance(text, str) and text.strip():
            out[name] = text.strip()
    senses = values.get("senses")
    if isinstance(senses, Mapping) and senses:
        out["senses"] = ",".join(f"{k}={v}" for k, v in senses.items())
    strategies = values.get("strategies")
    if isinstance(strategies, (list, tuple)) and strategies:
        out["strategies"] = ",".join(str(s) for s in strategies)
    if isinstance(values.get("top_k"), (int, float)):
        out["top_k"] = str(int(values["top_k"]))
    for item in request_inputs.extra("link", "classify"):     # declared since: carried when not the default
        value = values.get(item.name)
        if value is not None and value != item.default_for("page", "classify"):
            out[item.name] = str(value).lower() if isinstance(value, bool) else str(value)
    photos = [_photo(p) for p in values.get("gallery") or []]
    if photos and all(photos):
        out["images"] = ",".join(photos)
    for name, (key, field_name, opt, default) in named_options("page").items():
        value = values.get(name)
        shown = opt.shown(default) if opt.shown is not None else default
        if value is not None and value != shown and value != default:
            out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return urlencode(out)


def _photo(item: Any) -> str | None:
    """The example photo's name when ``item`` is one (the page holds Gradio's copy of it, under
    the same name and with the same bytes), else None: an uploaded photo never goes into a link."""
    path = item[0] if isinstance(item, (list, tuple)) and item else item
    name = str(path).replace("\\", "/").rsplit("/", 1)[-1] if path else ""
    example = EXAMPLE_IMAGES / name
    if not name or not example.is_file():
        return None
    try:
        if not os.path.isfile(path) or os.path.getsize(path) != example.stat().st_size:
            return None           # also keeps a forged path (a device, a huge file) from being read
        with open(path, "rb") as f:
            same = hashlib.sha256(f.read()).hexdigest() == _digest(name)
    except OSError:
        return None
    return name if same else None


@functools.lru_cache(maxsize=32)
def _digest(name: str) -> str:
    return hashlib.sha256((EXAMPLE_IMAGES / name).read_bytes()).hexdigest()


def from_query(params: Mapping[str, str] | Sequence[tuple[str, str]]) -> tuple[dict[str, Any], list[str]]:
    """The page's inputs (by name) from a query string's parameters, and what was refused, in
    words. Every value is checked as the API checks it; nothing refused is echoed back whole."""
    items = list(params.items()) if isinstance(params, Mapping) else list(params)
    too_long = any(k == TOO_LONG for k, _ in items)
    if too_long or sum(len(k) + len(v) for k, v in items) > MAX_QUERY or len(items) > MAX_PARAMETERS:
        return {}, [f"The link is too long (at most {MAX_QUERY:,} characters and {MAX_PARAMETERS} settings); "
                    "nothing was read from it."]
    given = dict(items)
    lesson = BY_ID.get(given.pop("lesson", ""), None) if "lesson" in given else None
    problems: list[str] = []
    if "lesson" in dict(items) and lesson is None:
        problems.append(f"There is no built-in lesson by that name; the lessons are: {', '.join(BY_ID)}.")
    merged = {**(lesson.query if lesson else {}), **given}
    merged.pop("present", None)                  # the page's own switch reads it
    for name in [n for n in merged if n.startswith("__")]:
        merged.pop(name)                         # Gradio's own (?__theme=dark)
    values: dict[str, Any] = {}
    options, known = named_options("page"), fields()
    for name, raw in merged.items():
        try:
            if name in known:
                values.update(_field(name, raw))
            elif name in options:
                values[name] = _option(name, raw, options[name])
            else:
                problems.append(f"The link's setting {name[:40]!r} is not one this page has; it was left out.")
        except ZsdemoError as e:
            problems.append(f"The link's {name[:40]}: {e.for_page()}")
    return values, problems


def _field(name: str, raw: str) -> dict[str, Any]:
    declared_input = request_inputs.find(name, "link", "classify")
    if declared_input is not None and request_inputs.is_extra(name):
        return {name: declared_input.check(_typed(declared_input.kind, raw))}
    if name == "classes":
        return {"classes": "\n".join(parse_classnames(raw).names)}
    if name == "strategies":
        ids = [s.strip().lower() for s in raw.split(",") if s.strip()]
        unknown = [s for s in ids if s not in STRATEGIES]
        if unknown or not ids:
            raise InputError(f"unknown strategy {unknown[0][:40]!r}" if unknown else "no strategy given")
        return {"strategies": ids}
    if name == "templates":
        return {"templates": "\n".join(parse_templates(raw))}
    if name == "senses":
        return {"senses": parse_overrides(raw)}
    if name == "top_k":
        return {"top_k": arguments.whole_number(_number(raw), "top-k", 1, MAX_TOP_K)}
    if name == "model":
        return {"model": raw}            # checked by choices.model_choice, with the page's config
    if name == "preset":
        if raw not in CLASS_PRESETS:
            raise InputError("not one of the class-name presets")
        return {"preset": raw}
    photos = [p.strip() for p in raw.split(",") if p.strip()]
    if not photos or len(photos) > 16 or any("/" in p or "\\" in p or not (EXAMPLE_IMAGES / p).is_file()
                                             for p in photos):
        raise InputError("images in a link can only be the page's example photos, by name "
                         f"({', '.join(sorted(p.name for p in EXAMPLE_IMAGES.iterdir()))})")
    return {"gallery": [str(EXAMPLE_IMAGES / p) for p in photos]}


def _option(name: str, raw: str, spec: tuple[str, str, Any, Any]) -> Any:
    key, field_name, opt, default = spec
    value = _typed(opt.kind, raw)
    declared.parse(groups()[key].settings, {field_name: value}, served=True)     # the API's check
    return value


def _typed(kind: str, raw: str) -> Any:
    """A link's text as the value an input of that kind takes (then checked as the API checks it)."""
    if kind in ("whole", "number"):
        return _number(raw)
    if kind == "flag":
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return raw


def _number(raw: str) -> float | int:
    try:
        number = float(raw)
    except ValueError:
        raise InputError(f"{raw[:20]!r} is not a number") from None
    return int(number) if number.is_integer() else number


class LongAddresses:
    """ASGI middleware: an address whose query string is over ``MAX_ADDRESS`` bytes is sent to the
    same page with the query ``TOO_LONG`` instead (a GET is redirected, so that the browser's own
    later requests, which repeat its address, stay short; any other request reaches the app with
    that query), and such a link opens the page with "The link is too long" (``from_query``). A
    path that long is answered 414 in words. Either way, never a server error."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            if len(scope.get("raw_path") or scope.get("path", "").encode()) > MAX_ADDRESS and scope["type"] == "http":
                await text_response(send, 414, f"This address is too long: at most {MAX_ADDRESS:,} characters are "
                                                "read. Open the page without it.")
                return
            if len(scope.get("query_string") or b"") > MAX_ADDRESS:
                if scope["type"] == "http" and scope.get("method") == "GET":
                    # A relative reference: the same path, whatever prefix a proxy serves it under.
                    await text_response(send, 303, "The link is too long.", [(b"location", f"?{TOO_LONG}=1".encode())])
                    return
                scope = {**scope, "query_string": f"{TOO_LONG}=1".encode()}
        await self.app(scope, receive, send)


async def text_response(send: Any, status: int, text: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """A plain-text ASGI answer in words (no page, no JSON): what a middleware says when it refuses."""
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})
