"""TIP-X (SuS-X's training-free use of a support set): its formula written out against open_clip's own
encoders, the search on a toy support set whose best grid point is known, an image's answer alone
and among others, and what it needs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zsdemo import classify
from zsdemo.core.errors import InputError
from zsdemo.data.support import open_support
from zsdemo.engine.images import load_image
from zsdemo.prompts.templates import CLIP80, fill
from zsdemo.strategies import tipx

from test_few_shot import ASSETS, CLASSES, PHOTOS, make_support


@pytest.fixture(scope="module")
def support_dir(tmp_path_factory):
    return make_support(tmp_path_factory.mktemp("tipx-support"))


def _reference(tiny, images, support, alpha: float, beta: float, gamma: float, tau: float = 0.5) -> np.ndarray:
    """SPEC §6's TIP-X in float64 numpy, from open_clip's encode_image and encode_text called directly."""
    model, pre = tiny.model, tiny.preprocess

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    with torch.no_grad():
        def image(path) -> np.ndarray:
            return model.encode_image(pre(load_image(str(path)).image)[None]).double().numpy()[0]
        f = unit(np.stack([image(p) for p in images]))
        # The support features as the feature store keeps them: float16 (``data/support.py``).
        k = unit(unit(np.stack([image(it.path) for it in support.items])).astype(np.float16).astype(np.float64))
        w = unit(np.stack([unit(model.encode_text(tiny.tokenizer([fill(t, c) for t in CLIP80])).double().numpy())
                           .mean(axis=0) for c in CLASSES]))
        s = float(model.logit_scale.exp())
    v = np.eye(len(CLASSES))[[it.label for it in support.items]]

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    p, q = softmax(f @ w.T / tau), softmax(k @ w.T / tau)
    a = f @ k.T
    out = []
    for i in range(len(f)):
        d = np.array([np.sum(p[i] * (np.log(p[i]) - np.log(q[j]))) for j in range(len(k))])
        d = (d - d.min()) / (d.max() - d.min()) * (a[i].max() - a[i].min()) + a[i].min()
        out.append(s * f[i] @ w.T + gamma * (-d) @ v + alpha * np.exp(-beta * (1 - a[i])) @ v)
    return np.array(out)


def test_tipx_equals_its_formula_written_out(tiny, support_dir):
    images = [ASSETS / p for p in PHOTOS.values()]
    support = open_support(support_dir, CLASSES)
    result = classify(tiny, [str(p) for p in images], CLASSES, "tipx", support=support,
                      tipx={"alpha": 2.0, "beta": 3.0, "gamma": 1.5})
    reference = _reference(tiny, images, support, 2.0, 3.0, 1.5)
    for row, im in enumerate(result.images):
        r = im.strategies["tipx"]
        assert np.allclose(r.logits, reference[row], rtol=1e-5, atol=1e-4), (r.logits, reference[row])
        assert np.allclose(r.probs, torch.tensor(reference[row]).softmax(-1).numpy(), atol=1e-4)
        assert r.details.searched == [] and (r.details.alpha, r.details.beta, r.details.gamma) == (2.0, 3.0, 1.5)
        top = r.details.top[0]
        assert top["zero_shot"] + top["kl"] + top["cache"] == pytest.approx(top["total"], abs=1e-3)


def test_an_images_answer_does_not_depend_on_the_others_sent_with_it(tiny, support_dir):
    images = [str(ASSETS / p) for p in PHOTOS.values()]
    settings = {"alpha": 1.0, "beta": 5.0, "gamma": 4.0}
    together = classify(tiny, images, CLASSES, "tipx", support=open_support(support_dir, CLASSES), tipx=settings)
    alone = classify(tiny, images[1:2], CLASSES, "tipx", support=open_support(support_dir, CLASSES), tipx=settings)
    assert alone.images[0].strategies["tipx"].logits == pytest.approx(together.images[1].strategies["tipx"].logits,
                                                                      abs=1e-4)


def test_the_search_finds_the_grid_point_a_toy_support_set_calls_for():
    # Two classes. Zero-shot favours class 0 by 5 for every held-out example, all of class 1; the
    # cache gives class 1 exactly 1 at any beta (an affinity of 1 to its one example) and class 0
    # nothing; the KL term is zero. The first grid point that turns them: alpha above 5 (the third
    # grid alpha, 5.09), the first beta, the first gamma.
    n = 4
    terms = tipx.Terms(zero_shot=torch.tensor([[5.0, 0.0]] * n), kl=torch.zeros(n, 2),
                       affinity=torch.tensor([[1.0, -50.0]] * n))
    values = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    alpha, beta, gamma, accuracy = tipx.search(terms, values, torch.ones(n, dtype=torch.long))
    assert (alpha, beta, gamma, accuracy) == (pytest.approx(tipx.ALPHA_GRID[2]), tipx.BETA_GRID[0],
                                              tipx.GAMMA_GRID[0], 1.0)
    assert tipx.ALPHA_GRID[1] < 5 < tipx.ALPHA_GRID[2]
    # The KL term alone can do it too, when the cache cannot: the first gamma over 5.
    terms = tipx.Terms(zero_shot=torch.tensor([[5.0, 0.0]] * n), kl=torch.tensor([[0.0, 1.0]] * n),
                       affinity=torch.tensor([[-50.0, -50.0]] * n))
    alpha, beta, gamma, accuracy = tipx.search(terms, values, torch.ones(n, dtype=torch.long))
    assert gamma == min(g for g in tipx.GAMMA_GRID if g > 5) and accuracy == 1.0 and alpha == tipx.ALPHA_GRID[0]


def test_the_official_grid():
    assert len(tipx.ALPHA_GRID) == 20 and tipx.ALPHA_GRID[0] == pytest.approx(0.1)
    assert len(tipx.BETA_GRID) == 200 and tipx.BETA_GRID[0] == 1 and tipx.BETA_GRID[-1] < 50
    assert len(tipx.GAMMA_GRID) == 50 and tipx.GAMMA_GRID[0] == pytest.approx(0.1) and tipx.GAMMA_GRID[-1] < 30


def test_searched_settings_come_from_the_support_set_and_what_is_given_stays(tiny, support_dir):
    images = [str(ASSETS / p) for p in PHOTOS.values()]
    searched = classify(tiny, images, CLASSES, "tipx", support=open_support(support_dir, CLASSES))
    d = searched.images[0].strategies["tipx"].details
    assert d.searched == ["alpha", "beta", "gamma"]
    assert d.alpha in tipx.ALPHA_GRID and d.beta in tipx.BETA_GRID and d.gamma in tipx.GAMMA_GRID
    pinned = classify(tiny, images, CLASSES, "tipx", support=open_support(support_dir, CLASSES),
                      tipx={"beta": 7.0})
    d = pinned.images[0].strategies["tipx"].details
    assert d.searched == ["alpha", "gamma"] and d.beta == 7.0


def test_tipx_without_a_support_set_is_refused_like_the_other_few_shot_methods():
    with pytest.raises(InputError) as tip:
        classify(None, [str(ASSETS / "cat.png")], CLASSES, "tip")
    with pytest.raises(InputError) as refused:
        classify(None, [str(ASSETS / "cat.png")], CLASSES, "tipx")
    assert str(refused.value).replace("TIP-X", "Tip-Adapter") == str(tip.value)


@pytest.mark.parametrize("kwargs, message", [({"gamma": -1}, "gamma must be a number from 0"),
                                             ({"temperature": 0}, "temperature must be a number above 0"),
                                             ({"alpha": float("nan")}, "alpha must be")])
def test_bad_tipx_settings(kwargs, message):
    with pytest.raises(InputError, match=message):
        classify(None, [str(ASSETS / "cat.png")], CLASSES, "name", tipx=kwargs)


def test_the_kl_divergence_and_its_rescaling():
    p = F.softmax(torch.randn(3, 4), dim=-1)
    q = F.softmax(torch.randn(5, 4), dim=-1)
    d = tipx.kl_divergences(p, q)
    assert torch.allclose(d[1, 2], (p[1] * (p[1].log() - q[2].log())).sum(), atol=1e-6)
    a = torch.rand(3, 5)
    r = tipx.rescaled(d, a)
    assert torch.allclose(r.min(dim=1).values, a.min(dim=1).values) and torch.allclose(r.max(dim=1).values,
                                                                                       a.max(dim=1).values)
