"""What a few-shot method learned, as a safetensors file: CoOp's context, the linear probe's and
GDA's weights.

Tensors and text metadata only (safetensors never unpickles anything): a format tag naming the
method, the identity of the model whose features it was learned on, and the method's own
settings and numbers as JSON. Reading checks the file before trusting it; each method then
checks the shapes it expects and says what to do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..core.errors import InputError
from ..core.jsontext import parse_json
from .models import LoadedModel


def save(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any], what: str,
         loaded: LoadedModel, format: str) -> None:
    """Write ``tensors`` with ``meta`` (values become JSON text) and the model's identity."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    text = {"format": format, "model": loaded.identity,
            **{k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}}
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata=text)
    except (OSError, SafetensorError) as e:     # what changed since the check (a full disk, say)
        raise InputError(f"Cannot save {what} to {str(path)!r}: "
                         f"{getattr(e, 'strerror', None) or str(e)[:200]}.") from None


def read(path: str | Path, what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor and the metadata of a safetensors file, or InputError when it is not one."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (OSError, SafetensorError, ValueError) as e:
        raise InputError(f"Cannot read {what} {str(path)!r}: not a safetensors file saved by "
                         f"zsdemo ({str(e)[:120]}).") from None
    return tensors, meta


def check_model(meta: dict[str, str], loaded: LoadedModel, path: str | Path, what: str, again: str) -> None:
    """Refuse what was learned on another model's features (``again``: how to make a new one)."""
    if meta.get("model") != loaded.identity:
        raise InputError(f"{what[0].upper()}{what[1:]} {str(path)!r} was learned with another model "
                         f"({meta.get('model')!r}); this one is {loaded.identity!r}. Load it with that model, "
                         f"or {again}.")


def field(meta: dict[str, str], key: str, path: str | Path, what: str) -> Any:
    """One metadata value back from its JSON text, or InputError naming the damage."""
    try:
        return parse_json(meta[key], f"The metadata of {what} {Path(path).name!r}")
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{what[0].upper()}{what[1:]} {str(path)!r} has damaged metadata ({e}).") from None


def finite(tensor: torch.Tensor | None, *shape: int | None) -> bool:
    """A float tensor of this shape (None: any size there), every value finite."""
    return (tensor is not None and tensor.is_floating_point() and tensor.ndim == len(shape)
            and all(n is None or n == m for n, m in zip(shape, tensor.shape)) and bool(torch.isfinite(tensor).all()))


def save_linear(path: str | Path, weights: torch.Tensor, bias: torch.Tensor, classes: tuple[str, ...],
                meta: dict[str, Any], what: str, loaded: LoadedModel, format: str) -> None:
    """A linear classifier over the model's features: weights [D, C], bias [C], its classes in order."""
    save(path, {"weights": weights, "bias": bias}, {"classes": list(classes), **meta}, what, loaded, format)


def read_linear(path: str | Path, loaded: LoadedModel, classes: tuple[str, ...], format: str, what: str,
                flag: str, again: str) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
    """(weights, bias, metadata) of a file ``save_linear`` wrote for ``format``, refused unless it
    is one, of this model, for exactly ``classes`` in their order (a linear classifier scores
    only the classes it was fitted on)."""
    tensors, meta = read(path, what)
    weights, bias = tensors.get("weights"), tensors.get("bias")
    if meta.get("format") != format or set(tensors) != {"weights", "bias"} or not finite(weights, None, None) \
            or not finite(bias, weights.shape[1]):
        raise InputError(f"{str(path)!r} is not {what}: expected the tensors 'weights' [D, C] and 'bias' [C] saved "
                         f"by zsdemo ({flag}).")
    check_model(meta, loaded, path, what, again)
    saved = tuple(field(meta, "classes", path, what))
    if saved != tuple(classes) or len(saved) != weights.shape[1]:
        first = str(saved[0])[:40] if saved else ""
        raise InputError(f"{what[0].upper()}{what[1:]} {str(path)!r} was fitted on other classes ({len(saved)}, e.g. "
                         f"{first!r}): it scores only the classes it was fitted on, in their order. Classify exactly "
                         f"those classes, or {again}.")
    return weights.double(), bias.double(), meta


def check_width(weights: torch.Tensor, features: torch.Tensor, what: str) -> None:
    """Refuse a linear classifier whose input size is not the features' (a forged or damaged file:
    the model's identity alone promises the size)."""
    if weights.shape[0] != features.shape[1]:
        raise InputError(f"{what[0].upper()}{what[1:]} takes features of size {weights.shape[0]}; this model's are "
                         f"{features.shape[1]}.")
