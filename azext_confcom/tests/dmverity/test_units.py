"""Small pieces with their own contracts: Go's sort replay, timestamps, the root-hash cache."""

from __future__ import annotations

import random
import threading

import pytest

from azext_confcom.dmverity.cache import RootHashCache, cache_dir
from azext_confcom.dmverity.ext4 import _Xattr, _block_order_less, encode_time
from azext_confcom.dmverity.gosort import go_sort_slice


def test_go_sort_replays_the_insertion_sort_quirk():
    # NOTES §3.9 example: the comparator is not a strict weak order, so order depends on Go's algorithm
    names = [b"foo.bar", b"system.data", b"trusted.x", b"user.a", b"user.b", b"user.mm"]
    items = [_Xattr(n, b"") for n in names]
    go_sort_slice(items, _block_order_less)
    assert [x.name for x in items] == [b"user.a", b"user.b", b"user.mm", b"trusted.x",
                                       b"system.data", b"foo.bar"]


@pytest.mark.parametrize("n", [0, 1, 12, 13, 50, 51, 300, 700])
def test_go_sort_sorts_with_a_proper_order(n):
    rng = random.Random(n)
    for values in ([rng.randrange(n or 1) for _ in range(n)], list(range(n)), list(range(n))[::-1]):
        items = list(values)
        go_sort_slice(items, lambda a, b: a < b)
        assert items == sorted(values)


@pytest.mark.parametrize("ts, value", [
    (None, 0),
    ((-62135596800, 0), 0),                                  # Go zero time = absent
    ((1700000000, 5), 1700000000 | 5 << 34),
    ((-1, 0), 0xFFFFFFFF_FFFFFFFF),                          # negative: extra = 0xFFFFFFFF
    ((-(1 << 31) - 1, 0), 0x80000000),                       # below int32: clamped
    ((0x3_7FFF_FFFF + 1, 7), 0x3_7FFF_FFFF),                 # beyond the ext4 range: clamped
])
def test_timestamp_encoding(ts, value):
    assert encode_time(ts) == value


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("CONFCOM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "confcom"
    monkeypatch.setenv("CONFCOM_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_cache_ignores_bad_keys_and_values(tmp_path):
    cache = RootHashCache(tmp_path)
    cache.put("../../etc/passwd", "a" * 64)
    cache.put("sha256:" + "1" * 64, "not a hash")
    assert list(tmp_path.rglob("*")) == []
    assert cache.get("sha256:" + "1" * 64) is None


def test_cache_concurrent_writers_never_expose_partial_entries(tmp_path):
    cache = RootHashCache(tmp_path)
    key = "sha256:" + "2" * 64
    values = ["%064x" % i for i in range(8)]
    seen, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            value = cache.get(key)
            if value is not None:
                seen.append(value)

    def writer(value):
        for _ in range(200):
            cache.put(key, value)

    threads = [threading.Thread(target=reader)] + [threading.Thread(target=writer, args=(v,))
                                                   for v in values]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert seen and set(seen) <= set(values)
    assert cache.get(key) in values
    assert not [p for p in tmp_path.rglob(".tmp-*")]
