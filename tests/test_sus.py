"""SuS: the support set the model finds itself among the user's unlabeled photos (SuS-X's name-only
transfer): the retrieval against a brute-force ranking, the pool's checks, what is said about it,
and the same pool through the library, the command line, the API and an evaluation."""

from __future__ import annotations

import json
import math
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from zsdemo import classify
from zsdemo.core.errors import InputError
from zsdemo.core.resources import SUS_POOL
from zsdemo.data.pool import find_support, open_pool, retrieve
from zsdemo.engine.text import TextFeatureCache
from zsdemo.run.pipeline import sus_text
from zsdemo.run.request import prepare_request

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "assets" / "images"
CLASSES = ("cat", "rocket", "astronaut", "coffee mug")


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory) -> Path:
    """The shipped pool, unpacked: 20 photos, none of them an example photo."""
    folder = tmp_path_factory.mktemp("pool")
    with zipfile.ZipFile(SUS_POOL) as z:
        z.extractall(folder)
    (folder / "pool" / "notes.txt").write_text("not an image")
    return folder


def test_the_retrieval_is_each_classes_own_brute_force_ranking():
    gen = torch.Generator().manual_seed(0)
    text, pool = torch.randn(5, 16, generator=gen), torch.randn(40, 16, generator=gen)
    rows, cosines = retrieve(text, pool, 6)
    t = text / text.norm(dim=1, keepdim=True)
    p = pool / pool.norm(dim=1, keepdim=True)
    for c in range(5):
        ranked = sorted(range(40), key=lambda j: (-float(t[c] @ p[j]), j))[:6]
        assert rows[c].tolist() == ranked
        assert cosines[c].tolist() == pytest.approx([float(t[c] @ p[j]) for j in ranked], abs=1e-6)
    rows, _ = retrieve(text, pool[:3], 6)
    assert rows.shape == (5, 3)                  # a pool smaller than k: every class takes all of it


def test_the_shipped_pool_is_read_and_its_text_files_skipped(pool_dir):
    pool = open_pool(pool_dir)
    assert len(pool.items) == 20 and pool.skipped == 1
    assert not ({it.name.split("/")[-1] for it in pool.items} & {p.name for p in PHOTOS.iterdir()})
    zipped = open_pool(SUS_POOL, confine=True)
    try:
        assert [it.name for it in zipped.items] == [it.name for it in pool.items]
    finally:
        zipped.close()


def test_sus_builds_a_support_set_of_k_per_class_by_the_class_text(tiny, pool_dir):
    pool = open_pool(pool_dir)
    request = prepare_request(list(CLASSES), "tipx", sus_pool=pool, sus_k=3)
    text = sus_text(tiny, request, TextFeatureCache())
    support, found = find_support(tiny, pool, CLASSES, text, 3)
    assert support.shots() == {c: 3 for c in CLASSES} and support.root == f"SuS from {pool.root}"
    features = support.features
    for c, name in enumerate(CLASSES):
        picked = found.classes[name]
        assert [x["cosine"] for x in picked] == sorted((x["cosine"] for x in picked), reverse=True)
        rows = (support.labels == c).nonzero().flatten()
        cos = (features[rows] @ torch.nn.functional.normalize(text[c], dim=0)).tolist()
        assert cos == pytest.approx([x["cosine"] for x in picked], abs=2e-3)      # float16 features
    assert set(found.files()) <= {it.name for it in pool.items}


def test_descriptors_give_the_classes_their_cupl_sentences(tiny):
    request = prepare_request(["cat", "rocket"], "tipx", sus_pool=object(), descriptors="cat: a small furry pet")
    plain = prepare_request(["cat", "rocket"], "tipx", sus_pool=object())
    with_sentences, without = sus_text(tiny, request, None), sus_text(tiny, plain, None)
    assert not torch.allclose(with_sentences[0], without[0]) and torch.allclose(with_sentences[1], without[1])


