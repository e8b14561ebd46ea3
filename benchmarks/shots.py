"""Cost of the shots curve on ViT-B-32 with random weights, on the CPU.

10 classes x 16 shots of support examples (160 distinct pictures made from the photos in
``assets/``, as ``benchmarks/few_shot.py`` makes them) and 100 evaluated pictures (10 per
class, made the same way from other turns and tints). The sweep is ``evaluate --shots 1,2,4,8,16
--seeds 3``'s own work: 15 draws, each fitting the linear probe (with its C sweep), GDA and
Tip-Adapter and scoring the 100 images, on features computed once.

Baseline, measured in the same run: one embedding pass, the 160 support images and the 100
evaluated ones through the image encoder once (what the evaluation does before any fit). Were
the images embedded again for every draw, the sweep would cost 15 such passes more.

    python benchmarks/shots.py [--arch ViT-B-32] [--shots 1,2,4,8,16] [--seeds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.few_shot import CLASSES, make_support  # noqa: E402
from zsdemo.data.labelled import open_labelled  # noqa: E402
from zsdemo.data.support import embed_support, open_support  # noqa: E402
from zsdemo.engine.models import ModelSpec, load_model  # noqa: E402
from zsdemo.run import shots  # noqa: E402
from zsdemo.run.evaluation import evaluate, evaluation_request  # noqa: E402

EVALUATED = 10                 # per class


def make_evaluated(root: Path) -> Path:
    photos = [Image.open(p).convert("RGB") for p in sorted((ROOT / "assets" / "images").glob("*.*"))]
    for k in range(EVALUATED * len(CLASSES)):
        folder = root / CLASSES[k % len(CLASSES)]
        folder.mkdir(parents=True, exist_ok=True)
        im = ImageOps.mirror(photos[(k + 3) % len(photos)]).rotate(k * 11 + 3, expand=True)
        im = ImageOps.colorize(ImageOps.grayscale(im), (0, k % 40, 0), (250, 240, 255 - k % 50)) if k % 2 else im
        im.crop((k % 9, k % 5, im.width - k % 13, im.height - k % 3)).save(folder / f"e{k}.jpg", quality=90)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--shots", default="1,2,4,8,16")
    parser.add_argument("--seeds", type=int, default=shots.DEFAULT_SEEDS)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_model(ModelSpec(args.arch, None), device="cpu")
    print(f"model {args.arch} (random weights), CPU, torch threads {torch.get_num_threads()}, "
          f"{len(CLASSES)} classes x 16 shots, {EVALUATED * len(CLASSES)} evaluated images, shots {args.shots}, "
          f"{args.seeds} seeds")
    with tempfile.TemporaryDirectory() as tmp:
        data = open_labelled(make_evaluated(Path(tmp) / "evaluated"))
        support = open_support(make_support(Path(tmp) / "support"), data.classes)
        images = [Image.open(it.path).convert("RGB") for it in data.items]
        start = time.perf_counter()
        embed_support(loaded, support)
        loaded.encode_images(torch.stack([loaded.preprocess(im) for im in images]))
        embedding = time.perf_counter() - start

        request = evaluation_request(data, "name,clip80", views="hflip", support=support, support_used=True)
        plan = shots.plan(args.shots, args.seeds, request)
        start = time.perf_counter()
        report = evaluate(loaded, data, request, shots=plan)
        whole = time.perf_counter() - start
        curve = report.shots_curve
        support.close()
    fits = len(plan.shots) * plan.seeds
    print(f"\none embedding pass (baseline): {embedding:.1f} s ({len(images) + 160} images)")
    print(f"the sweep, {fits} draws x {', '.join(plan.few_shot)}: {curve.seconds:.1f} s "
          f"= {curve.seconds / embedding:.2f}x the embedding pass")
    print(f"embedding again for every draw would add {fits} passes: {fits * embedding:.0f} s "
          f"({fits * embedding / curve.seconds:.0f}x the sweep)")
    print(f"the whole evaluate call (its views, the zero-shot strategies, the sweep): {whole:.1f} s")
    print("\ntop-1 % (random weights: the values mean nothing, the cost is real)")
    for sid in curve.few_shot:
        print(f"  {sid:<13}" + "".join(f"{f'k={k}':>7} {100 * m:5.1f}" for k, m in curve.curve(sid)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
