"""Handing freed C-heap memory back to the OS while long_ner streams docs or
trains (the `trim_heap` setting)."""

import ctypes
import functools
import os
import sys
from typing import Callable, Optional

# How far resident memory may grow past where the last release left it
# before the next release (docs/PERFORMANCE.md, "Long documents and memory").
GROWTH_BYTES = 64 * 2**20


class HeapTrimmer:
    """Calls glibc's `malloc_trim(0)` on the first call, then whenever the
    process's resident memory has grown by `growth` bytes past the lowest it
    has been since the last release.

    Batches of ever-changing shapes fragment the C heap, and glibc keeps
    what is freed: streaming 18,000 sentences through nlp.pipe grew RSS by
    373 MB without any release. Releasing after every read-ahead buffer
    kept RSS flat, but the next buffer's forward pass then faulted its
    working memory back in, page by page: with a 2-layer, 64-wide model that
    cost about 1 us a word, a fifth of the forward pass's time. A release once RSS
    has grown keeps the bound and drops that cost where memory is steady.

    Where there is no glibc or no /proc (macOS, Windows) it does nothing; where
    there is glibc but RSS cannot be read it releases on every call."""

    def __init__(self, growth: int = GROWTH_BYTES):
        self.growth = growth
        self.low: Optional[int] = None  # lowest RSS since the last release

    def __call__(self) -> bool:
        """Release if due; whether it released."""
        trim = _malloc_trim()
        if trim is None:
            return False
        rss = resident_bytes()
        if self.low is not None and rss is not None:
            self.low = min(self.low, rss)
            if rss - self.low < self.growth:
                return False
        trim(0)
        self.low = resident_bytes()
        return True


def resident_bytes() -> Optional[int]:
    """The process's resident memory in bytes (Linux /proc), else None."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _page_size()
    except (OSError, ValueError, IndexError):
        return None


@functools.cache
def _page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")


@functools.cache
def _malloc_trim() -> Optional[Callable[[int], int]]:
    if sys.platform.startswith("linux"):
        try:
            return ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            pass
    return None
