"""When long_ner hands freed heap memory back to the OS (heap.py)."""

import ctypes

import pytest

from spacy_longner import heap
from spacy_longner.heap import GROWTH_BYTES, HeapTrimmer, resident_bytes

MB = 2**20


def test_releases_first_then_only_after_growth(monkeypatch):
    rss = [500 * MB]
    trims = []
    monkeypatch.setattr(heap, "resident_bytes", lambda: rss[0])
    monkeypatch.setattr(heap, "_malloc_trim", lambda: trims.append)
    trimmer = HeapTrimmer()
    assert trimmer() and trims == [0]  # the first call releases
    rss[0] += GROWTH_BYTES - MB
    assert not trimmer()  # grown, but less than the allowance
    rss[0] += MB
    assert trimmer() and len(trims) == 2
    # RSS falls (freed large blocks), then grows again: growth counts from
    # the lowest point since the last release.
    rss[0] -= 100 * MB
    assert not trimmer()
    rss[0] += GROWTH_BYTES
    assert trimmer() and len(trims) == 3


def test_without_rss_it_releases_every_time(monkeypatch):
    trims = []
    monkeypatch.setattr(heap, "resident_bytes", lambda: None)
    monkeypatch.setattr(heap, "_malloc_trim", lambda: trims.append)
    trimmer = HeapTrimmer()
    assert all(trimmer() for _ in range(3)) and len(trims) == 3


def test_without_glibc_it_does_nothing(monkeypatch):
    monkeypatch.setattr(heap, "_malloc_trim", lambda: None)
    assert not HeapTrimmer()()


@pytest.mark.skipif(heap._malloc_trim() is None or resident_bytes() is None, reason="needs glibc and /proc")
def test_a_release_gives_fragmented_free_memory_back():
    """Real memory: 128 MB of small heap blocks, touched, then all freed but
    the last (which pins the heap's top, as live objects do): glibc keeps the
    rest resident until a release."""
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 * 1024  # under glibc's mmap threshold: from the heap
    trimmer = HeapTrimmer()
    trimmer()
    blocks = [libc.malloc(size) for _ in range(2048)]
    assert all(blocks)
    for b in blocks:
        ctypes.memset(b, 1, size)
    for b in blocks[:-1]:
        libc.free(b)
    before = resident_bytes()
    assert trimmer()  # grown by 128 MB: due
    after = resident_bytes()
    libc.free(blocks[-1])
    assert before - after > 64 * MB, (before, after)
