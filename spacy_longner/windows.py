"""Windowing: cut a document's wordpieces into model-sized windows, and choose
for every wordpiece the one window whose prediction it takes.

Pure numpy. A plan is (starts, ends, owner): window k covers wordpieces
[starts[k], ends[k]), and wordpiece i takes its logits from window owner[i].
Loss and predictions both read only owned positions, so no wordpiece is counted
twice or lost.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class WindowPlan:
    starts: np.ndarray  # (n_windows,) int64
    ends: np.ndarray  # (n_windows,) int64, exclusive
    owner: np.ndarray  # (n_wordpieces,) int64

    @property
    def n_windows(self) -> int:
        return len(self.starts)


def default_stride(window: int) -> int:
    """Overlap between consecutive windows: window // 8, so that every
    wordpiece away from the document's edges keeps at least window // 16
    wordpieces of context on both sides, at about 14% extra compute."""
    return window // 8


def sliding_windows(n: int, window: int, stride: int, offset: int = 0) -> WindowPlan:
    """The fewest windows of at most `window` wordpieces that cover n with
    consecutive ones overlapping by at least `stride`, all of one size and
    spread evenly: k windows of ceil((n + (k - 1) * stride) / k) wordpieces
    cost about n + (k - 1) * stride wordpieces of compute, where full-size
    windows would cost k * window (a 1,000-wordpiece document with window
    510 and stride 63: 3 windows of 376, not 3 of 510). Each wordpiece is
    owned by the window whose centre is nearest, which is the window where it
    has the most context on both sides (the smaller of its left and right
    context is largest there).
    """
    if n <= 0:
        return WindowPlan(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    if n <= window:
        # One window (every sentence, most short documents): it owns all.
        return WindowPlan(np.array([offset], np.int64), np.array([n + offset], np.int64), np.zeros(n, np.int64))
    else:
        step = window - stride
        k = -(-(n - window) // step) + 1
        size = -(-(n + (k - 1) * stride) // k)  # <= window, as k * window - (k - 1) * stride >= n
        starts = (np.arange(k, dtype=np.int64) * (n - size)) // (k - 1)
    ends = starts + size
    owner = nearest_centre(np.arange(n, dtype=np.int64), starts, ends)
    return WindowPlan(starts + offset, ends + offset, owner)


def sentence_cut_windows(n: int, window: int, stride: int, cuts: np.ndarray) -> WindowPlan:
    """Windows over a document that end where a sentence starts, so that
    they need no overlap: `cuts` are the wordpiece positions where sentences
    start (sorted). Each window holds whole sentences and owns all its
    wordpieces; the fewest windows are aimed for, cut near even splits of
    what is left. A sentence longer than the window (no cut within reach)
    gets `sliding_windows` over itself, overlapping by `stride`. The
    forward pass then reads each wordpiece once, as the model's own
    non-overlapping chunks would, where sliding windows over the whole
    document read the overlaps twice (CoNLL dev documents, MiniLM: 8% more
    wordpieces)."""
    cuts = np.asarray(cuts, dtype=np.int64)
    cuts = cuts[(cuts > 0) & (cuts < n)]
    if n <= window or len(cuts) == 0:
        return sliding_windows(n, window, stride)
    starts: list[int] = []
    ends: list[int] = []
    owners: list = []
    s = 0
    while s < n:
        if n - s <= window:
            e = n
        else:
            lo = int(np.searchsorted(cuts, s, side="right"))
            hi = int(np.searchsorted(cuts, s + window, side="right"))
            if lo == hi:
                # A sentence longer than the window: slide over it alone.
                e = int(cuts[hi]) if hi < len(cuts) else n
                owners.append(_append_sliding(starts, ends, s, e, window, stride))
                s = e
                continue
            k = -(-(n - s) // window)  # fewest windows for the rest
            target = s + (n - s) / k
            reach = cuts[lo:hi]
            e = int(reach[np.argmin(np.abs(reach - target))])
        owners.append(np.full(e - s, len(starts), dtype=np.int64))
        starts.append(s)
        ends.append(e)
        s = e
    return WindowPlan(np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64), np.concatenate(owners))


def _append_sliding(starts: list[int], ends: list[int], a: int, b: int, window: int, stride: int) -> np.ndarray:
    """Sliding windows over the wordpieces a..b (a sentence longer than the
    window), appended to `starts`/`ends`; the index of each wordpiece's
    window among all of them."""
    sub = sliding_windows(b - a, window, stride, offset=a)
    owner = sub.owner + len(starts)
    starts.extend(sub.starts.tolist())
    ends.extend(sub.ends.tolist())
    return owner


def nearest_centre(positions: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Index of the window whose centre is nearest to each position (windows
    sorted by start, equal sizes except possibly a single one)."""
    centres2 = starts + ends - 1  # twice the centre, to stay in integers
    idx = np.searchsorted(centres2, 2 * positions)
    idx = np.clip(idx, 1, len(starts) - 1) if len(starts) > 1 else np.zeros_like(idx)
    if len(starts) > 1:
        left = idx - 1
        left_dist = np.abs(2 * positions - centres2[left])
        right_dist = np.abs(2 * positions - centres2[idx])
        idx = np.where(left_dist <= right_dist, left, idx)
    return idx.astype(np.int64)


