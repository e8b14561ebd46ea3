"""Locks that a forked child gets back unheld.

On ZeroGPU every GPU task runs in a process forked from the server (the ``spaces`` package forks
a worker and sends it the task's arguments). The server has other threads, and a lock one of
them holds at the moment of the fork stays held in the child for ever: the child's first use of
the WordNet reader, the text cache or the model would wait for a thread that does not exist
there. Objects that own such locks register here, and make new ones in the child right after a
fork. (A thread's half-done update of the guarded data is not repaired: every guarded section
here is a short, self-contained update, so what the child sees is the state before or after it.)
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class ForkSafe(Protocol):
    def _after_fork(self) -> None:
        """Replace every lock this object owns (called in the child, right after a fork)."""


_OWNERS: "weakref.WeakSet[ForkSafe]" = weakref.WeakSet()


def register(owner: ForkSafe) -> None:
    _OWNERS.add(owner)


def _after_fork_in_child() -> None:
    for owner in list(_OWNERS):
        owner._after_fork()


if hasattr(os, "register_at_fork"):      # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
