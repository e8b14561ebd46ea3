"""GDA (Wang et al., ICLR 2024): the fitted classifier equals the formula written out on its own,
it separates a clearly separable set, and it runs as a few-shot strategy (issue 29, part)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zsdemo.core.errors import InputError
from zsdemo.data.support import SupportFeatures
from zsdemo.strategies import gda


def _support(features: np.ndarray, labels: list[int], classes: tuple[str, ...]) -> SupportFeatures:
    f = torch.nn.functional.normalize(torch.tensor(features, dtype=torch.float32), dim=-1)
    return SupportFeatures(classes, f, torch.tensor(labels), [f"{k}.png" for k in range(len(labels))],
                           [f"d{k}" for k in range(len(labels))], [], [])


def test_the_classifier_is_the_formula_written_out():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 6))
    y = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    support = _support(x, y, ("a", "b", "c"))
    weights, bias = gda.fit(support)
    f = support.features.double().numpy()
    mus = np.stack([f[np.array(y) == c].mean(axis=0) for c in range(3)])
    centred = f - mus[y]
    n, d = centred.shape
    s = centred.T @ centred / (n - 1)                       # the sample covariance, written out
    p = d * np.linalg.pinv((n - 1) * s + np.trace(s) * np.eye(d))
    assert np.allclose(weights.numpy(), p @ mus.T, atol=1e-8)
    assert np.allclose(bias.numpy(), [math.log(1 / 3) - 0.5 * mus[c] @ p @ mus[c] for c in range(3)], atol=1e-8)


def test_it_separates_a_clearly_separable_set():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 16)) * 3
    x = np.concatenate([centres[c] + 0.2 * rng.normal(size=(8, 16)) for c in range(4)])
    y = [c for c in range(4) for _ in range(8)]
    support = _support(x, y, ("a", "b", "c", "d"))
    weights, bias = gda.fit(support.subset(list(range(0, 32, 2))))
    held = list(range(1, 32, 2))
    predicted = (support.features[held].double() @ weights + bias).argmax(dim=-1)
    assert float((predicted == support.labels[held]).float().mean()) == 1.0


def test_it_runs_as_a_few_shot_strategy_and_searches_its_weight(tiny, cat_path, tmp_path):
    from zsdemo.data.support import open_support
    from zsdemo.run.pipeline import classify

    from test_few_shot import make_support

    support = open_support(str(make_support(tmp_path / "s", 3, ("cat", "rocket"))), ["cat", "rocket"])
    result = classify(tiny, [str(cat_path)], "cat, rocket", "clip80,gda", support=support,
                      gda={"val_fraction": 0.34})
    details = result.images[0].strategies["gda"].details
    assert details.searched and details.alpha in gda.ALPHA_GRID and details.shots == {"cat": 3, "rocket": 3}
    assert result.options["gda"] == {"alpha": 0.1, "val_fraction": 0.34, "load": None, "save": None}
    with pytest.raises(InputError, match="GDA needs a support set"):
        classify(tiny, [str(cat_path)], "cat, rocket", "gda")
    with pytest.raises(InputError, match="GDA's weight must be a number from 0 to 10000"):
        classify(tiny, [str(cat_path)], "cat, rocket", "clip80", gda_alpha=-1)
