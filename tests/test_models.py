import json
import threading
import time

import pytest
import torch
from conftest import save_local_dir
from huggingface_hub import constants

from zsdemo.engine import models, weights
from zsdemo.core.errors import ModelLoadError
from zsdemo.engine.models import PRESETS, ModelRegistry, get_model, resolve_spec
from zsdemo.run.pipeline import embed_images, load_images
from zsdemo.engine.text import encode_prompts

TINY_CFG = json.loads((weights.TINY_CONFIG_DIR / "zsdemo-tiny.json").read_text())


def features(loaded, cat_path):
    images = load_images([cat_path])
    return embed_images(loaded, images), encode_prompts(loaded, ["a cat", "a dog"])


def test_presets_load_openai_weights_as_quickgelu():
    for pid in ("openai-b32", "openai-b16"):
        spec = resolve_spec(pid)
        assert spec.name.endswith("-quickgelu") and spec.pretrained == "openai"
    assert resolve_spec(None) == resolve_spec(models.DEFAULT_PRESET)
    assert models.DEFAULT_PRESET != models.TINY_PRESET
    assert "laion-b32" in PRESETS and "RANDOM" in PRESETS["tiny-random"].label


def test_tiny_model_is_eval_frozen_and_labelled(tiny):
    assert not tiny.model.training
    assert not any(p.requires_grad for p in tiny.model.parameters())
    assert tiny.random_weights and tiny.describe()["random_weights"] is True
    assert (tiny.image_size, tiny.context_length) == (64, 77)


def test_random_weights_are_reproducible(tiny, cat_path):
    again = models.load_model(resolve_spec("tiny-random"), device="cpu")
    a, b = features(tiny, cat_path), features(again, cat_path)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_registry_loads_once_under_concurrent_first_requests(monkeypatch):
    calls = []
    real = models.load_model

    def slow_load(spec, device=None, precision=None):
        calls.append(spec)
        time.sleep(0.3)
        return real(spec, device, precision)

    monkeypatch.setattr(models, "load_model", slow_load)
    registry = ModelRegistry()
    got = []
    threads = [threading.Thread(target=lambda: got.append(registry.get("tiny-random", device="cpu")))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(got) == 6 and all(g is got[0] for g in got)


def test_registry_is_bounded():
    registry = ModelRegistry(max_models=1)
    first = registry.get("tiny-random", device="cpu")
    # The bare architecture name is the same model: no second load.
    assert registry.get("zsdemo-tiny", device="cpu") is first
    registry.get("tiny-random", device="cpu", precision="amp")  # a second model evicts the first
    assert registry.get("tiny-random", device="cpu") is not first


@pytest.fixture
def offline_empty_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


@pytest.mark.parametrize("model, pretrained", [
    ("openai-b32", None),
    ("ViT-B-16-quickgelu", "openai"),
    ("hf-hub:timm/vit_base_patch16_clip_224.openai", None),
])
def test_offline_with_empty_cache_fails_at_once(offline_empty_cache, model, pretrained):
    start = time.monotonic()
    with pytest.raises(ModelLoadError, match="not reachable.*not in the local cache") as err:
        models.load_model(resolve_spec(model, pretrained), device="cpu")
    assert time.monotonic() - start < 10  # no download retries with back-off
    assert "--pretrained" in err.value.for_cli() and "--" not in err.value.for_page()   # each its own hint
    assert "--model tiny-random" in err.value.for_cli()        # a new user can still see the tool work


def test_hf_hub_model_loads_from_the_cache_offline(offline_empty_cache, tiny, cat_path):
    # The layout huggingface_hub itself writes: models--ORG--REPO/{refs/main, snapshots/REV/...}.
    repo = offline_empty_cache / "models--zsdemo--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    save_local_dir(tiny.model, repo / "snapshots" / "abc123", TINY_CFG)
    loaded = models.load_model(resolve_spec("hf-hub:zsdemo/tiny"), device="cpu")
    a, b = features(tiny, cat_path), features(loaded, cat_path)
    assert torch.allclose(a[0], b[0], atol=1e-6) and torch.allclose(a[1], b[1], atol=1e-6)


@pytest.mark.parametrize("model, pretrained, message", [
    ("NoSuchNet", None, "Unknown model architecture"),
    ("ViT-B-3", None, "Did you mean"),
    ("ViT-B-32", "no_such_tag", "Unknown pretrained tag 'no_such_tag'.*laion2b_s34b_b79k"),
    ("ViT-B-32", "/no/such/file.pt", "not found"),
    ("local-dir:/no/such/folder", None, "does not exist"),
])
def test_bad_names_fail_with_a_clear_message(model, pretrained, message):
    with pytest.raises(ModelLoadError, match=message):
        models.load_model(resolve_spec(model, pretrained), device="cpu")


def test_checkpoint_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="is a directory"):
        models.load_model(resolve_spec("zsdemo-tiny", str(tmp_path)), device="cpu")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelLoadError, match="Could not load checkpoint"):
        models.load_model(resolve_spec("zsdemo-tiny", str(corrupt)), device="cpu")
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    with pytest.raises(ModelLoadError, match="Could not load checkpoint"):
        models.load_model(resolve_spec("zsdemo-tiny", str(text)), device="cpu")
    empty_folder = tmp_path / "folder"
    empty_folder.mkdir()
    with pytest.raises(ModelLoadError, match="no open_clip_config.json"):
        models.load_model(resolve_spec(f"local-dir:{empty_folder}"), device="cpu")


def test_wrong_architecture_checkpoint(tmp_path, tiny):
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in tiny.model.state_dict().items()}
    state["text_projection"] = torch.zeros(3, 3)
    path = tmp_path / "wrong.safetensors"
    save_file(state, str(path))
    with pytest.raises(ModelLoadError, match="match the architecture"):
        models.load_model(resolve_spec("zsdemo-tiny", str(path)), device="cpu")


def test_checkpoint_file_and_local_dir_load_the_same_weights(tmp_path, tiny, cat_path):
    folder = save_local_dir(tiny.model, tmp_path / "tiny", TINY_CFG)
    by_file = models.load_model(resolve_spec("zsdemo-tiny", str(folder / "open_clip_model.safetensors")), "cpu")
    by_dir = models.load_model(resolve_spec(f"local-dir:{folder}"), "cpu")
    ref = features(tiny, cat_path)
    for loaded in (by_file, by_dir):
        assert not loaded.random_weights
        got = features(loaded, cat_path)
        assert torch.allclose(ref[0], got[0], atol=1e-6) and torch.allclose(ref[1], got[1], atol=1e-6)
    assert by_file.identity != tiny.identity  # different weights never share cache entries


def test_device_choices():
    assert models.pick_device("cpu").type == "cpu"
    assert models.pick_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ModelLoadError, match="Unknown device"):
        models.pick_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="no CUDA GPU"):
            models.pick_device("cuda")
    with pytest.raises(ModelLoadError, match="precision"):
        models.pick_precision(torch.device("cpu"), "int3")
    assert get_model("tiny-random", device="cpu") is get_model("tiny-random", device="cpu", precision="fp32")
