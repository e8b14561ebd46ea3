"""The paper's datasets in ``evaluate`` (docs/METHODS.md §5): label mappings, clear refusals,
no silent guess, and the comparison with Ge et al.'s tables."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from zsdemo import cli
from zsdemo.prompts.classnames import imagenet_wnids
from zsdemo.data.datasets import DATASETS, PAPER, open_dataset, subsets
from zsdemo.core.errors import InputError
from zsdemo.data.labelled import open_labelled

WNIDS = list(imagenet_wnids().values())
NAMES = list(imagenet_wnids())


def folders(root: Path, names: list[str], photo: Path) -> Path:
    for k, name in enumerate(names):
        (root / name).mkdir(parents=True)
        shutil.copyfile(photo, root / name / f"img{k}.png")
    return root


def test_subsets_are_200_imagenet_classes():
    for key in ("imagenet-r", "imagenet-a"):
        chosen = subsets()[key]
        assert len(chosen) == len(set(chosen)) == 200 and chosen == sorted(chosen) and chosen[-1] < 1000
    assert WNIDS[subsets()["imagenet-r"][0]] == "n01443537"         # goldfish, ImageNet-R's first class


def test_imagenet_v2_folders_are_class_indices(tmp_path, cat_path):
    root = folders(tmp_path / "v2", ["0", "2", "10"], cat_path)
    data = open_dataset(root, DATASETS["imagenet-v2"])
    assert data.classes == NAMES and data.dataset == "imagenet-v2"
    # int(folder), not the folder's place in a string sort ("10" sorts before "2").
    assert sorted((Path(it.name).parent.name, it.label) for it in data.items) == [("0", 0), ("10", 10), ("2", 2)]
    assert data.senses[NAMES[10]] == WNIDS[10] and len(data.senses) == 1000
    assert any("3 of the 1000 class folders" in p for _, p in data.problems)


def test_digit_folders_without_a_dataset_stay_digits(tmp_path, cat_path):
    root = folders(tmp_path / "digits", [str(d) for d in range(10)], cat_path)
    assert open_labelled(root).classes == [str(d) for d in range(10)]


@pytest.mark.parametrize("dataset, names, message", [
    ("imagenet-v2", ["0", "cats"], "does not look like ImageNet-V2.*'cats'"),
    ("imagenet-v2", ["1000"], "0 .. 999"),
    ("imagenet-v2", ["007"], "0 .. 999"),
    ("imagenet-r", ["n01440764"], "does not look like ImageNet-R.*200 classes.*'n01440764'"),
    ("imagenet-a", ["n01443537", "n99999999"], "ImageNet-A"),
    ("imagenet", ["tabby cat"], "ImageNet WordNet ids"),
    ("imagenet-sketch", [], "no class folders"),
])
def test_a_folder_unlike_the_dataset_is_refused(tmp_path, cat_path, dataset, names, message):
    root = folders(tmp_path / "set", names, cat_path)
    root.mkdir(exist_ok=True)
    with pytest.raises(InputError, match=message):
        open_dataset(root, DATASETS[dataset])


def test_imagenet_r_is_scored_200_way(tmp_path, cat_path):
    r = subsets()["imagenet-r"]
    root = folders(tmp_path / "r", [WNIDS[r[0]], WNIDS[r[5]]], cat_path)
    data = open_dataset(root, DATASETS["imagenet-r"])
    assert data.classes == [NAMES[i] for i in r]
    assert sorted(it.label for it in data.items) == [0, 5]


def test_cli_compares_with_the_paper(tmp_path, cat_path, astronaut_path, capsys):
    a = subsets()["imagenet-a"]
    root = tmp_path / "imagenet-a"
    folders(root, [WNIDS[a[0]]], cat_path)
    shutil.copytree(root / WNIDS[a[0]], root / WNIDS[a[1]])
    shutil.copyfile(astronaut_path, root / WNIDS[a[1]] / "img9.png")
    out = tmp_path / "report"
    code = cli.main(["evaluate", str(root), "--dataset", "imagenet-a", "--model", "tiny-random", "--device", "cpu",
                     "--no-cache", "--quiet", "--out", str(out), "--views", "hflip", "--wordnet-keep", "1",
                     "--strategies", "name,hierarchy,hierarchy80"])
    text = capsys.readouterr().out
    assert code == 0
    assert "beside Ge et al." in text and "not the paper's CLIP ViT-B/16" in text
    with open(out / "paper_comparison.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["strategy"], r["measure"]) for r in rows] == [
        (s, m) for s in ("hierarchy", "hierarchy80") for m in ("low_before", "low_after", "full_before", "full_after")]
    assert [float(r["paper"]) for r in rows[:4]] == list(PAPER["hierarchy"]["imagenet-a"])
    assert {r["paper_table"] for r in rows} == {"Table 1", "Table 4"} and {r["same_model"] for r in rows} == {"False"}
    with pytest.raises(SystemExit):
        cli.main(["evaluate", str(root), "--dataset", "imagenet-z"])
    assert cli.main(["evaluate", str(root), "--dataset", "imagenet-a", "--classes", "cat, dog"]) == cli.EXIT_BAD_INPUT
    assert "--dataset sets the classes" in capsys.readouterr().err
