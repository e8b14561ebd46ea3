"""WordNet: finding the data, senses, parents, children, the default-sense rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zsdemo.prompts import classnames
from zsdemo.wordnet import senses as wordnet, data as wordnet_data
from zsdemo.core.errors import InputError
from zsdemo.strategies import hierarchy

ROOT = Path(__file__).resolve().parents[1]


def chosen(names, **kw):
    return [c.chosen.synset if c.chosen else None for c in wordnet.resolve(names, **kw)]


def test_dog_has_parent_canine_and_sorted_children():
    dog = wordnet.resolve(["dog"])[0]
    assert dog.chosen.synset == "dog.n.01"
    assert dog.parent == "canine" and dog.parent_synset == "canine.n.02"  # deeper than domestic animal
    assert 0 < len(dog.children) <= wordnet.MAX_CHILDREN
    assert list(dog.children) == sorted(dog.children, key=str.lower)
    assert "corgi" in dog.children and all("_" not in k for k in dog.children)


def test_crane_lists_its_senses_with_glosses():
    crane = wordnet.resolve(["crane"])[0]
    names = [s.synset for s in crane.senses]
    assert names[:5] == ["crane.n.01", "crane.n.02", "grus.n.01", "crane.n.04", "crane.n.05"]
    assert all(s.gloss for s in crane.senses)
    assert [s.instance for s in crane.senses[:3]] == [True, True, True]
    assert crane.chosen.synset in ("crane.n.04", "crane.n.05")  # never a writer or a constellation


@pytest.mark.parametrize("names, expected", [
    (["crane", "heron", "stork"], "crane.n.05"),            # the bird
    (["crane", "bulldozer", "excavator"], "crane.n.04"),    # the machine
    (["tiger"], "tiger.n.02"),                              # the cat, not "a fierce person"
    (["seal", "walrus", "sea lion"], "seal.n.09"),          # the animal, not sealing wax
    (["mouse", "keyboard", "monitor"], "mouse.n.04"),       # the computer mouse
    (["boxer", "fencer", "wrestler"], "boxer.n.01"),        # the athlete, not the dog
    (["boxer", "poodle", "beagle"], "boxer.n.04"),          # the dog
    (["cat", "dog", "car", "bicycle"], "cat.n.01"),         # usage counts: not the caterpillar tractor
    (["dog", "cat", "car", "bicycle"], "dog.n.01"),         # ... and not an andiron
])
def test_default_sense_fits_the_request(names, expected):
    assert chosen(names)[0] == expected


def test_default_sense_rule_is_reported():
    crane = wordnet.resolve(["crane", "heron", "stork"])[0]
    assert crane.rule == "context" and "fits the other class names" in crane.reason
    tiger = wordnet.resolve(["tiger"])[0]
    assert tiger.rule == "kind" and tiger.chosen.lexname == "noun.animal"


@pytest.mark.parametrize("name, expected", [
    ("geese", "goose.n.01"), ("buses", "bus.n.01"), ("mice", "mouse.n.01"),
    ("ice cream", "ice_cream.n.01"), ("polar bears", "ice_bear.n.01"),
    ("golden retriever", "golden_retriever.n.01"), ("Golden  Retriever", "golden_retriever.n.01"),
    ("T-shirt", "jersey.n.03"),
])
def test_plurals_and_multiword_names_resolve(name, expected):
    assert chosen([name])[0] == expected


def test_made_up_word_keeps_its_bare_name():
    c = wordnet.resolve(["qwzzyxian"])[0]
    assert c.chosen is None and c.senses == () and c.rule == "none"
    assert c.parent is None and c.children == ()
    assert hierarchy.phrases("qwzzyxian", c) == ["qwzzyxian"]


def test_user_choice_by_synset_name_or_imagenet_id():
    assert chosen(["crane", "heron"], overrides={"crane": "crane.n.04"})[0] == "crane.n.04"
    assert chosen(["Crane"], overrides={"crane": "n02012849"})[0] == "crane.n.05"
    c = wordnet.resolve(["crane"], overrides={"crane": "crane.n.04"})[0]
    assert c.rule == "user" and c.parent == "lifting device"


@pytest.mark.parametrize("overrides, message", [
    ({"crane": "crane.n.99"}, "not a WordNet noun sense"),
    ({"crane": "fly.v.01"}, "not a noun sense"),
    ({"heron": "heron.n.02"}, "not one of the class names"),
])
def test_bad_user_choice_is_refused_with_a_message(overrides, message):
    with pytest.raises(InputError, match=message):
        wordnet.resolve(["crane"], overrides=overrides)


def test_parse_overrides():
    assert wordnet.parse_overrides("crane=crane.n.04, seal = seal.n.09") == {"crane": "crane.n.04", "seal": "seal.n.09"}
    assert wordnet.parse_overrides(["crane=n03126707"]) == {"crane": "n03126707"}
    with pytest.raises(InputError, match="crane=crane.n.04"):
        wordnet.parse_overrides("crane crane.n.04")


def test_imagenet_preset_resolves_exactly_through_wordnet_ids():
    names = classnames.preset_classnames("imagenet1k")
    senses = wordnet.class_senses(names)
    wnids = (ROOT / "assets" / "imagenet_wnids.txt").read_text().split()
    assert [s.chosen.wnid for s in senses] == wnids
    assert all(s.rule == "imagenet-id" for s in senses)
    assert senses[134].chosen.synset == "crane.n.05" and senses[517].chosen.synset == "crane.n.04"


def test_imagenet_names_unknown_to_wordnet_use_their_id_in_mixed_requests():
    senses = wordnet.class_senses(["crane bird", "construction crane", "kite surfer"])
    assert senses[0].chosen.synset == "crane.n.05" and senses[0].rule == "imagenet-id"
    assert senses[1].chosen.synset == "crane.n.04"
    assert senses[2].chosen is None


def test_parents_drop_abstract_nodes():
    # rock.n.01's only parent is natural object, but some synsets hang right under "artifact".
    s = wordnet.synset_by_id("instrumentality.n.03")
    assert wordnet.parent_of(s, drop_abstract=False).name() == "artifact.n.01"
    assert wordnet.parent_of(s) is None
    assert hierarchy.phrases("tool kit", wordnet.describe("tool kit", s, "user", "", [s]))[0] == "tool kit"


def test_same_output_whatever_the_hash_seed():
    """WordNet orders hypernyms and hyponyms by hash in places; senses, parents, children,
    phrases and scores must not change with PYTHONHASHSEED."""
    def run(seed: str) -> dict:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-m", "zsdemo", "classify", "assets/images/cat.png", "--classes",
             "crane, heron, dog, bass, seal, mouse, cat", "--strategies", "hierarchy,hierarchy80", "--rerank-all",
             "--model", "tiny-random", "--device", "cpu", "--json"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout)
    a, b = run("1"), run("12345")
    assert a == b
    assert a["senses"][0]["chosen"]["synset"] == "crane.n.05"
    assert a["images"][0]["strategies"]["hierarchy"]["details"]["candidates"][0]["prompts"]


def test_system_wordnet_is_copied_with_lexnames(tmp_path, monkeypatch):
    source = wordnet.system_wordnet_dir()
    if source is None:
        pytest.skip("no system WordNet here (Debian's wordnet-base); NLTK's download route is used")
    target = wordnet.install_from_system(source, tmp_path)
    lexnames = (target / "lexnames").read_text().splitlines()
    assert len(lexnames) == 45 and lexnames[5] == "05\tnoun.animal\t1"
    assert not any(p.is_symlink() for p in target.iterdir())
    import nltk
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])  # NLTK reads only under its data paths
    reader = wordnet_data._load_reader()
    assert Path(str(reader.root)) == target
    assert reader.synset("crane.n.05").lexname() == "noun.animal"


def test_missing_wordnet_is_reported_once(monkeypatch):
    monkeypatch.setattr(wordnet_data, "_load_reader", lambda: (_ for _ in ()).throw(LookupError("none")))
    monkeypatch.setattr(wordnet_data, "system_wordnet_dir", lambda: None)
    calls = []
    monkeypatch.setattr(wordnet_data, "_download", lambda: calls.append(1) or False)
    wordnet.reset()
    try:
        for _ in range(2):
            with pytest.raises(wordnet.WordNetUnavailable, match="setup-wordnet"):
                wordnet.ensure_wordnet()
        assert calls == [1]
        assert "every other strategy works" in wordnet.wordnet_status()
    finally:
        monkeypatch.undo()
        wordnet.reset()


def test_without_nltk_wordnet_is_unavailable_not_a_crash(monkeypatch):
    for name in [m for m in sys.modules if m == "nltk" or m.startswith("nltk.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "nltk", None)
    monkeypatch.setattr(wordnet_data, "system_wordnet_dir", lambda: None)
    wordnet.reset()
    try:
        with pytest.raises(wordnet.WordNetUnavailable):
            wordnet.ensure_wordnet()
    finally:
        monkeypatch.undo()
        wordnet.reset()


@pytest.mark.parametrize("names", [("crane", "excavator", "heron", "stork"), ("crane", "excavator", "heron", "pelican"),
                                   ("crane", "bulldozer", "forklift", "excavator", "tow truck", "tractor")])
def test_a_pin_on_one_class_never_changes_another_class_sense(names):
    """Issue 28: pinning crane to crane.n.05, the sense it already had, switched excavator from the
    machine to the workman (the pin used to be the context the other classes were read in)."""
    unpinned = {c.name: c.chosen.synset for c in wordnet.class_senses(list(names), {})}
    for crane in (s.synset for s in wordnet.class_senses(list(names), {})[0].senses):
        pinned = {c.name: c.chosen.synset for c in wordnet.class_senses(list(names), {"crane": crane})}
        assert pinned["crane"] == crane
        assert {k: v for k, v in pinned.items() if k != "crane"} == {k: v for k, v in unpinned.items() if k != "crane"}
