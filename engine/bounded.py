"""Bounded caches: what the engine remembers about input never grows without limit.

The engine remembers work done for a spelling, a code or a scenario item, because the same few
come back again and again over a case library. Input can also be new every time (a stream of
made-up labels and codes), so every cache that input can fill is a plain dict written only through
`remember`, which first drops the oldest sixteenth of the entries once the dict holds its bound
(first in, first out). A lookup stays a plain dict read, with no lock and no bookkeeping; an entry
dropped while still in use costs working it out once more.

(Dropping one entry at a time was slower than it looks: a dict keeps the places of deleted
entries until it next grows, and finding the oldest entry walks past all of them, 2 µs a time
for a full cache of 4,096 under a stream of new input. Dropping a sixteenth at once pays that
walk once per 256 new entries.) Pure functions of one argument use
`functools.lru_cache` with a `maxsize` instead, which is the same idea.

Writers take one lock, so that threads sharing a knowledge base never see a cache over its bound
or a dict changing size while the oldest entry is found; readers need none. The lock is held across
a fork (os.register_at_fork): a batch worker forked while another thread was writing a cache would
otherwise start with it taken, by a thread it does not have, and wait for ever at its first new
spelling. No other lock is ever taken while it is held, so the order in which fork hooks take their
locks does not matter for this one.
"""

from __future__ import annotations

import os
import threading
from itertools import islice
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

_lock = threading.Lock()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_lock.acquire, after_in_parent=_lock.release, after_in_child=_lock.release
    )


def remember(cache: dict[K, V], key: K, value: V, bound: int) -> V:
    """Store `value` under `key`, dropping the oldest entries first (a sixteenth of the bound at
    once) so that the cache never holds more than `bound` entries; return the value."""
    with _lock:
        if key not in cache and len(cache) >= bound:
            drop = len(cache) - bound + max(1, bound // 16)
            for old in list(islice(cache, drop)):
                del cache[old]
        cache[key] = value
    return value
