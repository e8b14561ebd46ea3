"""Which weights a model name means: presets, open_clip tags, Hugging Face Hub ids, checkpoint
files and local folders; found in the local cache first, with one clear error when they cannot be
had (offline, unknown, not a file). Nothing here builds a model (that is ``models.load_model``).
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..core.errors import ModelLoadError
from .presets import DEFAULT_PRESET, PRESETS, TINY_ARCH, TINY_SEED, TINY_SIGMOID_ARCH
from ..core.resources import MODEL_CONFIGS

TINY_CONFIG_DIR = MODEL_CONFIGS
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
    if preset is not None:           # a preset with other weights: its architecture, those weights
        return ModelSpec(preset.arch, pretrained)
    return ModelSpec(model, pretrained)


def register_tiny_config() -> None:
    """Make the tests' tiny architectures known to open_clip (configs shipped with zsdemo)."""
    import open_clip

    for arch in (TINY_ARCH, TINY_SIGMOID_ARCH):
        if arch not in open_clip.list_models():
            open_clip.add_model_config(TINY_CONFIG_DIR / f"{arch}.json")


def looks_like_path(value: str) -> bool:
    return os.sep in value or value.startswith(".") or value.lower().endswith(_WEIGHT_SUFFIXES)


# The Hugging Face Hub's own rule for repository ids: ORG/NAME, letters, digits, "-", "_", ".".
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


def hub_repo_id(name: str) -> str:
    """The ``ORG/REPO`` of an ``hf-hub:`` name, or ModelLoadError for anything else."""
    repo_id = name[len("hf-hub:"):].strip()
    if not _HUB_ID.match(repo_id) or ".." in repo_id or repo_id.endswith((".", "-")):
        raise ModelLoadError(f"{name[:120]!r} is not a Hugging Face model id: write hf-hub:ORG/REPO, for example "
                             "hf-hub:timm/vit_base_patch16_clip_224.openai.")
    return repo_id


def file_fingerprint(path: str) -> str:
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


def _offline(what: str) -> ModelLoadError:
    return ModelLoadError(
        f"Cannot download {what}: the Hugging Face Hub is not reachable (offline, or HF_HUB_OFFLINE is set) "
        "and the weights are not in the local cache. Connect to the internet once to cache them, "
        "point HF_HOME at a cache that holds them, or load a local checkpoint",
        cli=" with --model ARCH --pretrained /path/to/weights.safetensors (or local-dir:/path/to/folder). "
            "To see zsdemo work without any weights, use --model tiny-random (random weights: meaningless "
            "predictions).",
        page=" (whoever runs the server can start it with one). Meanwhile, pick a model that is already loaded.",
        reason=f"{what} are not in the local cache and the Hugging Face Hub cannot be reached",
    )


def _local_dir(name: str) -> str:
    """``local-dir:FOLDER`` checked: the folder holds open_clip's config and its weights."""
    from open_clip.constants import HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    folder = Path(name[len("local-dir:"):]).expanduser()
    if not folder.is_dir():
        raise ModelLoadError(f"Model folder {str(folder)!r} does not exist (from {name!r}).")
    if not (folder / HF_CONFIG_NAME).is_file():
        raise ModelLoadError(
            f"Model folder {str(folder)!r} has no {HF_CONFIG_NAME}: a local-dir: model needs the "
            "config and weights saved by open_clip (push_to_hf_hub / save_pretrained layout)."
        )
    weights = (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME)
    if not any((folder / w).is_file() for w in weights):
        # open_clip would build the architecture with random, unseeded weights and say nothing.
        raise ModelLoadError(
            f"Model folder {str(folder)!r} has a config but no weights ({' or '.join(weights)}): "
            "save the weights beside the config, or use the tiny-random preset for random weights."
        )
    return f"local-dir:{folder}"


def open_clip_arguments(spec: ModelSpec) -> tuple[str, str | None, dict[str, Any]]:
    """Check the spec and find cached weights before open_clip runs.

    open_clip retries unreachable downloads with back-off for half a minute; answering from the
    cache, or failing at once when the hub cannot be reached, keeps loading errors to seconds.
    """
    import open_clip
    from open_clip.constants import (
        HF_CONFIG_NAME,
        HF_SAFE_WEIGHTS_NAME,
        HF_WEIGHTS_NAME,
    )

    name, pretrained = spec.name, spec.pretrained
    if name.startswith("local-dir:"):
        return _local_dir(name), None, {}
    if name.startswith("hf-hub:"):
        repo_id = hub_repo_id(name)
        cached_config = _cached_hub_file(repo_id, (HF_CONFIG_NAME,))
        cached_weights = _cached_hub_file(repo_id, (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME))
        if cached_config and cached_weights and Path(cached_config).parent == Path(cached_weights).parent:
            return f"local-dir:{Path(cached_config).parent}", None, {}
        if not _hub_reachable():
            raise _offline(f"model {name!r}")
        return name, None, {}

    arch = name.replace("/", "-")
    if arch not in open_clip.list_models():
        close = [m for m in open_clip.list_models() if arch.lower() in m.lower()][:8]
        if close:
            raise ModelLoadError(f"Unknown model architecture {name!r}. Did you mean: {', '.join(close)}?")
        raise ModelLoadError(f"Unknown model architecture {name!r}.", cli=" Run `zsdemo models` for the list.",
                             page=" Pick one of the model presets.")
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
            raise _offline(f"weights {pretrained!r} for {arch}")
        return arch, pretrained, {}
    if os.path.isdir(pretrained):
        raise ModelLoadError(
            f"Checkpoint {pretrained!r} is a directory, not a file: give the weights file itself, "
            "or name the folder as local-dir:FOLDER when it holds open_clip_config.json and weights.",
            cli=" (--model local-dir:FOLDER)",
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


def hub_weights(preset_id: str) -> tuple[str, str] | None:
    """The Hugging Face repository and file a preset's weights come from (None: no download).

    The file is open_clip's own default name, ``open_clip_pytorch_model.bin``, which open_clip's
    hub repositories carry (newer ones carry a .safetensors copy too; ``open_clip_arguments``
    takes whichever of the two is cached). A Space preloads exactly these files
    (``preload_from_hub`` in the README's front matter), so it starts without a download.
    """
    import open_clip
    from open_clip.constants import HF_WEIGHTS_NAME

    preset = PRESETS[preset_id]
    if preset.pretrained is None:
        return None
    hub = open_clip.get_pretrained_cfg(preset.arch, preset.pretrained).get("hf_hub", "")
    if not hub:
        return None
    repo_id, filename = os.path.split(hub)
    return repo_id, filename or HF_WEIGHTS_NAME


def weights_identity(spec: ModelSpec, name: str, pretrained: str | None) -> str:
    """What the weights are, for cache keys: files by path, size and modification time, so that
    different weights never share cached features."""
    if spec.random_weights:
        return f"{name}|random-seed{TINY_SEED}"
    if pretrained and os.path.isfile(pretrained):
        return f"{name}|{file_fingerprint(pretrained)}"
    if name.startswith("local-dir:"):
        folder = Path(name[len("local-dir:"):])
        files = sorted(p for p in folder.iterdir() if p.is_file())
        return f"{name}|" + ";".join(file_fingerprint(str(p)) for p in files)
    return f"{name}|{pretrained}"
