"""Records the results that redesigns must not change (tests/test_unchanged.py compares with them).

    python tests/golden/record.py [OUT_FOLDER]

Runs the command line in-process with the tiny random-weights model: ``classify`` on the four
example photos with every strategy (TPT included), once as is and once with ``--rerank-all``,
and ``evaluate`` on a small ImageFolder made from the same photos. Volatile fields (timing,
temporary paths, the feature-cache setting) are removed by ``normalise``.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "assets" / "images"
CLASSES = "cat, dog, crane, heron, coffee mug, espresso, rocket, astronaut, teapot, space shuttle"
TEMPLATES = ["a sketch of a {}.", "a close-up photo of a {}."]
# Label folder -> photos (the same bytes every time: copies of the shipped examples).
FOLDER = {"cat": ["cat.png", "coffee.png"], "rocket": ["rocket.jpg", "astronaut.png"]}
FIRST_ROUND = "name,photo,custom,clip7,clip80,hierarchy,hierarchy80,tpt"
VOLATILE = {"timing", "root", "feature_cache", "seconds", "images_per_second"}


def classify_args(rerank_all: bool) -> list[str]:
    images = [str(PHOTOS / n) for n in ("astronaut.png", "cat.png", "coffee.png", "rocket.jpg")]
    # --wordnet-keep 1: the first round's hierarchy used all of WordNet (the sparse one came later).
    # The first round's strategies by name: "all" grows with every new method.
    args = ["classify", *images, "--classes", CLASSES, "--strategies", FIRST_ROUND, "--model", "tiny-random",
            "--device", "cpu", "--json", "--consistency", "--tpt-views", "16", "--tpt-steps", "2",
            "--wordnet-keep", "1", "--no-cache"]
    for t in TEMPLATES:
        args += ["--templates", t]
    return args + (["--rerank-all"] if rerank_all else [])


def run_cli(args: list[str]) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from zsdemo.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    if code != 0:
        raise SystemExit(f"zsdemo {' '.join(args[:2])} failed with {code}")
    return json.loads(out.getvalue())


def evaluate_doc(tmp: Path) -> dict[str, Any]:
    data = tmp / "set"
    for label, names in FOLDER.items():
        (data / label).mkdir(parents=True)
        for n in names:
            shutil.copyfile(PHOTOS / n, data / label / n)
    return run_cli(["evaluate", str(data), "--model", "tiny-random", "--device", "cpu", "--json", "--no-cache",
                    "--quiet", "--out", str(tmp / "out"), "--strategies", "name,photo,clip7,clip80,hierarchy,"
                    "hierarchy80,tpt", "--tpt-views", "8", "--wordnet-keep", "1"])


def normalise(doc: Any) -> Any:
    """The document without its volatile fields (timing, temporary paths)."""
    if isinstance(doc, dict):
        return {k: normalise(v) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [normalise(v) for v in doc]
    if isinstance(doc, str) and doc.startswith(str(ROOT)):
        return Path(doc).relative_to(ROOT).as_posix()       # the checkout's place does not matter
    if isinstance(doc, str) and tempfile.gettempdir() in doc:
        return Path(doc).name
    return doc


def record() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from zsdemo.run.pipeline import TEXT_CACHE

    # As a fresh process: a prompt's float32 features depend in their last bits on the batch that
    # first encoded it, so text features cached by earlier tests in this process must not be reused.
    TEXT_CACHE.clear()
    with tempfile.TemporaryDirectory() as tmp:
        return {
            "classify": normalise(run_cli(classify_args(False))),
            "classify_rerank_all": normalise(run_cli(classify_args(True))),
            "evaluate": normalise(evaluate_doc(Path(tmp))),
        }


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    for name, doc in record().items():
        (out / f"{name}.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        print("wrote", out / f"{name}.json")
