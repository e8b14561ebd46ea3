"""The linear probe and GDA save what they fitted as safetensors and load it back (issue 29):
the same predictions without a support set, and a file that is not theirs, another model's or
other classes' is refused with a message."""

from __future__ import annotations

import json

import pytest
import torch

from zsdemo.cli import main
from zsdemo.core.errors import InputError
from zsdemo.strategies import gda, linear_probe

from test_few_shot import ASSETS, CLASSES, make_support

METHODS = {"linear-probe": ("probe", linear_probe), "gda": ("gda", gda)}


@pytest.fixture(scope="module")
def support_dir(tmp_path_factory):
    return make_support(tmp_path_factory.mktemp("support"), 4)


def _common(method: str) -> list[str]:
    return ["classify", str(ASSETS / "cat.png"), str(ASSETS / "rocket.jpg"), "--classes", ", ".join(CLASSES),
            "--strategies", method, "--model", "tiny-random", "--device", "cpu", "--json", "--quiet"]


@pytest.mark.parametrize("method", list(METHODS))
def test_a_saved_classifier_reloads_to_identical_predictions(method, support_dir, tmp_path, capsys):
    flag, module = METHODS[method]
    saved = tmp_path / f"{flag}.safetensors"
    assert main([*_common(method), "--support", str(support_dir), f"--{flag}-save", str(saved)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main([*_common(method), f"--{flag}-load", str(saved)]) == 0          # no support set needed
    second = json.loads(capsys.readouterr().out)
    for a, b in zip(first["images"], second["images"]):
        assert a["strategies"][method]["probs"] == b["strategies"][method]["probs"]
    details = second["images"][0]["strategies"][method]["details"]
    assert details["loaded_from"] == saved.name and details["shots"] == {c: 4 for c in CLASSES}
    from safetensors import safe_open
    with safe_open(str(saved), framework="pt") as f:
        assert f.metadata()["format"] == module.FORMAT and set(f.keys()) == {"weights", "bias"}


@pytest.mark.parametrize("method", list(METHODS))
def test_a_file_that_is_not_its_own_is_refused(method, tiny, tmp_path):
    from safetensors.torch import save_file

    _, module = METHODS[method]
    pickled = tmp_path / "pickled.safetensors"
    torch.save({"weights": torch.zeros(32, 3)}, pickled)                # a pickle under the right name
    with pytest.raises(InputError, match="not a safetensors file saved by zsdemo"):
        module.load(pickled, tiny, CLASSES)
    meta = {"format": module.FORMAT, "model": tiny.identity, "classes": json.dumps(list(CLASSES)), "c": "1",
            "alpha": "1", "searched": "false", "shots": "{}", "train_accuracy": "1"}
    cases = {
        "nan": ({"weights": torch.full((32, 3), float("nan")), "bias": torch.zeros(3)}, meta, "expected the tensors"),
        "bias": ({"weights": torch.zeros(32, 3), "bias": torch.zeros(4)}, meta, "expected the tensors"),
        "coop's": ({"ctx": torch.zeros(16, 64)}, meta, "expected the tensors"),
        "model": ({"weights": torch.zeros(32, 3), "bias": torch.zeros(3)}, {**meta, "model": "another"},
                  "learned with another model"),
        "classes": ({"weights": torch.zeros(32, 3), "bias": torch.zeros(3)},
                    {**meta, "classes": json.dumps(["cat", "dog", "cow"])}, "other classes"),
        "metadata": ({"weights": torch.zeros(32, 3), "bias": torch.zeros(3)}, {**meta, "shots": "{"},
                     "not valid JSON"),
    }
    for name, (tensors, metadata, message) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(path), metadata=metadata)
        with pytest.raises(InputError, match=message):
            module.load(path, tiny, CLASSES)


@pytest.mark.parametrize("method", list(METHODS))
def test_the_command_line_says_what_is_missing_or_wrong(method, support_dir, tmp_path, capsys):
    flag, _ = METHODS[method]
    assert main(_common(method)) == 2
    assert f"--{flag}-load FILE" in capsys.readouterr().err
    assert main([*_common(method), f"--{flag}-load", str(tmp_path / "none.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "not a safetensors file" in err
    assert main([*_common(method), "--support", str(support_dir), f"--{flag}-save", str(tmp_path / "no" / "x")]) == 2
    assert "folder that does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("method", list(METHODS))
def test_a_forged_file_of_another_width_is_refused_in_words(method, tiny, tmp_path, capsys):
    """The model's identity promises the feature size; a file that lies about it still gets a message."""
    from safetensors.torch import save_file

    flag, module = METHODS[method]
    meta = {"format": module.FORMAT, "model": tiny.identity, "classes": json.dumps(list(CLASSES)), "c": "1",
            "alpha": "1", "searched": "false", "shots": "{}", "train_accuracy": "1"}
    forged = tmp_path / "forged.safetensors"
    save_file({"weights": torch.zeros(7, 3), "bias": torch.zeros(3)}, str(forged), metadata=meta)
    assert main([*_common(method), f"--{flag}-load", str(forged)]) == 2
    err = capsys.readouterr().err
    assert "takes features of size 7; this model's are 32" in err and len(err.strip().splitlines()) == 1
