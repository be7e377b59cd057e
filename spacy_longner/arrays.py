"""Small numpy idioms used across the package: offsets of ragged runs, the
indices inside them, and reductions over the few columns of a label array.
Leaf module: imports nothing from the package."""

import numpy as np


def offsets(lengths) -> np.ndarray:
    """(n + 1,) int64 start of each run and the total: the exclusive
    cumulative sum of `lengths`, with the sum appended."""
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def ragged_index(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The concatenated ranges `starts[i] : starts[i] + lengths[i]`, and for
    each index the run it belongs to (without a Python loop over runs)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    bounds = offsets(lengths)
    owner = np.repeat(np.arange(len(lengths)), lengths)
    index = np.asarray(starts, dtype=np.int64)[owner] + (np.arange(int(bounds[-1]), dtype=np.int64) - bounds[owner])
    return index, owner


# numpy reduces a row of an (n, k) array with one inner loop per row, slow
# for the few labels of a tagger (9 for CoNLL: `max(axis=1)` over 54,600
# rows takes 3.5 ms). Going over the k columns, each a vectorised pass over
# all rows, takes 0.3 ms.


def row_max(x: np.ndarray) -> np.ndarray:
    """x.max(axis=1) for an (n, k) array with small k, k >= 1."""
    best = x[:, 0].copy()
    for j in range(1, x.shape[1]):
        np.maximum(best, x[:, j], out=best)
    return best


def row_argmax(x: np.ndarray) -> np.ndarray:
    """x.argmax(axis=1) for an (n, k) array with small k, k >= 1: the first
    index of each row's maximum, as numpy gives it (NaN rows included)."""
    best = x[:, 0].copy()
    index = np.zeros(len(x), dtype=np.int64)
    for j in range(1, x.shape[1]):
        column = x[:, j]
        better = column > best
        index[better] = j
        np.maximum(best, column, out=best)
    if np.isnan(best).any():  # numpy's argmax takes the first NaN
        return x.argmax(axis=1)
    return index


def softmax(logits, *, blas_sum: bool = True):
    """Softmax over the last axis of an (n, n_labels) array, numpy or any
    array module thinc knows (cupy in GPU training); the input is not
    modified. blas_sum: on numpy, reduce by columns and sum the rows with
    one BLAS call (fast for a buffer's many rows of few labels; the last
    bits of a sum may differ from numpy's). False: numpy's own reductions,
    as the training loss has always used them, so a training run gives the
    weights it gave before."""
    from thinc.api import get_array_module

    xp = get_array_module(logits)
    if xp is not np or not blas_sum:
        z = logits - logits.max(axis=1, keepdims=True)
        z = xp.exp(z)
        return z / z.sum(axis=1, keepdims=True)
    z = logits - row_max(logits)[:, None]
    np.exp(z, out=z)
    # A matrix-vector product sums the short rows in one BLAS call.
    z /= (z @ np.ones(z.shape[1], dtype=z.dtype))[:, None]
    return z
