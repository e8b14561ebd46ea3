import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zsdemo.core.command import command_name
from zsdemo.cli import main
from zsdemo.engine.results import SCHEMA

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_table(capsys, cat_path):
    code, out, err = run(capsys, "classify", str(cat_path), "--classes", "cat, dog, rocket",
                         "--model", "tiny-random", "--strategies", "name,clip7", "--top-k", "2")
    assert code == 0, err
    assert "RANDOM WEIGHTS" in out and "cat.png (451x300)" in out
    assert "  name " in out and "  clip7 " in out


def test_json_schema(capsys, cat_path):
    code, out, _ = run(capsys, "classify", str(cat_path), str(cat_path), "--classes", "cat, dog, rocket",
                       "--model", "tiny-random", "--strategies", "all", "--json",
                       "--templates", "a {}, seen from above", "--templates", "a {} at night")
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == SCHEMA
    assert set(doc) == {"schema", "model", "classes", "strategies", "templates", "top_k", "images", "warnings",
                        "senses", "wordnet_nodes", "wordnet_sparsity", "options"}
    assert doc["templates"]["custom"] == ["a {}, seen from above", "a {} at night"]
    assert doc["model"]["random_weights"] is True
    image = doc["images"][0]
    assert set(image) == {"source", "width", "height", "strategies", "analyses", "warnings", "error"}
    res = image["strategies"]["custom"]
    assert set(res) == {"strategy", "label", "probs", "logits", "top_k", "details"}
    assert set(res["top_k"][0]) == {"index", "class_name", "prob", "logit"}
    assert len(res["probs"]) == 3


@pytest.mark.parametrize("argv, message", [
    (["--classes", " , "], "No class names"),
    (["--classes", "cat", "--strategies", "nope"], "Unknown strategy"),
    (["--classes", "cat,dog", "--strategies", "custom", "--templates", "x"], "has no '{}'"),
    (["--classes", "cat,dog", "--model", "NoSuchNet"], "Unknown model architecture"),
    (["--classes", "cat,dog", "--model", "ViT-B-32", "--pretrained", "/nope.pt"], "not found"),
    (["--classes-file", "/no/such/classes.txt"], "Cannot read class file"),
])
def test_bad_input_gives_one_line_and_exit_2(capsys, cat_path, argv, message):
    code, out, err = run(capsys, "classify", str(cat_path), "--model", "tiny-random", *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_bad_image_exit_1_and_others_still_printed(capsys, cat_path, tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    code, out, err = run(capsys, "classify", str(empty), str(cat_path), "--classes", "cat,dog",
                         "--model", "tiny-random")
    assert code == 1
    assert "empty.jpg: the file is empty" in err and "cat.png (451x300)" in out


def test_presets_and_class_file(capsys, cat_path, tmp_path):
    code, out, _ = run(capsys, "classify", str(cat_path), "--preset", "cifar10", "--model", "tiny-random",
                       "--strategies", "name", "--json")
    assert code == 0 and len(json.loads(out)["classes"]) == 10
    classes = tmp_path / "classes.txt"
    classes.write_text("heron\nstork\ncrane\n")
    code, out, _ = run(capsys, "classify", str(cat_path), "--classes-file", str(classes),
                       "--model", "tiny-random", "--strategies", "name", "--json")
    assert json.loads(out)["classes"] == ["heron", "stork", "crane"]


def test_listing_commands(capsys):
    assert run(capsys, "models")[1].count("\n") >= 5
    assert "clip80" in run(capsys, "strategies")[1]


def test_module_entry_point(cat_path):
    proc = subprocess.run([sys.executable, "-m", "zsdemo", "classify", str(cat_path), "--classes", "cat,dog",
                           "--model", "tiny-random", "--strategies", "photo", "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["images"][0]["strategies"]["photo"]["top_k"]
    assert proc.stderr == ""


def test_consistency_and_hierarchy_in_json(capsys, cat_path):
    code, out, err = run(capsys, "classify", str(cat_path), "--classes", "crane, heron, stork, cat",
                         "--model", "tiny-random", "--strategies", "name,hierarchy,hierarchy80",
                         "--sense", "crane=crane.n.04", "--views", "hflip,rot90", "--json")
    assert code == 0, err
    doc = json.loads(out)
    check = doc["images"][0]["analyses"]["consistency"]
    assert {"s_t", "s_b", "o_t", "o_b", "low_confidence", "groups", "views"} <= set(check)
    assert set(check["views"]) == {"hflip", "rot90"}
    details = doc["images"][0]["strategies"]["hierarchy"]["details"]
    assert details["applied"] == check["low_confidence"]
    assert {"sense", "gloss", "parent", "children", "prompts", "score"} <= set(details["candidates"][0])
    crane = doc["senses"][0]
    assert crane["chosen"]["synset"] == "crane.n.04" and crane["rule"] == "user"
    assert len(crane["senses"]) == 5 and all(s["gloss"] for s in crane["senses"])


def test_consistency_flag_prints_the_verdict(capsys, cat_path):
    code, out, err = run(capsys, "classify", str(cat_path), "--classes", "cat, dog", "--model", "tiny-random",
                         "--strategies", "name", "--consistency")
    assert code == 0, err
    assert "consistency: " in out and "S_T=" in out and "prompt groups: name=" in out


def test_wordnet_command(capsys):
    code, out, err = run(capsys, "wordnet", "crane", "heron", "stork")
    assert code == 0, err
    assert "* crane.n.05" in out and "parent: wading bird" in out and "United States writer" in out
    code, out, _ = run(capsys, "wordnet", "crane", "--sense", "crane=crane.n.04", "--json")
    assert json.loads(out)[0]["chosen"]["synset"] == "crane.n.04"


def test_bad_sense_is_one_line_and_exit_2(capsys, cat_path):
    code, out, err = run(capsys, "classify", str(cat_path), "--classes", "crane, heron", "--model", "tiny-random",
                         "--strategies", "hierarchy", "--sense", "crane=crane.n.77")
    assert code == 2 and err.strip().count("\n") == 0 and "crane.n.04" in err


@pytest.mark.parametrize("command", [["zsdemo"], [sys.executable, "-m", "zsdemo"]])
def test_the_installed_command_works_from_any_folder(command, tmp_path):
    """install.sh installs the package: the command needs neither the repository folder as the
    working directory nor PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([*command, "strategies"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "clip80" in out.stdout and "hierarchy" in out.stdout


@pytest.mark.parametrize("argv, usage", [(["-m", "zsdemo", "--help"], "usage: python -m zsdemo [-h]"),
                                         (["-m", "zsdemo", "serve", "--help"], "usage: python -m zsdemo serve [-h]"),
                                         (["app.py", "--help"], "usage: python app.py [-h]")])
def test_the_usage_line_names_the_command_as_it_was_typed(argv, usage):
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0 and proc.stdout.startswith(usage), proc.stdout[:200] + proc.stderr[-2000:]


def test_the_installed_command_is_named_as_typed():
    assert command_name("/home/me/.venv/bin/zsdemo") == "zsdemo"
    assert command_name("/x/site-packages/zsdemo/__main__.py") == "python -m zsdemo"
