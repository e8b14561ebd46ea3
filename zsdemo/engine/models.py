"""Loaded models: open_clip loading, device and precision, the memory check, the fair lock and
the process-wide registry (docs/METHODS.md §1). Which weights a name means is ``weights``' concern.

A model is named either by a preset id (``openai-b32``), or by any open_clip spec: an
architecture with a pretrained tag or checkpoint path, ``hf-hub:org/repo`` or ``local-dir:/path``.
Loaded models are shared process-wide and loaded once, even under concurrent first requests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch

from ..core import forksafe, progress
from ..core.errors import ModelLoadError, ZsdemoError
from .presets import (  # noqa: F401
    DEFAULT_PRESET,
    PRESETS,
    TINY_ARCH,
    TINY_PRESET,
    TINY_SEED,
    ModelPreset,
)
from ..core.progress import Throughput
from .weights import (ModelSpec, hub_repo_id, looks_like_path, open_clip_arguments,  # noqa: F401
                      register_tiny_config, resolve_spec, weights_identity)

PRECISIONS = ("fp32", "amp")


# open_clip's tokenizer caches the BPE of every word it has seen, forever: on a public server
# every visitor's new words (a 1,000-letter name costs 2 KB) would grow it without end.
TOKENIZER_CACHE_CHARS = 20_000_000


class BoundedCache(dict):
    """A dict that stops taking new entries past ``TOKENIZER_CACHE_CHARS`` characters.

    It never removes an entry: the tokenizer's ``if w in cache: return cache[w]`` may run in
    several threads at once, and a removal between the two would raise KeyError.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.chars = sum(len(str(k)) + len(str(v)) for k, v in self.items())

    def __setitem__(self, key: Any, value: Any) -> None:
        size = len(str(key)) + len(str(value))
        if self.chars + size <= TOKENIZER_CACHE_CHARS:
            self.chars += size
            super().__setitem__(key, value)


def bound_tokenizer_cache(tokenizer: Any) -> None:
    cache = getattr(tokenizer, "cache", None)
    if isinstance(cache, dict) and not isinstance(cache, BoundedCache):
        tokenizer.cache = BoundedCache(cache)


# A process forked after torch ran parallel CPU work (ZeroGPU's GPU worker is forked from the
# server) hangs in its first parallel CPU operation: OpenMP believes its worker threads exist
# there, and they do not. One thread in the child avoids that; its heavy work is on the GPU.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))


