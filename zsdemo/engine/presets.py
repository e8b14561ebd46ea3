"""The model presets a user can pick by id, as data (the command line lists them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

TINY_ARCH = "zsdemo-tiny"
TINY_SIGMOID_ARCH = "zsdemo-tiny-sigmoid"     # the same with a logit bias, as SigLIP has
TINY_SEED = 0


@dataclass(frozen=True)
class ModelPreset:
    id: str
    label: str
    arch: str
    pretrained: str | None
    note: str = ""


# OpenAI weights must run as -quickgelu architectures, otherwise accuracy drops silently (docs/METHODS.md §1).
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
        ModelPreset("siglip-b16", "SigLIP ViT-B/16 (WebLI)", "ViT-B-16-SigLIP", "webli",
                    "trained with a sigmoid per class: the page shows its sigmoid scores too"),
        ModelPreset("tiny-random", "tiny model, RANDOM weights (tests only)", TINY_ARCH, None,
                    "untrained: predictions are meaningless; for tests and offline UI work"),
        ModelPreset("tiny-random-sigmoid", "tiny sigmoid model, RANDOM weights (tests only)", TINY_SIGMOID_ARCH,
                    None, "untrained, with a logit bias as SigLIP has; for tests"),
    )
}
DEFAULT_PRESET = "openai-b32"
TINY_PRESET = "tiny-random"
