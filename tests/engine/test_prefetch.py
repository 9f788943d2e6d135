import threading
import time

import pytest

from nearid_data.engine.prefetch import prefetch


def test_keeps_order_and_runs_ahead() -> None:
    produced: list[int] = []

    def source():
        for i in range(5):
            produced.append(i)
            yield i

    iterator = prefetch(source(), depth=2)
    assert next(iterator) == 0
    time.sleep(0.2)
    assert len(produced) >= 3  # the producer went on while the consumer held item 0
    assert list(iterator) == [1, 2, 3, 4]


def test_producer_errors_reach_the_consumer_in_place() -> None:
    def source():
        yield 1
        raise ValueError("bad shard")

    iterator = prefetch(source())
    assert next(iterator) == 1
    with pytest.raises(ValueError, match="bad shard"):
        next(iterator)


def test_closing_the_consumer_stops_the_producer() -> None:
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    before = threading.active_count()
    iterator = prefetch(endless(), depth=1)
    next(iterator)
    iterator.close()
    assert threading.active_count() == before