def sentence_windows(
    n: int,
    sent_starts: np.ndarray,
    window: int,
    stride: int,
    context_size: Optional[int],
    pack: int = 0,
) -> WindowPlan:
    """One window per sentence, or per run of consecutive sentences.

    sent_starts (np.ndarray): wordpiece index where each sentence begins
        (sorted, first is 0).
    context_size (Optional[int]): None: the sentence alone (sentence-level
        training as in Hugging Face's run_ner). An int: the sentence with up to
        that many wordpieces of its document on each side (FLERT-style context),
        less where the window is full. Only the sentence's own wordpieces are
        owned by its window: loss and predictions come from the target
        sentence, the context only informs it.
    pack (int): with context, consecutive whole sentences share one window
        while together they take at most `pack` wordpieces (and leave room for
        `context_size` on each side). Every sentence still has at least
        `context_size` wordpieces of its document on each side (those inside a
        run have more: their neighbours), and the shared context is paid once
        per run instead of once per sentence. 0: one sentence a window.

    A sentence longer than the window is cut by `sliding_windows`.
    """
    if n <= 0:
        return sliding_windows(0, window, stride)
    bounds = np.concatenate([np.asarray(sent_starts, dtype=np.int64), [n]])
    bounds = np.unique(bounds[(bounds >= 0) & (bounds <= n)])
    if bounds[0] != 0:
        bounds = np.concatenate([[0], bounds])
    size = context_size or 0
    with_context = size > 0
    limit = min(pack, window - 2 * size) if with_context and pack > 0 else 0
    starts: list[int] = []
    ends: list[int] = []
    owner = np.empty(n, dtype=np.int64)

    def add(a: int, b: int) -> None:
        if with_context:
            room = window - (b - a)
            left = min(size, a, room // 2)
            right = min(size, n - b, room - left)
            # Give unused room on one side to the other side.
            left = min(size, a, room - right)
            s, e = a - left, b + right
        else:
            s, e = a, b
        owner[a:b] = len(starts)
        starts.append(s)
        ends.append(e)

    run = None  # (start, end) of the sentences waiting to share a window
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        if run is not None and b - run[0] <= limit:
            run = (run[0], b)
            continue
        if run is not None:
            add(*run)
            run = None
        if b - a > window:
            owner[a:b] = _append_sliding(starts, ends, a, b, window, stride)
        else:
            run = (a, b)
    if run is not None:
        add(*run)
    return WindowPlan(np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64), owner)
