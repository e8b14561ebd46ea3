"""The shots curve end to end (issue 29): ``evaluate --support DIR --shots 1,2,4 --seeds R`` writes
shots_curve.csv, shots_curve.png and report.json's curve; no image is embedded twice; the same
draw gives the same curve; a separable set's probe climbs; every bad input gets its message, on
the command line, in the library and through the page's backend (the API's)."""

from __future__ import annotations

import csv
import dataclasses
import json
import zipfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from zsdemo.app import evaluating, state
from zsdemo.cli import main
from zsdemo.core.errors import InputError
from zsdemo.data.labelled import open_labelled
from zsdemo.data.support import SupportFeatures, open_support
from zsdemo.run import shots
from zsdemo.run.evaluation import evaluate, evaluation_request
from zsdemo.strategies import Run

from test_few_shot import ASSETS, CLASSES, PHOTOS, make_support

SHOTS_COMMON = ["--model", "tiny-random", "--device", "cpu", "--quiet", "--no-cache", "--views", "hflip"]


def make_eval(root: Path, per_class: int = 3) -> Path:
    """Images of the classes that are not among the support set's (other sizes, mirrored)."""
    for c, name in PHOTOS.items():
        (root / c).mkdir(parents=True, exist_ok=True)
        im = Image.open(ASSETS / name).convert("RGB")
        for k in range(per_class):
            im.resize((110 + 9 * k, 90 + 6 * k)).transpose(Image.FLIP_LEFT_RIGHT).save(root / c / f"e{k}.png")
    return root


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("shots")
    return make_eval(root / "eval"), make_support(root / "support", 4)


