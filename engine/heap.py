"""The cyclic garbage collector around bulk work that builds many short-lived objects.

A store batch or a report load allocates hundreds of thousands of container objects
(states, commands, rows, facts) and holds them until it ends; the collector's generation-0
passes meanwhile walk every one of them again, find almost nothing to free (the engine's
values are acyclic: measured, ~15 unreachable objects per 1,000-case batch) and cost a
tenth of a batch's CPU. ``collector_paused`` switches the collector off for the block:
reference counting still frees everything acyclic at once, and the few cycles a block
makes are collected by the first pass after it, when the block's objects are gone.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off; restore it as it was found.

    Nested or concurrent blocks are safe: a block that found the collector off leaves it
    off, so only the outermost (first) block switches it on again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
