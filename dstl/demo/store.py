"""Finished results kept on the server, each under a random token: pages and links hold only the token.

A `SegmentationResult` of a full DSTL scene holds ~190 MB (quantised probabilities, preview,
packed ground truth, display copies), so the page's session state must not hold it: every
visitor's state is a short token, and the results live here, in one least-recently-used store
bounded by memory (`max_bytes`, the app's ``--cache-mb``). What that bound means:

- memory: the results' arrays never exceed `max_bytes` together, except that the newest result
  and the pinned ones (the example shown on arrival) are always kept;
- a page whose result was evicted (many other visitors since) gets a clear message and can press
  Segment again; a shared link to a dataset image recomputes it, a shared link to an upload
  explains that the upload is no longer kept;
- reuse: with `reuse`, a request for a (source, model, image) already in the store gets the same
  result (and token) instead of running the model again; concurrent requests for one key wait for
  a single computation.

Tokens are 128-bit random (`secrets.token_urlsafe`), so a result of one visitor's upload can only
be reached by whoever holds its token (the visitor, or someone they sent a link to).
"""

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from dstl.demo.result import SegmentationResult

__all__ = ["ResultStore", "Stored"]


@dataclass
class Stored:
    """One kept result: its token, the reuse key it was computed for, when, and whether it is pinned."""

    token: str
    result: SegmentationResult
    key: Hashable | None = None
    pinned: bool = False
    created: float = field(default_factory=time.time)


class ResultStore:
    """Thread-safe LRU of results by token, bounded by `SegmentationResult.nbytes` (see the module doc).

    Args:
        max_bytes: memory budget of the results kept (0 keeps only the newest and the pinned ones).
        reuse: look results up by their reuse key (`get_or_compute`) instead of always computing.
    """

    def __init__(self, max_bytes: int, *, reuse: bool = True):
        self.max_bytes = int(max_bytes)
        self.reuse = bool(reuse)
        self._items: OrderedDict[str, Stored] = OrderedDict()
        self._by_key: dict[Hashable, str] = {}
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, token: str) -> bool:
        return token in self._items

    @property
    def nbytes(self) -> int:
        """Memory held by the kept results' arrays."""
        with self._lock:
            return sum(s.result.nbytes for s in self._items.values())

    def get(self, token: str | None) -> Stored | None:
        """The kept entry of `token` (marked as recently used), or None if unknown or evicted."""
        if not token:
            return None
        with self._lock:
            stored = self._items.get(token)
            if stored is not None:
                self._items.move_to_end(token)
            return stored

    def put(self, result: SegmentationResult, key: Hashable | None = None, *, pinned: bool = False) -> Stored:
        """Keep `result` under a new token (and, with `reuse`, under `key`); evict beyond the budget."""
        stored = Stored(secrets.token_urlsafe(16), result, key, pinned)
        with self._lock:
            self._items[stored.token] = stored
            if key is not None and self.reuse:
                self._by_key[key] = stored.token
            self._evict()
        return stored

    def _evict(self) -> None:
        total = sum(s.result.nbytes for s in self._items.values())
        newest = next(reversed(self._items))
        for token in list(self._items):
            if total <= self.max_bytes:
                break
            stored = self._items[token]
            if stored.pinned or token == newest:
                continue
            del self._items[token]
            if stored.key is not None and self._by_key.get(stored.key) == token:
                del self._by_key[stored.key]
            total -= stored.result.nbytes

    def get_or_compute(self, key: Hashable, compute: Callable[[], SegmentationResult]) -> tuple[Stored, bool]:
        """(entry, reused): the kept result for `key`, or a new one from `compute()`, run once per key
        while other callers of the same key wait. Without `reuse`, always computes."""
        if not self.reuse:
            return self.put(compute(), key), False
        found = self._find(key)
        if found is not None:
            return found, True
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        try:
            with key_lock:
                found = self._find(key)
                if found is not None:
                    return found, True
                return self.put(compute(), key), False
        finally:
            with self._lock:
                self._key_locks.pop(key, None)

    def _find(self, key: Hashable) -> Stored | None:
        with self._lock:
            token = self._by_key.get(key)
        return self.get(token)
