"""Cost of the method arena's strategies per image, and of ZPE over a pool of 64 images.

Per image, on ViT-B-32 with random weights on the CPU, 10 classes, text cache warm (every
prompt a strategy needs was encoded once before the timing): each configuration runs the whole
``classify`` call on the same photo (decode, preprocess, image encoder, strategy). Baseline,
named and measured in the same run: name-only prediction. The descriptor methods read zsdemo's
own descriptors (assets/descriptors/), which cover these classes.

ZPE over 64 images: one ``classify`` call on 64 photos with ``zpe`` against the same call with
``name`` only (the weights need every image's logits under all 80 templates).

    python benchmarks/strategies.py [--arch ViT-B-32] [--repeat 5] [--threads N]

No target is set by the issue; the figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zsdemo.engine.models import ModelSpec, load_model  # noqa: E402
from zsdemo.run.pipeline import classify  # noqa: E402
from zsdemo.engine.text import TextFeatureCache  # noqa: E402

CLASSES = "cat, dog, coffee mug, rocket, astronaut, teapot, motorcycle, lighthouse, espresso, tiger"
PHOTOS = sorted((ROOT / "assets" / "images").glob("*.*"))
IMAGE = ROOT / "assets" / "images" / "cat.png"
POOL = 64

CONFIGS = [
    ("name-only (baseline)", "name"),
    ("clip80", "clip80"),
    ("dclip", "dclip"),
    ("cupl", "cupl"),
    ("cupl80", "cupl80"),
    ("waffle (7 seeds x 30)", "waffle"),
    ("zpe (1 image)", "zpe"),
    ("perception (36 combos)", "perception"),
]


def best_of(repeat: int, runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Each run's best time; the runs take turns, so that a slow spell of the machine (the cores
    are shared) hits all of them alike. One untimed turn first warms the text cache."""
    for run in runs.values():
        run()
    best = {k: float("inf") for k in runs}
    for _ in range(repeat):
        for k, run in runs.items():
            start = time.perf_counter()
            run()
            best[k] = min(best[k], time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    loaded = load_model(ModelSpec(args.arch, None), device="cpu")
    cache = TextFeatureCache()
    print(f"model {args.arch} (random weights), CPU, torch threads {torch.get_num_threads()}, "
          f"10 classes, warm text cache, best of {args.repeat}")
    print(f"{'per image':<26} {'ms':>8} {'x name-only':>12}")
    times = best_of(args.repeat, {label: functools.partial(classify, loaded, [IMAGE], CLASSES, strategy, cache=cache)
                                  for label, strategy in CONFIGS})
    base = times[CONFIGS[0][0]]
    for label, t in times.items():
        print(f"{label:<26} {t * 1e3:>8.1f} {t / base:>12.2f}")

    pool = [PHOTOS[k % len(PHOTOS)] for k in range(POOL)]
    repeat = max(1, args.repeat // 2)
    pooled = best_of(repeat, {s: functools.partial(classify, loaded, pool, CLASSES, s, cache=cache)
                              for s in ("name", "zpe")})
    name, zpe = pooled["name"], pooled["zpe"]
    print()
    print(f"{POOL} images in one request, best of {repeat}:")
    print(f"  name-only (baseline)   {name:>7.2f} s  ({name / POOL * 1e3:.1f} ms per image)")
    print(f"  zpe                    {zpe:>7.2f} s  ({zpe / POOL * 1e3:.1f} ms per image)  {zpe / name:.2f}x name-only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
