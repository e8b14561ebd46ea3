"""The limits table: documented, configurable from the environment and the app's flags."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from zsdemo.core.errors import ZsdemoError
from zsdemo.core.limits import LIMITS, LIMITS_INFO, Limits

ROOT = Path(__file__).resolve().parents[1]


def test_every_limit_is_in_the_docs_with_its_default_variable_and_flag():
    readme = (ROOT / "docs" / "limits-and-safety.md").read_text(encoding="utf-8")
    for info in LIMITS_INFO:
        assert f"| {info.what} | {info.default:,} | `{info.env}` | `{info.flag}` |" in readme, info.name


def test_set_refuses_what_is_not_a_positive_whole_number():
    limits = Limits(**{i.name: i.default for i in LIMITS_INFO})
    limits.set("images", "16")
    assert limits.images == 16
    for bad in ("0", "-3", "1.5", "many", ""):
        with pytest.raises(ZsdemoError, match="whole number of at least 1"):
            limits.set("images", bad)
    with pytest.raises(ZsdemoError, match="Unknown limit"):
        limits.set("nonsense", 3)


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def test_environment_sets_a_limit_and_a_bad_value_is_a_clear_error(cat_path, astronaut_path):
    two = [str(cat_path), str(astronaut_path)]
    limited = _run(["-m", "zsdemo", "classify", *two, "--classes", "a, b", "--model", "tiny-random"],
                   ZSDEMO_MAX_IMAGES="1")
    assert limited.returncode == 2 and "2 images given; at most 1" in limited.stderr
    bad = _run(["-m", "zsdemo", "models"], ZSDEMO_MAX_CLASSES="lots")
    assert bad.returncode == 2 and "ZSDEMO_MAX_CLASSES" in bad.stderr and "Traceback" not in bad.stderr


def test_app_flag_with_a_bad_value_stops_at_start():
    out = _run(["app.py", "--model", "tiny-random", "--max-templates", "0"])
    assert out.returncode == 2 and "--max-templates" in out.stderr and "Traceback" not in out.stderr


def test_uploads_over_the_evaluation_limit_are_refused(monkeypatch, tmp_path, cat_path):
    import zipfile

    from zsdemo.app import evaluating, state
    from zsdemo.core.errors import InputError

    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for k in range(3):
            z.write(cat_path, f"cat/{k}.png")
    monkeypatch.setattr(LIMITS, "eval_images", 2)
    with pytest.raises(InputError, match="3 images found; at most 2"):
        evaluating.evaluate_upload(state.AppConfig("tiny-random", None, "cpu", None).with_uploads(archive.parent),
                                   str(archive), "name", views="flip")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_the_server_gives_freed_memory_back():
    from zsdemo.core import memory

    assert memory.release_free_memory() is True
    thread = memory.start_trimming(interval_s=3600)
    assert thread is not None and thread.daemon and thread.is_alive()
