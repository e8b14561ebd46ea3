"""Test-time prompt tuning (TPT, Shu et al., NeurIPS 2022; docs/METHODS.md §4).

Per image, from scratch: 64 views (the original plus 63 random resized crops with random
horizontal flips, seeded), embedded once without gradient. A context of 4 token embeddings,
initialised from "a photo of a", replaces those words in "a photo of a {class}." for every class
and runs through open_clip's own text transformer (``text.encode_embeddings``, cut to the longest
prompt like every other text path). The 10% of views with the lowest softmax entropy are kept;
the loss is the entropy of their mean probabilities; one AdamW step (lr 5e-3); the prediction is
on the original view with the tuned context. Context and optimiser are new for every image.

Choices the paper leaves open (docs/METHODS.md §4): the views are sampled once per image with a generator seeded by
``settings.seed`` (the same image and seed give the same views); with several steps the kept
views are chosen at the first step and kept, as in the TPT code; AdamW keeps PyTorch's default
weight decay (0.01), as the TPT code does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..core import progress
from ..core.errors import InputError
from ..core.limits import LIMITS
from ..core.markup import html, md
from ..engine.context import (CONTEXT_INIT, PASSES_PER_STEP, PromptParts, context_gradient, features_no_grad,
                              prompt_parts)
from ..engine.models import LoadedModel
from ..engine.results import StrategyResult
from .base import Batch, Panel, PanelContext, Rates, Request, Scores, Strategy
from .options import CLI_ONLY, option


TEMPLATE = CONTEXT_INIT + " {}."
MAX_STEPS = 20


@dataclass(frozen=True)
class TPTSettings:
    views: int = option(64, "tpt_views", "TPT views", "views per image, the original included",
                        kind="whole", low=2, high=lambda: LIMITS.tpt_views, step=2,
                        info="random crops + the original")
    select_fraction: float = option(0.1, "tpt_select", "TPT selection fraction",
                                    "share of views kept, lowest entropy first", low=0.0, above_low=True,
                                    high=1.0, where=CLI_ONLY)
    steps: int = option(1, "tpt_steps", "TPT steps", "AdamW steps per image", kind="whole", low=0, high=MAX_STEPS,
                        step=1, info="tuning steps per image")
    lr: float = option(5e-3, "tpt_lr", "TPT learning rate", "AdamW learning rate", low=0.0, above_low=True,
                       high=1.0, where=CLI_ONLY)
    # torch.Generator takes seeds below 2**64, but a negative or huge one overflows elsewhere.
    seed: int = option(0, "tpt_seed", "TPT seed", "seed of the view sampling", kind="whole", low=0,
                       high=2**63 - 1, where=CLI_ONLY)
    scale: tuple[float, float] = (0.08, 1.0)   # random resized crop area range

    @property
    def kept(self) -> int:
        return max(1, int(self.views * self.select_fraction))


# ---------------------------------------------------------------------------------------------
# Views


def crop_params(width: int, height: int, scale: tuple[float, float], gen: torch.Generator,
                ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop.get_params, drawn from ``gen``: (top, left, h, w)."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * float(torch.empty(1).uniform_(scale[0], scale[1], generator=gen))
        aspect = math.exp(float(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=gen)))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=gen))
            left = int(torch.randint(0, width - w + 1, (1,), generator=gen))
            return top, left, h, w
    # Fallback, as torchvision: the largest centre crop within the ratio range.
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


@dataclass(frozen=True)
class View:
    box: tuple[int, int, int, int] | None   # (left, top, right, bottom) in the image; None: original
    flip: bool


def sample_views(width: int, height: int, settings: TPTSettings) -> list[View]:
    """The original, then ``views - 1`` random resized crops with random flips, from the seed."""
    gen = torch.Generator().manual_seed(settings.seed)
    out = [View(None, False)]
    for _ in range(settings.views - 1):
        top, left, h, w = crop_params(width, height, settings.scale, gen)
        flip = bool(torch.rand(1, generator=gen) < 0.5)
        out.append(View((left, top, left + w, top + h), flip))
    return out


def _normalisation(preprocess: Any) -> tuple[list[float], list[float]] | None:
    """The mean and std of the model's preprocess, if it ends in a torchvision Normalize."""
    for t in getattr(preprocess, "transforms", []):
        if type(t).__name__ == "Normalize":
            return list(t.mean), list(t.std)
    return None


