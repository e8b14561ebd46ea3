"""Batch evaluation: labelled sets, zip safety, the feature cache and an end-to-end run."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import make_zip
from PIL import Image

from zsdemo import cli
from zsdemo.run import evaluation
from zsdemo.core.archive import ArchiveLimits, UnsafeArchive, extract_zip
from zsdemo.core.errors import InputError
from zsdemo.engine.feature_store import FeatureStore
from zsdemo.data.labelled import open_labelled, read_class_map
from zsdemo.core.limits import LIMITS
from zsdemo.run.report import write_report


def evaluate_set(loaded, data, strategies, store=None, batch_size=evaluation.BATCH_SIZE, progress=None, **options):
    """``evaluate`` of a request made from these options (as the CLI does)."""
    return evaluation.evaluate(loaded, data, evaluation.evaluation_request(data, strategies, **options), store=store,
                               batch_size=batch_size, progress=progress)


def _photo(path: Path, source: Path, shift: int) -> None:
    """A distinct file per call (shifted crop) so that content hashes differ."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.open(source).convert("RGB")
    im.crop((shift, 0, im.width - 10 + shift, im.height)).save(path)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, cat_path, astronaut_path) -> Path:
    """ImageFolder: a WordNet-id folder, a snake_case folder, junk, a corrupt image."""
    root = tmp_path_factory.mktemp("set") / "photos"
    for k in range(3):
        _photo(root / "n02123045" / f"cat{k}.png", cat_path, k)          # ImageNet: tabby cat
        _photo(root / "space_suit" / f"a{k}.jpg", astronaut_path, k)
    (root / "space_suit" / "notes.txt").write_text("not an image")
    (root / "space_suit" / ".DS_Store").write_bytes(b"\0")
    (root / "n02123045" / "broken.jpg").write_bytes(b"this is not a JPEG")
    return root


def test_imagefolder_names_junk_and_wordnet_ids(labelled):
    data = open_labelled(labelled)
    assert data.kind == "folder" and data.classes == ["tabby cat", "space suit"]
    assert data.senses == {"tabby cat": "n02123045"}
    assert len(data.items) == 7                      # 3 + 3 photos and the corrupt one (found later)
    assert sorted(data.skipped) == ["space_suit/.DS_Store", "space_suit/notes.txt"]


def test_unknown_wordnet_id_stays_a_plain_name(tmp_path, cat_path):
    _photo(tmp_path / "n99999999" / "a.png", cat_path, 0)
    _photo(tmp_path / "n01443537" / "b.png", cat_path, 1)        # goldfish, an ImageNet class
    data = open_labelled(tmp_path)
    assert data.classes == ["goldfish", "n99999999"] and data.senses == {"goldfish": "n01443537"}


def test_csv_with_header_mapping_and_candidates(tmp_path, cat_path):
    _photo(tmp_path / "img" / "a.png", cat_path, 0)
    _photo(tmp_path / "img" / "b.png", cat_path, 1)
    (tmp_path / "labels.csv").write_text("path,label\nimg/a.png,kitty\nimg/b.png,n02123045\nimg/missing.png,kitty\n")
    (tmp_path / "map.json").write_text(json.dumps({"kitty": "Egyptian cat"}))
    data = open_labelled(tmp_path, read_class_map(tmp_path / "map.json"))
    assert data.kind == "csv" and data.classes == ["Egyptian cat", "tabby cat"]
    assert [(i.name, i.label) for i in data.items] == [("img/a.png", 0), ("img/b.png", 1)]
    assert data.problems == [("img/missing.png", "file not found")]
    wider = open_labelled(tmp_path / "labels.csv", read_class_map(tmp_path / "map.json"),
                          classes=["lynx", "tabby cat", "Egyptian cat"])
    assert wider.classes == ["lynx", "tabby cat", "Egyptian cat"] and [i.label for i in wider.items] == [2, 1]
    with pytest.raises(InputError, match="not among the candidate classes"):
        open_labelled(tmp_path, None, classes=["lynx", "tabby cat"])


def test_class_map_as_csv_lines(tmp_path):
    (tmp_path / "map.csv").write_text("# wnid, name\nn01440764,tench\nn02102040\tEnglish springer\n")
    assert read_class_map(tmp_path / "map.csv") == {"n01440764": "tench", "n02102040": "English springer"}
    (tmp_path / "bad.csv").write_text("only-one-column\n")
    with pytest.raises(InputError, match="Line 1"):
        read_class_map(tmp_path / "bad.csv")


