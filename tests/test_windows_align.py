import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_longner.align import aggregate, first_wordpiece
from spacy_longner.arrays import softmax
from spacy_longner.windows import default_stride, sentence_cut_windows, sentence_windows, sliding_windows


@settings(max_examples=400, deadline=None)
@given(n=st.integers(0, 400), window=st.integers(1, 64), data=st.data())
def test_sliding_windows_cover_everything_and_owners_have_most_context(n, window, data):
    stride = data.draw(st.integers(0, window - 1))
    plan = sliding_windows(n, window, stride)
    assert len(plan.owner) == n
    if n == 0:
        assert plan.n_windows == 0
        return
    assert plan.starts[0] == 0 and plan.ends[-1] == n
    assert np.all(plan.ends - plan.starts <= window)
    assert np.all(plan.starts[1:] <= plan.ends[:-1])  # no gaps
    pos = np.arange(n)
    s, e = plan.starts[plan.owner], plan.ends[plan.owner]
    assert np.all((s <= pos) & (pos < e))
    # Brute force: no window gives a position more context on its poorer side.
    own_ctx = np.minimum(pos - s, e - 1 - pos)
    for k in range(plan.n_windows):
        inside = (plan.starts[k] <= pos) & (pos < plan.ends[k])
        ctx = np.minimum(pos - plan.starts[k], plan.ends[k] - 1 - pos)
        assert np.all(own_ctx[inside] >= ctx[inside])


