"""What a live camera frame costs: from its arrival to its answer, against the image encoder's own
pass on the same frame in the same run (the baseline; goal at most 1.2x), and the frames per second
a stream gets over ``--seconds`` of frames sent one after another's answer (as Gradio streams: the
next frame leaves the browser when the last answer is back), with the latency at its start and end
(flat: no backlog).

    python benchmarks/live.py [--arch ViT-B-32] [--threads 2] [--seconds 60]

Frames are the shipped photos at 640x480 (a webcam's), alternating; strategies Name only, Single
template and CLIP-80 (the class vectors are made before the clock starts, as the first frame of a
stream makes them once).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zsdemo.core.resources import EXAMPLE_IMAGES  # noqa: E402
from zsdemo.engine.models import get_model  # noqa: E402
from zsdemo.run import live  # noqa: E402
from zsdemo.run.request import prepare_request  # noqa: E402

CLASSES = "cat, dog, coffee mug, espresso, rocket, space shuttle, astronaut, crane, teapot, lighthouse"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = get_model(args.arch, None, "cpu")
    request = prepare_request(CLASSES, ["name", "photo", "clip80"], served=True)
    frames = [ImageOps.fit(Image.open(p).convert("RGB"), (640, 480)) for p in sorted(EXAMPLE_IMAGES.glob("*"))]
    scorer = live.LiveScorer()
    scorer.score(loaded, request, frames[0])            # the stream's first frame: class vectors made once

    encoder, whole = [], []
    for k in range(20):                                 # the two, taking turns on the same frames
        frame = frames[k % len(frames)]
        began = time.perf_counter()
        loaded.encode_images(loaded.preprocess(frame).unsqueeze(0), 1)
        encoder.append(time.perf_counter() - began)
        whole.append(scorer.score(loaded, request, frame).seconds)
    base, ours = statistics.median(encoder), statistics.median(whole)
    print(f"{args.arch}, {args.threads} CPU threads, {len(request.classnames)} classes, 3 strategies")
    print(f"image encoder alone (baseline): {1000 * base:.1f} ms a frame (median of 20)")
    print(f"a live frame, arrival to answer: {1000 * ours:.1f} ms ({ours / base:.2f}x the encoder; goal <= 1.2x)")

    latencies, started = [], time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        frame = frames[len(latencies) % len(frames)]
        arrived = time.perf_counter()
        scorer.score(loaded, request, frame)
        latencies.append((arrived - started, time.perf_counter() - arrived))
    first = [t for at, t in latencies if at < 10]
    last = [t for at, t in latencies if at > args.seconds - 10]
    print(f"{len(latencies)} frames in {args.seconds:.0f} s: {len(latencies) / args.seconds:.1f} frames a second")
    print(f"latency, first 10 s: {1000 * statistics.median(first):.1f} ms; last 10 s: "
          f"{1000 * statistics.median(last):.1f} ms ({statistics.median(last) / statistics.median(first):.2f}x)")


if __name__ == "__main__":
    main()
