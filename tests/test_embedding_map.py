"""The embedding map: the projection against an independent computation, what it draws for each
strategy, the text cache it reads, thinning for a browser, bad input, files it writes, and the
same map from the library, the command line and the API."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zsdemo.core.errors import InputError
from zsdemo.core.limits import LIMITS
from zsdemo.engine import text as text_module
from zsdemo.engine.embedding_map import project
from zsdemo.engine.text import TextFeatureCache
from zsdemo.prompts.templates import CLIP7, fill
from zsdemo.run import embedding_map as maps
from zsdemo.run.pipeline import classify_request, prepare_request

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "assets" / "images"
CLASSES = ["crane", "heron", "rocket"]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _reference(tiny, images: list[Path], classes: list[str], separate: bool) -> tuple[np.ndarray, np.ndarray]:
    """open_clip's encode_image and encode_text called directly, numpy's SVD: the map's points in
    its order (images, names, then CLIP-7's prompts and ensemble per class) and the variance shares."""
    from PIL import Image

    with torch.no_grad():
        pixels = torch.stack([tiny.preprocess(Image.open(p).convert("RGB")) for p in images])
        image = tiny.model.encode_image(pixels).float().numpy()

        def encode(texts: list[str]) -> np.ndarray:
            return _unit(tiny.model.encode_text(tiny.tokenizer(texts)).float().numpy())

        rows = [encode(classes)]
        for c in classes:
            prompts = encode([fill(t, c) for t in CLIP7])
            rows += [prompts, _unit(prompts.mean(axis=0, keepdims=True))]
    image = _unit(image).astype(np.float64)
    texts = np.concatenate(rows).astype(np.float64)
    if separate:
        x = np.concatenate([image - image.mean(0), texts - texts.mean(0)])
    else:
        every = np.concatenate([image, texts])
        x = every - every.mean(0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T, (s[:2] ** 2) / (s ** 2).sum()


@pytest.mark.parametrize("separate", [False, True])
def test_the_map_is_pca_of_open_clips_own_features_up_to_each_axis_sign(tiny, separate):
    images = [IMAGES / "rocket.jpg", IMAGES / "cat.png", IMAGES / "coffee.png"]
    request, _ = maps.prepare_map(CLASSES, "clip7")
    found = maps.embedding_map(tiny, [str(p) for p in images], request, TextFeatureCache(),
                               separate_modalities=separate)
    kinds = [p.kind for p in found.points]
    assert kinds == ["image"] * 3 + ["name"] * 3 + (["prompt"] * 7 + ["ensemble"]) * 3
    ref, shares = _reference(tiny, images, CLASSES, separate)
    got = np.array([[p.x, p.y] for p in found.points])
    for k in range(2):
        sign = np.sign(ref[:, k] @ got[:, k])
        assert np.abs(sign * ref[:, k] - got[:, k]).max() < 1e-4
    assert np.allclose(found.explained_variance, shares, atol=1e-5)
    if separate:          # each modality centred on its own mean: both means at the origin
        assert np.abs(got[:3].mean(0)).max() < 1e-5 and np.abs(got[3:].mean(0)).max() < 1e-5


def test_each_axis_keeps_its_sign_whatever_the_order_of_the_points():
    torch.manual_seed(0)
    x = F.normalize(torch.randn(200, 32) + torch.randn(32), dim=-1)
    order = torch.randperm(200)
    first, second = project(x), project(x[order])
    assert torch.allclose(first.xy[order], second.xy, atol=1e-5)
    for axis in first.axes:                     # the largest-magnitude loading is positive
        assert axis[axis.abs().argmax()] > 0
    flipped = project(-x)        # the cloud mirrored through the origin: the same axes, so a mirrored map
    assert torch.allclose(flipped.xy, -first.xy, atol=1e-5)


def test_one_point_and_one_dimension_give_a_map_not_an_error():
    one = project(torch.ones(1, 8))
    assert one.xy.tolist() == [[0.0, 0.0]] and one.explained == (0.0, 0.0)
    line = project(torch.tensor([[1.0], [-1.0], [1.0]]))
    assert line.explained == (1.0, 0.0) and line.xy.shape == (3, 2)


def test_what_each_strategy_draws(tiny):
    request, skipped = maps.prepare_map(CLASSES, "name,photo,clip80,custom,hierarchy,tip,coop",
                                        templates="a sketch of a {}.\na toy {}.")
    found = maps.embedding_map(tiny, [str(IMAGES / "rocket.jpg")], request, TextFeatureCache(), skipped=skipped)
    by = {}
    for p in found.points:
        by.setdefault((p.kind, p.strategy), []).append(p)
    assert len(by[("name", None)]) == 3 and len(by[("image", None)]) == 1
    assert len(by[("prompt", "photo")]) == 3 and ("ensemble", "photo") not in by   # one prompt is its own centre
    assert len(by[("prompt", "clip80")]) == 240 and len(by[("ensemble", "clip80")]) == 3
    assert {p.text for p in by[("prompt", "custom")]} == {"a sketch of a crane.", "a toy crane.", "a sketch of a heron.",
                                                           "a toy heron.", "a sketch of a rocket.", "a toy rocket."}
    assert ("prompt", "name") not in by          # the bare name is already every class's square
    wordnet = by[("wordnet", "hierarchy")]
    crane = [p for p in wordnet if p.class_name == "crane"]
    assert crane[0].relation == "parent" and crane[0].prompt == f"crane which is a kind of {crane[0].text}"
    assert all(p.relation == "child" and p.prompt.endswith(crane[0].text) for p in crane[1:])
    assert skipped == ["Tip-Adapter (few-shot cache)", "CoOp (learned context)"]
    assert any("Tip-Adapter (few-shot cache), CoOp (learned context) have no prompt points" in n for n in found.notes)
    ensemble = by[("ensemble", "clip80")][0]       # the ensemble is the normalised mean of its 80 prompts
    assert ensemble.text == "CLIP-80 ensemble: the mean of 80 prompts"


def test_after_a_classify_the_map_encodes_no_prompt_again(tiny, monkeypatch):
    cache = TextFeatureCache()
    request = prepare_request(CLASSES, "name,photo,clip7,clip80")
    classify_request(tiny, [str(IMAGES / "rocket.jpg")], request, cache)
    encoded = []
    original = text_module.encode_tokens
    monkeypatch.setattr(text_module, "encode_tokens", lambda loaded, tokens: encoded.append(len(tokens)) or
                        original(loaded, tokens))
    found = maps.embedding_map(tiny, [str(IMAGES / "rocket.jpg")], maps.prepare_map(CLASSES, "name,photo,clip7,clip80")[0],
                               cache)
    assert encoded == [] and len(found.points) == 1 + 3 + 3 * (1 + 7 + 80) + 6
    maps.embedding_map(tiny, [], maps.prepare_map(["saucer"], "photo")[0], cache)
    assert sum(encoded) == 2                     # a new class: its name and its one prompt, once


def test_a_map_of_the_texts_alone_one_class_and_a_bad_image(tiny):
    request, _ = maps.prepare_map(["crane"], "photo")
    found = maps.embedding_map(tiny, [], request, TextFeatureCache(), separate_modalities=True)
    assert [p.kind for p in found.points] == ["name", "prompt"] and found.nearest == []
    assert any("one modality" in n for n in found.notes)
    found = maps.embedding_map(tiny, [str(IMAGES / "rocket.jpg"), "/no/such/photo.png"],
                               maps.prepare_map(CLASSES, "photo")[0], TextFeatureCache(), names=["rocket.jpg", "x.png"])
    assert [p.text for p in found.points if p.kind == "image"] == ["rocket.jpg"]
    assert any(n.startswith("Not on the map: x.png") for n in found.notes)
    assert found.nearest[0].image == "rocket.jpg" and found.nearest[0].prompt[1] in CLASSES


def test_only_strategies_without_prompts_still_draw_the_names(tiny):
    request, skipped = maps.prepare_map(CLASSES, "tip,linear-probe")
    assert request.strategies == ("name",) and len(skipped) == 2
    found = maps.embedding_map(tiny, [], request, TextFeatureCache(), skipped=skipped)
    assert {p.kind for p in found.points} == {"name"}


def test_a_served_map_keeps_the_served_limits():
    many = ",".join(f"class {k}" for k in range(LIMITS.classes + 1))
    with pytest.raises(InputError, match="class"):
        maps.prepare_map(many, "photo", served=True)
    thousand = ",".join(f"class {k}" for k in range(2000))
    with pytest.raises(InputError, match="text prompts"):
        maps.prepare_map(thousand, "clip80", served=True)
    with pytest.raises(InputError, match="Unknown strategy"):
        maps.prepare_map(CLASSES, "nope")


def _synthetic(classes: int, prompts: int, images: int = 4) -> maps.EmbeddingMap:
    points = [maps.MapPoint("image", None, f"{k}.png") for k in range(images)]
    for c in range(classes):
        points.append(maps.MapPoint("name", f"c{c}", f"c{c}"))
        points += [maps.MapPoint("prompt", f"c{c}", f"p{k} c{c}", "clip80") for k in range(prompts)]
        points.append(maps.MapPoint("ensemble", f"c{c}", "CLIP-80 ensemble", "clip80"))
    return maps.EmbeddingMap(points, (0.5, 0.2), False, total=len(points))


@pytest.mark.parametrize("classes,prompts", [(1000, 80), (50, 80), (3000, 1), (6, 3)])
def test_the_page_draws_at_most_its_stated_points_and_says_what_it_left_out(classes, prompts):
    full = _synthetic(classes, prompts)
    drawn, said = maps.thinned(full)
    assert len(drawn.points) <= maps.PAGE_POINTS
    assert sum(p.kind == "image" for p in drawn.points) == 4
    if len(full.points) <= maps.PAGE_POINTS:
        assert said is None and drawn is full
        return
    assert said in drawn.notes and f"of {len(full.points):,} points" in said
    kept = {p.class_name for p in drawn.points if p.kind == "name"}
    for c in kept:            # every class drawn keeps its name, its ensemble and part of its cloud
        assert sum(p.kind == "ensemble" and p.class_name == c for p in drawn.points) == 1
        assert any(p.kind == "prompt" and p.class_name == c for p in drawn.points)
    if classes * 2 + 4 <= maps.PAGE_POINTS:
        assert len(kept) == classes


def test_concurrent_maps_give_what_one_gives(tiny):
    request = maps.prepare_map(CLASSES, "photo,clip7")[0]
    cache = TextFeatureCache()
    alone = maps.embedding_map(tiny, [str(IMAGES / "cat.png")], request, cache).to_dict()
    answers, errors = [], []

    def one() -> None:
        try:
            answers.append(maps.embedding_map(tiny, [str(IMAGES / "cat.png")], request, cache).to_dict())
        except Exception as e:       # noqa: BLE001 (the test reports it)
            errors.append(e)
    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(answers) == 6
    for a in answers:
        assert [p["text"] for p in a["points"]] == [p["text"] for p in alone["points"]]
        assert max(abs(p["x"] - q["x"]) + abs(p["y"] - q["y"]) for p, q in zip(a["points"], alone["points"])) < 1e-5


def test_the_json_form_goes_and_comes_back(tiny):
    found = maps.embedding_map(tiny, [str(IMAGES / "cat.png")], maps.prepare_map(CLASSES, "photo,hierarchy")[0],
                               TextFeatureCache(), names=["cat.png"])
    d = found.to_dict()
    assert d["schema"] == "zsdemo.embedding_map/1" and set(d) >= {"points", "explained_variance", "separate_modalities"}
    assert {p["kind"] for p in d["points"]} == {"image", "name", "prompt", "wordnet"}
    for p in d["points"]:
        assert set(p) >= {"kind", "class", "text", "strategy", "x", "y"}
        assert (p["class"] is None) == (p["kind"] == "image")
    assert maps.EmbeddingMap.from_dict(json.loads(json.dumps(d))).to_dict() == d


def _cli(*args: str, capsys) -> tuple[int, str, str]:
    """``zsdemo map ...`` in this process (the tiny model is loaded once): exit status, stdout, stderr."""
    from zsdemo import cli

    code = cli.main(["map", *args, "--model", "tiny-random", "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_line_prints_the_same_map_and_draws_only_over_its_own_files(tmp_path, tiny, capsys,
                                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo = tmp_path / "rocket.jpg"
    photo.write_bytes((IMAGES / "rocket.jpg").read_bytes())
    code, out, err = _cli(str(photo), "--classes", "crane, heron, rocket", "--strategies", "photo,clip7",
                          "--separate-modalities", "--json", capsys=capsys)
    assert code == 0, err
    printed = json.loads(out)
    assert printed["separate_modalities"] is True
    library = maps.embedding_map(tiny, [str(photo)], maps.prepare_map(CLASSES, "photo,clip7")[0], TextFeatureCache(),
                                 separate_modalities=True).to_dict()
    assert [(p["kind"], p["text"]) for p in printed["points"]] == [(p["kind"], p["text"]) for p in library["points"]]
    assert max(abs(p["x"] - q["x"]) for p, q in zip(printed["points"], library["points"])) < 1e-4
    code, out, err = _cli(str(photo), "--classes", "crane, heron", "--out", "map.svg", capsys=capsys)
    assert code == 0 and (tmp_path / "map.svg").read_text().count("<text") > 5   # its words are text
    assert _cli("--classes", "crane, heron", "--out", "map.svg", capsys=capsys)[0] == 0   # an earlier map replaced
    before = photo.read_bytes()
    assert _cli("--classes", "crane, heron", "--out", str(photo.with_suffix(".png")), capsys=capsys)[0] == 0
    (tmp_path / "mine.png").write_bytes((IMAGES / "cat.png").read_bytes())
    code, out, err = _cli("--classes", "crane, heron", "--out", "mine.png", capsys=capsys)
    assert code == 2 and "not a map zsdemo drew" in err and "Traceback" not in err
    assert (tmp_path / "mine.png").read_bytes() == (IMAGES / "cat.png").read_bytes() and photo.read_bytes() == before
    code, out, err = _cli("--classes", "a, b", "--out", "map.pdf", capsys=capsys)
    assert code == 2 and ".png or .svg" in err


def test_the_api_answers_what_the_library_answers_and_refuses_in_words(live_app, tiny):
    from gradio_client import Client, handle_file

    client = Client(live_app, verbose=False)
    answer = client.predict(images=[handle_file(str(IMAGES / "rocket.jpg"))], classes="crane, heron, rocket",
                            strategies="name,clip7,hierarchy", api_name="/embedding_map")
    library = maps.embedding_map(tiny, [str(IMAGES / "rocket.jpg")], maps.prepare_map(CLASSES, "name,clip7,hierarchy")[0],
                                 TextFeatureCache(), names=["rocket.jpg"]).to_dict()
    assert [(p["kind"], p["class"], p["text"]) for p in answer["points"]] == \
        [(p["kind"], p["class"], p["text"]) for p in library["points"]]
    assert max(abs(p["x"] - q["x"]) for p, q in zip(answer["points"], library["points"])) < 1e-4
    texts = client.predict(images=[], classes="<b>cup</b>, plate", strategies="photo", api_name="/embedding_map")
    assert [p["text"] for p in texts["points"]] == ["<b>cup</b>", "plate", "a photo of a <b>cup</b>.",
                                                    "a photo of a plate."]       # data, as sent
    for kwargs, words in [(dict(images="notalist", classes="a, b"), "images must be a list"),
                          (dict(images=[], classes=5), "classes must be text"),
                          (dict(images=[], classes="a, b", separate_modalities="maybe"), "separate_modalities"),
                          (dict(images=["/etc/passwd"], classes="a, b"), "was not uploaded with this request")]:
        with pytest.raises(Exception) as refused:
            client.predict(api_name="/embedding_map", **kwargs)
        assert words in str(refused.value) and "Traceback" not in str(refused.value), str(refused.value)
