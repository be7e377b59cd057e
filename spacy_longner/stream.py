"""The stream of docs through long_ner: read-ahead buffers (a book-length
doc as pieces, pieces.py), a thread that plans the next buffer while the
model runs on this one, and the loop that predicts and writes each buffer."""

import queue
import threading
from collections.abc import Iterable, Iterator, Sized
from typing import Callable, Optional, TypeVar, Union

from spacy.tokens import Doc

from . import pieces
from .batching import plan_buffer
from .device import resolve_device
from .model import inference_budget, inference_overhead
from .pieces import Piece, PieceJoiner, split_long_docs
from .prediction import BufferPrediction

T = TypeVar("T", bound=Sized)


def read_ahead(stream: Iterable[T], buffer_words: int, batch_size: int) -> Iterator[list[T]]:
    """Consecutive lists of docs (or pieces of docs) from `stream`: each
    closed once it holds `buffer_words` tokens or `batch_size` docs,
    whichever comes first (`batch_size` docs only, when buffer_words is 0)."""
    buf: list[T] = []
    words = 0
    for doc in stream:
        buf.append(doc)
        words += len(doc)
        if len(buf) >= max(1, batch_size) or 0 < buffer_words <= words:
            yield buf
            buf, words = [], 0
    if buf:
        yield buf


_DONE = object()


def prefetch(buffers: Iterable[list[T]], plan: Callable, depth: int = 1) -> Iterator[tuple[list[T], Optional[object]]]:
    """(docs, planned) for each buffer, in order, where a background thread
    pulls the buffers and plans them (`plan(docs)`) up to `depth` buffers
    ahead of the consumer. Pulling a buffer runs everything upstream of
    long_ner (spaCy's tokenizer, earlier components); planning runs the
    checkpoint's tokenizer. Both then overlap the forward pass, which, like
    the Rust tokenizer, releases the GIL.

    A buffer whose planning failed comes with planned = None (the consumer
    plans it again and handles the error per doc). An error raised by the
    upstream stream is raised here, at the same place in the stream as
    without the thread. Closing this generator stops the thread."""
    out: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for docs in buffers:
                try:
                    planned = plan(docs)
                except Exception:
                    planned = None
                if not put((docs, planned)):
                    return
        except BaseException as e:  # the upstream stream failed
            put(e)
            return
        put(_DONE)

    thread = threading.Thread(target=work, name="long_ner-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def annotate_stream(pipe, stream: Iterable[Doc], batch_size: int) -> Iterator[Doc]:
    """What LongNER.pipe does. Docs are read ahead until the buffer holds
    `buffer_words` tokens or `batch_size` docs, whichever comes first (at
    least one doc), and the windows of all of them are sorted by length
    together and batched with little padding. The cap at `batch_size` docs
    keeps nlp.pipe's memory bound and yields docs at the pace they are
    computed. With `buffer_words = 0`, buffers are `batch_size` docs. A doc
    longer than a buffer is read in pieces (pieces.py). With prefetch on, a
    thread reads and plans the next buffer while the model runs on this one;
    the results are the same, in the same order.

    If predicting a buffer fails, its docs are retried one by one, so that
    only the docs that fail on their own reach spaCy's error handler (which
    raises by default; an error handler that ignores errors drops those docs
    only, not the whole buffer)."""
    error_handler = pipe.get_error_handler()
    buffers = read_ahead(split_long_docs(stream, piece_words(pipe.cfg)), pipe.cfg["buffer_words"], batch_size)
    if prefetching(pipe.cfg["prefetch"], pipe.model):
        model = pipe.model
        _ = pipe.state  # load the checkpoint here, not in the thread
        overhead, budget = inference_overhead(model), inference_budget(model)
        planned_buffers = prefetch(
            buffers, lambda ps: plan_buffer(model, [p.part for p in ps], overhead=overhead, budget=budget)
        )
    else:
        planned_buffers = ((ps, None) for ps in buffers)
    joiner = PieceJoiner()
    for buffer, planned in planned_buffers:
        if all(p.whole for p in buffer):
            yield from annotate_docs(pipe, [p.doc for p in buffer], planned, error_handler)
        else:
            yield from annotate_pieces(pipe, buffer, planned, error_handler, joiner)
        if pipe.cfg["trim_heap"]:
            pipe._trim_heap()


def piece_words(cfg: dict) -> int:
    """Docs longer than this many tokens are read in pieces: a buffer's
    worth (`buffer_words`), at least pieces.MIN_PIECE_WORDS, so that a small
    buffer does not cut documents into small pieces; 0 (never) where
    listeners need the whole doc's encoder output."""
    if cfg["store_trf_data"]:
        return 0
    return max(cfg["buffer_words"], pieces.MIN_PIECE_WORDS)


def prefetching(setting: str, model) -> bool:
    """prefetch "auto": on where the model runs on a CUDA device (the CPU is
    free while the GPU computes), off on CPU, where the forward pass already
    uses every core (docs/PERFORMANCE.md)."""
    if setting != "auto":
        return setting == "on"
    return resolve_device(model.attrs["device"]).type == "cuda"


def annotate_docs(pipe, docs: list[Doc], planned, error_handler: Callable) -> list[Doc]:
    """Predict and write a buffer of whole docs; the docs annotated. If
    predicting the buffer fails, its docs are retried one by one, so that
    only the docs that fail on their own reach the error handler."""
    try:
        preds = pipe.predict(docs, planned=planned)
    except Exception as e:
        if len(docs) == 1:
            error_handler(pipe.name, pipe, docs, e)
            return []
        kept = []
        for doc in docs:
            try:
                pipe.set_annotations([doc], pipe.predict([doc]))
                kept.append(doc)
            except Exception as e:
                error_handler(pipe.name, pipe, [doc], e)
        return kept
    try:
        pipe.set_annotations(docs, preds)
    except Exception as e:
        error_handler(pipe.name, pipe, docs, e)
        return []
    return docs


def annotate_pieces(pipe, buffer: list[Piece], planned, error_handler: Callable, joiner: PieceJoiner) -> list[Doc]:
    """Predict a buffer that holds pieces of long docs; write each whole doc,
    and each long doc whose last piece is in this buffer (`joiner` carries
    the pieces of the doc that continues into the next buffer); the docs
    annotated. A doc any of whose pieces fails goes to the error handler
    once."""
    parts = [p.part for p in buffer]
    results: list[Union[tuple[BufferPrediction, int], Exception]]
    try:
        preds = pipe.predict(parts, planned=planned)
        results = [(preds, i) for i in range(len(parts))]
    except Exception:
        results = []
        for part in parts:
            try:
                results.append((pipe.predict([part]), 0))
            except Exception as e:
                results.append(e)
    done = []
    for piece, result in zip(buffer, results):
        if isinstance(result, Exception):
            joiner.error = joiner.error or result
        elif joiner.error is None:
            joiner.add(piece, *result)
        if not piece.last:
            continue
        try:
            if joiner.error is not None:
                raise joiner.error
            whole = joiner.parts[0] if piece.whole else joiner.prediction(len(piece.doc))
            pipe.set_annotations([piece.doc], whole)
            done.append(piece.doc)
        except Exception as e:
            error_handler(pipe.name, pipe, [piece.doc], e)
        joiner.reset()
    return done
