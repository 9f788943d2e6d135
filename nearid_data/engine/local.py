"""The local executor: units in this process (``workers=1``) or in a pool of processes.

Worker processes are spawned, not forked: forking a process that has imported torch or started
threads is unsafe, and spawn behaves the same on every platform. Each worker keeps its stage (and
its models) across units. With a CUDA device and several workers, worker ``i`` takes ``cuda:i``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

from nearid_data.engine.executor import Executor, StageTask, UnitFailed, execute_unit
from nearid_data.engine.manifest import ShardManifest
from nearid_data.engine.stage import WorkUnit

_worker_device: str | None = None


def _init_worker(device_queue: multiprocessing.Queue | None) -> None:  # type: ignore[type-arg]
    global _worker_device
    _worker_device = device_queue.get() if device_queue is not None else None


def _run_in_worker(task: StageTask, unit: WorkUnit) -> ShardManifest:
    if _worker_device is not None:
        task = replace(task, device=_worker_device)
    return execute_unit(task, unit)


class LocalExecutor(Executor):
    def __init__(self, workers: int = 1, device: str = "cpu") -> None:
        self.workers = max(1, workers)
        self.device = device
        self._pool: ProcessPoolExecutor | None = None

    def map(self, task: StageTask, units: Sequence[WorkUnit]) -> Iterator[ShardManifest]:
        if self.workers == 1 or len(units) <= 1:
            for unit in units:
                yield execute_unit(task, unit)
            return
        pool = self._ensure_pool()
        # Keep a bounded number of units in flight so results stream back while others run.
        running: dict[Future[ShardManifest], WorkUnit] = {}
        queue = list(units)
        try:
            while queue or running:
                while queue and len(running) < 2 * self.workers:
                    unit = queue.pop(0)
                    running[pool.submit(_run_in_worker, task, unit)] = unit
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    unit = running.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        self.close()  # a broken pool is unusable; the next stage starts anew
                        raise UnitFailed(
                            task.stage,
                            unit.name,
                            "a worker process died (killed, or out of memory) while running it",
                        ) from None
        except UnitFailed:
            for future in running:
                future.cancel()
            raise

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            devices = None
            if self.device.startswith("cuda") and ":" not in self.device:
                devices = context.Queue()
                for index in range(self.workers):
                    devices.put(f"cuda:{index}")
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_init_worker, initargs=(devices,)
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
