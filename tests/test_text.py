import pytest
import torch
import torch.nn.functional as F

from zsdemo.prompts.templates import CLIP80
from zsdemo.engine.text import TextFeatureCache, encode_prompts, encode_tokens, entry_bytes

PROMPTS = [
    "dog",
    "a photo of a dog.",
    "a black and white photo of the very large golden retriever sitting on a sofa.",
    "x " * 120,  # longer than the 77-token context: truncated by the tokenizer
    "",
]


def reference(tiny, prompts):
    with torch.no_grad():
        return F.normalize(tiny.model.encode_text(tiny.tokenizer(prompts)).float(), dim=-1)


def test_truncated_path_matches_encode_text(tiny):
    tokens = tiny.tokenizer(PROMPTS)
    with torch.no_grad():
        full = tiny.model.encode_text(tokens)
    fast = encode_tokens(tiny, tokens)
    assert (full - fast).abs().max().item() < 1e-4


def test_encode_prompts_matches_encode_text_in_any_batching(tiny):
    prompts = [t.replace("{}", c) for c in ("cat", "hot air balloon") for t in CLIP80]
    ours = encode_prompts(tiny, prompts, cache=None, batch_size=7)
    assert ours.shape == (len(prompts), 32)
    assert (reference(tiny, prompts) - ours).abs().max().item() < 1e-4
    assert torch.allclose(ours.norm(dim=-1), torch.ones(len(prompts)), atol=1e-5)


def test_duplicate_prompts_keep_their_positions(tiny):
    ours = encode_prompts(tiny, ["b", "a", "b"], cache=None)
    assert torch.equal(ours[0], ours[2])
    assert not torch.equal(ours[0], ours[1])


def test_cache_hits_and_misses(tiny):
    cache = TextFeatureCache()
    first = encode_prompts(tiny, ["a cat", "a dog"], cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 2, 2)
    second = encode_prompts(tiny, ["a dog", "a cat", "a bird"], cache)
    assert (cache.hits, cache.misses, len(cache)) == (2, 3, 3)
    assert torch.equal(second[0], first[1]) and torch.equal(second[1], first[0])


def test_cache_keys_include_model_identity(tiny):
    cache = TextFeatureCache()
    cache.put("other-model", ["a cat"], torch.ones(1, 32))
    out = encode_prompts(tiny, ["a cat"], cache)
    assert not torch.equal(out[0], torch.ones(32))
    assert cache.get("other-model", ["a cat"])[0] is not None


def test_cache_evicts_least_recently_used_within_its_byte_bound(tiny):
    # What one entry holds: its own 32 floats, the key's text and the fixed overhead.
    entry = entry_bytes((tiny.identity, "p1"), torch.zeros(32))
    cache = TextFeatureCache(max_bytes=3 * entry)
    encode_prompts(tiny, ["p1", "p2", "p3"], cache)
    encode_prompts(tiny, ["p1"], cache)  # p1 becomes the most recent
    encode_prompts(tiny, ["p4"], cache)
    assert cache.nbytes <= cache.max_bytes
    assert cache.evictions == 1
    found = cache.get(tiny.identity, ["p1", "p2", "p3", "p4"])
    assert [f is not None for f in found] == [True, False, True, True]


def test_disk_cache_survives_a_new_process_cache(tiny, tmp_path):
    path = tmp_path / "text.sqlite"
    first = encode_prompts(tiny, ["a red car", "a blue car"], TextFeatureCache(disk_path=path))
    fresh = TextFeatureCache(disk_path=path)
    second = encode_prompts(tiny, ["a blue car", "a red car"], fresh)
    assert fresh.hits == 2 and fresh.misses == 0
    assert torch.equal(second[0], first[1])


@pytest.mark.parametrize("n", [0])
def test_no_prompts(tiny, n):
    assert encode_prompts(tiny, [], cache=None).numel() == n


# engine/text.py runs open_clip's text forward pass itself, on the tower's own modules, cut to the
# longest prompt: an open_clip upgrade that changed that pass must fail here, for every
# architecture the lab ships (its presets), not only the tiny test model.
SHIPPED_ARCHS = sorted({p.arch for p in __import__("zsdemo.engine.presets", fromlist=["PRESETS"]).PRESETS.values()})


@pytest.mark.parametrize("arch", SHIPPED_ARCHS)
def test_the_truncated_path_matches_encode_text_for_every_shipped_architecture(arch, tiny):
    import dataclasses

    import open_clip

    from zsdemo.engine.text import text_tower

    cfg = dict(open_clip.get_model_config(arch))
    # The shipped text tower with a one-layer vision tower (random weights: the same computation).
    cfg["vision_cfg"] = {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16, "head_width": 32}
    model_class = open_clip.CustomTextCLIP if cfg.pop("custom_text", False) else open_clip.CLIP
    torch.manual_seed(0)
    model = model_class(**cfg).eval()
    loaded = dataclasses.replace(tiny, model=model, identity=f"test-{arch}")
    tower = text_tower(model)
    if cfg["text_cfg"].get("no_causal_mask") or cfg["text_cfg"].get("pool_type") == "last":
        assert tower is None       # not causal, or pooled at the last position: encode_text itself is used
        return
    assert tower is not None
    vocab, context = model.token_embedding.num_embeddings, model.positional_embedding.shape[0]
    generator = torch.Generator().manual_seed(1)
    tokens = torch.zeros(6, context, dtype=torch.long)
    for row, length in enumerate((2, 5, 9, 17, 30, context - 1)):
        tokens[row, 0] = vocab - 2                                    # start of text
        tokens[row, 1:length] = torch.randint(1, vocab - 2, (length - 1,), generator=generator)
        tokens[row, length] = vocab - 1                               # end of text: the largest id
    with torch.no_grad():
        full = model.encode_text(tokens)
    fast = encode_tokens(loaded, tokens)
    assert full.shape == fast.shape
    assert (full - fast).abs().max().item() < 1e-4 * max(1.0, full.abs().max().item())
