"""The local executor: units in this process (``workers=1``) or in a pool of processes.

Worker processes are spawned, not forked: forking a process that has imported torch or started
threads is unsafe, and spawn behaves the same on every platform. Each worker keeps its stage (and
its models) across units. With a CUDA device and several workers, worker ``i`` takes ``cuda:i``;
a stage whose workers need a GPU runs at most one worker per GPU.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

from nearid_data.engine.executor import (
    Executor,
    ExecutorConfig,
    StageTask,
    UnitFailed,
    execute_unit,
)
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
    def __init__(
        self, config: ExecutorConfig | None = None, *, workers: int = 1, device: str = "cpu"
    ) -> None:
        super().__init__(config or ExecutorConfig(), workers=workers, device=device)
        self._pool: ProcessPoolExecutor | None = None
        self._pool_size = 0

    def map(self, task: StageTask, units: Sequence[WorkUnit]) -> Iterator[ShardManifest]:
        workers = self.workers_for(task)
        if workers == 1 or len(units) <= 1:
            for unit in units:
                yield execute_unit(task, unit)
            return
        pool = self._ensure_pool(workers)
        # Keep a bounded number of units in flight so results stream back while others run.
        running: dict[Future[ShardManifest], WorkUnit] = {}
        queue = list(units)
        try:
            while queue or running:
                while queue and len(running) < 2 * workers:
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
        except BaseException:
            for future in running:
                future.cancel()
            # Units already running end before the failure goes up, so no worker still writes
            # into the stage while the caller cleans up or releases the build lock.
            wait(running)
            raise

    def workers_for(self, task: StageTask) -> int:
        """``workers``, but no more than one per GPU for a stage whose workers take a GPU."""
        if task.resources.num_gpus <= 0 or not self.device.startswith("cuda"):
            return self.workers
        if ":" in self.device:  # one named GPU
            return 1
        return max(1, min(self.workers, int(_cuda_device_count() // task.resources.num_gpus)))

    def _ensure_pool(self, workers: int) -> ProcessPoolExecutor:
        if self._pool is not None and self._pool_size != workers:
            self.close()
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            devices = None
            if self.device.startswith("cuda") and ":" not in self.device:
                devices = context.Queue()
                for index in range(workers):
                    devices.put(f"cuda:{index}")
            self._pool = ProcessPoolExecutor(
                workers, mp_context=context, initializer=_init_worker, initargs=(devices,)
            )
            self._pool_size = workers
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def _cuda_device_count() -> int:
    import torch  # only a GPU build asks, and it has torch

    return int(torch.cuda.device_count())
