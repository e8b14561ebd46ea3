"""Throughput of ``evaluate`` against the raw image encoder on the same images and views.

A labelled ImageFolder of ``--images`` distinct files is built from the photos in assets/ (each a
different crop and rotation, so that every file has its own content hash), 4 classes. The model
is ViT-B-32 with random weights (the compute of the real ones) on the CPU.

- evaluate, cold feature cache: ``evaluation.evaluate`` with the default strategies (name, photo,
  clip80, hierarchy; name and clip80 always) and all 10 views, a fresh on-disk feature cache,
  text features warm (a first run on a few images fills them: they depend on the classes, not
  on the number of images). Everything is counted: reading, hashing, decoding, making the views,
  preprocessing, encoding, writing the cache, every strategy, the consistency analysis.
- baseline, raw encoder: the same images' originals and views, preprocessed beforehand (not
  timed), through ``encode_images`` alone, in the same chunks. Target: evaluate >= 0.8x its
  images per second.
- evaluate, warm feature cache: the same run again, which reads the features from disk.

    python benchmarks/evaluate.py [--arch ViT-B-32] [--images 32] [--batch-size 32] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zsdemo.run import evaluation  # noqa: E402
from zsdemo.engine.views import DEFAULT_VIEWS, make_view  # noqa: E402
from zsdemo.engine.feature_store import FeatureStore  # noqa: E402
from zsdemo.engine.images import load_image  # noqa: E402
from zsdemo.data.labelled import open_labelled  # noqa: E402
from zsdemo.engine.models import get_model  # noqa: E402

PHOTOS = {"tabby cat": "cat.png", "coffee mug": "coffee.png", "astronaut": "astronaut.png", "rocket": "rocket.jpg"}


def build_set(folder: Path, n: int) -> Path:
    classes = list(PHOTOS)
    for i in range(n):
        name = classes[i % len(classes)]
        im = Image.open(ROOT / "assets" / "images" / PHOTOS[name]).convert("RGB")
        k = i // len(classes)
        im = im.crop((k, k, im.width - k, im.height - 2 * k)).rotate(k % 7 - 3)
        out = folder / name.replace(" ", "_") / f"{i:04d}.jpg"
        out.parent.mkdir(parents=True, exist_ok=True)
        im.save(out, quality=92)
    return folder


def raw_encoder(loaded, data, views) -> float:
    """Seconds to encode every original and view, preprocessed beforehand, in evaluate's chunks."""
    tensors = []
    for item in data.items:
        image = load_image(str(item.path)).image
        tensors += [loaded.preprocess(image)] + [loaded.preprocess(make_view(image, v)) for v in views]
    batch = torch.stack(tensors)
    start = time.perf_counter()
    loaded.encode_images(batch)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=evaluation.BATCH_SIZE)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = get_model(args.arch, None, "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = open_labelled(build_set(tmp / "set", args.images))
        warm = open_labelled(build_set(tmp / "warm", len(PHOTOS)))
        evaluation.evaluate(loaded, warm, batch_size=args.batch_size)          # text features, WordNet
        store = FeatureStore(tmp / "cache", loaded)
        cold = evaluation.evaluate(loaded, data, batch_size=args.batch_size, store=store)
        again = evaluation.evaluate(loaded, data, batch_size=args.batch_size, store=store)
        raw_s = raw_encoder(loaded, data, DEFAULT_VIEWS)
    n = len(data.items)
    views = len(DEFAULT_VIEWS)
    raw = n / raw_s
    print(f"{args.arch}, random weights, CPU, {args.threads} threads; {n} images x (1 + {views} views), "
          f"{len(data.classes)} classes, strategies {','.join(cold.strategies)}, batch {args.batch_size}")
    print(f"{'':48}{'images/s':>10}{'vs raw encoder':>16}")
    print(f"{'raw image encoder, same tensors (baseline)':48}{raw:10.2f}{1.0:15.2f}x")
    print(f"{'evaluate, cold feature cache':48}{cold.timing['images_per_second']:10.2f}"
          f"{cold.timing['images_per_second'] / raw:15.2f}x   target >= 0.8x")
    print(f"{'evaluate, warm feature cache (encoder skipped)':48}{again.timing['images_per_second']:10.2f}"
          f"{again.timing['images_per_second'] / raw:15.2f}x   ({again.timing['from_cache']} from the cache)")


if __name__ == "__main__":
    main()
