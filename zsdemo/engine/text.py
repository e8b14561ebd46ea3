"""Text features: encoding truncated to the real prompt length, and the feature cache (docs/METHODS.md §1).

The CLIP text transformer is causal, so the feature at the end-of-text token does not depend on
the padding after it. Cutting each batch to its longest real prompt (and batching prompts of
similar length together) gives the same features as ``model.encode_text`` at a fraction of the
cost of all 77 positions.
"""

from __future__ import annotations

import contextlib
import contextvars
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..core import forksafe, progress
from .models import LoadedModel

# Prompts per forward pass: small batches keep CPU caches warm; a GPU wants big matrices.
CPU_BATCH_SIZE = 256
CUDA_BATCH_SIZE = 2048
# ... and tokens per forward pass, because a batch is one turn of the model's lock: 256 prompts
# of 77 tokens (1,000-character names) took 26 s on 2 CPU cores; capped at 256 x 24 tokens,
# which leaves every batch of ImageNet x CLIP-80 (at most 22 tokens) as it was.
CPU_BATCH_TOKENS = 256 * 24
CUDA_BATCH_TOKENS = 2048 * 24
DEFAULT_CACHE_BYTES = 256 * 2**20
CLASSIFIER_CACHE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class TextTower:
    """The modules of an open_clip text tower that the truncated path needs."""

    token_embedding: torch.nn.Module
    positional_embedding: torch.Tensor
    transformer: torch.nn.Module
    attn_mask: torch.Tensor
    ln_final: torch.nn.Module
    text_projection: torch.nn.Module | torch.Tensor | None
    pool_type: str
    eos_id: int | None

    def cast_dtype(self) -> torch.dtype:
        return self.transformer.get_cast_dtype()


def text_tower(model: torch.nn.Module) -> TextTower | None:
    """The text tower of a CLIP or CustomTextCLIP model, or None where truncation is not exact.

    Truncation is exact only for a causal transformer pooled at the end-of-text token; towers
    with a class token, a padding mask or last-token pooling fall back to ``encode_text``.
    """
    if hasattr(model, "text_pool_type") and hasattr(model, "token_embedding"):
        owner, pool, eos = model, model.text_pool_type, getattr(model, "text_eos_id", None)
    else:
        owner = getattr(model, "text", None)
        if owner is None or not hasattr(owner, "token_embedding") or not hasattr(owner, "pool_type"):
            return None
        if getattr(owner, "cls_emb", None) is not None or getattr(owner, "use_pad_mask", False):
            return None
        pool, eos = owner.pool_type, getattr(owner, "eos_id", None)
    attn_mask = getattr(owner, "attn_mask", None)
    if attn_mask is None or pool not in ("argmax", "eos") or (pool == "eos" and eos is None):
        return None
    return TextTower(
        token_embedding=owner.token_embedding,
        positional_embedding=owner.positional_embedding,
        transformer=owner.transformer,
        attn_mask=attn_mask,
        ln_final=owner.ln_final,
        text_projection=owner.text_projection,
        pool_type=pool,
        eos_id=eos,
    )


def eot_positions(tower: TextTower, tokens: torch.Tensor) -> torch.Tensor:
    """Index of the pooled (end-of-text) token of each row."""
    if tower.pool_type == "eos":
        return (tokens == tower.eos_id).int().argmax(dim=-1)
    return tokens.argmax(dim=-1)  # the end-of-text id is the largest id in CLIP's vocabulary


def encode_embeddings(tower: TextTower, x: torch.Tensor, eot: torch.Tensor) -> torch.Tensor:
    """Run the tower on token embeddings ``x`` [B, L, W] (L <= context), pool at ``eot`` [B].

    Separate from tokenisation so that TPT can feed learnable context embeddings through the
    same code.
    """
    length = x.shape[1]
    x = x + tower.positional_embedding[:length].to(x.dtype)
    x = tower.transformer(x, attn_mask=tower.attn_mask[:length, :length])
    x = tower.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), eot]
    proj = tower.text_projection
    if proj is None:
        return x
    return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj


def encode_tokens(loaded: LoadedModel, tokens: torch.Tensor) -> torch.Tensor:
    """Unnormalised text features of a token batch, cut to its longest real sequence."""
    tokens = tokens.to(loaded.device)
    tower = text_tower(loaded.model)
    # One batch is one turn of the model's lock: a request of 10,000 classes lets others in
    # between its batches instead of holding the model for minutes.
    with loaded.lock, torch.no_grad(), loaded.autocast():
        began = time.perf_counter()
        if tower is None:
            out = loaded.model.encode_text(tokens)
        else:
            eot = eot_positions(tower, tokens)
            length = int(eot.max().item()) + 1
            x = tower.token_embedding(tokens[:, :length]).to(tower.cast_dtype())
            out = encode_embeddings(tower, x, eot)
        loaded.speed.record("prompt", len(tokens), time.perf_counter() - began)
        return out


