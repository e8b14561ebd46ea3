"""CoOp, context optimisation (Zhou et al., IJCV 2022; docs/METHODS.md §8).

A context of learnable token embeddings goes before every class name, "[V1] ... [V16] {class}.",
through open_clip's own text transformer (``engine/context.py``, the code TPT uses too).
It is learned by cross-entropy of logit_scale x f T^T on the support set's features (f: the
unit image feature, original view, computed once without gradient; T: the class features the
context gives), with CoOp's recipe: 16 vectors drawn from N(0, 0.02^2), or 4 initialised from
"a photo of a"; SGD, lr 0.002, momentum 0.9, weight decay 5e-4; one warm-up epoch at lr 1e-5,
then a cosine schedule over the epochs; batches of 32; seeded, so the same support set and
settings give the same context on the CPU. The context can be saved as a safetensors file and
loaded again (never a pickle).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..core import progress
from ..core.errors import InputError
from ..core.limits import LIMITS
from ..core.markup import md
from ..engine import saved_heads
from ..engine.models import LoadedModel
from ..data.support import SupportFeatures
from ..engine.context import (PASSES_PER_STEP, PromptParts, class_chunks, context_gradient, features_no_grad,
                              prompt_parts, text_features)
from ..engine.results import StrategyResult
from .base import Batch, Rates, Request, Run, Scores, Strategy, require_support
from .options import CLI_ONLY, option


N_CTX = 16
INIT_WORDS = "a photo of a"
LR, MOMENTUM, WEIGHT_DECAY = 0.002, 0.9, 5e-4
WARMUP_LR = 1e-5                     # CoOp's constant warm-up, one epoch
EPOCHS, BATCH_SIZE, SEED = 50, 32, 0
MAX_EPOCHS, MAX_BATCH = 500, 1024
MAX_SERVED_EPOCHS = 200               # on a shared server (the page, the API)
NEAREST_WORDS = 3
FORMAT = "zsdemo.coop/1"
LEARNED: OrderedDict[tuple, "Learned"] = OrderedDict()   # contexts learned by this process
KEEP_LEARNED = 8


@dataclass(frozen=True)
class CoOpSettings:
    context: str = option("16", "coop_context", "CoOp's context",
                          "16 random context vectors, or 4 initialised from 'a photo of a'",
                          kind="choice", choices=(("16 learned vectors", "16"), ("4, from 'a photo of a'", "init")))
    epochs: int = option(EPOCHS, "coop_epochs", "CoOp epochs", "training epochs", kind="whole", low=1,
                         high=MAX_EPOCHS, served_high=MAX_SERVED_EPOCHS, step=1, info="training epochs")
    batch_size: int = option(BATCH_SIZE, "coop_batch_size", "CoOp's batch size", "examples per step",
                             kind="whole", low=1, high=MAX_BATCH, where=CLI_ONLY)
    lr: float = option(LR, "coop_lr", "CoOp's learning rate", "SGD learning rate (cosine schedule)",
                       low=0.0, above_low=True, high=1.0, where=CLI_ONLY)
    seed: int = option(SEED, "coop_seed", "CoOp's seed", "seed of the initialisation and shuffling",
                       kind="whole", low=0, high=2**63 - 1, where=CLI_ONLY)
    load: str | None = option(None, "coop_load", "The CoOp context to load",
                              "use a context saved with --coop-save instead of learning one", kind="path",
                              where=CLI_ONLY, metavar="FILE")
    save: str | None = option(None, "coop_save", "Where to save the CoOp context",
                              "save the learned context (safetensors)", kind="path", where=CLI_ONLY, metavar="FILE")

    def check(self) -> None:
        if self.save is not None:
            saved_heads.check_save(self.save, "the CoOp context", FORMAT)      # now, not after the training


def context_words(settings: CoOpSettings) -> str:
    return INIT_WORDS if settings.context == "init" else " ".join(["X"] * N_CTX)


def learning_rate(epoch: int, settings: CoOpSettings) -> float:
    """CoOp's schedule: the first epoch at the constant warm-up rate, then cosine annealing."""
    if epoch == 0:
        return WARMUP_LR
    return 0.5 * settings.lr * (1 + math.cos(math.pi * epoch / settings.epochs))