def test_default_stride_is_smaller_than_window():
    for w in (1, 2, 8, 510, 4094):
        assert 0 <= default_stride(w) < w


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 30), min_size=1, max_size=12),
    window=st.integers(4, 40),
    ctx=st.one_of(st.none(), st.integers(0, 20)),
)
def test_sentence_windows_own_exactly_their_sentence(lengths, window, ctx):
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n = int(sum(lengths))
    plan = sentence_windows(n, starts, window, window // 4, ctx)
    assert np.all(plan.ends - plan.starts <= window)
    pos = np.arange(n)
    s, e = plan.starts[plan.owner], plan.ends[plan.owner]
    assert np.all((s <= pos) & (pos < e))
    sent_of = np.repeat(np.arange(len(lengths)), lengths)
    for k in range(plan.n_windows):
        owned = np.flatnonzero(plan.owner == k)
        assert len(owned) > 0
        assert len(set(sent_of[owned])) == 1  # a window's targets are one sentence
    if ctx is None:
        # Sentence level: no window reaches outside its sentence.
        for k in range(plan.n_windows):
            assert len(set(sent_of[plan.starts[k] : plan.ends[k]])) == 1


def test_sentence_context_takes_neighbours_on_both_sides():
    starts = np.array([0, 10, 20])
    plan = sentence_windows(30, starts, window=20, stride=2, context_size=4)
    assert (plan.starts[1], plan.ends[1]) == (6, 24)
    assert (plan.starts[0], plan.ends[0]) == (0, 14)  # no left context: more right, up to context_size


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=25),
    window=st.integers(20, 64),
    ctx=st.integers(0, 8),
    pack=st.integers(0, 100),
)
def test_packed_sentence_windows_own_whole_sentences_with_context_on_both_sides(lengths, window, ctx, pack):
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n = int(sum(lengths))
    plan = sentence_windows(n, starts, window, window // 4, ctx, pack)
    assert np.all(plan.ends - plan.starts <= window)
    pos = np.arange(n)
    s, e = plan.starts[plan.owner], plan.ends[plan.owner]
    assert np.all((s <= pos) & (pos < e))
    sent_of = np.repeat(np.arange(len(lengths)), lengths)
    limit = min(pack, window - 2 * ctx) if ctx > 0 else 0
    for k in range(plan.n_windows):
        owned = np.flatnonzero(plan.owner == k)
        sents = np.unique(sent_of[owned])
        assert len(owned) > 0
        assert np.all(np.diff(sents) == 1)  # a run of consecutive sentences
        if len(sents) > 1:
            # Whole sentences, together within the pack limit, each with at
            # least ctx wordpieces of context where the document has them.
            assert np.array_equal(owned, np.flatnonzero(np.isin(sent_of, sents)))
            assert len(owned) <= limit
            a, b = owned[0], owned[-1] + 1
            assert plan.starts[k] <= a - min(ctx, a) and plan.ends[k] >= b + min(ctx, n - b)
    if limit == 0 or not ctx:
        assert np.array_equal(plan.owner, sentence_windows(n, starts, window, window // 4, ctx).owner)


def test_pack_puts_consecutive_sentences_in_one_window():
    starts = np.array([0, 10, 20, 30, 40])
    plan = sentence_windows(50, starts, window=40, stride=2, context_size=4, pack=25)
    # Runs of two sentences (20 <= 25 wordpieces), 4 of context a side.
    assert plan.owner.tolist() == [0] * 20 + [1] * 20 + [2] * 10
    assert list(zip(plan.starts, plan.ends)) == [(0, 24), (16, 44), (36, 50)]


def naive_aggregate(wp_probs, wp_token, n_tokens, how):
    out = np.zeros((n_tokens, wp_probs.shape[1]))
    for t in range(n_tokens):
        rows = wp_probs[wp_token == t]
        if len(rows) == 0:
            continue
        if how == "first":
            out[t] = rows[0]
        elif how == "average":
            out[t] = rows.mean(0)
        else:
            out[t] = rows[int(np.argmax(rows.max(1)))]
    return out


@pytest.mark.parametrize("how", ["first", "average", "max"])
@settings(max_examples=150, deadline=None)
@given(counts=st.lists(st.integers(0, 4), min_size=1, max_size=30), seed=st.integers(0, 10_000))
def test_aggregation_matches_a_per_token_loop(how, counts, seed):
    rng = np.random.default_rng(seed)
    wp_token = np.repeat(np.arange(len(counts)), counts)
    wp_probs = softmax(rng.normal(size=(len(wp_token), 5)).astype(np.float32))
    probs, visible = aggregate(wp_probs, wp_token, len(counts), how)
    np.testing.assert_allclose(probs, naive_aggregate(wp_probs, wp_token, len(counts), how), rtol=1e-6, atol=1e-7)
    assert visible.tolist() == [c > 0 for c in counts]


def test_first_wordpiece():
    assert first_wordpiece(np.array([0, 0, 2, 3, 3, 3])).tolist() == [0, 2, 3]
    assert first_wordpiece(np.zeros(0, np.int64)).tolist() == []


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 80), min_size=0, max_size=300),
    st.integers(16, 1024),
    st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    st.integers(1, 8),
)
def test_make_batches_pack_every_window_once_within_budget_and_tolerance(lengths, budget, tol, pad_multiple):
    from spacy_longner.batching import make_batches

    windows = [np.arange(1, n + 1) * 7 + i for i, n in enumerate(lengths)]
    prefix, suffix = [101], [102, 103]
    batches = make_batches(
        windows, prefix, suffix, pad_id=0, budget=budget, pad_multiple=pad_multiple, pad_tolerance=tol
    )
    seen = [int(w) for b in batches for w in b.windows]
    assert sorted(seen) == list(range(len(windows)))
    for b in batches:
        rows, width = b.input_ids.shape
        assert width % pad_multiple == 0
        assert rows * width <= budget or rows == 1
        padded = [-(-(len(windows[w]) + 3) // pad_multiple) * pad_multiple for w in b.windows]
        # Every window, rounded up to pad_multiple, at least (1 - tol) as wide
        # as the batch.
        assert max(padded) == width
        assert min(padded) >= (1 - tol) * width - 1e-9
        for r, w in enumerate(b.windows):
            seq = [101] + windows[w].tolist() + [102, 103]
            assert b.input_ids[r, : len(seq)].tolist() == seq
            assert b.input_ids[r, len(seq) :].tolist() == [0] * (width - len(seq))
            assert b.attention_mask[r].tolist() == [1] * len(seq) + [0] * (width - len(seq))
            assert b.lengths[r] == len(windows[w])


def test_make_batches_fill_longformer_batches_whose_windows_all_pad_to_its_attention_window():
    """Longformer pads every row to a multiple of its attention window (512
    for the large model): sentences of 5 to 60 wordpieces all cost 512, so
    the length tolerance must not split them into dozens of small batches."""
    from spacy_longner.batching import make_batches

    rng = np.random.default_rng(0)
    windows = [np.arange(n) + 5 for n in rng.integers(5, 61, size=300)]
    batches = make_batches(windows, [0], [2], 1, 65536, pad_multiple=512)
    assert [b.input_ids.shape for b in batches] == [(128, 512), (128, 512), (44, 512)]
    # Without the rounding (a model that pads nothing) the tolerance still
    # groups windows of close lengths.
    assert len(make_batches(windows, [0], [2], 1, 65536)) > 3


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 80), min_size=0, max_size=300),
    st.integers(16, 1024),
    st.integers(0, 2000),
    st.integers(1, 8),
)
def test_make_batches_join_batches_only_where_padding_costs_less_than_a_call(lengths, budget, overhead, pad_multiple):
    from spacy_longner.batching import make_batches

    windows = [np.arange(1, n + 1) * 7 + i for i, n in enumerate(lengths)]
    args = (windows, [101], [102, 103], 0, budget, pad_multiple)
    plain = make_batches(*args)
    joined = make_batches(*args, overhead=overhead)
    assert sorted(int(w) for b in joined for w in b.windows) == list(range(len(windows)))
    assert len(joined) <= len(plain)
    # Each joined batch is a run of consecutive plain batches, within budget,
    # and each join added less padding than `overhead`.
    plain_of = {int(w): k for k, b in enumerate(plain) for w in b.windows}
    for b in joined:
        rows, width = b.input_ids.shape
        assert rows * width <= budget or rows == 1
        ks = sorted({plain_of[int(w)] for w in b.windows})
        assert ks == list(range(ks[0], ks[-1] + 1))
        assert width == plain[ks[0]].input_ids.shape[1]
        for k in ks[1:]:
            padded = -(-(plain[k].lengths + 3) // pad_multiple) * pad_multiple
            assert int((width - padded).sum()) < overhead
        for r, w in enumerate(b.windows):
            seq = [101] + windows[w].tolist() + [102, 103]
            assert b.input_ids[r, : len(seq)].tolist() == seq
            assert b.attention_mask[r].sum() == len(seq)
    if overhead == 0:
        assert [b.windows.tolist() for b in joined] == [b.windows.tolist() for b in plain]


def test_batch_overhead_is_large_for_small_models_and_zero_off_cpu():
    from types import SimpleNamespace

    from spacy_longner.runtime import batch_overhead

    def state(hidden, inner):
        return SimpleNamespace(
            hf_model=SimpleNamespace(config=SimpleNamespace(hidden_size=hidden, intermediate_size=inner))
        )

    tiny, minilm, large = (batch_overhead(state(h, i), "cpu") for h, i in ((64, 128), (384, 1536), (1024, 4096)))
    assert tiny > 100 > minilm >= large >= 0
    assert batch_overhead(state(64, 128), "cuda") == 0


@settings(max_examples=400, deadline=None)
@given(n=st.integers(1, 3000), window=st.integers(2, 600), data=st.data())
def test_sliding_windows_are_few_equal_and_overlap_by_at_least_stride(n, window, data):
    stride = data.draw(st.integers(0, window - 1))
    plan = sliding_windows(n, window, stride)
    sizes = plan.ends - plan.starts
    assert len(set(sizes.tolist())) == 1 and sizes[0] <= window
    # The fewest windows of size <= window that overlap by >= stride.
    k = plan.n_windows
    assert k == 1 or (k - 1) * window - (k - 2) * stride < n
    assert np.all(plan.ends[:-1] - plan.starts[1:] >= stride)
    # Compute: about n + (k - 1) * stride wordpieces, never k full windows unless needed.
    assert sizes.sum() < n + (k - 1) * stride + k


@settings(max_examples=300, deadline=None)
@given(lengths=st.lists(st.integers(1, 80), min_size=1, max_size=40), window=st.integers(8, 120), data=st.data())
def test_sentence_cut_windows_hold_whole_sentences_and_read_each_wordpiece_once(lengths, window, data):
    stride = data.draw(st.integers(0, window - 1))
    cuts = np.cumsum(lengths)[:-1]
    n = int(sum(lengths))
    plan = sentence_cut_windows(n, window, stride, cuts)
    assert len(plan.owner) == n
    assert plan.starts[0] == 0 and plan.ends[-1] == n
    assert np.all(plan.ends - plan.starts <= window)
    assert np.all(plan.starts[1:] <= plan.ends[:-1])  # no gaps
    pos = np.arange(n)
    assert np.all((plan.starts[plan.owner] <= pos) & (pos < plan.ends[plan.owner]))
    assert np.all(np.diff(plan.owner) >= 0)
    if n <= window:
        assert plan.n_windows == 1
        return
    bounds = set(cuts.tolist()) | {0, n}
    sent_of = np.repeat(np.arange(len(lengths)), lengths)
    for k in range(plan.n_windows):
        a, b = int(plan.starts[k]), int(plan.ends[k])
        sents = set(sent_of[a:b].tolist())
        if len(sents) > 1 or (a in bounds and b in bounds):
            # A window over several sentences starts and ends at sentence starts.
            assert a in bounds and b in bounds
            assert np.all(plan.owner[a:b] == k)
        else:
            # Only a sentence longer than the window is slid over.
            assert lengths[sents.pop()] > window
    # Overlap (wordpieces read twice) only inside sentences longer than the window.
    overlap = int((plan.ends - plan.starts).sum()) - n
    long_overlap = sum(
        sliding_windows(L, window, stride).ends.sum() - sliding_windows(L, window, stride).starts.sum() - L
        for L in lengths
        if window < L
    )
    assert overlap == long_overlap


def test_sentence_cut_windows_without_cuts_are_sliding_windows():
    for n, cuts in ((1000, []), (1000, [0, 1000]), (100, [50])):
        a, b = sentence_cut_windows(n, 300, 37, np.array(cuts)), sliding_windows(n, 300, 37)
        assert (
            np.array_equal(a.starts, b.starts) and np.array_equal(a.ends, b.ends) and np.array_equal(a.owner, b.owner)
        )


def test_sentence_cut_windows_are_few_and_even():
    # 20 sentences of 10 wordpieces, windows of 64: 4 windows (the fewest),
    # of 50 wordpieces each (the even split).
    plan = sentence_cut_windows(200, 64, 8, np.arange(10, 200, 10))
    assert plan.starts.tolist() == [0, 50, 100, 150]
    assert plan.ends.tolist() == [50, 100, 150, 200]


def test_sentence_cuts_come_from_sentences_else_from_punctuation_and_blank_lines(checkpoints):
    from conftest import make_nlp

    from spacy_longner.batching import encode_docs, sentence_cuts_wp

    nlp = make_nlp(checkpoints("bert"))
    state = nlp.get_pipe("long_ner").state
    doc = nlp.make_doc("Peter went . Paris !\n\nTokyo ? ok U.S. Mr. Smith")
    assert [t.text for t in doc][:9] == ["Peter", "went", ".", "Paris", "!", "\n\n", "Tokyo", "?", "ok"]
    enc = encode_docs(state, [doc])[0]
    first_wp = {t: int(np.flatnonzero(enc.wp_token == t)[0]) for t in set(enc.wp_token.tolist())}
    assert sentence_cuts_wp(doc, enc).tolist() == [first_wp[3], first_wp[6], first_wp[8]]
    # With sentence boundaries (a sentencizer ran), those are used instead.
    sentencizer = nlp.add_pipe("sentencizer", first=True)
    doc = sentencizer(nlp.make_doc("Peter went . Paris !\n\nTokyo ? ok U.S. Mr. Smith"))
    starts = [s.start for s in doc.sents]
    assert sentence_cuts_wp(doc, enc).tolist() == [first_wp[t] if t in first_wp else first_wp[t + 1] for t in starts]


@pytest.mark.parametrize("k", [1, 2, 9, 17])
def test_row_max_and_argmax_are_numpys(k):
    from spacy_longner.arrays import row_argmax, row_max

    rng = np.random.default_rng(k)
    x = rng.normal(size=(500, k)).astype(np.float32)
    x[:50] = np.round(x[:50])  # ties: the first index wins, as in numpy
    x[50:60] = 0.0
    x[60:70, k // 2] = np.inf
    x[70:80] = -np.inf
    assert np.array_equal(row_max(x), x.max(axis=1))
    assert np.array_equal(row_argmax(x), x.argmax(axis=1))
    x[90, k - 1] = np.nan  # numpy's argmax takes the first NaN
    assert np.array_equal(row_argmax(x), x.argmax(axis=1))
    assert np.array_equal(row_max(x), x.max(axis=1), equal_nan=True)
    assert row_argmax(x[:0]).shape == (0,) and row_max(x[:0]).shape == (0,)


def test_softmax_matches_the_textbook_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(scale=20, size=(300, 9)).astype(np.float32)
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    ref = e / e.sum(axis=1, keepdims=True)
    out = softmax(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-7)
    assert np.array_equal(out.argmax(axis=1), ref.argmax(axis=1))
    assert softmax(x[:0]).shape == (0, 9)


def test_training_softmax_is_numpys_own_formula_bit_for_bit():
    # The loss keeps the numerics of earlier versions, so a training run
    # with the same config and seed gives the same weights.
    rng = np.random.default_rng(4)
    logits = (rng.normal(size=(500, 9)) * 5).astype(np.float32)
    z = logits - logits.max(axis=1, keepdims=True)
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    got = softmax(logits, blas_sum=False)
    assert np.array_equal(got, expected)
    np.testing.assert_allclose(softmax(logits), expected, rtol=1e-6)
    assert logits.dtype == np.float32 and not np.shares_memory(got, logits)
