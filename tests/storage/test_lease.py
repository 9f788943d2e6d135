"""The build lease on object storage: one holder, renewed while it runs, taken over once stale."""

from __future__ import annotations

import os
import threading
import time

import pytest

from nearid_data.engine import storage
from nearid_data.engine.lock import LOCK_NAME, BuildLocked, Lease, build_lock
from nearid_data.engine.storage import ObjectPath


@pytest.fixture
def out(bucket: str, request: pytest.FixtureRequest) -> ObjectPath:
    return ObjectPath.from_url(f"{bucket}/{request.node.name}")


def _lease(out: ObjectPath) -> Lease:
    lease = Lease.decode(storage.read_bytes(out / LOCK_NAME))
    assert lease is not None
    return lease


def _foreign(expires_in: float) -> bytes:
    now = time.time()
    return Lease(1, "another-host", "feedface", now - 100, now + expires_in).encode()


def test_a_second_build_is_refused_naming_the_holder_and_the_lease_goes_with_it(
    out: ObjectPath,
) -> None:
    with build_lock(out):
        assert _lease(out).pid == os.getpid()
        with pytest.raises(BuildLocked, match=f"pid {os.getpid()}"), build_lock(out):
            pass
    assert not (out / LOCK_NAME).exists()
    with build_lock(out):  # free again
        pass


def test_a_live_lease_of_another_host_blocks_and_an_expired_one_is_taken_over(
    out: ObjectPath,
) -> None:
    storage.write_bytes(out / LOCK_NAME, _foreign(expires_in=60))
    with pytest.raises(BuildLocked, match="another-host"), build_lock(out):
        pass
    storage.write_bytes(out / LOCK_NAME, _foreign(expires_in=-1))
    with build_lock(out):
        assert _lease(out).pid == os.getpid()


def test_the_lease_is_renewed_while_the_build_runs(out: ObjectPath) -> None:
    with build_lock(out, ttl=0.6):
        first = _lease(out)
        time.sleep(0.9)
        later = _lease(out)
    assert later.id == first.id
    assert later.expires > first.expires + 0.2


def test_a_holder_whose_lease_was_taken_over_fails_when_it_leaves(out: ObjectPath) -> None:
    with pytest.raises(BuildLocked, match="took it over"), build_lock(out, ttl=0.3):
        storage.write_bytes(out / LOCK_NAME, _foreign(expires_in=60))
        time.sleep(0.4)
    assert _lease(out).id == "feedface"  # the new holder's lease is left alone


def test_of_builds_racing_for_a_free_output_exactly_one_wins(out: ObjectPath) -> None:
    start = threading.Barrier(6)
    won: list[bool] = []

    def attempt() -> None:
        start.wait()
        won.append(storage.create_exclusive(out / LOCK_NAME, Lease.new(60).encode()))

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False] * 5 + [True]