class FairLock:
    """A re-entrant lock handed out in the order it was asked for.

    Long requests take the model in short turns (a batch of prompts, a chunk of images, a chunk
    of TPT's classes); with a plain lock the thread that just released it usually takes it straight back,
    and a small request waits behind all of a 10,000-class request. Here it waits one turn.
    """

    def __init__(self) -> None:
        self._after_fork()
        forksafe.register(self)

    def _after_fork(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[object] = deque()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
        # Every turn of the model starts here: a request its user stopped ends at its next turn.
        progress.check()
        with self._cond:
            ticket = object()
            self._queue.append(ticket)
            while self._owner is not None or self._queue[0] is not ticket:
                self._cond.wait()
            self._queue.popleft()
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("FairLock released by a thread that does not hold it")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()

    def locked(self) -> bool:
        return self._owner is not None

    def __enter__(self) -> "FairLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class LoadedModel:
    """An eval-mode open_clip model with everything needed to use it, shared by all requests."""

    spec: ModelSpec
    model: torch.nn.Module
    preprocess: Callable[[Any], torch.Tensor]
    tokenizer: Callable[..., torch.Tensor]
    device: torch.device
    precision: str
    identity: str
    image_size: int
    context_length: int
    # Held for one short turn of model work at a time (see FairLock), never for a whole request.
    lock: FairLock = field(default_factory=FairLock, repr=False)
    speed: Throughput = field(default_factory=Throughput, repr=False)   # "prompt" and "image" per second

    @property
    def random_weights(self) -> bool:
        return self.spec.random_weights

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().float().exp().item())

    @property
    def logit_bias(self) -> float | None:
        """A sigmoid-trained model's bias (SigLIP): p(class) = sigmoid(logit_scale x cos + bias),
        each class on its own. None for a softmax-trained (contrastive) model."""
        bias = getattr(self.model, "logit_bias", None)
        return None if bias is None else float(bias.detach().float().item())

    def autocast(self) -> contextlib.AbstractContextManager:
        # Weights stay fp32; on CUDA the matmuls run in fp16 under autocast, which keeps
        # TPT's gradients stable while using the tensor cores.
        if self.precision == "amp" and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def encode_images(self, batch: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Unit image features [N, D] (float32, on the model's device) of preprocessed images."""
        feats = []
        for start in range(0, len(batch), batch_size):
            chunk = batch[start:start + batch_size].to(self.device)
            with self.lock, torch.no_grad(), self.autocast():
                began = time.perf_counter()
                feats.append(torch.nn.functional.normalize(self.model.encode_image(chunk).float(), dim=-1))
                self.speed.record("image", len(chunk), time.perf_counter() - began)
            progress.advance(len(chunk), "image")
        return torch.cat(feats) if feats else torch.empty(0)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "pretrained": self.spec.pretrained,
            "label": self.spec.display,
            "device": str(self.device),
            "precision": self.precision,
            "random_weights": self.random_weights,
            "logit_bias": self.logit_bias,
        }


_DEVICE = re.compile(r"^(cpu|cuda|cuda:\d{1,2})$")


def pick_device(device: str | None = None) -> torch.device:
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # torch knows many more devices (meta, xla, ...); a model there cannot classify a picture.
    if not isinstance(device, str) or not _DEVICE.match(device.strip()):
        raise ModelLoadError(f"Unknown device {str(device)[:40]!r}: use auto, cpu, cuda or cuda:N.")
    dev = torch.device(device.strip())
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("Device 'cuda' was asked for but no CUDA GPU is available: use --device cpu.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ModelLoadError(f"Device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s).")
    return dev


def pick_precision(device: torch.device, precision: str | None = None) -> str:
    precision = precision or ("amp" if device.type == "cuda" else "fp32")
    if precision not in PRECISIONS:
        raise ModelLoadError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    return precision


@contextlib.contextmanager
def _quiet_open_clip() -> Iterator[None]:
    # open_clip logs its own errors on the root logger before raising; we report one message instead.
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        root.setLevel(previous)


# Loading holds the built model and the checkpoint's tensors at once on the CPU; on a GPU the
# weights arrive once. The margin leaves room for the first request's activations.
LOAD_FACTOR = {"cpu": 2.0, "cuda": 1.2}
LOAD_MARGIN_BYTES = 512 * 2**20


def parameter_bytes(name: str) -> int | None:
    """Bytes of the weights of an architecture or ``local-dir:`` model, from its config alone.

    The model is built on PyTorch's "meta" device, which allocates nothing (ViT-bigG-14 in
    0.3 s); None where the size cannot be known without downloading (a hub model not cached).
    """
    import open_clip

    if name.startswith("hf-hub:"):
        return None
    try:
        with _quiet_open_clip(), torch.device("meta"):
            model = open_clip.create_model(name, load_weights=False, device="meta")
    except Exception:
        return None
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().split()[0]
        return int(text)
    except (OSError, ValueError, IndexError):
        return None     # "max" (no limit), or no such file on this system


def free_memory(dev: torch.device) -> int | None:
    """Bytes that can still be allocated on ``dev``: the GPU's free memory, or the smaller of the
    machine's available memory and what the container's memory limit leaves (a Space runs in one)."""
    if dev.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(dev)[0])
        except (RuntimeError, AssertionError):   # a GPU that cannot be asked now (ZeroGPU's start-up): no check
            return None
    found = []
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        cap, used = _read_int(limit), _read_int(usage)
        if cap is not None and used is not None and cap < 2**60:
            found.append(max(0, cap - used))
    return min(found) if found else None


def check_fits(name: str, label: str, dev: torch.device) -> None:
    """Refuse a model that would not fit the memory left, before anything is built."""
    weights = parameter_bytes(name)
    free = free_memory(dev)
    if weights is None or free is None:
        return
    need = int(weights * LOAD_FACTOR.get(dev.type, 2.0)) + LOAD_MARGIN_BYTES
    if need > free:
        raise ModelLoadError(
            f"Model {label!r} needs about {need / 2**30:.1f} GB of memory to load and only "
            f"{free / 2**30:.1f} GB is free on {dev}: choose a smaller model or free memory first.",
            cli=" (`zsdemo models` lists the presets)", page=" (a preset, for example)",
        )


def check_fit_together(chosen: Sequence[tuple[str, str | None]], device: str | None = None) -> None:
    """Refuse models that are to run side by side when those not loaded yet would not fit the
    memory left together: said before anything loads (each alone may fit)."""
    dev = pick_device(device)
    pending = [resolve_spec(m, t) for m, t in chosen if not REGISTRY.has(m, t, device)]
    sizes = [parameter_bytes(spec.name) for spec in pending]
    free = free_memory(dev)
    if len(pending) < 2 or free is None or any(size is None for size in sizes):
        return                  # one to load: load_model's own check says it
    need = sum(int(size * LOAD_FACTOR.get(dev.type, 2.0)) for size in sizes) + LOAD_MARGIN_BYTES
    if need > free:
        raise ModelLoadError(
            f"{' and '.join(repr(s.display) for s in pending)} side by side need about {need / 2**30:.1f} GB of "
            f"memory and only {free / 2**30:.1f} GB is free on {dev}: compare with a smaller model, or one that "
            "is already loaded (the server's own).")


