"""The app's warm request latency, against named baselines measured in the same run, and its peak memory.

One image (assets/images/cat.png), 10 classes, every strategy but TPT (name, photo, clip7, clip80,
hierarchy, hierarchy80), the consistency check with the page's default views (all 10), ViT-B-32
with random weights (same compute as the real weights) on the CPU, text cache warm.

Measured, each the median of ``--repeat`` warm calls:

- page request: what a click on Classify costs on the server: ``classifying.run`` plus the JSON state,
  the summary and the panels of the first image as the page shows them (bars as HTML, the view
  thumbnails JPEG-encoded into the page's HTML);
- API request: ``classifying.run`` alone (what the ``/classify`` endpoint returns, as JSON);
- HTTP request: the ``/classify`` endpoint through gradio_client against the launched app
  (upload, queue and JSON included);
- baseline 1, bare view embedding: preprocessing and encoding the 11 images the request needs
  (original + 10 views) in one batch, nothing else. Target: page request at most 1.3x this;
- baseline 2, the transformers ``zero-shot-image-classification`` pipeline with a CLIP ViT-B/32
  of random weights doing a single-template request ("a photo of a {}.") for the same image and
  classes (needs ``pip install transformers``; skipped without it). Reported as a ratio.

Peak RSS: ``python app.py --model ViT-B-32`` started as a subprocess, sent ``--requests`` API
requests (the request above, one with the 1000 ImageNet classes (name and photo strategies), one
with TPT), then its VmHWM is read
from /proc. Target: at most 2.5 GB.

    python benchmarks/app.py [--arch ViT-B-32] [--repeat 5] [--threads N] [--skip-rss | --rss-only]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zsdemo.app import choices, classifying, panels, state as app_state
from zsdemo.engine.views import VIEWS, make_view  # noqa: E402
from zsdemo.engine.images import load_image  # noqa: E402
from zsdemo.engine.models import get_model  # noqa: E402

CLASSES = "cat, dog, crane, heron, stork, coffee mug, rocket, astronaut, teapot, bulldozer"
STRATEGIES = ["name", "photo", "clip7", "clip80", "hierarchy", "hierarchy80"]
IMAGE = ROOT / "assets" / "images" / "cat.png"


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def page_request(config: app_state.AppConfig) -> None:
    run = classifying.run(config, [str(IMAGE)], CLASSES, STRATEGIES, consistency=True)
    state = json.dumps(run.to_state())
    run = app_state.Run.from_state(json.loads(state))
    panels.summary_html(run.result, 0)
    classifying.panels(config, run, 0).views_html     # the thumbnails, JPEG-encoded into the page's HTML


def api_request(config: app_state.AppConfig) -> None:
    classifying.run(config, [str(IMAGE)], CLASSES, STRATEGIES, consistency=True).result.to_dict()


def bare_views(loaded) -> None:
    image = load_image(str(IMAGE)).image
    batch = torch.stack([loaded.preprocess(image)] + [loaded.preprocess(make_view(image, v)) for v in VIEWS])
    loaded.encode_images(batch)


def transformers_pipeline(repeat: int) -> float | None:
    try:
        from transformers import (
            CLIPConfig,
            CLIPImageProcessor,
            CLIPModel,
            CLIPTokenizer,
            pipeline,
        )
    except ImportError:
        return None
    import gzip

    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    # The hub is unreachable here: build CLIP's tokenizer files from open_clip's own BPE data
    # (the same vocabulary), and a ViT-B/32 CLIPModel (the default CLIPConfig) with random weights.
    merges = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder = Path(tempfile.mkdtemp())
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig()).eval()
    pipe = pipeline("zero-shot-image-classification", model=model, tokenizer=tokenizer,
                    image_processor=CLIPImageProcessor(), device="cpu")
    labels = [c.strip() for c in CLASSES.split(",")]

    def call() -> None:
        pipe(str(IMAGE), candidate_labels=labels, hypothesis_template="a photo of a {}.")

    call()
    return median_ms(call, repeat)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_peak_rss(arch: str, threads: int) -> tuple[float, float, float]:
    """(HTTP request ms, RSS after warm-up MB, peak RSS MB) of the app in its own process."""
    from gradio_client import Client, handle_file

    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--model", arch, "--device", "cpu",
                             "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(120):
            try:
                client = Client(url, verbose=False)
                break
            except Exception:
                time.sleep(1)
        else:
            raise RuntimeError("the app did not start")
        image = handle_file(str(IMAGE))
        ask = dict(strategies=",".join(STRATEGIES), consistency=True, api_name="/classify")
        client.predict([image], CLASSES, **ask)
        http_ms = median_ms(lambda: client.predict([image], CLASSES, **ask), 3)
        warm_rss = _rss(proc.pid, "VmRSS")
        # 1000 classes, name only: CLIP-80 for 1000 classes would mean 80,000 prompts through the
        # text encoder (minutes on 2 cores) and measure the text cache, not the app.
        client.predict([image], choices.preset_text("imagenet1k"), strategies="name,photo", api_name="/classify")
        client.predict([image], CLASSES, strategies="name,tpt", api_name="/classify")
        return http_ms, warm_rss, _rss(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _rss(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--rss-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.rss_only:
        http, warm, peak = app_peak_rss(args.arch, args.threads)
        print(f"HTTP /classify {http:.0f} ms; app RSS after warm-up {warm:.0f} MB; peak {peak:.0f} MB")
        return
    config = app_state.AppConfig(args.arch, None, "cpu")
    loaded = get_model(args.arch, None, "cpu")
    page_request(config)          # warm: WordNet, text features, allocator
    bare_views(loaded)
    bare = median_ms(lambda: bare_views(loaded), args.repeat)
    page = median_ms(lambda: page_request(config), args.repeat)
    api = median_ms(lambda: api_request(config), args.repeat)
    hf = transformers_pipeline(args.repeat)
    print(f"{args.arch}, random weights, CPU, {args.threads} threads, 1 image, 10 classes, "
          f"strategies {','.join(STRATEGIES)} + consistency (10 views); median of {args.repeat}")
    print(f"{'':44}{'ms':>9}{'vs bare views':>15}")
    print(f"{'bare view embedding, 11 images (baseline)':44}{bare:9.0f}{1.0:14.2f}x")
    print(f"{'page request (run + panels + encoding)':44}{page:9.0f}{page / bare:14.2f}x   target <= 1.3x")
    print(f"{'API request (run, JSON)':44}{api:9.0f}{api / bare:14.2f}x")
    if hf is None:
        print("transformers pipeline: skipped (pip install transformers)")
    else:
        print(f"{'transformers pipeline, 1 template (baseline 2)':44}{hf:9.0f}"
              f"   page request / pipeline = {page / hf:.2f}x")
    if not args.skip_rss:
        http, warm, peak = app_peak_rss(args.arch, args.threads)
        print(f"{'HTTP /classify via gradio_client':44}{http:9.0f}{http / bare:14.2f}x")
        print(f"app process RSS after warm-up {warm:.0f} MB; peak (VmHWM) after a 1000-class and a TPT "
              f"request {peak:.0f} MB   target <= 2560 MB")


if __name__ == "__main__":
    main()
