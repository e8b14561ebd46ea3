"""What a few-shot method learned, as a safetensors file: CoOp's context, the linear probe's and
GDA's weights.

Tensors and text metadata only (safetensors never unpickles anything): a format tag naming the
method, the identity of the model whose features it was learned on, and the method's own
settings and numbers as JSON. Reading checks the file before trusting it; each method then
checks the shapes it expects and says what to do.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..core.errors import InputError
from ..core.files import check_writable, read_head
from ..core.jsontext import parse_json
from .models import LoadedModel

MAX_HEADER = 1 << 20         # bytes of a safetensors header: ours are a few kB
MAX_VALUES = 1 << 26         # numbers in one file (256 MB of float32): a head is far smaller
FLOATS = ("F16", "BF16", "F32", "F64")

# What a metadata value must be, once read back from its JSON text, and that in words.
KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "texts": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of text"),
    "numbers": (lambda v: isinstance(v, list) and all(_is_number(x) for x in v), "a list of numbers"),
    "counts": (lambda v: isinstance(v, dict) and all(isinstance(x, int) and not isinstance(x, bool)
                                                      for x in v.values()), "a count per class"),
    "number": (lambda v: _is_number(v), "a number"),
    "flag": (lambda v: isinstance(v, bool), "true or false"),
    "object": (lambda v: isinstance(v, dict), "an object"),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_save(path: str | Path, what: str, format: str) -> None:
    """Refuse, before any work, a save that could not be written or would destroy what zsdemo did
    not write: anything but a new name or a regular file that is already a save of ``format``."""
    check_writable(path, what)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise InputError(f"Cannot save {what} to {str(path)!r}: {e.strerror or e}.") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        kind = "a link" if stat.S_ISLNK(st.st_mode) else "not a regular file (a device, pipe or socket)"
        raise InputError(f"Cannot save {what} to {str(path)!r}: it is {kind}, and a save only writes a new file "
                         "or replaces an earlier save. Choose another name.")
    try:
        saved = _header(path, what)[1].get("format")
    except InputError:
        saved = None
    if saved != format:
        raise InputError(f"Cannot save {what} to {str(path)!r}: that file exists and is not {what} saved by zsdemo, "
                         "so it was left as it is. Choose another name, or remove that file yourself.")


def save(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any], what: str,
         loaded: LoadedModel, format: str) -> None:
    """Write ``tensors`` with ``meta`` (values become JSON text) and the model's identity: into a
    new file beside ``path``, then renamed over it, so an interrupted save leaves the old file whole."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    check_save(path, what, format)          # again: the disk may have changed since the start
    text = {"format": format, "model": loaded.identity,
            **{k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}}
    target = Path(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=".partial", dir=target.parent or ".")
    os.close(fd)
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, temporary, metadata=text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)          # what a plain new file would get, not mkstemp's 0600
        os.replace(temporary, target)
    except (OSError, SafetensorError) as e:     # what changed since the check (a full disk, say)
        raise InputError(f"Cannot save {what} to {str(path)!r}: "
                         f"{getattr(e, 'strerror', None) or str(e)[:200]}.") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _header(path: str | Path, what: str) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The tensors' entries (dtype, shape) and the metadata of a safetensors file, from its header
    alone: a regular file is required (a FIFO would block), and no tensor is read."""
    head = read_head(path, f"Cannot read {what} {str(path)!r}", 8 + MAX_HEADER)
    refused = InputError(f"Cannot read {what} {str(path)!r}: not a safetensors file saved by zsdemo.")
    if len(head) < 8:
        raise refused
    size = int.from_bytes(head[:8], "little")
    if size > MAX_HEADER or len(head) < 8 + size:
        raise refused
    try:
        header = json.loads(head[8:8 + size])
    except ValueError:
        raise refused from None
    if not isinstance(header, dict):
        raise refused
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise refused
    entries = {}
    for name, entry in header.items():
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise refused
        entries[name] = {"dtype": entry.get("dtype"), "shape": tuple(shape)}
    return entries, meta


def read(path: str | Path, what: str, expected: dict[str, Sequence[int | None]], flag: str,
         refusal: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a safetensors file saved for ``expected`` (name -> shape, None
    where any size goes), checked from the header before a tensor is read; InputError otherwise
    (``refusal``, or a sentence naming the tensors expected)."""
    entries, meta = _header(path, what)
    shapes = " and ".join(f"{name!r} [{', '.join('n' if n is None else str(n) for n in shape)}]"
                          for name, shape in expected.items())
    wrong = InputError(refusal or f"{str(path)!r} is not {what}: expected the tensors {shapes} saved by zsdemo "
                                  f"({flag}).")
    return _tensors(path, what, entries, expected, wrong), meta


