"""The linear probe (issue 29, part): the fit against an independent solver (scikit-learn, in the
tests only), determinism, a clearly separable set, the sweep, and its run as a strategy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zsdemo.core.errors import InputError
from zsdemo.data.support import SupportFeatures
from zsdemo.strategies import linear_probe

sklearn = pytest.importorskip("sklearn.linear_model")


def _support(x: np.ndarray, y: list[int], classes: tuple[str, ...]) -> SupportFeatures:
    f = torch.nn.functional.normalize(torch.tensor(x, dtype=torch.float32), dim=-1)
    return SupportFeatures(classes, f, torch.tensor(y), [f"{k}.png" for k in range(len(y))],
                           [f"d{k}" for k in range(len(y))])


def _blobs(seed: int, classes: int = 4, shots: int = 8, dim: int = 16, spread: float = 0.6) -> SupportFeatures:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    x = np.concatenate([centres[c] + spread * rng.normal(size=(shots, dim)) for c in range(classes)])
    return _support(x, [c for c in range(classes) for _ in range(shots)], tuple("abcdefgh"[:classes]))


@pytest.mark.parametrize("c", [0.01, 0.316, 10.0])
def test_the_fit_is_scikit_learns_logistic_regression(c):
    s = _blobs(0)
    weights, bias = linear_probe.fit(s.features, s.labels, 4, c)
    ref = sklearn.LogisticRegression(C=c, max_iter=10_000, tol=1e-12).fit(s.features.double().numpy(),
                                                                          s.labels.numpy())
    # The same optimum up to a shift of all classes' scores (softmax ignores it).
    ours = (s.features.double() @ weights + bias).numpy()
    theirs = ref.decision_function(s.features.double().numpy())
    assert np.allclose(ours - ours.mean(1, keepdims=True), theirs - theirs.mean(1, keepdims=True), atol=1e-4)
    assert np.allclose(weights.numpy().T - weights.numpy().T.mean(0), ref.coef_ - ref.coef_.mean(0), atol=1e-4)


def test_it_is_deterministic():
    s = _blobs(1)
    a = linear_probe.fit(s.features, s.labels, 4, 1.0)
    b = linear_probe.fit(s.features, s.labels, 4, 1.0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_a_clearly_separable_set_is_learned_and_the_sweep_picks_a_c():
    s = _blobs(2, spread=0.15)
    train = s.subset([k for k in range(32) if k % 4])
    val = s.subset([k for k in range(32) if k % 4 == 0])
    c = linear_probe.sweep(train, val)
    assert 1e-6 <= c <= 1e6
    probe = linear_probe.fit(train.features, train.labels, 4, c)
    assert linear_probe.accuracy(val.features, val.labels, probe) == 1.0


def test_it_runs_as_a_few_shot_strategy(tiny, cat_path, tmp_path):
    from zsdemo.data.support import open_support
    from zsdemo.run.pipeline import classify

    from test_few_shot import make_support

    support = open_support(str(make_support(tmp_path / "s", 4, ("cat", "rocket"))), ["cat", "rocket"])
    result = classify(tiny, [str(cat_path)], "cat, rocket", "linear-probe", support=support)
    details = result.images[0].strategies["linear-probe"].details
    assert details.searched and 1e-6 <= details.c <= 1e6 and details.shots == {"cat": 4, "rocket": 4}
    assert result.options["probe"] == {"c": 0.316, "val_fraction": 0.25, "load": None, "save": None}
    with pytest.raises(InputError, match="The linear probe needs a support set"):
        classify(tiny, [str(cat_path)], "cat, rocket", "linear-probe")
