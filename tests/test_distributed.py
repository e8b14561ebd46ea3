"""Data-parallel ``evaluate`` under torchrun: 2 processes on the CPU (gloo), the tiny model."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zsdemo.run.distributed import World
from zsdemo.engine.feature_store import FeatureStore

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets" / "images"
PHOTOS = {"cat": "cat.png", "coffee mug": "coffee.png", "rocket": "rocket.jpg", "astronaut": "astronaut.png"}
STRATEGIES = "name,clip80,zpe,tip"          # per batch, whole-set (ZPE) and few-shot
# The same number of threads in every process: a float sum's last bits depend on how it is split.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> tuple[Path, Path]:
    """An evaluation folder (11 images: batches of 2 dealt out, 6 and 5 per rank) and a support folder."""
    root = tmp_path_factory.mktemp("dist")
    data, support = root / "data", root / "support"
    for k, (label, photo) in enumerate(PHOTOS.items()):
        image = Image.open(ASSETS / photo).convert("RGB")
        for target, count, turn in ((data, 3 - (k == 3), 0), (support, 2, 45)):
            (target / label).mkdir(parents=True)
            for j in range(count):
                image.rotate(turn + 20 * j + 7 * k).save(target / label / f"{j}.png")
    return data, support


def evaluate_cli(data: Path, support: Path, out: Path, cache: Path, ranks: int = 1, script: str | None = None,
                 timeout: int = 300) -> subprocess.CompletedProcess:
    args = ["evaluate", str(data), "--strategies", STRATEGIES, "--support", str(support), "--model", "tiny-random",
            "--device", "cpu", "--cache", str(cache), "--out", str(out), "--json", "--quiet", "--batch-size", "2",
            "--shots", "1,2", "--seeds", "2"]        # and the shots curve, on rank 0's gathered features
    if ranks == 1:
        command = [sys.executable, "-m", "zsdemo", *args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks),
                   "--master_port", str(29500 + os.getpid() % 1000), *([script] if script else ["-m", "zsdemo"]),
                   *args]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def single(labelled, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("single")
    done = evaluate_cli(*labelled, tmp / "out", tmp / "cache")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def without_run_facts(report: dict) -> dict:
    facts = {k: v for k, v in report.items() if k not in ("timing", "world_size", "images_per_rank")}
    return {**facts, "shots_curve": {k: v for k, v in report["shots_curve"].items() if k != "seconds"}}


def test_two_ranks_give_the_single_process_report(labelled, single, tmp_path):
    """Every record and metric equal, whatever the shards; rank 0 alone prints and writes."""
    done = evaluate_cli(*labelled, tmp_path / "out", tmp_path / "cache", ranks=2)
    assert done.returncode == 0, done.stderr[-3000:]
    both = json.loads(done.stdout)                     # one report: the other rank printed nothing
    assert without_run_facts(both) == without_run_facts(single)
    assert single["world_size"] == 1 and single["images_per_rank"] == [11]
    assert single["shots_curve"]["images"] == 11 and len(single["shots_curve"]["points"]) == 6
    assert both["world_size"] == 2 and both["images_per_rank"] == [6, 5]
    assert both["timing"]["images"] == 11 and both["timing"]["encoded"] == 11
    assert json.loads((tmp_path / "out" / "report.json").read_text())["world_size"] == 2
    # Resume: a second run (interrupted or not) finds every image in the shared feature cache.
    again = evaluate_cli(*labelled, tmp_path / "out2", tmp_path / "cache", ranks=2)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = json.loads(again.stdout)
    assert resumed["timing"]["from_cache"] == 11 and resumed["timing"]["encoded"] == 0
    assert without_run_facts(resumed) == without_run_facts(single)


def test_a_failing_rank_ends_the_run_with_its_message(labelled, tmp_path):
    began = time.monotonic()
    done = evaluate_cli(*labelled, tmp_path / "out", tmp_path / "cache", ranks=2, script="tests/failing_rank.py",
                        timeout=240)
    took = time.monotonic() - began
    assert done.returncode != 0
    assert "rank 1 fails on purpose" in done.stdout + done.stderr
    assert took < 120                     # torchrun ends rank 0 at once; the collectives' timeout is 600 s
    assert not (tmp_path / "out" / "report.json").exists()


def test_shards_are_the_single_process_batches_dealt_out():
    single = [list(b) for b in World().batches(21, 4)]
    assert single == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15], [16, 17, 18, 19], [20]]
    for size in (1, 2, 3, 8):
        shards = [[list(b) for b in World(rank, size).batches(21, 4)] for rank in range(size)]
        assert sorted(b for s in shards for b in s) == single           # disjoint, every batch once
        rounds = {World(rank, size).rounds(21, 4) for rank in range(size)}
        assert len(rounds) == 1 and rounds.pop() == max(len(s) for s in shards)


def _writer(folder: str, digest: str, seed: int, rounds: int, queue) -> None:
    from zsdemo.engine.models import get_model

    store = FeatureStore(folder, get_model("tiny-random", None, "cpu"))
    rng = np.random.default_rng(seed)
    bad = 0
    for _ in range(rounds):
        value = np.full(32, float(seed), dtype=np.float32) + rng.random() * 0
        store.put(digest, {"original": value})
        got = store.get(digest, ["original"])
        if got is None or not (np.all(got["original"] == 1.0) or np.all(got["original"] == 2.0)):
            bad += 1
    queue.put(bad)


def test_concurrent_cache_writers_never_corrupt_the_feature_store(tmp_path):
    """Two ranks writing the same image's features (the same content under two names) at once:
    every read sees one whole file or the other, never a mix or a broken one."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_writer, args=(str(tmp_path), "ab" * 32, seed, 200, queue)) for seed in (1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert [queue.get(timeout=5) for _ in workers] == [0, 0]
    assert not list(tmp_path.rglob("*.tmp"))                   # no temporary file left behind


def _text_writer(path: str, start: int, queue) -> None:
    import torch

    from zsdemo.engine.text import TextFeatureCache

    cache = TextFeatureCache(disk_path=path)
    prompts = [f"prompt {k}" for k in range(start, start + 300)]
    for first in range(0, 300, 30):
        cache.put("model", prompts[first:first + 30], torch.full((30, 8), float(start)))
    queue.put(sum(x is not None for x in cache.get("model", prompts)))


def test_concurrent_text_cache_writers_share_the_disk_cache(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    path = tmp_path / "text.sqlite"
    workers = [context.Process(target=_text_writer, args=(str(path), start, queue)) for start in (0, 150)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0] and [queue.get(timeout=5) for _ in workers] == [300, 300]
    from zsdemo.engine.text import TextFeatureCache

    fresh = TextFeatureCache(disk_path=path)
    assert all(x is not None for x in fresh.get("model", [f"prompt {k}" for k in range(450)]))
