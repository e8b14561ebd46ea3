"""Cost of the consistency check and of WordNet re-ranking, and WordNet resolution time.

Per image, on ViT-B-32 with random weights on the CPU, 10 classes, text cache warm: every
configuration runs the whole ``classify`` call on the same photo (decode, preprocess, image
encoder, strategies). Baseline, named and measured in the same run: plain name-only prediction.

- binary consistency: O_T (four prompt groups) and O_B (horizontal flip), plus S_T;
- consistency with all views (S_B over the 10 views);
- hierarchy / hierarchy80 re-ranking forced on (``rerank_all``), with the binary check it needs.

WordNet: resolving the 1000 ImageNet-1k classes through their ids, cold (a new process: NLTK's
reader loads) and warm; and, as a check of the default-sense rule, the same 1000 names resolved
as free text, with how often the rule lands on ImageNet's own sense.

    python benchmarks/consistency_hierarchy.py [--arch ViT-B-32] [--repeat 5] [--threads N]

Targets (issue #3): binary consistency at most 2.5x name-only; ImageNet resolution under 10 s cold
and under 1 s warm.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zsdemo.engine.models import ModelSpec, load_model  # noqa: E402
from zsdemo.run.pipeline import classify  # noqa: E402
from zsdemo.engine.text import TextFeatureCache  # noqa: E402

CLASSES = "cat, dog, crane, heron, stork, coffee mug, rocket, astronaut, teapot, bulldozer"
IMAGE = ROOT / "assets" / "images" / "cat.png"

CONFIGS = [
    ("name-only (baseline)", dict(strategies="name")),
    ("binary consistency", dict(strategies="name", consistency=True, views="hflip")),
    ("consistency, 10 views", dict(strategies="name", consistency=True)),
    ("hierarchy re-ranking", dict(strategies="hierarchy", rerank_all=True, views="hflip")),
    ("hierarchy80 re-ranking", dict(strategies="hierarchy80", rerank_all=True, views="hflip")),
]

COLD_SCRIPT = """
import json, sys, time
sys.path.insert(0, {root!r})
start = time.perf_counter()
from zsdemo.prompts import classnames
from zsdemo.wordnet import senses as wordnet
imports = time.perf_counter() - start
names = classnames.preset_classnames("imagenet1k")
start = time.perf_counter()
senses = wordnet.class_senses(names)
cold = time.perf_counter() - start
start = time.perf_counter()
wordnet.resolve(list(names), None, wordnet.imagenet_ids(names))  # the reader loaded, not the class-list cache
warm = time.perf_counter() - start
start = time.perf_counter()
free = wordnet.resolve(list(names))
free_s = time.perf_counter() - start
found = [(f, s) for f, s in zip(free, senses) if f.chosen is not None]
agree = sum(f.chosen.synset == s.chosen.synset for f, s in found)
ambiguous = [(f, s) for f, s in found if len([x for x in f.senses if not x.instance]) > 1]
agree_amb = sum(f.chosen.synset == s.chosen.synset for f, s in ambiguous)
print(json.dumps(dict(imports=imports, cold=cold, warm=warm, free=free_s, found=len(found), agree=agree,
                      ambiguous=len(ambiguous), agree_ambiguous=agree_amb)))
"""


def per_image(loaded, cache, options, repeat: int) -> float:
    classify(loaded, [IMAGE], CLASSES, cache=cache, **options)  # warm the text cache
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        classify(loaded, [IMAGE], CLASSES, cache=cache, **options)
        best = min(best, time.perf_counter() - start)
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
    base = None
    failed = False
    for label, options in CONFIGS:
        t = per_image(loaded, cache, options, args.repeat)
        base = base or t
        print(f"{label:<26} {t * 1e3:>8.1f} {t / base:>12.2f}")
        if label == "binary consistency" and t / base > 2.5:
            failed = True
            print("  above the 2.5x target")

    out = subprocess.run([sys.executable, "-c", COLD_SCRIPT.format(root=str(ROOT))],
                         capture_output=True, text=True, check=True)
    wn = json.loads(out.stdout.strip().splitlines()[-1])
    print()
    print(f"WordNet, 1000 ImageNet classes through their ids: cold {wn['cold']:.2f} s (new process, NLTK's "
          f"reader load included; importing zsdemo took {wn['imports']:.2f} s before), "
          f"warm {wn['warm'] * 1e3:.1f} ms")
    print(f"the same names as free text, default-sense rule: {wn['free'] * 1e3:.0f} ms; "
          f"{wn['found']} found in WordNet, rule agrees with ImageNet on {wn['agree']}/{wn['found']} "
          f"({wn['agree_ambiguous']}/{wn['ambiguous']} of the ambiguous ones)")
    if wn["cold"] > 10 or wn["warm"] > 1:
        failed = True
        print("  WordNet resolution above target")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
