"""The embedding map's projection: unit vectors of images and texts on their top two principal axes.

Every vector is L2-normalised, the set is centred (on one mean, or each modality on its own: CLIP's
images and texts sit in two separate regions, the "modality gap" of Liang et al., NeurIPS 2022, and
centring them apart removes it), then projected on the two leading eigenvectors of the centred
vectors' scatter matrix, which are PCA's axes (the right singular vectors of an SVD). The D x D
scatter matrix costs one [P, D] x [D, P] product, where a full SVD of 80,000 prompts costs ten times
more. An eigenvector's sign is arbitrary; each axis is turned so that its largest-magnitude loading
is positive, so that the same vectors draw the same picture on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass(frozen=True)
class Projection:
    """Where each vector lands (``xy`` [P, 2]), each axis's share of the variance, and the axes [2, D]."""

    xy: torch.Tensor
    explained: tuple[float, float]
    axes: torch.Tensor


def centred(vectors: torch.Tensor, modality: Sequence[int] | None = None) -> torch.Tensor:
    """Unit vectors [P, D] minus their mean, or each group of ``modality`` (one id per row) minus its own."""
    x = vectors.detach().to("cpu", torch.float32, copy=True)       # one copy, then in place: 80,000 x D is large
    x /= x.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    if modality is None:
        return x.sub_(x.mean(dim=0))
    groups = torch.as_tensor(list(modality), dtype=torch.long)
    if groups.shape != (len(x),):
        raise ValueError(f"modality has {groups.numel()} ids for {len(x)} vectors")
    ids, groups = groups.unique(return_inverse=True)
    means = torch.zeros(len(ids), x.shape[1]).index_add_(0, groups, x)
    means /= torch.bincount(groups, minlength=len(ids))[:, None]
    return x.sub_(means[groups])


def project(vectors: torch.Tensor, modality: Sequence[int] | None = None) -> Projection:
    """The vectors [P, D] on their top two principal axes (``modality``: centre each group apart)."""
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError("project needs a non-empty [P, D] matrix")
    x = centred(vectors, modality)
    values, vecs = torch.linalg.eigh((x.T @ x).double())      # ascending
    axes = vecs.flip(1)[:, :2].T                              # [k, D], k = min(2, D)
    if len(axes) < 2:                                         # a one-dimensional space: the second axis is empty
        axes = torch.cat([axes, torch.zeros_like(axes)])
    lead = axes.abs().argmax(dim=1)
    signs = torch.sign(axes[torch.arange(2), lead])
    axes = (axes * torch.where(signs == 0, torch.ones_like(signs), signs)[:, None]).float()
    total = float(values.clamp(min=0).sum())
    top = values.flip(0)[:2].clamp(min=0).tolist() + [0.0] * (2 - min(2, len(values)))
    explained = (top[0] / total, top[1] / total) if total > 0 else (0.0, 0.0)
    return Projection(x @ axes.T, explained, axes)
