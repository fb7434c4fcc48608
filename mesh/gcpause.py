"""Pausing Python's cyclic garbage collector while a large acyclic structure is being built.

Loading and compiling a fleet allocate millions of small dicts and lists that form no reference
cycles. The collector, triggered by allocation counts, would traverse the whole growing structure
again and again — measured at about half of compile time for a 100-cluster fleet (bench/README.md).
Reference counting still frees everything as usual; the collector resumes afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # What was built is long-lived: move it straight to the oldest generation (freeze, then
            # unfreeze into it) instead of letting the next young collection traverse all of it.
            # Cyclic garbage among it stays collectable by a full collection.
            gc.freeze()
            gc.unfreeze()
            gc.enable()
