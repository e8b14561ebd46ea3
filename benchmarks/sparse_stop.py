"""How soon Stop ends the sparse WordNet's node scoring, and what its progress says meanwhile.

Scoring a class list's WordNet nodes on a model not warmed up takes minutes on a small CPU
(ViT-B-32: 80 prompts a node). A Stop is seen between two forward passes. Baseline, measured in
the same run: the passes of the text features (up to 256 prompts each); ours: passes cut to about
``text.TURN_SECONDS``. Both score the same prompts, on ViT-B-32 with random weights (the compute
of the real ones), and Stop is pressed ``--after`` seconds after each encodes its first prompts.
``--load N`` adds N single-threaded busy processes (a loaded 2-core machine).

    python benchmarks/sparse_stop.py [--arch ViT-B-32] [--after 6] [--threads N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zsdemo.core import progress  # noqa: E402
from zsdemo.engine import text  # noqa: E402
from zsdemo.engine.models import get_model  # noqa: E402
from zsdemo.prompts.templates import CLIP80, fill  # noqa: E402

WORDS = ("crane", "heron", "stork", "anemone", "coral", "jellyfish", "bulldozer", "excavator", "rocket", "lighthouse")


def stopped_after(loaded, prompts: list[str], after: float, turn_seconds: float | None) -> tuple[float, list[str]]:
    """Seconds from Stop to the scoring's end, and the progress lines it said before."""
    stop, said = threading.Event(), []
    pressed = []
    timer = threading.Timer(after, lambda: (pressed.append(time.perf_counter()), stop.set()))

    def report(fraction: float, message: str) -> None:
        said.append(f"{100 * fraction:5.1f}%  {message}")
        if " of " in message and not timer.is_alive() and not pressed:
            timer.start()                    # Stop comes ``after`` seconds into the encoding itself

    with progress.track(report, stop):
        progress.stage(0.02, 0.03, "the hierarchy")
        progress.restage(f"scoring {len(prompts) // 80:,} WordNet nodes", len(prompts), "prompt", heavy=True)
        try:
            text.prompt_norms(loaded, prompts, turn_seconds=turn_seconds)
        except progress.Stopped:
            return time.perf_counter() - pressed[0], said
    raise SystemExit("the scoring ended before Stop: raise the number of prompts")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--after", type=float, default=6.0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--load", type=int, default=0)
    args = parser.parse_args()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: sum(range(10**6))"]) for _ in range(args.load)]
    try:
        measure(args)
    finally:
        for hog in hogs:
            hog.kill()


def measure(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = get_model(args.arch, None, "cpu")
    text.prompt_norms(loaded, [fill(t, "warm-up") for t in CLIP80[:8]])
    nodes = [f"{w} {k}" for k in range(40) for w in WORDS]                 # 400 nodes, 32,000 prompts
    prompts = [fill(t, n) for n in nodes for t in CLIP80]
    base, _ = stopped_after(loaded, prompts, args.after, None)
    ours, said = stopped_after(loaded, prompts, args.after, text.TURN_SECONDS)
    print(f"{args.arch}, {torch.get_num_threads()} threads, {args.load} busy processes beside; Stop pressed "
          f"{args.after:g} s into scoring {len(prompts):,} prompts")
    print(f"baseline (passes of up to 256 prompts): Stop took {base:.2f} s")
    print(f"ours (passes of about {text.TURN_SECONDS:g} s): Stop took {ours:.2f} s  ({base / ours:.1f}x sooner)")
    print("what the progress said (ours):")
    for line in said[-4:]:
        print("   ", line)


if __name__ == "__main__":
    main()
