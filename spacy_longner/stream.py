"""The stream of docs through long_ner: read-ahead buffers, and a thread
that plans the next buffer while the model runs on this one."""

import queue
import threading
from typing import Callable, Iterable, Iterator, List, Optional, Sized, Tuple, TypeVar

T = TypeVar("T", bound=Sized)


def read_ahead(stream: Iterable[T], buffer_words: int, batch_size: int) -> Iterator[List[T]]:
    """Consecutive lists of docs (or pieces of docs) from `stream`: each
    closed once it holds `buffer_words` tokens or `batch_size` docs,
    whichever comes first (`batch_size` docs only, when buffer_words is 0)."""
    buf: List[T] = []
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


def prefetch(buffers: Iterable[List[T]], plan: Callable, depth: int = 1) -> Iterator[Tuple[List[T], Optional[object]]]:
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
    out: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
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