def test_uploaded_csv_cannot_reach_outside_its_folder(tmp_path, cat_path):
    secret = tmp_path / "secret.png"
    _photo(secret, cat_path, 0)
    inner = tmp_path / "upload"
    _photo(inner / "ok.png", cat_path, 1)
    (inner / "labels.csv").write_text(f"ok.png,cat\n../secret.png,cat\n{secret},cat\n")
    (inner / "link.png").symlink_to(secret)
    (inner / "labels.csv").write_text(f"ok.png,cat\n../secret.png,cat\n{secret},cat\nlink.png,cat\n")
    data = open_labelled(inner, confine=True)
    assert [i.name for i in data.items] == ["ok.png"]
    assert [why for _, why in data.problems] == ["path outside the uploaded folder: refused"] * 3
    # The command line reads what its user points at.
    assert len(open_labelled(inner).items) == 4


def test_empty_or_oversized_sets_are_refused(tmp_path, labelled):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(InputError, match="No labelled images found"):
        open_labelled(tmp_path / "empty")
    with pytest.raises(InputError, match="at most 3 can be evaluated"):
        open_labelled(labelled, max_images=3)
    with pytest.raises(InputError, match="does not exist"):
        open_labelled(tmp_path / "nowhere")


# --- zip safety -------------------------------------------------------------------------------

@pytest.mark.parametrize("entries, kwargs, message", [
    ({"../evil.png": b"x"}, {}, "points outside"),
    ({"cls/../../evil.png": b"x"}, {}, "points outside"),
    ({"..\\evil.png": b"x"}, {}, "points outside"),
    ({"/etc/evil.png": b"x"}, {}, "absolute path"),
    ({"C:/evil.png": b"x"}, {}, "absolute path"),
    ({"cls/a.png": b"x"}, {"symlink": "cls/link.png"}, "symbolic link"),
    ({"cls/a.png": b"x"}, {"encrypted": "cls/secret.png"}, "encrypted"),
])
def test_unsafe_zip_entries_are_refused_before_anything_is_written(tmp_path, entries, kwargs, message):
    archive = make_zip(tmp_path / "upload.zip", {"cls/ok.png": b"fine", **entries}, **kwargs)
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(UnsafeArchive, match=message):
        extract_zip(archive, dest)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "evil.png").exists()


def test_zip_limits_on_count_and_total_size(tmp_path, monkeypatch):
    many = make_zip(tmp_path / "many.zip", {f"cls/{i}.png": b"x" for i in range(6)})
    with pytest.raises(UnsafeArchive, match="6 entries; at most 5"):
        extract_zip(many, tmp_path / "a", ArchiveLimits(max_files=5, max_bytes=2**20))
    monkeypatch.setattr(LIMITS, "zip_files", 5)        # the process-wide limit (env / app flag)
    with pytest.raises(UnsafeArchive, match="6 entries; at most 5"):
        extract_zip(many, tmp_path / "a")
    big = make_zip(tmp_path / "big.zip", {"cls/a.png": b"0" * 4000, "cls/b.png": b"0" * 4000})
    with pytest.raises(UnsafeArchive, match="uncompressed"):
        extract_zip(big, tmp_path / "b", ArchiveLimits(max_files=10, max_bytes=6000))


def test_not_a_zip_gets_a_message(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"PK but not really")
    with pytest.raises(InputError, match="not a readable zip"):
        extract_zip(tmp_path / "x.zip", tmp_path / "out")


def test_safe_zip_of_a_wrapped_folder_is_read(tmp_path, labelled):
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in labelled.rglob("*"):
            z.write(f, Path("photos") / f.relative_to(labelled))
        z.writestr("__MACOSX/photos/._cat0.png", b"resource fork")
    out = extract_zip(archive, tmp_path / "x")
    data = open_labelled(out.root, confine=True)
    assert data.root.name == "photos" and data.classes == ["tabby cat", "space suit"]
    assert len(data.items) == 7


# --- end to end -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def first_run(tiny, labelled, tmp_path_factory):
    store = FeatureStore(tmp_path_factory.mktemp("cache"), tiny)
    seen = []
    report = evaluate_set(tiny, open_labelled(labelled), ["name", "photo", "hierarchy"], views="hflip,rot90",
                          batch_size=4, store=store, progress=lambda f, m: seen.append(f))
    return report, store, seen


