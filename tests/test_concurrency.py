"""Shared state under concurrent use: WordNet read by many threads at once, cold and warm."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROUNDS = 6


def _run(mode: str) -> str:
    done = subprocess.run([sys.executable, str(HERE / "wordnet_race.py"), mode], capture_output=True, text=True,
                          timeout=120, cwd=HERE.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_eight_threads_doing_their_first_wordnet_work_at_once_read_what_one_thread_reads():
    # A fresh process each round: the race is on the first reads, before NLTK has cached the synsets.
    expected = _run("single")
    assert '"crane.n.05"' in expected and "errors" not in expected
    for _ in range(ROUNDS):
        assert _run("threads") == expected
