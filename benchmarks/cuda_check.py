"""CUDA path check: the truncated text path and classification under fp16 autocast on a GPU.

    python benchmarks/cuda_check.py [--arch ViT-B-32]

Prints the max abs difference of zsdemo's text features against ``model.encode_text`` (fp32 and
amp), and CLIP-80 class-vector times for 100 classes against open_clip's builder, cold and warm.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import open_clip  # noqa: E402

from zsdemo.prompts.classnames import PRESETS  # noqa: E402
from zsdemo.engine.models import ModelSpec, load_model  # noqa: E402
from zsdemo.run.pipeline import classify  # noqa: E402
from zsdemo.prompts.templates import CLIP80  # noqa: E402
from zsdemo.engine.text import TextFeatureCache, encode_prompts  # noqa: E402
from zsdemo.engine.zero_shot_classifier import class_vectors  # noqa: E402


def sync_time(fn):
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="ViT-B-32")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    names = list(PRESETS["imagenet1k"][:100])
    prompts = [t.replace("{}", c) for c in names[:10] for t in CLIP80]
    for precision in ("fp32", "amp"):
        loaded = load_model(ModelSpec(args.arch), device="cuda", precision=precision)
        with torch.no_grad(), loaded.autocast():
            ref = F.normalize(loaded.model.encode_text(loaded.tokenizer(prompts).cuda()).float(), dim=-1).cpu()
        ours = encode_prompts(loaded, prompts)
        print(f"{args.arch} {precision}: text max abs diff vs encode_text {(ref - ours).abs().max().item():.2e}")
        class_vectors(loaded, names[:2], CLIP80, TextFeatureCache())  # warm-up
        with loaded.autocast():
            base_s, base = sync_time(lambda: open_clip.build_zero_shot_classifier(
                loaded.model, loaded.tokenizer, names, CLIP80, num_classes_per_batch=10, device="cuda",
                use_tqdm=False))
        cache = TextFeatureCache()
        cold_s, vec = sync_time(lambda: class_vectors(loaded, names, CLIP80, cache))
        cache.classifiers.clear()
        warm_s, _ = sync_time(lambda: class_vectors(loaded, names, CLIP80, cache))
        print(f"  CLIP-80 x 100 classes: open_clip {base_s:.3f} s, zsdemo cold {cold_s:.3f} s "
              f"({base_s / cold_s:.1f}x), warm {warm_s * 1e3:.2f} ms, "
              f"max abs diff {(base.T.float().cpu() - vec).abs().max().item():.2e}")
        image = Path(__file__).resolve().parents[1] / "assets" / "images" / "cat.png"
        result = classify(loaded, [image], "cat, dog, rocket", "all", consistency=True)
        im = result.images[0]
        top = im.strategies["clip80"].top1
        print(f"  classify on {result.model['device']} ({result.model['precision']}): clip80 top-1 "
              f"{top.class_name} {top.prob:.3f} (random weights); strategies {', '.join(im.strategies)}")
        check = im.analyses["consistency"]
        print(f"  consistency: {check['verdict']}, S_T {check['s_t']:.2f}, S_B {check['s_b']:.2f}")
        tpt = im.strategies["tpt"].details
        gap = max(abs(a - b) for a, b in zip(tpt["probs_before"], im.strategies["photo"].probs))
        print(f"  tpt: loss {tpt['loss_before']:.4f} -> {tpt['loss_after']:.4f}, entropy "
              f"{tpt['entropy_before']:.4f} -> {tpt['entropy_after']:.4f}; before-tuning probs vs the "
              f"photo strategy: max abs diff {gap:.1e}")
        for w in result.warnings:
            print(f"  warning: {w}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