# What an entry costs besides its tensor's data: the tensor object, its storage, the key tuple
# and the dictionary slot (measured: about 800 bytes with 512-d rows).
ENTRY_OVERHEAD_BYTES = 1024


def entry_bytes(key: tuple, value: torch.Tensor) -> int:
    """Memory an entry holds: the whole storage behind the tensor (a view keeps all of it alive),
    the key's text and the fixed overhead."""
    text = 0
    for part in key:
        if isinstance(part, str):
            text += len(part)
        elif isinstance(part, tuple):
            text += sum(len(x) for x in part if isinstance(x, str))
    return value.untyped_storage().nbytes() + text + ENTRY_OVERHEAD_BYTES


class TensorLRU:
    """Tensors by key, least recently used evicted beyond a byte bound; thread-safe.

    Serves both the prompt cache (one row per prompt) and the class-matrix cache. The bound
    counts what an entry really holds (``entry_bytes``), not only the tensor's numbers.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, tuple[torch.Tensor, int]] = OrderedDict()
        self._bytes = 0
        self._after_fork()              # makes the lock
        self.evictions = 0
        forksafe.register(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get_many(self, keys: Sequence[tuple]) -> list[torch.Tensor | None]:
        with self._lock:
            lookup, touch = self._items.get, self._items.move_to_end  # hot loop: bind once
            found = [lookup(k) for k in keys]
            for key, value in zip(keys, found):
                if value is not None:
                    touch(key)
        return [None if v is None else v[0] for v in found]

    def put_many(self, keys: Sequence[tuple], values: Sequence[torch.Tensor]) -> None:
        with self._lock:
            for key, value in zip(keys, values):
                size = entry_bytes(key, value)
                if size > self.max_bytes:
                    continue  # would evict everything and then itself
                old = self._items.pop(key, None)
                if old is not None:
                    self._bytes -= old[1]
                self._items[key] = (value, size)
                self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, size) = self._items.popitem(last=False)
                self._bytes -= size
                self.evictions += 1

    def count(self, keys: Sequence[tuple]) -> int:
        with self._lock:
            return sum(k in self._items for k in keys)

    def get(self, key: tuple) -> torch.Tensor | None:
        return self.get_many([key])[0]

    def put(self, key: tuple, value: torch.Tensor) -> None:
        self.put_many([key], [value])

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


_PERSIST: contextvars.ContextVar[bool] = contextvars.ContextVar("zsdemo_persist_text", default=False)


class TextFeatureCache:
    """Normalised prompt features keyed by (model identity, prompt), least recently used evicted.

    Bounded by bytes held in memory; optionally backed by an SQLite file so that features
    survive restarts. Thread-safe: the app shares one cache among all users. ``classifiers``
    holds finished class-vector matrices of recent requests, so that a repeated request (the
    usual case in the app) skips even the per-prompt look-ups.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES, disk_path: str | Path | None = None):
        self.disk_path: Path | None = None
        self.write_all = True
        self._memory = TensorLRU(max_bytes)
        self._after_fork()              # makes the lock
        forksafe.register(self)
        self.hits = 0
        self.misses = 0
        self.classifiers = TensorLRU(CLASSIFIER_CACHE_BYTES)
        if disk_path:
            self.attach_disk(disk_path)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def attach_disk(self, path: str | Path, write_all: bool = True) -> None:
        """Back the cache with an SQLite file. ``write_all=False`` (a public server) writes only
        inside ``persisting()``: the server's own warm-up, not every visitor's prompts, which
        could fill the disk."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path, timeout=30) as db:
            db.execute("CREATE TABLE IF NOT EXISTS features (model TEXT, prompt TEXT, vec BLOB,"
                       " PRIMARY KEY (model, prompt))")
        self.disk_path, self.write_all = path, write_all

    @contextlib.contextmanager
    def persisting(self) -> Iterator[None]:
        """Features computed inside (in this thread) are written to the disk file."""
        token = _PERSIST.set(True)
        try:
            yield
        finally:
            _PERSIST.reset(token)

    def __len__(self) -> int:
        return len(self._memory)

    @property
    def max_bytes(self) -> int:
        return self._memory.max_bytes

    @property
    def nbytes(self) -> int:
        return self._memory.nbytes

    @property
    def evictions(self) -> int:
        return self._memory.evictions

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.disk_path, timeout=30)

    def get(self, model_id: str, prompts: Sequence[str]) -> list[torch.Tensor | None]:
        found = self._memory.get_many([(model_id, p) for p in prompts])
        missing = [i for i, v in enumerate(found) if v is None]
        if missing and self.disk_path is not None:
            from_disk = self._read_disk(model_id, [prompts[i] for i in missing])
            if from_disk:
                self._memory.put_many([(model_id, p) for p in from_disk], list(from_disk.values()))
                for i in missing:
                    found[i] = from_disk.get(prompts[i])
        n_hit = sum(v is not None for v in found)
        with self._lock:
            self.hits += n_hit
            self.misses += len(found) - n_hit
        return found

    def put(self, model_id: str, prompts: Sequence[str], features: torch.Tensor) -> None:
        # Each row owns its numbers: a row that is a view would keep the whole request's matrix
        # alive long after its neighbours were evicted.
        rows = [f.detach().to("cpu", torch.float32).clone() for f in features]
        self._memory.put_many([(model_id, p) for p in prompts], rows)
        if self.disk_path is not None and (self.write_all or _PERSIST.get()):
            with self._connect() as db:
                db.executemany(
                    "INSERT OR REPLACE INTO features VALUES (?, ?, ?)",
                    [(model_id, p, r.numpy().tobytes()) for p, r in zip(prompts, rows)],
                )

    def count_cached(self, model_id: str, prompts: Sequence[str]) -> int:
        """How many of ``prompts`` are in memory (the disk is not read: this is for estimates)."""
        return self._memory.count([(model_id, p) for p in prompts])

    def _read_disk(self, model_id: str, prompts: list[str]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        with self._connect() as db:
            for start in range(0, len(prompts), 500):  # SQLite caps bound parameters per query
                chunk = prompts[start:start + 500]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT prompt, vec FROM features WHERE model = ? AND prompt IN ({marks})",
                    [model_id, *chunk],
                ).fetchall()
                for prompt, blob in rows:
                    out[prompt] = torch.from_numpy(np.frombuffer(blob, dtype=np.float32).copy())
        return out

    def clear(self) -> None:
        self._memory.clear()
        self.classifiers.clear()


def encode_prompts(
    loaded: LoadedModel,
    prompts: Sequence[str],
    cache: TextFeatureCache | None = None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """L2-normalised float32 features [N, D] (on CPU) of ``prompts``, from the cache where possible."""
    unique = list(dict.fromkeys(prompts))
    cached = cache.get(loaded.identity, unique) if cache is not None else [None] * len(unique)
    todo = [p for p, v in zip(unique, cached) if v is None]
    computed: dict[str, torch.Tensor] = {}
    if todo:
        feats = torch.empty(0)
        for idx, out in encoded_batches(loaded, todo, batch_size):
            out = F.normalize(out.float(), dim=-1).cpu()
            if feats.numel() == 0:
                feats = torch.empty(len(todo), out.shape[1])
            feats[idx] = out
        if cache is not None:
            cache.put(loaded.identity, todo, feats)
        computed = dict(zip(todo, feats))
    if not prompts:
        return torch.empty(0)
    rows = [v if v is not None else computed[p] for p, v in zip(unique, cached)]
    if len(unique) == len(prompts):  # the usual case; skips a dict of every prompt
        return torch.stack(rows)
    by_prompt = dict(zip(unique, rows))
    return torch.stack([by_prompt[p] for p in prompts])


@dataclass
class Pace:
    """Forward passes cut to take about ``seconds`` each (halved while slower, doubled back while
    much faster, never above the batch size), so that a Stop, checked between passes, ends the
    work within about that long even on a slow or loaded machine."""

    seconds: float
    step: int

    def passes(self, batch: torch.Tensor) -> Iterator[torch.Tensor]:
        start = 0
        while start < len(batch):
            idx = batch[start:start + self.step]
            start += len(idx)
            yield idx

    def took(self, seconds: float, size: int, batch_size: int) -> None:
        if seconds > self.seconds and self.step > MIN_TURN_PROMPTS:
            self.step = max(MIN_TURN_PROMPTS, self.step // 2)
        elif seconds < self.seconds / 4 and size == self.step:
            self.step = min(batch_size, self.step * 2)


MIN_TURN_PROMPTS = 8
TURN_SECONDS = 1.0     # a long scoring's forward passes: a Stop ends it within about this (plus a pass)
NORM_CHUNK = 2048      # prompts tokenized and encoded together: the bar moves during a long scoring


def encoded_batches(loaded: LoadedModel, prompts: Sequence[str], batch_size: int | None = None,
                    pace: Pace | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(indices into ``prompts``, their unnormalised features) batch by batch, each advancing the
    progress bar once it is used; with ``pace``, each batch in passes of about its seconds (a
    prompt's features do not depend on its batch)."""
    batch_size = batch_size or (CUDA_BATCH_SIZE if loaded.device.type == "cuda" else CPU_BATCH_SIZE)
    tokens = tokenize(loaded, prompts)
    tower = text_tower(loaded.model)
    # Sorting by length puts prompts of similar length in one batch, so each batch is cut
    # to about its own length instead of the longest prompt of the request.
    # A tower that cannot be cut runs every prompt at the full context length.
    lengths = (eot_positions(tower, tokens) + 1 if tower is not None
               else torch.full((len(prompts),), loaded.context_length))
    order = torch.argsort(lengths, stable=True)
    max_tokens = CUDA_BATCH_TOKENS if loaded.device.type == "cuda" else CPU_BATCH_TOKENS
    for batch in length_batches(order, lengths, batch_size, max_tokens):
        for idx in (pace.passes(batch) if pace else (batch,)):
            began = time.perf_counter()
            yield idx, encode_tokens(loaded, tokens[idx])
            progress.advance(len(idx), "prompt")
            if pace:
                pace.took(time.perf_counter() - began, len(idx), batch_size)