def test_a_classify_with_a_pool_says_what_it_found(tiny, pool_dir):
    result = classify(tiny, [str(PHOTOS / "cat.png")], list(CLASSES), "name,tipx,tip",
                      sus_pool=open_pool(pool_dir), sus_k=2)
    assert result.sus["k"] == 2 and result.sus["pool_size"] == 20
    assert set(result.sus["classes"]) == set(CLASSES) and all(len(v) == 2 for v in result.sus["classes"].values())
    assert result.images[0].strategies["tipx"].details.shots == {c: 2 for c in CLASSES}
    # Every other strategy's numbers are what they are without a pool.
    alone = classify(tiny, [str(PHOTOS / "cat.png")], list(CLASSES), "name")
    assert result.images[0].strategies["name"].probs == alone.images[0].strategies["name"].probs
    assert "sus" not in alone.to_dict()


def test_a_class_that_finds_nothing_close_is_said(tiny, pool_dir):
    result = classify(tiny, [str(PHOTOS / "cat.png")], list(CLASSES), "tipx", sus_pool=open_pool(pool_dir))
    alone = [c for c, xs in result.sus["classes"].items() if not any(x["nearest_class"] == c for x in xs)]
    assert alone, "a random model finds some class nothing close"
    said = next(w for w in result.warnings if w.startswith("Nothing in the pool looks most like"))
    assert all(repr(c) in said for c in alone[:5])


def test_a_pool_smaller_than_k_times_the_classes_says_how_many_each_got(tiny, tmp_path):
    for name in ("cell.png", "moon-surface.png", "greek-coins.png"):
        with zipfile.ZipFile(SUS_POOL) as z:
            (tmp_path / name).write_bytes(z.read(f"pool/{name}"))
    result = classify(tiny, [str(PHOTOS / "cat.png")], list(CLASSES), "tipx", sus_pool=open_pool(tmp_path), sus_k=2,
                      tipx={"alpha": 1.0, "beta": 1.0, "gamma": 1.0})
    said = next(w for w in result.warnings if w.startswith("The pool has 3 readable image(s) for 4 classes x k=2"))
    assert "each class still takes its 2 nearest" in said


def test_a_pool_holding_an_image_being_classified_is_refused_by_content(tiny, tmp_path):
    shutil.copy(PHOTOS / "cat.png", tmp_path / "renamed.png")
    shutil.copy(PHOTOS / "rocket.jpg", tmp_path / "rocket.jpg")
    with pytest.raises(InputError, match="The pool holds 1 of the images being classified or evaluated "
                                         r"\('renamed.png'\)"):
        classify(tiny, [str(PHOTOS / "cat.png")], list(CLASSES), "tipx", sus_pool=open_pool(tmp_path))


@pytest.mark.parametrize("layout, message", [
    ({}, "holds no image"), ({"a.txt": b"text"}, "holds no image"),
    ({"broken.png": b"not a png", "x.txt": b"t"}, "No image of the pool"),
])
def test_an_empty_or_unreadable_pool_is_refused_in_words(tiny, tmp_path, layout, message):
    for name, data in layout.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(InputError, match=message):
        classify(tiny, [str(PHOTOS / "cat.png")], list(CLASSES), "tipx", sus_pool=open_pool(tmp_path))


@pytest.mark.parametrize("k", [0, -1, 65, math.nan, 2.5, "4", True])
def test_a_bad_k_is_refused_before_anything_is_read(k):
    with pytest.raises(InputError, match="SuS's examples per class must be"):
        prepare_request(list(CLASSES), "tipx", sus_pool=object(), sus_k=k)


def test_a_pool_and_a_support_set_together_are_refused(tmp_path):
    from zsdemo.data.support import SupportSet

    with pytest.raises(InputError, match="not both"):
        prepare_request(list(CLASSES), "tipx", sus_pool=object(), support=SupportSet("s", CLASSES, []))


