"""A learnable prompt context: token embeddings in place of a prompt's first words, through
open_clip's own text transformer. Test-time prompt tuning (``strategies/tpt.py``) and CoOp
(``strategies/coop.py``) both learn one; this is the code they share.

The gradient is taken a chunk of classes at a time (``context_gradient``), so that ImageNet's
1,000 classes never hold a backward pass's activations at once, and each chunk is one turn of
the model's lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..core.errors import InputError
from .models import LoadedModel
from .text import TextTower, encode_embeddings, eot_positions, text_tower

CONTEXT_INIT = "a photo of a"
# Classes per forward/backward turn: ~200 MB of activations for ViT-B/32 on a CPU, about a
# second and a half of work; a GPU takes far more at once.
CPU_CLASS_CHUNK = 32
CUDA_CLASS_CHUNK = 1024
# Text passes per step of learning, over every class: the forward pass without gradient, then a
# forward and a backward one per chunk (a backward costs about two forwards).
PASSES_PER_STEP = 3


@dataclass
class PromptParts:
    """Frozen token embeddings of "a photo of a {class}." with the context slots cut out."""

    tower: TextTower
    prefix: torch.Tensor   # [C, 1, W]: start of text
    suffix: torch.Tensor   # [C, L - 1 - n_ctx, W]: class name, full stop, end of text
    eot: torch.Tensor      # [C]
    init: torch.Tensor     # [n_ctx, W]: embeddings of "a photo of a"


def prompt_parts(loaded: LoadedModel, classnames: list[str], context: str = CONTEXT_INIT,
                 method: str = "TPT") -> PromptParts:
    """The frozen parts of "``context`` {class}." for every class; the context's tokens are the
    learnable slots (TPT: "a photo of a"; CoOp: 16 placeholders, or the same four words)."""
    tower = text_tower(loaded.model)
    if tower is None:
        raise InputError(f"{method} needs an open_clip text transformer that it can feed embeddings to; "
                         "this model's text tower is not supported. Choose another strategy or model.")
    n_ctx = len(loaded.tokenizer.encode(context)) if hasattr(loaded.tokenizer, "encode") else len(context.split())
    tokens = loaded.tokenizer([f"{context} {c}." for c in classnames]).to(loaded.device)
    eot = eot_positions(tower, tokens)
    length = int(eot.max()) + 1  # the causal tower ignores everything after end of text
    with torch.no_grad():
        emb = tower.token_embedding(tokens[:, :length]).float()
    return PromptParts(
        tower=tower,
        prefix=emb[:, :1],
        suffix=emb[:, 1 + n_ctx:],
        eot=eot,
        init=emb[0, 1:1 + n_ctx].clone(),
    )


def text_features(loaded: LoadedModel, parts: PromptParts, ctx: torch.Tensor,
                  rows: slice = slice(None)) -> torch.Tensor:
    """Unit class features [C, D] with ``ctx`` [n_ctx, W] in place of "a photo of a".

    ``rows`` picks a chunk of the classes (all by default).
    """
    prefix, suffix = parts.prefix[rows], parts.suffix[rows]
    n = prefix.shape[0]
    x = torch.cat([prefix, ctx.unsqueeze(0).expand(n, -1, -1), suffix], dim=1)
    with loaded.autocast():
        out = encode_embeddings(parts.tower, x.to(parts.tower.cast_dtype()), parts.eot[rows])
    return F.normalize(out.float(), dim=-1)


def class_chunks(loaded: LoadedModel, n_classes: int) -> list[slice]:
    size = CUDA_CLASS_CHUNK if loaded.device.type == "cuda" else CPU_CLASS_CHUNK
    return [slice(start, start + size) for start in range(0, n_classes, size)]


def features_no_grad(loaded: LoadedModel, parts: PromptParts, ctx: torch.Tensor) -> torch.Tensor:
    """``text_features`` of every class without gradient, a chunk of classes per turn of the lock."""
    out = []
    for rows in class_chunks(loaded, parts.prefix.shape[0]):
        with loaded.lock, torch.no_grad():
            out.append(text_features(loaded, parts, ctx.detach(), rows))
    return torch.cat(out)


def context_gradient(loaded: LoadedModel, parts: PromptParts, ctx: torch.Tensor, text: torch.Tensor,
                     loss_of: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """d loss / d ctx, where ``text`` = ``features_no_grad(ctx)`` and loss = ``loss_of(text)``.

    The chain rule in two halves: d loss / d text from the small class-feature matrix, then back
    through the text transformer one chunk of classes at a time. The gradient is the same as one
    backward pass over all classes, but only a chunk's activations are ever held (a backward
    pass keeps about 6 MB per class for ViT-B/32: 6 GB for ImageNet-1k at once), and each
    chunk is one turn of the model's lock.
    """
    text = text.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_of(text)
        (d_text,) = torch.autograd.grad(loss, [text])
        grad = torch.zeros_like(ctx)
        for rows in class_chunks(loaded, text.shape[0]):
            with loaded.lock:
                # autograd.grad reaches only ctx: no gradient is computed for, or stored on, the
                # shared model's weights even if they were left trainable.
                (g,) = torch.autograd.grad(text_features(loaded, parts, ctx, rows), [ctx],
                                           grad_outputs=d_text[rows])
            grad += g
    return grad
