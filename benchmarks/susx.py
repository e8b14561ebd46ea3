"""SuS-X's cost beside one embedding pass of the pool (the baseline, same run): the retrieval (one
product of the classes' text vectors and the pool's features) and TIP-X's search of alpha, beta and
gamma over the official grid (20 x 200 x 50 points) on a held-out share of the support set SuS
found, on features only.

    python benchmarks/susx.py [--arch ViT-B-32] [--pool 200] [--classes 10] [--k 8] [--threads 2]

The pool is the 20 shipped photos (assets/pool.zip) turned and cropped into ``--pool`` different
pictures. Random weights: the same compute as real ones.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zsdemo.core.resources import SUS_POOL  # noqa: E402
from zsdemo.data.pool import open_pool, retrieve  # noqa: E402
from zsdemo.data.support import SupportFeatures, embed_items, validation_split  # noqa: E402
from zsdemo.engine.models import get_model  # noqa: E402
from zsdemo.engine.zero_shot_classifier import class_vectors  # noqa: E402
from zsdemo.prompts.templates import CLIP80  # noqa: E402
from zsdemo.strategies import tipx  # noqa: E402

CLASSES = ["motorcycle", "clock", "moon", "coins", "galaxy", "horse", "flower", "temple", "brick wall", "grass",
           "gravel", "retina", "page of text", "colour wheel", "cell", "portrait", "tissue", "camera", "road", "sky"]


def pool_folder(size: int, folder: Path) -> Path:
    """``size`` different pictures made from the shipped photos (turned and cropped)."""
    with zipfile.ZipFile(SUS_POOL) as z:
        photos = [Image.open(z.open(n)).convert("RGB") for n in z.namelist() if not n.endswith("/")]
    for k in range(size):
        im = photos[k % len(photos)].rotate(7 * (k // len(photos)), expand=True)
        cut = k // len(photos)
        im.crop((cut, cut, im.width - cut, im.height - cut)).save(folder / f"{k:04d}.png")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--pool", type=int, default=200)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = get_model(args.arch, None, "cpu")
    names = CLASSES[:args.classes]
    with tempfile.TemporaryDirectory() as tmp:
        pool = open_pool(pool_folder(args.pool, Path(tmp)))
        began = time.perf_counter()                    # the baseline: one embedding pass of the pool
        embedded = embed_items(loaded, pool.items)
        embedding = time.perf_counter() - began
    text = class_vectors(loaded, names, CLIP80, None)
    features = embedded.matrix()
    began = time.perf_counter()
    rows, _ = retrieve(text, features, args.k)
    retrieval = time.perf_counter() - began
    chosen = rows.flatten().tolist()
    support = SupportFeatures(tuple(names), features[chosen], torch.arange(len(names)).repeat_interleave(args.k),
                              [str(r) for r in chosen], [str(r) for r in chosen])
    began = time.perf_counter()
    train, val = validation_split(support, tipx.HELD_OUT)
    t, values = tipx.terms(support.features[val], support.subset(train), text, loaded.logit_scale, tipx.TEMPERATURE)
    alpha, beta, gamma, _ = tipx.search(t, values, support.labels[val])
    search = time.perf_counter() - began
    print(f"{args.arch}, {args.threads} CPU threads: a pool of {len(embedded.files)} photos, {len(names)} classes, "
          f"k = {args.k} ({len(val)} held out)")
    print(f"embedding the pool once (baseline): {embedding:.2f} s")
    print(f"retrieval, one product: {1000 * retrieval:.2f} ms ({retrieval / embedding:.5f}x the baseline)")
    print(f"TIP-X's search, {len(tipx.ALPHA_GRID) * len(tipx.BETA_GRID) * len(tipx.GAMMA_GRID):,} grid points: "
          f"{search:.2f} s ({search / embedding:.3f}x the baseline); found alpha {alpha:.3g}, beta {beta:.3g}, "
          f"gamma {gamma:.3g}")


if __name__ == "__main__":
    main()
