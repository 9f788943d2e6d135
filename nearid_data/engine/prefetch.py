"""Run an iterator ahead of its consumer on a background thread, a bounded number of items ahead.

Stages decode the next batch (PNG decoding releases the GIL) while the current batch is on the
model, so a GPU does not wait for the CPU. Order is kept; an exception in the producer is raised
in the consumer at the point it would have occurred; closing the consumer stops the producer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    buffer: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(buffer, item, stop):
                    return
            _put(buffer, _DONE, stop)
        except BaseException as exc:  # handed to the consumer, which raises it
            _put(buffer, _Failure(exc), stop)

    thread = threading.Thread(target=produce, name="nearid-prefetch", daemon=True)
    thread.start()
    try:
        while (item := buffer.get()) is not _DONE:
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(buffer: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Put unless the consumer has gone away; polls so a closed consumer never blocks us."""
    while not stop.is_set():
        try:
            buffer.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
