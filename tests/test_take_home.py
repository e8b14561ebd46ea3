"""Issue 28: take it home (the result as JSON in the CLI's schema, every probability as CSV, the
bars as a slide-sized PNG and an SVG), and two models' bars in one class order and colouring."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from PIL import Image

from zsdemo.app import classifying, inspecting, state
from zsdemo.app import panels
from zsdemo.strategies import read_result

CONFIG = state.AppConfig("tiny-random", None, "cpu", None, allow_random=True)
CLASSES = "cat, dog, crane, heron, rocket, mug, cup, lion, tiger, stork, owl, fox, bus, car"
LABEL_AND_COLOUR = re.compile(r'<span class="zs-label">([^<]*)</span><span class="zs-track"><span class="zs-fill" '
                              r'style="width:[^;]*;background:([^"]*)"')


def _compared(paths):
    return classifying.run(CONFIG, [str(p) for p in paths], CLASSES, ["name", "photo", "clip80"],
                    compare_model="tiny-random-sigmoid")


def test_two_models_bars_share_one_class_order_and_colouring(cat_path, astronaut_path):
    run = _compared([cat_path, astronaut_path])
    for index in range(2):
        html = panels.compared_bars_html(run.result, run.compared, index)
        left, right = html.split('<div class="zs-model-col">')[1:]
        rows = [LABEL_AND_COLOUR.findall(column) for column in (left, right)]
        first = [r for r in rows[0] if r[0] != "sigmoid"][:14]
        second = [r for r in rows[1] if r[0] != "sigmoid"][:14]
        assert first and first == second          # orange is one class on both sides


def test_downloads_hold_the_result_every_probability_and_the_figure(cat_path, astronaut_path):
    run = _compared([cat_path, astronaut_path])
    files = {Path(f).name: Path(f) for f in inspecting.downloads(run, 1)}
    assert set(files) == {"result.json", "result-compared.json", "probabilities.csv", "bars-astronaut.png",
                          "bars-astronaut.svg"}
    doc = json.loads(files["result.json"].read_text())
    assert doc["schema"] == "zsdemo.classify/1" and read_result(doc).to_dict() == run.result.to_dict()
    rows = list(csv.DictReader(files["probabilities.csv"].open()))
    assert len(rows) == 2 * 2 * 3 * 14                   # models x images x strategies x classes
    assert sum(float(r["probability"]) for r in rows if r["image"] == "cat.png" and r["strategy"] == "clip80"
               and r["model"] == run.result.model["label"]) == __import__("pytest").approx(1.0, abs=1e-4)
    with Image.open(files["bars-astronaut.png"]) as im:
        assert im.size == (1920, 1080)
    svg = files["bars-astronaut.svg"].read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    # Its words are text a reader can search and edit, not outlines.
    assert "<text" in svg and "top-1:" in svg and "CLIP-80 ensemble" in svg


def test_twelve_classes_get_twelve_fills_the_ninth_on_striped(cat_path):
    run = classifying.run(CONFIG, [str(cat_path)], CLASSES, ["name"], top_k=12)
    fills = [colour for label, colour in LABEL_AND_COLOUR.findall(run_bars(run)) if label != "other"]
    assert len(fills) == 12 and len(set(fills)) == 12
    assert [f.startswith("repeating-linear-gradient") for f in fills] == [False] * 8 + [True] * 4


def run_bars(run) -> str:
    im = run.result.images[0]
    return panels.bars_html(im, run.result.classes, run.result.strategies, run.result.top_k)
