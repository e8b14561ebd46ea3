"""The linear probe and GDA save what they fitted as safetensors and load it back (issue 29):
the same predictions without a support set, and a file that is not theirs, another model's or
other classes' is refused with a message."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest
import torch

from zsdemo.cli import main
from zsdemo.core.errors import InputError
from zsdemo.engine import saved_heads
from zsdemo.strategies import coop, gda, linear_probe

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
    assert "Traceback" not in err and "none.safetensors': file not found" in err
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


# Issue 34: a save never destroys what it did not write; a load reads the header before any tensor.

def _tensors() -> dict[str, torch.Tensor]:
    return {"weights": torch.zeros(32, 3), "bias": torch.zeros(3)}


@pytest.mark.parametrize("method", list(METHODS))
def test_a_save_never_replaces_a_file_it_did_not_write(method, support_dir, tmp_path, capsys):
    flag, _ = METHODS[method]
    users = tmp_path / "passwd"
    users.write_text("root:x:0:0:root:/root:/bin/bash\n")
    assert main([*_common(method), "--support", str(support_dir), f"--{flag}-save", str(users)]) == 2
    err = capsys.readouterr().err
    assert "exists and is not" in err and "Choose another name" in err and len(err.strip().splitlines()) == 1
    assert users.read_text() == "root:x:0:0:root:/root:/bin/bash\n"
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    link = tmp_path / "link.safetensors"
    link.symlink_to(users)
    for target in (fifo, link):
        assert main([*_common(method), "--support", str(support_dir), f"--{flag}-save", str(target)]) == 2
        assert "Choose another name" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink() and users.read_text().startswith("root:")
    other = "gda" if method == "linear-probe" else "probe"          # a save of the other kind stays too
    theirs = tmp_path / "theirs.safetensors"
    assert main([*_common("gda" if other == "gda" else "linear-probe"), "--support", str(support_dir),
                 f"--{other}-save", str(theirs)]) == 0
    before = theirs.read_bytes()
    capsys.readouterr()
    assert main([*_common(method), "--support", str(support_dir), f"--{flag}-save", str(theirs)]) == 2
    assert theirs.read_bytes() == before
    mine = tmp_path / "mine.safetensors"            # an earlier save of the same kind is replaced
    for _ in range(2):
        assert main([*_common(method), "--support", str(support_dir), f"--{flag}-save", str(mine)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []     # no partial file left


def test_an_interrupted_save_leaves_the_old_file_whole(tiny, tmp_path, monkeypatch):
    import safetensors.torch

    path = tmp_path / "probe.safetensors"
    saved_heads.save_linear(path, torch.zeros(32, 3), torch.zeros(3), CLASSES, {}, "the linear probe", tiny,
                            linear_probe.FORMAT)
    before = path.read_bytes()

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(InputError, match="No space left on device"):
        saved_heads.save_linear(path, torch.ones(32, 3), torch.ones(3), CLASSES, {}, "the linear probe", tiny,
                                linear_probe.FORMAT)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["probe.safetensors"]


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("classes", ["5", "null", '{"a": 1}', '["cat", 2, "cow"]'])
def test_metadata_of_the_wrong_type_is_damage_not_a_traceback(method, classes, tiny, tmp_path):
    from safetensors.torch import save_file

    _, module = METHODS[method]
    meta = {"format": module.FORMAT, "model": tiny.identity, "classes": classes, "c": "1", "alpha": "1",
            "searched": "false", "shots": "{}", "train_accuracy": "1"}
    path = tmp_path / "forged.safetensors"
    save_file(_tensors(), str(path), metadata=meta)
    with pytest.raises(InputError, match="damaged metadata"):
        module.load(path, tiny, CLASSES)
    for key, value in (("shots", "[1]"), ("searched", '"yes"'), ("c" if method == "linear-probe" else "alpha", '"1"')):
        save_file(_tensors(), str(path), metadata={**meta, "classes": json.dumps(list(CLASSES)), key: value})
        with pytest.raises(InputError, match="damaged metadata"):
            module.load(path, tiny, CLASSES)


def test_coop_metadata_of_the_wrong_type_is_damage_not_a_traceback(tiny, tmp_path):
    from safetensors.torch import save_file

    meta = {"format": coop.FORMAT, "model": tiny.identity, "classes": json.dumps(list(CLASSES)), "losses": "[1.0]",
            "shots": "{}", "settings": "{}"}
    for key, value in (("losses", "5"), ("losses", '["a"]'), ("classes", "null"), ("shots", "5"),
                       ("settings", "[]"), ("settings", '{"nonsense": 1}')):
        path = tmp_path / "ctx.safetensors"
        save_file({"ctx": torch.zeros(16, 64)}, str(path), metadata={**meta, key: value})
        with pytest.raises(InputError, match="damaged metadata"):
            coop.load(path, tiny)


def _forged_header(path, entries: dict, meta: dict, data: bytes = b"") -> None:
    header = json.dumps({"__metadata__": meta, **entries}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + data)


@pytest.mark.parametrize("method", list(METHODS))
def test_a_header_declaring_a_huge_tensor_is_refused_before_reading(method, tiny, tmp_path, monkeypatch):
    import safetensors

    _, module = METHODS[method]
    meta = {"format": module.FORMAT, "model": tiny.identity, "classes": json.dumps(list(CLASSES))}
    opened = []
    monkeypatch.setattr(safetensors, "safe_open", lambda *a, **k: opened.append(a) or (_ for _ in ()).throw(
        AssertionError("a tensor was read")))
    huge = tmp_path / "huge.safetensors"
    for weights in ([1, 750_000_000], [250_000_000, 3]):        # 3 GB of float32 either way
        _forged_header(huge, {"weights": {"dtype": "F32", "shape": weights, "data_offsets": [0, 3_000_000_000]},
                              "bias": {"dtype": "F32", "shape": [3], "data_offsets": [3_000_000_000, 3_000_000_012]}},
                       meta)
        with pytest.raises(InputError, match="not the|other classes"):
            module.load(huge, tiny, CLASSES)
    assert opened == []


def test_a_fifo_or_device_is_refused_at_once(tiny, tmp_path):
    fifo = tmp_path / "x.safetensors"
    os.mkfifo(fifo)
    done = []
    thread = threading.Thread(target=lambda: done.append(_refusal(lambda: linear_probe.load(fifo, tiny, CLASSES))),
                              daemon=True)
    thread.start()
    thread.join(10)
    assert done and "not a regular file" in done[0]
    for what in (lambda: coop.load(fifo, tiny), lambda: gda.load(tmp_path, tiny, CLASSES)):
        assert "not a regular file" in _refusal(what) or "is a folder" in _refusal(what)


def _refusal(call) -> str:
    try:
        call()
    except InputError as e:
        return str(e)
    return ""