def test_the_curve_is_written_as_csv_png_and_json(sets, tmp_path, capsys):
    data, support = sets
    out = tmp_path / "out"
    assert main(["evaluate", str(data), "--support", str(support), "--shots", "4,1,2", "--seeds", "2",
                 "--strategies", "name,clip80", "--out", str(out), *SHOTS_COMMON]) == 0
    printed = capsys.readouterr().out
    assert "accuracy against shots per class" in printed and "CLIP-80 ensemble is worth" in printed
    with open(out / "shots_curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == shots.CSV_HEADER
    few = [r for r in rows if r["kind"] == "few-shot"]
    assert [(r["strategy"], int(r["k"])) for r in few] == [(s, k) for s in ("linear-probe", "gda", "tip")
                                                           for k in (1, 2, 4)]
    assert all(len(r["per_seed"].split(";")) == 2 and 0 <= float(r["mean"]) <= 1 for r in few)
    zero = [r for r in rows if r["kind"] == "zero-shot"]
    assert sorted({r["strategy"] for r in zero}) == ["clip80", "name"] and len(zero) == 6
    report = json.loads((out / "report.json").read_text())
    curve = report["shots_curve"]
    assert curve["shots"] == [1, 2, 4] and curve["seeds"] == 2 and curve["images"] == 9
    assert len(curve["points"]) == 9 and len(curve["crossings"]) == 6
    assert curve["zero_shot"]["clip80"] == report["accuracy"]["clip80"]["top1"]
    assert all(c["sentence"].endswith(" here.") for c in curve["crossings"])
    with Image.open(out / "shots_curve.png") as im:
        assert im.size == (900, 620) and len(set(im.convert("L").getdata())) > 20      # drawn, not blank


def _evaluated(tiny, sets, value="1,2,4", seeds=2, strategies="name,clip80"):
    data_dir, support_dir = sets
    data = open_labelled(data_dir)
    request = evaluation_request(data, strategies, views="hflip", support=open_support(support_dir, data.classes),
                                 support_used=True)
    return evaluate(tiny, data, request, shots=shots.plan(value, seeds, request))


def test_no_image_is_embedded_again_and_the_same_draw_gives_the_same_curve(tiny, sets, monkeypatch):
    from zsdemo.data import support as support_module

    support_module._MEMORY.clear()
    encoded = []
    original = type(tiny).encode_images
    monkeypatch.setattr(type(tiny), "encode_images", lambda self, batch, *a, **k: (encoded.append(len(batch)),
                                                                                  original(self, batch, *a, **k))[1])
    first = _evaluated(tiny, sets)
    # Every evaluated image (with its one view) and every support image once, whatever the shots and seeds.
    assert sum(encoded) == 9 * 2 + 12
    support_module._MEMORY.clear()
    encoded.clear()
    again = _evaluated(tiny, sets, "1,2,3,4", seeds=3)
    assert sum(encoded) == 9 * 2 + 12
    assert [(p.k, p.strategy, p.per_seed[:2]) for p in first.shots_curve.points if p.k in (1, 2, 4)] == \
           [(p.k, p.strategy, p.per_seed[:2]) for p in again.shots_curve.points if p.k in (1, 2, 4)]


def test_a_separable_set_climbs_the_curve(tiny):
    """Features of three well separated clusters: the probe and GDA reach every image by 8 shots."""
    gen = torch.Generator().manual_seed(0)
    dim = 32
    centres = torch.nn.functional.normalize(torch.randn(3, dim, generator=gen), dim=-1) * 3

    def points(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(3).repeat_interleave(n)
        x = centres[labels] + torch.randn(len(labels), dim, generator=gen)
        return torch.nn.functional.normalize(x, dim=-1), labels

    sx, sy = points(16)
    ex, ey = points(40)
    support = SupportFeatures(CLASSES, sx, sy, [f"{k}.png" for k in range(len(sy))], [f"d{k}" for k in range(len(sy))])
    # GDA's weight high: the Gaussian classifier decides, not the random model's CLIP-80.
    request = evaluation_request(type("D", (), {"classes": CLASSES, "senses": {}})(), "clip80", views="hflip",
                                 gda_alpha=100)
    run = Run(tiny, request, None, (), support)
    plan = shots.ShotsPlan((1, 2, 8), 3, shots.CURVE, ("clip80",))
    curve = shots.sweep(run, ex, ey, plan, {"clip80": 1 / 3})
    probe = dict(curve.curve("linear-probe"))
    assert probe[8] >= 0.95 and probe[8] >= probe[1]
    assert dict(curve.curve("gda"))[8] >= 0.9
    spread = [p.spread for p in curve.points if p.k == 1]
    assert any(s > 0 for s in spread)                  # three draws of one example differ
    sentences = [c["sentence"] for c in curve.crossings() if c["few_shot"] == "linear-probe"]
    assert sentences == ["CLIP-80 ensemble is worth less than 1 shot of linear probe here."] or \
        sentences[0].startswith(("CLIP-80 ensemble is worth between 1 and 2 shots", "CLIP-80 ensemble is worth 1 shot",
                                 "CLIP-80 ensemble is worth 2 shots"))


@pytest.mark.parametrize("args, message", [
    (["--shots", ""], "No shots given"),
    (["--shots", ","], "No shots given"),
    (["--shots", "1,two"], "whole numbers of at least 1"),
    (["--shots", "0,2"], "whole numbers of at least 1"),
    (["--shots", "1,2,8"], r"smallest class of the support set \('cat'\) has 4 examples: draw at most 4"),
    (["--shots", "1,2", "--seeds", "11"], "Seeds must be a whole number from 1 to 10"),
    (["--shots", "1,2", "--seeds", "three"], "Seeds must be a whole number"),
    (["--shots", ",".join(map(str, range(1, 5))) + ",1,2,3,4", "--seeds", "10", "--support-big"], "fits"),
    (["--seeds", "2"], "give --shots too"),
    (["--shots", "1,2", "--no-support"], "draws its examples from a support set"),
    (["--shots", "1,2", "--val-fraction", "0.5"], "Tip-Adapter .* needs at least 2 shots per class: drop 1"),
])
def test_bad_shots_on_the_command_line(args, message, sets, tmp_path, capsys):
    data, support = sets
    if "--support-big" in args:          # 30 shot counts x 10 seeds: 300 fits
        args = ["--shots", ",".join(map(str, range(1, 31))), "--seeds", "10"]
        support = make_support(tmp_path / "big", 30)
    with_support = [] if "--no-support" in args else ["--support", str(support)]
    args = [a for a in args if a != "--no-support"]
    assert main(["evaluate", str(data), *with_support, *args, "--out", str(tmp_path / "o"), *SHOTS_COMMON]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and len(err.strip().splitlines()) == 1, err
    import re
    assert re.search(message, err), err


def _zip(folder: Path, path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for f in sorted(folder.rglob("*.png")):
            z.write(f, f.relative_to(folder))
    return path


@pytest.fixture(scope="module")
def served(sets, tmp_path_factory):
    uploads = tmp_path_factory.mktemp("uploads")
    data, support = sets
    config = dataclasses.replace(state.AppConfig("tiny-random", None, "cpu", None), feature_cache=None)
    config = config.with_uploads(uploads)
    return config, str(_zip(data, uploads / "eval.zip")), str(_zip(support, uploads / "support.zip"))


def test_the_page_shows_the_curve_and_says_what_a_prompt_is_worth(served):
    config, archive, support = served
    panels, files = evaluating.evaluate_zip(config, archive, ["name", "clip80", "coop"], support=support, shots="1,2",
                                         seeds=2, views="flip", coop_epochs=1)
    assert "How many labelled examples is a prompt worth here?" in panels.shots_text
    assert "**CLIP\\-80 ensemble**" in panels.shots_text and "of linear probe" in panels.shots_text
    assert "CoOp is left off the shots curve on this server" in panels.shots_text
    assert panels.shots_curve is not None and len(panels.shots_curve.axes[0].lines) >= 5
    assert {Path(f).name for f in files} >= {"shots_curve.csv", "shots_curve.png"}
    plain, _ = evaluating.evaluate_zip(config, archive, ["name"], views="flip")
    assert plain.shots_curve is None and plain.shots_text == ""


@pytest.mark.parametrize("arguments, message", [
    (dict(shots=5), "Shots must be text such as 1,2,4,8,16 or a list"),
    (dict(shots=list(range(100))), "list of at most 32"),
    (dict(shots="1," * 2000), "Too many shot counts"),
    (dict(shots="1,2", seeds=float("nan")), "Seeds must be a whole number from 1 to 10 \\(got nan\\)"),
    (dict(shots="1,2", seeds=2.5), "Seeds must be a whole number"),
    (dict(shots="1,2,3,4", seeds=10), "at most 30 on this server"),
    (dict(shots=[1, 2], seeds=True), "Seeds must be a whole number"),
    (dict(shots="1,2", support=None), "draws its examples from a support set"),
])
def test_bad_shots_through_the_api(arguments, message, served):
    config, archive, support = served
    arguments = {"support": support, **arguments}
    with pytest.raises(InputError, match=message):
        evaluating.evaluate_upload(config, archive, ["name"], views="flip", **arguments)


def test_a_list_of_shots_is_taken_by_the_api(served):
    config, archive, support = served
    report = evaluating.evaluate_upload(config, archive, ["name"], views="flip", support=support, shots=[2, 1], seeds=1)
    assert report.shots_curve.shots == [1, 2] and report.to_dict()["shots_curve"]["seeds"] == 1


def test_the_probes_work_on_a_shared_server_is_bounded(served, monkeypatch):
    config, archive, support = served
    monkeypatch.setattr(shots, "MAX_SERVED_PROBE_WORK", 50)      # 3 classes: 2 seeds x (1 + 2) x 3 x 3 = 54
    with pytest.raises(InputError, match="example-class pairs in all .* at most 50 on this server"):
        evaluating.evaluate_upload(config, archive, ["name"], views="flip", support=support, shots="1,2", seeds=2)


def test_the_progress_line_counts_the_draws_after_the_images(tiny, sets):
    data_dir, support_dir = sets
    data = open_labelled(data_dir)
    request = evaluation_request(data, "name", views="hflip", support=open_support(support_dir, data.classes),
                                 support_used=True)
    seen: list[tuple[float, str]] = []
    evaluate(tiny, data, request, shots=shots.plan("1,2", 2, request), progress=lambda f, m: seen.append((f, m)))
    draws = [(f, m) for f, m in seen if "draws" in m]
    assert [m.split(": ")[-1] for _, m in draws] == [f"{n} of 4 draws" for n in range(1, 5)]
    assert draws[0][0] > shots.SWEEP_SPAN[0] and draws[-1][0] == 1.0
    assert all(f <= shots.SWEEP_SPAN[0] for f, m in seen if m.startswith("evaluating"))


def test_gradio_client_draws_the_curve_by_name_and_hears_bad_shots_in_words(live_app, sets, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    data, support = sets
    archive, examples = _zip(data, tmp_path / "eval.zip"), _zip(support, tmp_path / "support.zip")
    client = Client(live_app, verbose=False)
    report = client.predict(handle_file(str(archive)), "name,clip80", views="flip", support=handle_file(str(examples)),
                            shots="1,2", seeds=1, api_name="/evaluate")
    curve = report["shots_curve"]
    assert curve["shots"] == [1, 2] and curve["seeds"] == 1 and len(curve["crossings"]) == 6
    plain = client.predict(handle_file(str(archive)), "name", views="flip", api_name="/evaluate")
    assert plain["shots_curve"] is None
    with pytest.raises(AppError, match="No shots given"):
        client.predict(handle_file(str(archive)), "name", views="flip", support=handle_file(str(examples)),
                       shots=" , ", api_name="/evaluate")
