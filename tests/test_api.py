"""The public API in ``zsdemo/__init__.py``: small, lazy, and it classifies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_public_api_is_small_loads_lazily_and_classifies(cat_path):
    code = ("import sys, zsdemo; assert 'torch' not in sys.modules; "
            "assert set(zsdemo.__all__) >= {'classify', 'evaluate', 'load_model', 'ClassificationResult'}; "
            "print(sorted(n for n in zsdemo.__all__ if n != '__version__' and getattr(zsdemo, n) is None))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
    import zsdemo

    model = zsdemo.load_model("tiny-random", device="cpu")
    result = zsdemo.classify(model, [str(cat_path)], "cat, dog", strategies="name,clip80")
    assert isinstance(result, zsdemo.ClassificationResult)
    assert result.images[0].strategies["clip80"].top1.class_name in ("cat", "dog")
    with pytest.raises(AttributeError):
        zsdemo.no_such_name