def test_end_to_end_report(first_run, tmp_path):
    report, _, seen = first_run
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert report.corrupt and report.corrupt[0][0] == "n02123045/broken.jpg"
    assert report.timing["encoded"] == 6 and report.timing["from_cache"] == 0
    assert report.strategies == ["name", "clip80", "photo", "hierarchy"]
    s = report.summary()
    assert s["n_images"] == 6
    # Accuracy and the low-confidence table agree with the per-image records.
    labels = np.array([r.label for r in report.records])
    for sid in report.strategies:
        top1 = np.array([r.top5[sid][0] for r in report.records])
        assert s["accuracy"][sid]["top1"] == pytest.approx(float((top1 == labels).mean()))
        assert s["accuracy"][sid]["top5"] == 1.0            # two classes: always in the top 5
    low = np.array([r.low_confidence for r in report.records])
    assert s["low_confidence"]["size"] == int(low.sum())
    r = s["low_confidence"]["reranking"]["hierarchy"]
    assert r["baseline"] == "name" and r["full_before"] == s["accuracy"]["name"]["top1"]
    assert set(s["selective"]["auroc"]) == set(evaluation.SCORES)
    assert all(0 < c <= 1 for curve in s["selective"]["coverage"].values() for c, _ in curve)
    assert sum(row["images"] for row in s["per_class"]) == 6
    files = write_report(report, tmp_path / "out")
    names = {f.name for f in files}
    assert {"report.json", "accuracy.csv", "auroc.csv", "coverage.csv", "per_class.csv", "confusions.csv",
            "predictions.csv", "low_confidence.csv", "skipped_images.csv", "coverage.png"} <= names
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["accuracy"]["name"]["top1"] == s["accuracy"]["name"]["top1"]
    rows = list(csv.DictReader(open(tmp_path / "out" / "predictions.csv")))
    assert len(rows) == 6 and rows[0]["label"] in ("tabby cat", "space suit")


def test_second_run_skips_the_encoder(first_run, tiny, labelled, monkeypatch):
    report, store, _ = first_run

    def no_encoder(*args, **kwargs):
        raise AssertionError("the image encoder ran although every feature is cached")

    monkeypatch.setattr(type(tiny), "encode_images", no_encoder)
    again = evaluate_set(tiny, open_labelled(labelled), ["name", "photo", "hierarchy"], views="hflip,rot90",
                         batch_size=4, store=store)
    assert again.timing["encoded"] == 0 and again.timing["from_cache"] == 6
    assert [r.top5 for r in again.records] == [r.top5 for r in report.records]
    assert [r.scores for r in again.records] == [r.scores for r in report.records]


def test_a_run_asking_for_more_views_encodes_again(first_run, tiny, labelled):
    _, store, _ = first_run
    more = evaluate_set(tiny, open_labelled(labelled), ["name"], views="hflip,rot90,vflip", store=store)
    assert more.timing["encoded"] == 6


def test_tpt_is_optional_in_evaluation(tiny, labelled):
    report = evaluate_set(tiny, open_labelled(labelled), ["name", "tpt"], views="hflip", tpt={"views": 8})
    assert report.strategies == ["name", "clip80", "tpt"]
    assert all(len(r.top5["tpt"]) == 2 for r in report.records)
    assert report.summary()["accuracy"]["tpt"]["selected"]


def test_nothing_readable_is_a_clear_error(tiny, tmp_path):
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "a.png").write_bytes(b"broken")
    with pytest.raises(InputError, match="None of the 1 images could be read"):
        evaluate_set(tiny, open_labelled(tmp_path), ["name"], views="hflip")


def test_cli_evaluate_folder_andmake_zip(labelled, tmp_path, capsys):
    args = ["evaluate", "--model", "tiny-random", "--strategies", "name,clip7", "--views", "hflip",
            "--cache", str(tmp_path / "cache"), "--quiet"]
    assert cli.main([*args[:1], str(labelled), *args[1:], "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr()
    assert "top-1 %" in out.out and "AUROC" in out.out and "6 images evaluated" in out.out
    assert "broken.jpg" in out.err
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in labelled.rglob("*"):
            z.write(f, f.relative_to(labelled))
    assert cli.main([*args[:1], str(archive), *args[1:], "--out", str(tmp_path / "b")]) == 0
    assert "6 from the feature cache" in capsys.readouterr().out
    assert cli.main([*args[:1], str(labelled), *args[1:], "--tpt-views", "1", "--out", str(tmp_path / "d")]) == 2
    assert "TPT views" in capsys.readouterr().err
    bad = make_zip(tmp_path / "bad.zip", {"../evil.png": b"x"})
    assert cli.main([*args[:1], str(bad), *args[1:], "--out", str(tmp_path / "c")]) == cli.EXIT_BAD_INPUT
    assert "points outside" in capsys.readouterr().err
