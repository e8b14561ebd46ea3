"""The embedding map of 1,000 classes x CLIP-80 (80,000 prompts, 82,000 points with the names and the
ensembles): what it costs once the text features are there, against the feature pass that fills
them in the same run (the baseline: what a Classify with these classes and strategies encodes).

    python benchmarks/map.py [--arch ViT-B-32] [--classes 1000] [--threads 2] [--repeat 3]

Goal: the projection of 80,000 prompts under 0.5 s, and the whole map (features read back from the
cache, ensembles, projection, each image's nearest text, thinning for the page) a small fraction
of the feature pass. Random weights: the same compute as real ones.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zsdemo.core.resources import EXAMPLE_IMAGES  # noqa: E402
from zsdemo.engine.embedding_map import project  # noqa: E402
from zsdemo.engine.models import get_model  # noqa: E402
from zsdemo.engine.text import TextFeatureCache  # noqa: E402
from zsdemo.engine.zero_shot_classifier import class_vectors  # noqa: E402
from zsdemo.prompts.templates import CLIP80, NAME_ONLY  # noqa: E402
from zsdemo.run import embedding_map as maps  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = get_model(args.arch, None, "cpu")
    names = [f"class number {k}" for k in range(args.classes)]
    request, _ = maps.prepare_map(names, "name,clip80")
    cache = TextFeatureCache(max_bytes=2 * 1024 ** 3)
    images = [str(p) for p in sorted(EXAMPLE_IMAGES.glob("*"))]

    began = time.perf_counter()                      # the baseline: what a Classify encodes
    class_vectors(loaded, names, NAME_ONLY, cache)
    class_vectors(loaded, names, CLIP80, cache)
    features = time.perf_counter() - began

    projection, shapes = [], []

    def timed(vectors: torch.Tensor, modality=None):       # the map's own projection, clocked inside it
        began = time.perf_counter()
        out = project(vectors, modality)
        projection.append(time.perf_counter() - began)
        shapes.append(tuple(vectors.shape))
        return out
    maps.project = timed

    whole, drawn = [], None
    for _ in range(args.repeat):
        began = time.perf_counter()
        found = maps.embedding_map(loaded, images, request, cache, separate_modalities=False)
        drawn = maps.thinned(found)[0]
        whole.append(time.perf_counter() - began)
    alone = statistics.median(projection)
    print(f"{args.arch}, {args.threads} CPU threads, {args.classes:,} classes x CLIP-80 + names, "
          f"{len(images)} images: {found.total:,} points ({len(drawn.points):,} drawn on the page)")
    print(f"feature pass (baseline, {args.classes * 81:,} prompts encoded): {features:.1f} s")
    print(f"projection of {shapes[0][0]:,} x {shapes[0][1]} vectors, inside the map: {alone:.3f} s "
          f"(median of {args.repeat}; goal < 0.5 s)")
    print(f"whole map after the features: {statistics.median(whole):.2f} s median of {args.repeat} "
          f"({statistics.median(whole) / features:.4f}x the feature pass)")


if __name__ == "__main__":
    main()
