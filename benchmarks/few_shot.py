"""Cost of the few-shot methods on ViT-B-32 with random weights, on the CPU.

- Tip-Adapter per image against CLIP-80 (its zero-shot half), 10 classes, 16 shots per class
  cached, text cache and support features warm; the whole ``classify`` call on one photo, best of
  ``--repeat`` with the two taking turns.
- CoOp's training for 16 shots x 10 classes (160 examples, batches of 32, ``--epochs``, default
  CoOp's 50) against the baseline named in the same run: embedding the 160 support images once
  (which CoOp needs first and Tip-Adapter needs alone).

The 160 examples are distinct pictures made from the photos in ``assets/`` (turned, cropped,
tinted), labelled round-robin: the labels mean nothing, the cost is the same.

    python benchmarks/few_shot.py [--arch ViT-B-32] [--epochs 50] [--repeat 5] [--threads N]
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.strategies import best_of  # noqa: E402
from zsdemo.engine.models import ModelSpec, load_model  # noqa: E402
from zsdemo.run.pipeline import classify  # noqa: E402
from zsdemo.strategies import coop, options  # noqa: E402
from zsdemo.data.support import embed_support, open_support  # noqa: E402
from zsdemo.engine.text import TextFeatureCache  # noqa: E402

CLASSES = ("cat", "dog", "coffee mug", "rocket", "astronaut", "teapot", "motorcycle", "lighthouse", "espresso",
           "tiger")
SHOTS = 16
IMAGE = ROOT / "assets" / "images" / "cat.png"


def make_support(root: Path) -> Path:
    photos = [Image.open(p).convert("RGB") for p in sorted((ROOT / "assets" / "images").glob("*.*"))]
    for k in range(SHOTS * len(CLASSES)):
        folder = root / CLASSES[k % len(CLASSES)]
        folder.mkdir(parents=True, exist_ok=True)
        im = photos[k % len(photos)].rotate(k * 7, expand=True)
        im = ImageOps.colorize(ImageOps.grayscale(im), (k % 50, 0, 0), (255, 255 - k % 60, 240)) if k % 3 else im
        im.crop((k % 13, k % 11, im.width - k % 17, im.height - k % 7)).save(folder / f"{k}.jpg", quality=90)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--epochs", type=int, default=coop.EPOCHS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(ModelSpec(args.arch, None), device="cpu")
    cache = TextFeatureCache()
    print(f"model {args.arch} (random weights), CPU, torch threads {torch.get_num_threads()}, "
          f"{len(CLASSES)} classes x {SHOTS} shots")
    with tempfile.TemporaryDirectory() as tmp:
        support = open_support(make_support(Path(tmp)), CLASSES)
        start = time.perf_counter()
        features = embed_support(loaded, support)
        embed = time.perf_counter() - start

        runs = {"clip80 (baseline)": functools.partial(classify, loaded, [IMAGE], CLASSES, "clip80", cache=cache),
                "tip": functools.partial(classify, loaded, [IMAGE], CLASSES, "tip", cache=cache, support=support)}
        best = best_of(args.repeat, runs)      # taking turns, after one warm-up turn each
        base = best["clip80 (baseline)"]
        print(f"\n{'per image (warm)':<24} {'ms':>8} {'x clip80':>9}")
        for k, t in best.items():
            print(f"{k:<24} {t * 1e3:>8.1f} {t / base:>9.2f}")

        settings = options.parse(coop.CoOpSettings, {"epochs": args.epochs})
        start = time.perf_counter()
        learned = coop.train(loaded, features, settings)
        train = time.perf_counter() - start
        steps = args.epochs * -(-len(features) // settings.batch_size)
        print(f"\nembedding the {len(features)} support images once (baseline): {embed:.1f} s "
              f"({embed / len(features) * 1e3:.0f} ms per image)")
        print(f"CoOp, {args.epochs} epochs ({steps} steps of {settings.batch_size}): {train:.1f} s "
              f"({train / steps * 1e3:.0f} ms per step) = {train / embed:.2f}x the embedding; "
              f"loss {learned.losses[0]:.3f} -> {learned.losses[-1]:.3f}")
        support.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
