"""What the sparse WordNet hierarchy costs a request, against the request's own text features.

For a class list (default the teaching example ``crane, heron, stork, sea anemone, coral,
jellyfish, cat, dog, bulldozer, excavator``) on ViT-B-32 with random weights (the compute of the
real ones) on the CPU:

- baseline, CLIP-80 class vectors: the classes x 80 prompts every hierarchy request encodes
  anyway (its consistency check), cold text cache;
- sparse WordNet, cold: scoring every node the classes can reach (80 prompts per node), the
  first request of a class list on a model;
- warm (memory) and from disk (a fresh process's cache, read from the JSON file): what every
  later request pays.

    python benchmarks/sparse_wordnet.py [--classes "a, b, c"] [--arch ViT-B-32] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zsdemo.wordnet import senses as wordnet
from zsdemo.wordnet import sparse as wordnet_sparse  # noqa: E402
from zsdemo.engine.models import get_model  # noqa: E402
from zsdemo.prompts.templates import CLIP80  # noqa: E402
from zsdemo.engine.zero_shot_classifier import class_vectors  # noqa: E402

CLASSES = "crane, heron, stork, sea anemone, coral, jellyfish, cat, dog, bulldozer, excavator"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", default=CLASSES)
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [c.strip() for c in args.classes.split(",") if c.strip()]
    loaded = get_model(args.arch, None, "cpu")
    senses = wordnet.class_senses(names)
    class_vectors(loaded, ["warm-up"], CLIP80[:4], None)

    start = time.perf_counter()
    class_vectors(loaded, names, CLIP80, None)
    base = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as folder:
        cache = wordnet_sparse.VarianceCache()
        cache.attach(folder)
        start = time.perf_counter()
        _, sparsity = wordnet_sparse.sparsify(loaded, senses, 0.4, cache)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        wordnet_sparse.sparsify(loaded, senses, 0.4, cache)
        warm = time.perf_counter() - start
        fresh = wordnet_sparse.VarianceCache()
        fresh.attach(folder)
        start = time.perf_counter()
        wordnet_sparse.sparsify(loaded, senses, 0.4, fresh)
        disk = time.perf_counter() - start
    nodes = len(sparsity.nodes)
    print(f"{args.arch}, random weights, CPU, {torch.get_num_threads()} threads; {len(names)} classes, "
          f"{nodes} WordNet nodes ({sparsity.summary()['kept']} kept at 0.4)")
    print(f"{'':52}{'seconds':>9}  vs baseline")
    print(f"{'CLIP-80 class vectors, ' + str(len(names) * 80) + ' prompts (baseline)':52}{base:9.2f}  1.00x")
    print(f"{'sparse WordNet, cold: ' + str(nodes * 80) + ' prompts':52}{cold:9.2f}  {cold / base:.2f}x")
    print(f"{'sparse WordNet, warm (memory)':52}{warm:9.4f}  {warm / base:.4f}x")
    print(f"{'sparse WordNet, from the disk cache (new process)':52}{disk:9.4f}  {disk / base:.4f}x")


if __name__ == "__main__":
    main()
