"""Redesigns change no result: classify (every strategy, TPT and --rerank-all included) and
evaluate give what the first round gave, recorded in tests/golden/ by tests/golden/record.py.

Numbers are compared to 1e-6, everything else (class names, prompts, detail keys, order) exactly.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"
spec = importlib.util.spec_from_file_location("golden_record", GOLDEN / "record.py")
record = importlib.util.module_from_spec(spec)
spec.loader.exec_module(record)


def differences(want: Any, got: Any, where: str = "$") -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        if list(want) != list(got):
            return [f"{where}: keys {list(want)} != {list(got)}"]
        return [d for k in want for d in differences(want[k], got[k], f"{where}.{k}")]
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return [f"{where}: {len(want)} items != {len(got)}"]
        return [d for k, (a, b) in enumerate(zip(want, got)) for d in differences(a, b, f"{where}[{k}]")]
    if isinstance(want, float) or isinstance(got, float):
        if isinstance(want, (int, float)) and isinstance(got, (int, float)) and not isinstance(want, bool) \
                and (math.isclose(want, got, rel_tol=0, abs_tol=1e-6) or (math.isnan(want) and math.isnan(got))):
            return []
        return [f"{where}: {want!r} != {got!r}"]
    return [] if want == got else [f"{where}: {want!r} != {got!r}"]


@pytest.fixture(scope="module")
def now() -> dict[str, Any]:
    # Through JSON, as the golden files were written (sorted keys, floats as text).
    return json.loads(json.dumps(record.record(), sort_keys=True))


@pytest.mark.parametrize("name", ["classify", "classify_rerank_all", "evaluate"])
def test_results_are_those_of_the_first_round(now, name):
    want = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    found = differences(want, now[name])
    assert not found, f"{len(found)} differences, the first: " + "; ".join(found[:5])


def test_the_comparison_sees_a_change():
    doc = {"p": [0.25, 0.75], "prompts": ["a photo of a cat."]}
    assert differences(doc, {"p": [0.25, 0.7500005], "prompts": ["a photo of a cat."]}) == []
    assert differences(doc, {"p": [0.25, 0.751], "prompts": ["a photo of a cat."]})
    assert differences(doc, {"p": [0.25, 0.75], "prompts": ["a photo of the cat."]})
    assert differences(doc, {"prompts": ["a photo of a cat."], "p": [0.25, 0.75]})     # key order counts
