"""What one request costs at each documented limit: peak memory and time, in a fresh process.

Each case runs ``pipeline.classify`` (or ``choices.wordnet_senses``) once in its own Python process
with the model already loaded and warm, and reports how much the process's peak RSS grew during
the request and how long it took. The baseline is the smallest real request (one photo, 8
classes, name + CLIP-80) measured the same way in the same run.

Cases (each at a limit of ``zsdemo/core/limits.py``, or just inside it):
- ``64 images at 50 MP``: 64 PNGs of 7071x7071 pixels (small files: one colour);
- ``10,000 classes``: name + single template (20,000 prompts; new names, nothing cached);
- ``10,000 prompts (CLIP-80)``: 125 classes x CLIP-80; text encoding grows linearly with the
  prompts, so the prompt limit (100,000) costs ten times this (about 20 minutes on 2 CPU cores
  for ViT-B-32, in turns of one batch, so other requests are served meanwhile);
- ``300 names of 1,000 characters``: the class-character limit spent on the slowest text to
  tokenize: new words of 99 letters, the longest allowed (BPE costs L^2 per word);
- ``TIFF of 160,000 pages``: one-pixel pages (what made frame counting quadratic);
- ``WordNet, 1,000 names``: ``/wordnet`` at its class limit (free-text nouns, each read in the
  context of the others);
- ``TPT, 2 images x 1,000 classes``: 64 views each, ImageNet-1k's names: the TPT limit (2,000
  image-classes); memory is bounded by the class chunks.
- ``TPT at 256 views, 2 images x 31 classes``: the views limit; the largest TPT request by views
  (64 images x 256 views x 31 classes, within both TPT limits) costs 32 times this.

    python benchmarks/budget.py [--model ViT-B-32]
        [--cases baseline,images,classes,prompts,long-names,tiff,wordnet,tpt,tpt-views]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import string
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAT = ROOT / "assets" / "images" / "cat.png"
CASES = {"baseline": "baseline: 1 photo, 8 classes", "images": "64 images at 50 MP", "classes": "10,000 classes",
         "prompts": "10,000 prompts (CLIP-80)", "long-names": "300 names of 1,000 characters",
         "tiff": "TIFF of 160,000 pages", "wordnet": "WordNet, 1,000 names", "tpt": "TPT, 2 images x 1,000 classes",
         "tpt-views": "TPT at 256 views, 2 images x 31"}

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from zsdemo.prompts import classnames
from zsdemo.app import choices
from zsdemo.run import pipeline
from zsdemo.engine.models import get_model
case, model, scratch = sys.argv[2], sys.argv[3], sys.argv[4]
tag = format(time.time_ns() % 16**5, "x")        # new names in every run: no cache helps
loaded = get_model(model, device="cpu")
cat = sys.argv[1] + "/assets/images/cat.png"
pipeline.classify(loaded, [cat], "cat, dog", "name,clip80", cache=None)          # warm
choices.wordnet_senses("cat, dog")
images, classes, strategies, options = [cat], "cat, dog, coffee mug, rocket, astronaut, crane, heron, teapot", \
    "name,clip80", {}
if case == "images":
    images = [scratch + "/big.png"] * 64
    strategies = "name"
elif case == "classes":
    classes, strategies = [f"object {tag} {i}" for i in range(10_000)], "name,photo"
elif case == "prompts":
    classes, strategies = [f"object {tag} {i}" for i in range(125)], "clip80"
elif case == "long-names":
    classes, strategies = open(scratch + "/long.txt").read().split("\n"), "name"
elif case == "tiff":
    images, strategies = [scratch + "/pages.tif"], "name"
elif case == "tpt":
    images, classes, strategies = [cat, cat], list(classnames.PRESETS["imagenet1k"]), "tpt"
elif case == "tpt-views":
    images, classes, strategies = [cat, cat], list(classnames.PRESETS["imagenet1k"])[:31], "tpt"
    options = {"tpt": {"views": 256}}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
if case == "wordnet":
    names = sorted({l.replace("_", " ") for s in __import__("zsdemo.wordnet.senses").wordnet.ensure_wordnet()
                    .all_synsets("n") for l in s.lemma_names()})[1000:2000]
    choices.wordnet_senses("\n".join(names))
else:
    out = pipeline.classify(loaded, images, classes, strategies, cache=None, **options)
    errors = [im.error for im in out.images if im.error]
    assert not errors, errors[:1]
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_growth_mb": peak - base, "peak_mb": peak}))
"""


def many_page_tiff(path: Path, pages: int) -> None:
    """A little-endian TIFF of ``pages`` one-pixel greyscale pages, written directly (Pillow's
    writer takes most of an hour for 160,000 pages)."""
    tags = [(256, 3, 1), (257, 3, 1), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, None), (278, 3, 1),
            (279, 4, 1)]   # width, height, bits, no compression, black is zero, strip offset, rows, bytes
    page_size = 2 + 12 * len(tags) + 4 + 1
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for i in range(pages):
        start = 8 + i * page_size
        pixel_at = start + page_size - 1
        next_ifd = start + page_size if i + 1 < pages else 0
        out += struct.pack("<H", len(tags))
        for tag, kind, value in tags:
            out += struct.pack("<HHII", tag, kind, 1, pixel_at if value is None else value)
        out += struct.pack("<I", next_ifd) + bytes([i % 256])
    path.write_bytes(bytes(out))


def prepare(scratch: Path) -> None:
    from PIL import Image

    if not (scratch / "big.png").exists():
        Image.new("RGB", (7071, 7071), (120, 80, 40)).save(scratch / "big.png")
    if not (scratch / "pages.tif").exists():
        many_page_tiff(scratch / "pages.tif", 160_000)
    rng = random.Random(0)
    (scratch / "long.txt").write_text("\n".join(
        " ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(99)) for _ in range(10))
        for _ in range(300)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32", help="an architecture (random weights) or a preset")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case ids: " + ", ".join(CASES))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    scratch = Path(tempfile.gettempdir()) / "zsdemo-budget"
    scratch.mkdir(exist_ok=True)
    prepare(scratch)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    print(f"{args.model} on CPU ({args.threads} threads); each case in a fresh process, model warm")
    print(f"{'case':<32}{'time':>10}{'vs baseline':>13}{'peak RSS growth':>18}")
    baseline = None
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        if case not in CASES:
            raise SystemExit(f"unknown case {case!r}; cases: {', '.join(CASES)}")
        run = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), case, args.model, str(scratch)],
                             capture_output=True, text=True, env=env)
        if run.returncode:
            print(f"{CASES[case]:<32} failed: "
                  f"{run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode}")
            continue
        r = json.loads(run.stdout.strip().splitlines()[-1])
        if case == "baseline":
            baseline = r["seconds"]
        ratio = f"{r['seconds'] / baseline:.1f}x" if baseline else "-"
        print(f"{CASES[case]:<32}{r['seconds']:>9.2f}s{ratio:>13}{r['peak_growth_mb']:>15.0f} MB", flush=True)


if __name__ == "__main__":
    main()
