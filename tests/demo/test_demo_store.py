"""The server-side store of results: tokens, the memory bound, pinning, reuse, one computation per key."""

import threading
import time

import pytest

from dstl.demo.store import ResultStore


class R:
    """Stands in for a SegmentationResult: the store only reads `nbytes`."""

    def __init__(self, nbytes):
        self.nbytes = nbytes


def test_results_are_kept_under_random_tokens():
    store = ResultStore(10**6)
    a, b = store.put(R(1)), store.put(R(1))
    assert a.token != b.token and len(a.token) >= 20
    assert store.get(a.token).result is a.result
    assert store.get("not-a-token") is None and store.get(None) is None


def test_memory_bound_evicts_least_recently_used_but_keeps_the_newest_and_pinned():
    store = ResultStore(max_bytes=250)
    pinned = store.put(R(100), pinned=True)
    kept = [store.put(R(100)) for _ in range(3)]
    assert pinned.token in store and store.nbytes <= 250
    assert [s.token in store for s in kept] == [False, False, True]
    store.get(kept[2].token)
    big = store.put(R(1000))  # larger than the budget: kept (the newest) with the pinned one only
    assert big.token in store and pinned.token in store and len(store) == 2


def test_eight_visitors_fit_when_the_bound_allows_and_the_oldest_go_first():
    store = ResultStore(max_bytes=8 * 100)
    visitors = [store.put(R(100), key=("dataset", "m", str(i))) for i in range(8)]
    assert all(v.token in store for v in visitors) and store.nbytes == 800
    store.put(R(100), key=("dataset", "m", "9"))
    assert visitors[0].token not in store and store.nbytes == 800
    # Its reuse key went with it: asking again computes again.
    _, reused = store.get_or_compute(("dataset", "m", "0"), lambda: R(100))
    assert not reused


def test_reuse_by_key_computes_once_for_concurrent_requests():
    store = ResultStore(10**6)
    runs = []

    def compute():
        runs.append(1)
        time.sleep(0.2)
        return R(10)

    got = []
    threads = [threading.Thread(target=lambda: got.append(store.get_or_compute(("k",), compute)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs) == 1
    assert len({stored.token for stored, _ in got}) == 1
    assert sorted(reused for _, reused in got) == [False, True, True, True]


def test_without_reuse_every_request_computes_but_results_stay_reachable():
    store = ResultStore(0, reuse=False)
    a, reused_a = store.get_or_compute(("k",), lambda: R(10))
    b, reused_b = store.get_or_compute(("k",), lambda: R(10))
    assert not reused_a and not reused_b and a.token != b.token
    assert b.token in store and a.token not in store  # a budget of 0 keeps only the newest


def test_a_failed_computation_is_not_kept_and_can_be_retried():
    store = ResultStore(10**6)

    def fail():
        raise ValueError("boom")

    with pytest.raises(ValueError):
        store.get_or_compute(("k",), fail)
    stored, reused = store.get_or_compute(("k",), lambda: R(1))
    assert not reused and stored.token in store
