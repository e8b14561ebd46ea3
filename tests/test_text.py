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
