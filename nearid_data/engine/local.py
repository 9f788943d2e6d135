"""The local executor: units in this process (one worker) or in worker processes of its own.

Worker processes are spawned, not forked: forking a process that has imported torch or started
threads is unsafe, and spawn behaves the same on every platform. Each worker is started for one
device and keeps its stage (and its models) across units. The executor decides that device: a
stage whose worker takes no GPU runs on ``cpu``; one that takes a GPU runs on a named GPU
(``--device cuda:1``) in one worker, or under ``--device cuda`` in at most as many workers as the
GPUs hold, worker ``i`` on ``cuda:floor(i * num_gpus) mod count`` (one per GPU for
``num_gpus: 1``, two per GPU for ``0.5``).

The executor knows which unit each worker runs (``concurrent.futures``' pool does not say which
unit a dead process held), so a worker killed by the OS (out of memory, SIGKILL) fails the
stage with ``UnitFailed`` naming that unit. After any failure no unit starts, and the units
already running end (and commit) before the error goes up, so no worker still writes into the
stage while the caller cleans up or releases the build lock.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from nearid_data.engine.executor import (
    Executor,
    ExecutorConfig,
    StageTask,
    UnitFailed,
    execute_unit,
    unit_input,
)
from nearid_data.engine.manifest import ShardManifest
from nearid_data.engine.stage import WorkUnit


def _serve(conn: Connection, device: str) -> None:
    """A worker process: runs the units it is sent on ``device`` until told to stop."""
    # Ctrl-C reaches the whole process group: the coordinator decides, and lets running units end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the coordinator is gone
            return
        if message is None:
            return
        task, unit = message
        try:
            conn.send((True, execute_unit(task, unit, device=device)))
        except UnitFailed as failed:
            conn.send((False, failed))


class _Worker:
    """One worker process, started for one device, running at most one unit at a time."""

    def __init__(self, context: Any, device: str) -> None:
        self.device = device
        self.unit: WorkUnit | None = None
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, device), daemon=True)
        self.process.start()
        child.close()  # so the worker's death reads as the end of the pipe here

    def start(self, task: StageTask, unit: WorkUnit) -> None:
        self.unit = unit
        # A worker that died after the stage began fails here; its pipe then reads as ended, and
        # ``result`` reports the death against this unit.
        with contextlib.suppress(OSError):
            self.conn.send((task, unit))

    def result(self, task: StageTask) -> ShardManifest:
        """The running unit's manifest; raises its ``UnitFailed``, or one that says the worker
        process died while running it."""
        unit, self.unit = self.unit, None
        assert unit is not None
        try:
            ok, value = self.conn.recv()
        except (EOFError, OSError):
            raise UnitFailed(
                task.stage, unit.name, f"{self._death()} while running it", unit_input(unit)
            ) from None
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _death(self) -> str:
        self.process.join(timeout=10)
        code = self.process.exitcode
        how = f"exit status {code}"
        if code is not None and code < 0:
            how = f"killed by {signal.Signals(-code).name}"
        return f"its worker process died ({how}: killed, or out of memory)"

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # already gone
            self.conn.send(None)
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class LocalExecutor(Executor):
    def __init__(
        self, config: ExecutorConfig | None = None, *, workers: int = 1, device: str = "cpu"
    ) -> None:
        super().__init__(config or ExecutorConfig(), workers=workers, device=device)
        self._workers: list[_Worker] = []

    def map(self, task: StageTask, units: Sequence[WorkUnit]) -> Iterator[ShardManifest]:
        devices = self.worker_devices(task)
        if len(devices) == 1 or len(units) <= 1:
            for unit in units:
                yield execute_unit(task, unit, device=devices[0])
            return
        workers = self._ensure_workers(devices)
        queue = deque(units)
        try:
            while queue or any(w.unit is not None for w in workers):
                for worker in workers:
                    if queue and worker.unit is None:
                        worker.start(task, queue.popleft())
                ready = wait([w.conn for w in workers if w.unit is not None])
                for worker in workers:
                    if worker.conn in ready:
                        yield worker.result(task)
        except BaseException:
            try:
                self._finish_running(task, workers)
            finally:
                self.close()  # a failed stage ends the build; a dead worker is never reused
            raise

    def worker_devices(self, task: StageTask) -> list[str]:
        """The device of each worker ``task``'s stage runs on, one entry per worker."""
        device = self.worker_device(task)
        if not device.startswith("cuda"):
            return [device] * self.workers
        if ":" in device:  # one named GPU
            return [device]
        gpus = _cuda_device_count()
        if gpus == 0:  # nothing to spread over: the stage's model says what is missing
            return [device]
        share = task.resources.num_gpus
        count = max(1, min(self.workers, int(gpus // share)))
        return [f"cuda:{int(i * share) % gpus}" for i in range(count)]

    def _ensure_workers(self, devices: list[str]) -> list[_Worker]:
        """Workers for ``devices``: the running ones when they fit, a worker that died while
        idle (between stages) replaced, since it held no unit to report."""
        context = multiprocessing.get_context("spawn")
        if [w.device for w in self._workers] != devices:
            self.close()
            self._workers = [_Worker(context, device) for device in devices]
        for index, worker in enumerate(self._workers):
            if not worker.process.is_alive():
                worker.stop()
                self._workers[index] = _Worker(context, worker.device)
        return self._workers

    @staticmethod
    def _finish_running(task: StageTask, workers: list[_Worker]) -> None:
        """Wait for the units still running; their failures add nothing to the first one."""
        for worker in workers:
            if worker.unit is not None:
                with contextlib.suppress(UnitFailed):
                    worker.result(task)

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()
        self._workers = []


def _cuda_device_count() -> int:
    import torch  # only a GPU build asks, and it has torch

    return int(torch.cuda.device_count())