def test_a_pool_with_no_few_shot_strategy_is_said_unused():
    request = prepare_request(list(CLASSES), "name", sus_pool=object())
    assert any("they are unused" in w for w in request.warnings)


def test_not_a_pool(tmp_path):
    with pytest.raises(InputError, match="neither a folder nor a .zip"):
        open_pool(tmp_path / "nothing-here")


def test_the_command_line_finds_examples_and_writes_them_to_the_evaluation_report(tmp_path, pool_dir, capsys):
    from zsdemo import cli

    code = cli.main(["classify", str(PHOTOS / "coffee.png"), "--classes", ", ".join(CLASSES), "--strategies",
                     "name,tipx", "--sus-pool", str(pool_dir), "--sus-k", "2", "--model", "tiny-random", "--quiet",
                     "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["sus"]["k"] == 2
    labelled = tmp_path / "set"
    for c, photo in (("cat", "cat.png"), ("rocket", "rocket.jpg")):
        (labelled / c).mkdir(parents=True)
        shutil.copy(PHOTOS / photo, labelled / c / photo)
    out_dir = tmp_path / "report"
    code = cli.main(["evaluate", str(labelled), "--strategies", "name,tipx", "--sus-pool", str(pool_dir), "--out",
                     str(out_dir), "--model", "tiny-random", "--quiet", "--no-cache"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out_dir / "report.json").read_text())
    assert set(report["sus"]["classes"]) == {"cat", "rocket"} and "tipx" in report["strategies"]
    assert all(x["file"].startswith("pool/") for xs in report["sus"]["classes"].values() for x in xs)
    capsys.readouterr()
    code = cli.main(["classify", str(PHOTOS / "coffee.png"), "--classes", "cat, rocket", "--strategies", "tipx",
                     "--sus-pool", str(tmp_path / "none"), "--model", "tiny-random", "--quiet"])
    assert code == 2 and "neither a folder nor a .zip" in capsys.readouterr().err


def test_the_api_takes_a_pool_as_an_upload(live_app):
    from gradio_client import Client, handle_file

    client = Client(live_app, verbose=False)
    answer = client.predict([handle_file(str(PHOTOS / "coffee.png"))], ", ".join(CLASSES), "name,tipx",
                            sus_pool=handle_file(str(SUS_POOL)), sus_k=2, api_name="/classify")
    assert answer["sus"]["k"] == 2 and answer["sus"]["pool_size"] == 20
    with pytest.raises(Exception, match="TIP-X searches alpha, beta, gamma on a held-out share"):
        client.predict([handle_file(str(PHOTOS / "coffee.png"))], "cat, rocket", "tipx",
                       sus_pool=handle_file(str(SUS_POOL)), sus_k=1, api_name="/classify")
    with pytest.raises(Exception, match="was not uploaded with this request"):
        client.predict([handle_file(str(PHOTOS / "coffee.png"))], "cat, rocket", "tipx", sus_pool="/etc/passwd",
                       api_name="/classify")


def test_shots_curve_draws_tipx_when_it_is_selected(tiny, tmp_path):
    from zsdemo.data.labelled import open_labelled
    from zsdemo.data.support import open_support
    from zsdemo.run.evaluation import evaluate, evaluation_request
    from zsdemo.run.shots import plan

    from test_few_shot import make_support

    support = make_support(tmp_path / "support", shots=4)
    data = open_labelled(make_support(tmp_path / "data", shots=2))
    request = evaluation_request(data, "name,tipx", support=open_support(support, data.classes), support_used=True,
                                 tipx={"alpha": 1.0, "beta": 2.0, "gamma": 1.0})
    curve = plan("1,2", 1, request)
    assert "tipx" in curve.few_shot
    report = evaluate(tiny, data, request, shots=curve)
    lines = report.shots_curve.to_dict()
    tipx_points = [p for p in lines["points"] if p["strategy"] == "tipx"]
    assert [p["k"] for p in tipx_points] == [1, 2] and np.isfinite([p["mean"] for p in tipx_points]).all()