def load_model(spec: ModelSpec, device: str | None = None, precision: str | None = None) -> LoadedModel:
    """Load a model now (no sharing); every failure becomes one ModelLoadError."""
    import open_clip

    dev = pick_device(device)
    precision = pick_precision(dev, precision)
    register_tiny_config()
    name, pretrained, overrides = open_clip_arguments(spec)
    check_fits(name, spec.display, dev)
    identity = weights_identity(spec, name, pretrained)
    try:
        with _quiet_open_clip():
            # Random weights must be identical in every process so that cache keys stay valid.
            if spec.random_weights:
                torch.manual_seed(TINY_SEED)
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, device=dev, weights_only=True, **overrides
            )
            tokenizer = open_clip.get_tokenizer(name)
            bound_tokenizer_cache(tokenizer)
    except ModelLoadError:
        raise
    except Exception as e:  # open_clip, torch, safetensors and hub errors all land here
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if len(detail) > 300:
            detail = detail[:300] + "…"
        what = f"checkpoint {pretrained!r}" if pretrained and os.path.isfile(pretrained) else f"model {spec.display!r}"
        raise ModelLoadError(
            f"Could not load {what}: {detail}. Check that the weights match the architecture "
            f"({name}) and are an open_clip, OpenAI or safetensors checkpoint."
        ) from e
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    vision_size = getattr(getattr(model, "visual", None), "image_size", 224)
    image_size = int(vision_size[0] if isinstance(vision_size, (tuple, list)) else vision_size)
    context_length = int(getattr(tokenizer, "context_length", None) or getattr(model, "context_length", 77))
    return LoadedModel(
        spec=spec, model=model, preprocess=preprocess, tokenizer=tokenizer, device=dev,
        precision=precision, identity=identity, image_size=image_size, context_length=context_length,
    )


class ModelRegistry:
    """Process-wide store of loaded models: each loaded once, the least recently used evicted.

    A pinned model (the one a server serves) is never evicted and does not count towards
    ``max_models``: a visitor who tries another model cannot push it out, and a request that
    holds an evicted model keeps using it until it finishes (Python keeps it alive).
    """

    def __init__(self, max_models: int = 2):
        self.max_models = max_models
        self._models: OrderedDict[tuple, LoadedModel] = OrderedDict()
        self._pinned: set[tuple] = set()
        self._after_fork()
        forksafe.register(self)

    def _after_fork(self) -> None:
        self._key_locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()

    @staticmethod
    def _key(model: str | None, pretrained: str | None, device: str | None, precision: str | None) -> tuple:
        spec = resolve_spec(model, pretrained)
        dev = pick_device(device)
        return (spec.name, spec.pretrained, str(dev), pick_precision(dev, precision))

    def pin(self, model: str | None = None, pretrained: str | None = None,
            device: str | None = None, precision: str | None = None) -> None:
        """Keep this model loaded whatever else is loaded (it is loaded on first use)."""
        with self._guard:
            self._pinned.add(self._key(model, pretrained, device, precision))

    def get(self, model: str | None = None, pretrained: str | None = None,
            device: str | None = None, precision: str | None = None) -> LoadedModel:
        spec = resolve_spec(model, pretrained)
        key = self._key(model, pretrained, device, precision)
        with self._guard:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # a second first request waits here instead of loading again
            with self._guard:
                if key in self._models:
                    return self._models[key]
            loaded = load_model(spec, device=device, precision=precision)
            with self._guard:
                self._models[key] = loaded
                evictable = [k for k in self._models if k not in self._pinned]
                for old in evictable[:max(0, len(evictable) - self.max_models)]:
                    del self._models[old]
            return loaded

    def has(self, model: str | None = None, pretrained: str | None = None,
            device: str | None = None, precision: str | None = None) -> bool:
        """Whether ``get`` would return at once (the model is in memory); never raises."""
        try:
            key = self._key(model, pretrained, device, precision)
        except ZsdemoError:
            return False
        with self._guard:
            return key in self._models

    def loaded(self) -> list[tuple]:
        with self._guard:
            return list(self._models)

    def clear(self) -> None:
        with self._guard:
            self._models.clear()
            self._pinned.clear()


REGISTRY = ModelRegistry()


def get_model(model: str | None = None, pretrained: str | None = None,
              device: str | None = None, precision: str | None = None) -> LoadedModel:
    return REGISTRY.get(model, pretrained, device, precision)
