"""``evaluate`` on 2 ranks (torchrun, gloo on the CPU) against 1 process, on the same folder.

ViT-B-32 with random weights, 64 distinct photos (4 classes, made from ``assets/``), cold feature
cache (each run its own), strategies name, clip80 and hierarchy with the binary rule's flip view.
Baseline, measured in the same run: the plain single process (``python -m zsdemo evaluate``).
Two figures per run: the evaluation's own throughput (report.json, first batch to last) and the
wall time of the whole command (start-up, model load and WordNet included).

On a machine with C cores the ranks share them: each torchrun rank gets OMP_NUM_THREADS=1, the
single process all C threads. Read the ratio as what this machine gains, not as scaling.

    python benchmarks/distributed.py [--ranks 2] [--images 64] [--arch ViT-B-32]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.evaluate import build_set  # noqa: E402


def run(command: list[str], out: Path) -> tuple[float, dict]:
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return wall, json.loads((out / "report.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--arch", default="ViT-B-32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = build_set(tmp / "data", args.images)
        common = ["evaluate", str(data), "--strategies", "name,clip80,hierarchy", "--views", "hflip", "--model",
                  args.arch, "--device", "cpu", "--quiet"]
        results = {}
        for label, launcher in (("1 process (baseline)", [sys.executable, "-m", "zsdemo"]),
                                (f"{args.ranks} ranks (torchrun, gloo)",
                                 [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                                  str(args.ranks), "-m", "zsdemo"])):
            out = tmp / f"out{len(results)}"
            results[label] = run([*launcher, *common, "--cache", str(tmp / f"cache{len(results)}"), "--out",
                                  str(out)], out)
    (base_wall, base), (wall, report) = results.values()
    print(f"{args.arch} (random weights), CPU, {args.images} images, name + clip80 + hierarchy, binary views")
    print(f"{'':<28}{'images/s':>10}{'x':>7}{'wall s':>9}{'x':>7}  images per rank")
    for label, (w, r) in results.items():
        speed = r["timing"]["images_per_second"]
        print(f"{label:<28}{speed:>10.2f}{speed / base['timing']['images_per_second']:>7.2f}{w:>9.1f}"
              f"{base_wall / w:>7.2f}  {r['images_per_rank']}")
    # Thread counts differ (torchrun gives each rank one), so floats may differ in their last bits;
    # the predictions must not (tests/test_distributed.py checks bit-equality with equal threads).
    same = [r["top5"] for r in report["images"]] == [r["top5"] for r in base["images"]] \
        and report["accuracy"] == base["accuracy"]
    print(f"same top-5 of every image and same accuracies as the single process: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