def _tensors(path: str | Path, what: str, entries: dict[str, dict[str, Any]],
             expected: dict[str, Sequence[int | None]], wrong: InputError) -> dict[str, torch.Tensor]:
    """The ``expected`` tensors, once the header's ``entries`` match them (names, float dtypes,
    shapes, a bounded size); ``wrong`` otherwise, and for any value that is not finite."""
    from safetensors import SafetensorError, safe_open

    if set(entries) != set(expected) or sum(math.prod(e["shape"]) for e in entries.values()) > MAX_VALUES:
        raise wrong
    for name, shape in expected.items():
        got = entries[name]
        if got["dtype"] not in FLOATS or len(got["shape"]) != len(shape) \
                or any(n is not None and n != m for n, m in zip(shape, got["shape"])):
            raise wrong
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {name: f.get_tensor(name) for name in expected}
    except (OSError, SafetensorError, ValueError) as e:
        raise InputError(f"Cannot read {what} {str(path)!r}: not a safetensors file saved by "
                         f"zsdemo ({str(e)[:120]}).") from None
    if not all(bool(torch.isfinite(t).all()) for t in tensors.values()):
        raise wrong
    return tensors


def check_model(meta: dict[str, str], loaded: LoadedModel, path: str | Path, what: str, again: str) -> None:
    """Refuse what was learned on another model's features (``again``: how to make a new one)."""
    if meta.get("model") != loaded.identity:
        raise InputError(f"{what[0].upper()}{what[1:]} {str(path)!r} was learned with another model "
                         f"({str(meta.get('model'))[:200]!r}); this one is {loaded.identity!r}. Load it with that "
                         f"model, or {again}.")


def field(meta: dict[str, str], key: str, path: str | Path, what: str, kind: str) -> Any:
    """One metadata value back from its JSON text, of ``kind`` (``KINDS``), or InputError naming the damage."""
    try:
        value = parse_json(meta[key], f"The metadata of {what} {Path(path).name!r}")
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{what[0].upper()}{what[1:]} {str(path)!r} has damaged metadata ({e}).") from None
    check, words = KINDS[kind]
    if not check(value):
        raise InputError(f"{what[0].upper()}{what[1:]} {str(path)!r} has damaged metadata ({key!r} is not {words}).")
    return value


def save_linear(path: str | Path, weights: torch.Tensor, bias: torch.Tensor, classes: tuple[str, ...],
                meta: dict[str, Any], what: str, loaded: LoadedModel, format: str) -> None:
    """A linear classifier over the model's features: weights [D, C], bias [C], its classes in order."""
    save(path, {"weights": weights, "bias": bias}, {"classes": list(classes), **meta}, what, loaded, format)


def read_linear(path: str | Path, loaded: LoadedModel, classes: tuple[str, ...], format: str, what: str,
                flag: str, again: str) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
    """(weights, bias, metadata) of a file ``save_linear`` wrote for ``format``, refused unless it
    is one, of this model, for exactly ``classes`` in their order (a linear classifier scores
    only the classes it was fitted on)."""
    entries, meta = _header(path, what)
    wrong = InputError(f"{str(path)!r} is not {what}: expected the tensors 'weights' [D, C] and 'bias' [C] saved "
                       f"by zsdemo ({flag}).")
    if meta.get("format") != format:
        raise wrong
    check_model(meta, loaded, path, what, again)
    saved = tuple(field(meta, "classes", path, what, "texts"))
    if saved != tuple(classes):
        first = saved[0][:40] if saved else ""
        raise InputError(f"{what[0].upper()}{what[1:]} {str(path)!r} was fitted on other classes ({len(saved)}, "
                         f"e.g. {first!r}): it scores only the classes it was fitted on, in their order. Classify "
                         f"exactly those classes, or {again}.")
    tensors = _tensors(path, what, entries, {"weights": (None, len(classes)), "bias": (len(classes),)}, wrong)
    return tensors["weights"].double(), tensors["bias"].double(), meta

def check_width(weights: torch.Tensor, features: torch.Tensor, what: str) -> None:
    """Refuse a linear classifier whose input size is not the features' (a forged or damaged file:
    the model's identity alone promises the size)."""
    if weights.shape[0] != features.shape[1]:
        raise InputError(f"{what[0].upper()}{what[1:]} takes features of size {weights.shape[0]}; this model's are "
                         f"{features.shape[1]}.")