def prompt_norms(loaded: LoadedModel, prompts: Sequence[str], batch_size: int | None = None,
                 turn_seconds: float | None = TURN_SECONDS) -> torch.Tensor:
    """L2 norms [N] (float32, CPU) of the *unnormalised* text features of ``prompts``, through the
    same truncated, length-sorted batches as ``encode_prompts`` (not cached: the callers keep
    what they derive from them). With ``turn_seconds``: in chunks of ``NORM_CHUNK`` prompts
    (tokenizing 80,000 prompts first would hold the bar still for a minute on a loaded machine)
    and in passes of about that long."""
    norms = torch.empty(len(prompts))
    if not prompts:
        return norms
    batch_size = batch_size or (CUDA_BATCH_SIZE if loaded.device.type == "cuda" else CPU_BATCH_SIZE)
    pace = Pace(turn_seconds, batch_size) if turn_seconds else None
    chunk = NORM_CHUNK if pace else len(prompts)
    for start in range(0, len(prompts), chunk):
        for idx, out in encoded_batches(loaded, prompts[start:start + chunk], batch_size, pace):
            norms[start + idx] = out.float().norm(dim=-1).cpu()
    return norms


TOKENIZE_CHUNK = 4096          # prompts tokenized between two checks for a stop


def tokenize(loaded: LoadedModel, prompts: Sequence[str]) -> torch.Tensor:
    """Token ids [N, context length] of ``prompts``, in chunks: tokenizing 80,000 prompts takes
    seconds, and a request its user stopped should not finish doing it."""
    chunks = []
    for start in range(0, len(prompts), TOKENIZE_CHUNK):
        progress.check()
        chunks.append(loaded.tokenizer(list(prompts[start:start + TOKENIZE_CHUNK])))
    return torch.cat(chunks) if len(chunks) > 1 else chunks[0]


def length_batches(order: torch.Tensor, lengths: torch.Tensor, max_prompts: int,
                   max_tokens: int) -> list[torch.Tensor]:
    """Consecutive runs of ``order`` (prompts sorted by length) with at most ``max_prompts``
    prompts and at most ``max_tokens`` tokens once cut to the run's longest prompt."""
    batches, start, n = [], 0, len(order)
    sorted_lengths = lengths[order].tolist()
    while start < n:
        end = min(start + max_prompts, n)
        while end - start > 1 and (end - start) * sorted_lengths[end - 1] > max_tokens:
            end = start + max(1, max_tokens // sorted_lengths[end - 1])
        batches.append(order[start:end])
        start = end
    return batches


def prompt_token_count(loaded: LoadedModel, prompt: str) -> int | None:
    """Number of tokens (with start and end) a prompt needs, where the tokenizer can tell."""
    encode = getattr(loaded.tokenizer, "encode", None)
    if encode is None:
        return None
    try:
        return len(encode(prompt)) + 2
    except Exception:  # an exotic tokenizer: no count, no warning
        return None
