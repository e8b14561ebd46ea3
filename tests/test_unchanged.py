"""Redesigns change no result: classify (every strategy, TPT and --rerank-all included) and
evaluate give what the first round gave, recorded in tests/golden/ by tests/golden/record.py.

Probabilities are compared to 1e-6; other numbers (logits, cosines, entropies) to a relative
1e-5 or an absolute 1e-5, since a prompt's float32 features differ in the last bits with the batch
it was encoded in (the text cache keeps whichever came first) and with the CPU's kernels (on a
Sapphire Rapids machine a logit of 0.06 came out 2e-6 away, 4.5e-6 at most for any logit, while
the recording machine matched); everything else (class names, prompts, detail keys and their
order) exactly.
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


# Keys later issues added (new results, not changed ones): present now, absent from the recording.
ADDED = {
    "wordnet_nodes", "wordnet_sparsity", "pruned_parents", "pruned_children",   # issue 16: sparse WordNet
    "wordnet_keep", "low_confidence", "rerank_top",            # issue 16: its settings in a report
    "dataset", "paper_comparison",                             # issue 16: the paper's datasets
    "arena",                                                   # issue 17: strategies pairwise
    "by_strategy", "confidence",                               # issue 17: every strategy's own confidence
    "perception",                                              # issue 17: PerceptionCLIP's settings
    "logit_bias",                                              # issue 17: a sigmoid model's bias (SigLIP)
    "tip", "coop", "support",                                  # issue 18: the few-shot settings and set
    "world_size", "images_per_rank",                           # issue 19: data-parallel evaluation
    "options",                                                 # issue 27: the methods' settings, as declared
    "shots_curve",                                             # issue 29: accuracy against shots per class
}


def differences(want: Any, got: Any, where: str = "$") -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        got = {k: v for k, v in got.items() if k in want or k not in ADDED}
        if list(want) != list(got):
            return [f"{where}: keys {list(want)} != {list(got)}"]
        return [d for k in want for d in differences(want[k], got[k], f"{where}.{k}")]
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return [f"{where}: {len(want)} items != {len(got)}"]
        return [d for k, (a, b) in enumerate(zip(want, got)) for d in differences(a, b, f"{where}[{k}]")]
    if isinstance(want, float) or isinstance(got, float):
        numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (want, got))
        probability = "prob" in where.rsplit(".", 1)[-1]
        if numbers and (math.isclose(want, got, rel_tol=0 if probability else 1e-5,
                                     abs_tol=1e-6 if probability else 1e-5)
                        or (math.isnan(want) and math.isnan(got))):
            return []
        return [f"{where}: {want!r} != {got!r}"]
    return [] if want == got else [f"{where}: {want!r} != {got!r}"]


@pytest.fixture(scope="module")
def now() -> dict[str, Any]:
    # Through JSON, as the golden files were written (keys in the order the JSON gives them,
    # which is part of the schema; floats as text).
    return json.loads(json.dumps(record.record()))


@pytest.mark.parametrize("name", ["classify", "classify_rerank_all", "evaluate"])
def test_results_are_those_of_the_first_round(now, name):
    want = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    found = differences(want, now[name])
    assert not found, f"{len(found)} differences, the first: " + "; ".join(found[:5])


def test_the_comparison_sees_a_change():
    doc = {"probs": [0.25, 0.75], "logit": 21.5, "prompts": ["a photo of a cat."]}
    assert differences(doc, {"probs": [0.25, 0.7500005], "logit": 21.5001, "prompts": ["a photo of a cat."]}) == []
    assert differences(doc, {"probs": [0.25, 0.750002], "logit": 21.5, "prompts": ["a photo of a cat."]})
    assert differences(doc, {"probs": [0.25, 0.75], "logit": 21.51, "prompts": ["a photo of a cat."]})
    assert differences({"logit": 0.06}, {"logit": 0.060009}) == []        # float noise near zero
    assert differences({"logit": 0.06}, {"logit": 0.06002})
    assert differences(doc, {"probs": [0.25, 0.75], "logit": 21.5, "prompts": ["a photo of the cat."]})
    assert differences(doc, {"prompts": ["a photo of a cat."], "probs": [0.25, 0.75], "logit": 21.5})
