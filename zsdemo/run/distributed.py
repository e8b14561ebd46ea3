"""Data-parallel evaluation on PyTorch's own distributed runtime (``torchrun``); no scheduler here.

``torchrun --nproc_per_node N -m zsdemo evaluate ...`` starts N processes with RANK, WORLD_SIZE
and LOCAL_RANK set. Each takes every N-th image (a disjoint, deterministic shard), embeds and
scores it on its own device (``cuda:LOCAL_RANK``, or the CPU), and rank 0 gathers the per-image
records, computes the metrics and writes the reports. A plain ``python -m zsdemo evaluate`` is a
world of one and touches nothing here.

Failures: a rank that raises exits with its message and torchrun ends the others; a rank that
hangs or dies without a word is caught by the collectives' timeout (``ZSDEMO_DIST_TIMEOUT``
seconds, default 600), so no run waits forever.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch

from ..core.errors import InputError

TIMEOUT_S = 600


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def batches(self, n: int, batch_size: int) -> list[range]:
        """This rank's shard of ``n`` items: every size-th batch of the single-process run, from its
        rank on. Whole batches, so each image is scored in the very batch a single process would
        use: the numbers agree to the last bit (a matrix product's rounding depends on the batch)."""
        starts = range(0, n, batch_size)
        return [range(s, min(s + batch_size, n)) for s in starts[self.rank::self.size]]

    def rounds(self, n: int, batch_size: int) -> int:
        """Batches every rank runs (rank 0's, the most), so that each takes part in every collective."""
        return -(-(-(-n // batch_size)) // self.size)

    def total(self, count: int) -> int:
        """The sum of ``count`` over all ranks."""
        if not self.distributed:
            return count
        value = torch.tensor([count], dtype=torch.long, device=_device())
        torch.distributed.all_reduce(value)
        return int(value.item())

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` on rank 0 (in rank order); None on the others."""
        if not self.distributed:
            return [obj]
        out: list[Any] | None = [None] * self.size if self.main else None
        torch.distributed.gather_object(obj, out, dst=0)
        return out


SINGLE = World()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        raise InputError(f"{name}={raw!r} is not a whole number (torchrun sets it).") from None


def _device() -> torch.device:
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def start(device: str | None = None) -> World:
    """The world this process is part of: joined (once) when torchrun started it, else a world of one."""
    size = _env_int("WORLD_SIZE", 1)
    if size <= 1:
        return SINGLE
    world = World(_env_int("RANK", 0), size, _env_int("LOCAL_RANK", 0))
    if not torch.distributed.is_initialized():
        gpu = torch.cuda.is_available() and (device or "auto") not in ("cpu",)
        if gpu:
            torch.cuda.set_device(world.local_rank)
        timeout = datetime.timedelta(seconds=_env_int("ZSDEMO_DIST_TIMEOUT", TIMEOUT_S))
        torch.distributed.init_process_group("nccl" if gpu else "gloo", timeout=timeout)
    return world


def rank_device(device: str | None, world: World) -> str | None:
    """``auto``/``cuda`` becomes this rank's own GPU (``cuda:LOCAL_RANK``) in a distributed run."""
    if world.distributed and (device or "auto") in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{world.local_rank}"
    return device


def stop() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