@dataclass
class Learned:
    ctx: torch.Tensor                 # [n_ctx, width], on the CPU
    losses: list[float]               # mean training loss per epoch
    settings: CoOpSettings
    classes: tuple[str, ...]
    shots: dict[str, int]
    loaded_from: str | None = None


def train(loaded: LoadedModel, support: SupportFeatures, settings: CoOpSettings,
          span: tuple[float, float] | None = None) -> Learned:
    """Learn the context on the support set (its features; the image encoder is not run)."""
    classes = list(support.classes)
    parts = prompt_parts(loaded, classes, context_words(settings), method="CoOp")
    gen = torch.Generator().manual_seed(settings.seed)
    if settings.context == "init":
        start = parts.init.clone()
    else:
        start = torch.randn(parts.init.shape, generator=gen) * 0.02
    ctx = torch.nn.Parameter(start.to(parts.init.device, parts.init.dtype))
    optimiser = torch.optim.SGD([ctx], lr=WARMUP_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    feats, labels = support.features.to(loaded.device), support.labels.to(loaded.device)
    scale = loaded.logit_scale
    per_epoch = math.ceil(len(support) / settings.batch_size)
    if span is not None:
        progress.stage(*span, f"CoOp: learning the context ({settings.epochs} epochs)",
                       settings.epochs * per_epoch, "step")
    losses = []
    for epoch in range(settings.epochs):
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(epoch, settings)
        order = torch.randperm(len(support), generator=gen)
        total = 0.0
        for first in range(0, len(support), settings.batch_size):
            rows = order[first:first + settings.batch_size].to(loaded.device)
            x, y = feats[rows], labels[rows]

            def loss_of(text: torch.Tensor) -> torch.Tensor:
                return F.cross_entropy(scale * x @ text.T, y)

            loss, ctx.grad = loss_and_gradient(loaded, parts, ctx, loss_of)
            total += loss * len(rows)
            optimiser.step()
            optimiser.zero_grad(set_to_none=True)
            progress.advance(1, "step")
        losses.append(total / len(support))
    return Learned(ctx.detach().cpu(), losses, settings, support.classes, support.shots())


def loss_and_gradient(loaded: LoadedModel, parts: PromptParts, ctx: torch.Tensor,
                      loss_of: Callable[[torch.Tensor], torch.Tensor]) -> tuple[float, torch.Tensor]:
    """The loss and d loss / d ctx. Classes that fit one chunk take one forward and one backward
    pass (one turn of the model's lock); more take TPT's two halves, a chunk at a time, so that
    memory stays bounded (a third more work: the class features are computed twice)."""
    if len(class_chunks(loaded, parts.prefix.shape[0])) == 1:
        with loaded.lock, torch.enable_grad():
            loss = loss_of(text_features(loaded, parts, ctx))
            (grad,) = torch.autograd.grad(loss, [ctx])
        return float(loss.detach()), grad
    text = features_no_grad(loaded, parts, ctx)
    return float(loss_of(text)), context_gradient(loaded, parts, ctx, text, loss_of)


def training_loss(loaded: LoadedModel, support: SupportFeatures, ctx: torch.Tensor, settings: CoOpSettings) -> float:
    """The cross-entropy of the whole support set under ``ctx`` (no gradient)."""
    parts = prompt_parts(loaded, list(support.classes), context_words(settings), method="CoOp")
    text = features_no_grad(loaded, parts, ctx.to(parts.init.device))
    logits = loaded.logit_scale * support.features.to(text.device) @ text.T
    return float(F.cross_entropy(logits, support.labels.to(text.device)))


def nearest_words(loaded: LoadedModel, ctx: torch.Tensor, k: int = NEAREST_WORDS) -> list[list[str]]:
    """For each context vector, the vocabulary tokens nearest to it (Euclidean, as CoOp's
    interpretation does)."""
    table = loaded.model.token_embedding.weight.detach().float().cpu()
    distance = torch.cdist(ctx.float().cpu(), table)
    decode = getattr(loaded.tokenizer, "decode", None)
    out = []
    for row in distance:
        words: list[str] = []
        for i in torch.argsort(row, stable=True).tolist():
            word = decode([i]).strip() if decode else str(i)
            # A token that is part of a character's bytes decodes to U+FFFD: not a word to show.
            if word and "\ufffd" not in word:
                words.append(word)
            if len(words) == k:
                break
        out.append(words)
    return out


def save(learned: Learned, path: str | Path, loaded: LoadedModel) -> None:
    meta = {"classes": list(learned.classes), "losses": learned.losses, "shots": learned.shots,
            "settings": {k: v for k, v in asdict(learned.settings).items() if k not in ("load", "save")}}
    saved_heads.save(path, {"ctx": learned.ctx}, meta, "the CoOp context", loaded, FORMAT)


def load(path: str | Path, loaded: LoadedModel) -> Learned:
    """A context saved by ``save``: safetensors only (nothing is unpickled), checked against the model."""
    what = "the CoOp context"
    width = loaded.model.token_embedding.weight.shape[1]
    refusal = (f"{str(path)!r} is not a CoOp context for this model: expected one tensor 'ctx' of [n, {width}] "
               "saved by zsdemo (--coop-save).")
    tensors, meta = saved_heads.read(path, what, {"ctx": (None, width)}, "--coop-save", refusal)
    ctx = tensors["ctx"]
    if meta.get("format") != FORMAT or not 1 <= ctx.shape[0] <= 32:
        raise InputError(refusal)
    saved_heads.check_model(meta, loaded, path, what, "learn a new one")
    saved = saved_heads.field(meta, "settings", path, what, "object")
    try:    # never a file name from the file itself
        settings = CoOpSettings(**{k: v for k, v in saved.items() if k not in ("load", "save")})
    except TypeError as e:
        raise InputError(f"The CoOp context {str(path)!r} has damaged metadata ({str(e)[:200]}).") from None
    classes = tuple(saved_heads.field(meta, "classes", path, what, "texts"))
    losses = saved_heads.field(meta, "losses", path, what, "numbers")
    shots = saved_heads.field(meta, "shots", path, what, "counts")
    return Learned(ctx.float(), losses, settings, classes, shots, loaded_from=Path(path).name)


@dataclass
class CoOpDetails:
    """The learned context: how training went and what its vectors are near."""

    epochs: int
    losses: list[float]                 # mean training loss per epoch
    nearest_words: list[list[str]]      # per context vector
    shots: dict[str, int]
    context: str                        # "16" or "init"
    loaded_from: str | None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CoOpDetails":
        return cls(**d)


class CoOpStrategy(Strategy):
    id = "coop"
    label = "CoOp (learned context)"
    description = ("few-shot: 16 context words learned on your labelled examples by cross-entropy, before each "
                   "class name (Zhou et al.)")
    needs_support = True
    scaled_cosine_logits = True
    options = CoOpSettings

    def check(self, request: Request, n_images: int) -> None:
        settings: CoOpSettings = self.settings(request)
        if request.support is None and settings.load is None:
            require_support(request, "CoOp", "a support set to learn from (labelled examples of the classes)",
                            cli=" (--support FOLDER|ZIP), or a learned context (--coop-load FILE).")
        if settings.load is None:
            steps = settings.epochs * math.ceil(len(request.support.items) / settings.batch_size)
            prompts = steps * len(request.classnames) * PASSES_PER_STEP
            if prompts > LIMITS.prompts * 10:
                raise InputError(
                    f"CoOp: {steps:,} training steps x {len(request.classnames):,} classes is {prompts:,} prompt "
                    f"passes; at most {LIMITS.prompts * 10:,} are allowed per request. Use fewer epochs or "
                    "examples", cli=", or raise the prompt limit (ZSDEMO_MAX_PROMPTS) on your own machine.",
                    page=".")

    def cost(self, request: Request, n_images: int, rates: Rates) -> tuple[float, str] | None:
        settings: CoOpSettings = self.settings(request)
        if settings.load is not None or request.support is None:
            return None
        steps = settings.epochs * math.ceil(len(request.support.items) / settings.batch_size)
        classes = len(request.classnames)
        return (steps * classes * PASSES_PER_STEP / rates.prompts_per_second,
                f"CoOp: {progress.count(steps, 'training step')} over {progress.count(classes, 'class', 'classes')}")

    def prepare(self, run: Run, span: tuple[float, float] | None = None) -> None:
        self.learned(run, span)

    def learned(self, run: Run, span: tuple[float, float] | None = None) -> Learned:
        """The request's context: loaded, learned by this process before, or learned now."""
        request, settings = run.request, self.settings(run.request)

        def make() -> Learned:
            if settings.load is not None:
                found = load(settings.load, run.loaded)
                if found.classes != request.classnames:
                    run.warnings.append(
                        f"The CoOp context was learned on other classes ({len(found.classes)}, e.g. "
                        f"{found.classes[0]!r}); it is used as it is, since it does not depend on the classes.")
                return found
            key = (run.loaded.identity, run.support.key(), settings)
            if key in LEARNED:
                LEARNED.move_to_end(key)
                return LEARNED[key]
            found = train(run.loaded, run.support, settings, span)
            LEARNED[key] = found
            while len(LEARNED) > KEEP_LEARNED:
                LEARNED.popitem(last=False)
            if settings.save is not None:
                save(found, settings.save, run.loaded)
            return found
        return run.once("coop.learned", make)

    def score(self, batch: Batch) -> Scores:
        run = batch.run
        learned = self.learned(run, batch.span)
        words = context_words(learned.settings)
        parts: PromptParts = run.once("coop.parts", lambda: prompt_parts(run.loaded, list(batch.classnames), words,
                                                                         method="CoOp"))
        if parts.init.shape != learned.ctx.shape:
            raise InputError(f"The CoOp context has {learned.ctx.shape[0]} vectors; its settings say "
                             f"{parts.init.shape[0]}: the file is inconsistent.")
        text = run.once("coop.text", lambda: features_no_grad(run.loaded, parts, learned.ctx.to(parts.init.device)))
        logits = run.loaded.logit_scale * batch.features.float() @ text.T.to(batch.features.device)
        words_near = run.once("coop.words", lambda: nearest_words(run.loaded, learned.ctx))
        details = CoOpDetails(learned.settings.epochs, [round(x, 5) for x in learned.losses], words_near,
                              learned.shots, learned.settings.context, learned.loaded_from)
        return Scores(logits.float().cpu(), [details] * len(batch))

    def note(self, result: StrategyResult) -> str:
        d = result.details
        if not d.losses:
            return ""
        return f"training loss {d.losses[0]:.3f} -> {d.losses[-1]:.3f} over {d.epochs} epochs"

    def explain(self, result: StrategyResult) -> str:
        d = result.details
        source = f"loaded from {md(d.loaded_from)}" if d.loaded_from else \
            f"learned on {sum(d.shots.values())} labelled examples in {d.epochs} epochs"
        shown = _thin(list(enumerate(d.losses, 1)), 8)
        curve = ", ".join(f"{epoch}: {x:.3f}" for epoch, x in shown)
        which = (f"at {len(shown)} of the {len(d.losses)} epochs" if len(shown) < len(d.losses) else "by epoch")
        words = "; ".join(f"[V{k + 1}] " + " / ".join(md(w) for w in ws) for k, ws in enumerate(d.nearest_words))
        return (f"A context of {len(d.nearest_words)} vectors before each class name, {source}. Training loss "
                f"{which} (epoch: loss): {curve}.\n\nThe vocabulary words nearest to each vector (CoOp's vectors rarely mean a word): "
                f"{words}.")

    def details_from_dict(self, d: dict[str, Any]) -> CoOpDetails:
        return CoOpDetails.from_dict(d)


def _thin(values: list[Any], n: int) -> list[Any]:
    if len(values) <= n:
        return values
    step = (len(values) - 1) / (n - 1)
    return [values[round(k * step)] for k in range(n)]


COOP = CoOpStrategy()