def view_batch(loaded: LoadedModel, image: Image.Image, views: list[View]) -> torch.Tensor:
    """The views as one normalised batch [V, 3, S, S] on the model's device.

    The original goes through the model's own preprocess, like every other strategy. The crops
    are cut and resized (bicubic, antialiased) as tensors on the model's device: on a GPU,
    resizing 63 crops with PIL on the CPU would cost more than the whole encoder pass.
    """
    norm = _normalisation(loaded.preprocess)
    if norm is None:  # an unusual preprocess: let it do everything, crop by crop
        size = loaded.image_size
        crops = [image.crop(v.box).resize((size, size), Image.Resampling.BICUBIC) for v in views[1:]]
        crops = [c.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if v.flip else c for c, v in zip(crops, views[1:])]
        return torch.stack([loaded.preprocess(image)] + [loaded.preprocess(c) for c in crops]).to(loaded.device)
    device, size = loaded.device, loaded.image_size
    mean = torch.tensor(norm[0], device=device).view(3, 1, 1)
    std = torch.tensor(norm[1], device=device).view(3, 1, 1)
    rgb = np.array(image if image.mode == "RGB" else image.convert("RGB"))  # a writable copy for torch
    pixels = torch.from_numpy(rgb).to(device).permute(2, 0, 1)  # uint8 [3, H, W]
    out = [loaded.preprocess(image).to(device)]
    for v in views[1:]:
        left, top, right, bottom = v.box
        crop = pixels[:, top:bottom, left:right].unsqueeze(0).float().div_(255)
        crop = F.interpolate(crop, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
        crop = crop.clamp_(0, 1)[0]
        if v.flip:
            crop = crop.flip(-1)
        out.append((crop - mean) / std)
    return torch.stack(out)


def embed_views(loaded: LoadedModel, image: Image.Image, views: list[View]) -> torch.Tensor:
    """Unit features [V, D] of the views, without gradient: the image side never learns."""
    return loaded.encode_images(view_batch(loaded, image, views))


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Softmax entropy of each row (nats)."""
    logp = logits.log_softmax(dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def mean_prob_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the mean of the rows' probabilities, computed in log space as TPT does."""
    logp = logits.log_softmax(dim=-1)
    avg = torch.logsumexp(logp, dim=0) - math.log(logp.shape[0])
    avg = avg.clamp(min=torch.finfo(avg.dtype).min)
    return -(avg.exp() * avg).sum()


# ---------------------------------------------------------------------------------------------
# Tuning


@dataclass
class TPTOutcome:
    logits_before: torch.Tensor   # [C] original view, initial context
    logits_after: torch.Tensor    # [C] original view, tuned context
    kept: list[int]               # view indices, lowest entropy first
    view_entropy: list[float]     # every view, initial context
    loss_before: float            # entropy of the kept views' mean probabilities
    loss_after: float
    ctx_before: torch.Tensor
    ctx_after: torch.Tensor
    views: list[View]

    def details(self, settings: TPTSettings, classnames: Sequence[str]) -> TPTDetails:
        return TPTDetails(
            probs_before=self.logits_before.softmax(-1).tolist(),
            entropy_before=float(entropy(self.logits_before)),
            entropy_after=float(entropy(self.logits_after)),
            loss_before=self.loss_before,
            loss_after=self.loss_after,
            kept_views=self.kept,
            view_entropy=self.view_entropy,
            views=self.views,
            settings=settings,
            top1_before=classnames[int(self.logits_before.argmax())],
        )


@dataclass
class TPTDetails:
    """One image's tuning: the prediction before it, the loss, the views it kept."""

    probs_before: list[float]       # the original view with "a photo of a"
    entropy_before: float           # of probs_before (nats)
    entropy_after: float
    loss_before: float              # entropy of the kept views' mean probabilities
    loss_after: float
    kept_views: list[int]           # indices into views, lowest entropy first
    view_entropy: list[float]       # every view, before tuning
    views: list[View]
    settings: TPTSettings
    top1_before: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TPTDetails":
        views = [View(tuple(v["box"]) if v["box"] else None, v["flip"]) for v in d["views"]]
        settings = TPTSettings(**{**d["settings"], "scale": tuple(d["settings"]["scale"])})
        return cls(**{**d, "views": views, "settings": settings})


def tune(loaded: LoadedModel, image: Image.Image, parts: PromptParts, settings: TPTSettings) -> TPTOutcome:
    """TPT on one image; nothing carries over from a previous image.

    The model is used in short turns (a batch of views, a chunk of classes), so other requests
    are served in between and memory stays bounded whatever the number of classes.
    """
    views = sample_views(image.width, image.height, settings)
    feats = embed_views(loaded, image, views)                      # [V, D], no gradient
    scale = loaded.logit_scale
    ctx = torch.nn.Parameter(parts.init.clone())                   # reset for every image
    optimiser = torch.optim.AdamW([ctx], lr=settings.lr)           # new state for every image

    text = features_no_grad(loaded, parts, ctx)
    all_logits = scale * feats @ text.T
    view_entropy = entropy(all_logits.float())
    kept = torch.argsort(view_entropy, stable=True)[:settings.kept]
    loss_before = float(mean_prob_entropy(all_logits[kept].float()))
    logits_before = all_logits[0].float().cpu()

    def loss_of(class_features: torch.Tensor) -> torch.Tensor:
        return mean_prob_entropy((scale * feats[kept] @ class_features.T).float())

    for step in range(settings.steps):
        # The first step reuses the class features that chose the views.
        if step > 0:
            text = features_no_grad(loaded, parts, ctx)
        ctx.grad = context_gradient(loaded, parts, ctx, text, loss_of)
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
    after = scale * feats @ features_no_grad(loaded, parts, ctx).T
    return TPTOutcome(
        logits_before=logits_before,
        logits_after=after[0].float().cpu(),
        kept=[int(i) for i in kept],
        view_entropy=[float(e) for e in view_entropy],
        loss_before=loss_before,
        loss_after=float(mean_prob_entropy(after[kept].float())),
        ctx_before=parts.init.detach().cpu(),
        ctx_after=ctx.detach().cpu(),
        views=views,
    )


# ---------------------------------------------------------------------------------------------
# The strategy


class TPTStrategy(Strategy):
    id = "tpt"
    label = "TPT (test-time prompt tuning)"
    description = ("tunes the 4 words of 'a photo of a {}.' on 64 views of each image, then predicts "
                   "(Shu et al.)")
    needs_pixels = True
    tunes_per_image = True
    options = TPTSettings

    def prompt_templates(self, request: Request) -> tuple[str, ...]:
        return (TEMPLATE,)

    def check(self, request: Request, n_images: int) -> None:
        views = self.settings(request).views
        if views > LIMITS.tpt_views:
            raise InputError(f"TPT views must be a whole number from 2 to {LIMITS.tpt_views} (got {views}).")
        if n_images * len(request.classnames) > LIMITS.tpt_class_images:
            raise InputError(
                f"TPT on {n_images} images x {len(request.classnames)} classes: at most "
                f"{LIMITS.tpt_class_images:,} image-classes per request (each class is a forward and backward "
                "pass per image). Send fewer images or classes with TPT, or untick it.")

    def cost(self, request: Request, n_images: int, rates: Rates) -> tuple[float, str]:
        settings: TPTSettings = self.settings(request)
        steps, views, classes = settings.steps, settings.views, len(request.classnames)
        seconds = n_images * (views / rates.images_per_second
                              + classes * (1 + PASSES_PER_STEP * steps) / rates.prompts_per_second)
        return seconds, (f"TPT: {progress.count(n_images, 'image')} x {views} views, "
                         f"{progress.count(steps, 'step')} over {progress.count(classes, 'class', 'classes')}")

    def score(self, batch: Batch) -> Scores:
        run, settings = batch.run, self.settings(batch.request)
        parts = run.once("tpt.parts", lambda: prompt_parts(run.loaded, list(batch.classnames)))
        logits, details = [], []
        for row, image in enumerate(batch.images):
            if batch.span is not None:
                lo, hi = batch.span
                progress.stage(lo + (hi - lo) * row / len(batch), lo + (hi - lo) * (row + 1) / len(batch),
                               f"test-time prompt tuning, image {row + 1} of {len(batch)}")
            outcome = tune(run.loaded, image, parts, settings)
            logits.append(outcome.logits_after)
            details.append(outcome.details(settings, batch.classnames))
        return Scores(torch.stack(logits), details)

    def note(self, result: StrategyResult) -> str:
        d = result.details
        return f"before tuning: {d.top1_before}, entropy {d.entropy_before:.3f} -> {d.entropy_after:.3f}"

    def panel(self, result: StrategyResult, context: PanelContext) -> Panel | None:
        if not result.details:
            return None
        return Panel("Test-time prompt tuning: before and after", markdown=tpt_markdown(result),
                     html=tpt_bars_html(result, context.result.classes, context.result.top_k))

    def details_from_dict(self, d: dict[str, Any]) -> TPTDetails:
        return TPTDetails.from_dict(d)


TPT = TPTStrategy()


def tpt_markdown(r: StrategyResult) -> str:
    """Before and after tuning: top-1, entropy and the loss, in words."""
    d: TPTDetails = r.details
    return "\n".join([
        f"**Before tuning** (\"a photo of a {{}}.\"): top-1 {md(d.top1_before)}, "
        f"entropy {d.entropy_before:.3f} nats.",
        "",
        f"**After {progress.count(d.settings.steps, 'step')}** on the {len(d.kept_views)} most confident of {len(d.views)} "
        f"views: top-1 {md(r.top1.class_name)} ({100 * r.top1.prob:.1f}%), entropy {d.entropy_after:.3f} nats.",
        "",
        f"Loss (entropy of the kept views' mean prediction): {d.loss_before:.3f} → {d.loss_after:.3f}.",
    ])


def tpt_bars_html(result: StrategyResult, classes: Sequence[str], top_k: int) -> str:
    """TPT: each class's probability before (light) and after (dark) tuning."""
    before, after = result.details.probs_before, result.probs
    best = {i: max(before[i], after[i]) for i in range(len(classes))}
    order = sorted(best, key=lambda i: (-best[i], i))[:max(top_k, 1)]
    rows = []
    for i in order:
        top = " zs-top1" if i == result.top1.index else ""
        rows.append(f'<div class="zs-tpt-row{top}"><span class="zs-label">{html(classes[i])}</span><span>'
                    + "".join(f'<span class="zs-bar" title="{what}: {100 * p:.1f}%"><span class="zs-track">'
                              f'<span class="zs-fill" style="width:{100 * p:.1f}%;background:{colour}"></span>'
                              f'</span><span class="zs-pct">{100 * p:.0f}%</span></span>'
                              for what, p, colour in (("before", before[i], "#9ecae1"), ("after", after[i], "#08519c")))
                    + "</span></div>")
    return ('<div class="zs-card zs-tpt"><div class="zs-card-top">'
            '<span class="zs-key" style="background:#9ecae1"></span> before tuning '
            '<span class="zs-key" style="background:#08519c"></span> after tuning</div>'
            f'{"".join(rows)}</div>')
