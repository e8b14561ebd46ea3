"""Model presets, open_clip loading, device choice and clear loading errors (SPEC §1).

A model is named either by a preset id (``openai-b32``), or by any open_clip spec: an
architecture with a pretrained tag or checkpoint path, ``hf-hub:org/repo`` or ``local-dir:/path``.
Loaded models are shared process-wide and loaded once, even under concurrent first requests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlparse

import torch

from .errors import ModelLoadError

TINY_CONFIG_DIR = Path(__file__).parent / "model_configs"
TINY_ARCH = "zsdemo-tiny"
TINY_SEED = 0


@dataclass(frozen=True)
class ModelPreset:
    id: str
    label: str
    arch: str
    pretrained: str | None
    note: str = ""


# OpenAI weights must run as -quickgelu architectures, otherwise accuracy drops silently (SPEC §1).
PRESETS: dict[str, ModelPreset] = {
    p.id: p
    for p in (
        ModelPreset("openai-b32", "CLIP ViT-B/32 (OpenAI)", "ViT-B-32-quickgelu", "openai",
                    "fast on CPU; the default"),
        ModelPreset("openai-b16", "CLIP ViT-B/16 (OpenAI)", "ViT-B-16-quickgelu", "openai",
                    "the papers' model; about 4x slower than B/32"),
        ModelPreset("laion-b32", "ViT-B/32 (LAION-2B)", "ViT-B-32", "laion2b_s34b_b79k",
                    "open weights trained on LAION-2B"),
        ModelPreset("openai-l14", "CLIP ViT-L/14 (OpenAI)", "ViT-L-14-quickgelu", "openai",
                    "most accurate here; use a GPU"),
        ModelPreset("tiny-random", "tiny model, RANDOM weights (tests only)", TINY_ARCH, None,
                    "untrained: predictions are meaningless; for tests and offline UI work"),
    )
}
DEFAULT_PRESET = "openai-b32"
TINY_PRESET = "tiny-random"

PRECISIONS = ("fp32", "amp")
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz")


@dataclass(frozen=True)
class ModelSpec:
    """What to load: an open_clip model name (maybe with a schema) and its weights."""

    name: str
    pretrained: str | None = None
    label: str = ""

    @property
    def random_weights(self) -> bool:
        return self.pretrained is None and not self.name.startswith(("hf-hub:", "local-dir:"))

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        return f"{self.name} ({self.pretrained})" if self.pretrained else self.name


def resolve_spec(model: str | None = None, pretrained: str | None = None) -> ModelSpec:
    """Turn a preset id or an open_clip name (+ optional tag or checkpoint path) into a spec."""
    model = (model or DEFAULT_PRESET).strip()
    pretrained = (pretrained or "").strip() or None
    if not model:
        raise ModelLoadError("No model given: choose a preset such as " + ", ".join(PRESETS) + ".")
    preset = PRESETS.get(model)
    if preset is not None and pretrained is None:
        return ModelSpec(preset.arch, preset.pretrained, preset.label)
    return ModelSpec(model, pretrained)


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
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def random_weights(self) -> bool:
        return self.spec.random_weights

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().float().exp().item())

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
            with torch.no_grad(), self.autocast():
                feats.append(torch.nn.functional.normalize(self.model.encode_image(chunk).float(), dim=-1))
        return torch.cat(feats) if feats else torch.empty(0)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "pretrained": self.spec.pretrained,
            "label": self.spec.display,
            "device": str(self.device),
            "precision": self.precision,
            "random_weights": self.random_weights,
        }


def pick_device(device: str | None = None) -> torch.device:
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ModelLoadError(f"Unknown device {device!r}: use auto, cpu or cuda.") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("Device 'cuda' was asked for but no CUDA GPU is available: use --device cpu.")
    return dev


def pick_precision(device: torch.device, precision: str | None = None) -> str:
    precision = precision or ("amp" if device.type == "cuda" else "fp32")
    if precision not in PRECISIONS:
        raise ModelLoadError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}.")
    return precision


def _register_tiny_config() -> None:
    import open_clip

    if TINY_ARCH not in open_clip.list_models():
        open_clip.add_model_config(TINY_CONFIG_DIR / f"{TINY_ARCH}.json")


def looks_like_path(value: str) -> bool:
    return os.sep in value or value.startswith(".") or value.lower().endswith(_WEIGHT_SUFFIXES)


def _file_fingerprint(path: str) -> str:
    st = os.stat(path)
    return f"{os.path.abspath(path)}:{st.st_size}:{st.st_mtime_ns}"


def _hub_reachable(timeout: float = 3.0) -> bool:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _cached_hub_file(repo_id: str, filenames: tuple[str, ...]) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        path = try_to_load_from_cache(repo_id, filename)
        if isinstance(path, str) and os.path.isfile(path):
            return path
    return None


def _offline_message(what: str) -> str:
    return (
        f"Cannot download {what}: the Hugging Face Hub is not reachable (offline, or HF_HUB_OFFLINE is set) "
        "and the weights are not in the local cache. Connect to the internet once to cache them, "
        "point HF_HOME at a cache that holds them, or load a local checkpoint with "
        "--model ARCH --pretrained /path/to/weights.safetensors (or local-dir:/path/to/folder)."
    )


def _open_clip_arguments(spec: ModelSpec) -> tuple[str, str | None, dict[str, Any]]:
    """Check the spec and find cached weights before open_clip runs.

    open_clip retries unreachable downloads with back-off for half a minute; answering from the
    cache, or failing at once when the hub cannot be reached, keeps loading errors to seconds.
    """
    import open_clip
    from open_clip.constants import HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    name, pretrained = spec.name, spec.pretrained
    if name.startswith("local-dir:"):
        folder = Path(name[len("local-dir:"):]).expanduser()
        if not folder.is_dir():
            raise ModelLoadError(f"Model folder {str(folder)!r} does not exist (from {name!r}).")
        if not (folder / HF_CONFIG_NAME).is_file():
            raise ModelLoadError(
                f"Model folder {str(folder)!r} has no {HF_CONFIG_NAME}: a local-dir: model needs the "
                "config and weights saved by open_clip (push_to_hf_hub / save_pretrained layout)."
            )
        return f"local-dir:{folder}", None, {}
    if name.startswith("hf-hub:"):
        repo_id = name[len("hf-hub:"):].strip("/")
        if not repo_id:
            raise ModelLoadError("hf-hub: needs a repository, for example hf-hub:timm/vit_base_patch16_clip_224.openai")
        cached_config = _cached_hub_file(repo_id, (HF_CONFIG_NAME,))
        cached_weights = _cached_hub_file(repo_id, (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME))
        if cached_config and cached_weights and Path(cached_config).parent == Path(cached_weights).parent:
            return f"local-dir:{Path(cached_config).parent}", None, {}
        if not _hub_reachable():
            raise ModelLoadError(_offline_message(f"model {name!r}"))
        return name, None, {}

    arch = name.replace("/", "-")
    if arch not in open_clip.list_models():
        close = [m for m in open_clip.list_models() if arch.lower() in m.lower()][:8]
        hint = f" Did you mean: {', '.join(close)}?" if close else " Run `python -m zsdemo models` for the list."
        raise ModelLoadError(f"Unknown model architecture {name!r}.{hint}")
    if pretrained is None:
        return arch, None, {}
    tag_cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    if tag_cfg:
        # Preprocess settings (mean, std, interpolation) belong to the tag; keep them when we
        # hand open_clip the cached file instead of the tag.
        overrides = {
            "image_mean": tag_cfg.get("mean"),
            "image_std": tag_cfg.get("std"),
            "image_interpolation": tag_cfg.get("interpolation"),
            "image_resize_mode": tag_cfg.get("resize_mode"),
        }
        overrides = {k: v for k, v in overrides.items() if v is not None}
        hub = tag_cfg.get("hf_hub", "")
        if hub:
            repo_id, filename = os.path.split(hub)
            candidates = (filename,) if filename else (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME)
            if filename.endswith((".bin", ".pth")):
                candidates = (filename[:-4] + ".safetensors", filename)
            cached = _cached_hub_file(repo_id, candidates)
            if cached:
                return arch, cached, overrides
        if not _hub_reachable():
            raise ModelLoadError(_offline_message(f"weights {pretrained!r} for {arch}"))
        return arch, pretrained, {}
    if os.path.isdir(pretrained):
        raise ModelLoadError(
            f"Checkpoint {pretrained!r} is a directory, not a file: give the weights file itself, "
            "or use --model local-dir:FOLDER for a folder holding open_clip_config.json and weights."
        )
    if os.path.isfile(pretrained):
        return arch, pretrained, {}
    if looks_like_path(pretrained):
        raise ModelLoadError(f"Checkpoint file {pretrained!r} not found: check the path.")
    tags = open_clip.list_pretrained_tags_by_model(arch)
    raise ModelLoadError(
        f"Unknown pretrained tag {pretrained!r} for {arch}. Known tags: {', '.join(tags) or 'none'}; "
        "or give a checkpoint file path."
    )


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


def load_model(spec: ModelSpec, device: str | None = None, precision: str | None = None) -> LoadedModel:
    """Load a model now (no sharing); every failure becomes one ModelLoadError."""
    import open_clip

    dev = pick_device(device)
    precision = pick_precision(dev, precision)
    _register_tiny_config()
    name, pretrained, overrides = _open_clip_arguments(spec)
    if spec.random_weights:
        identity = f"{name}|random-seed{TINY_SEED}"
    elif pretrained and os.path.isfile(pretrained):
        identity = f"{name}|{_file_fingerprint(pretrained)}"
    elif name.startswith("local-dir:"):
        folder = Path(name[len("local-dir:"):])
        files = sorted(p for p in folder.iterdir() if p.is_file())
        identity = f"{name}|" + ";".join(_file_fingerprint(str(p)) for p in files)
    else:
        identity = f"{name}|{pretrained}"
    try:
        with _quiet_open_clip():
            # Random weights must be identical in every process so that cache keys stay valid.
            if spec.random_weights:
                torch.manual_seed(TINY_SEED)
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, device=dev, weights_only=True, **overrides
            )
            tokenizer = open_clip.get_tokenizer(name)
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
    """Process-wide store of loaded models: each loaded once, the least recently used evicted."""

    def __init__(self, max_models: int = 2):
        self.max_models = max_models
        self._models: OrderedDict[tuple, LoadedModel] = OrderedDict()
        self._key_locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, model: str | None = None, pretrained: str | None = None,
            device: str | None = None, precision: str | None = None) -> LoadedModel:
        spec = resolve_spec(model, pretrained)
        dev = pick_device(device)
        key = (spec.name, spec.pretrained, str(dev), pick_precision(dev, precision))
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
                while len(self._models) > self.max_models:
                    self._models.popitem(last=False)
            return loaded

    def clear(self) -> None:
        with self._guard:
            self._models.clear()


REGISTRY = ModelRegistry()


def get_model(model: str | None = None, pretrained: str | None = None,
              device: str | None = None, precision: str | None = None) -> LoadedModel:
    return REGISTRY.get(model, pretrained, device, precision)
