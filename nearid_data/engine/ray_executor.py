"""The Ray executor: each stage's units run on a pool of Ray actors, locally or on a cluster.

An actor is one worker process with the stage's declared resources reserved (``Stage.resources``,
so under ``--device cuda`` a GPU stage's actor holds a GPU, which Ray exposes to it as ``cuda``,
and the actor is given ``cuda``; an actor of a stage that takes no GPU is given ``cpu``). It builds and sets up
the stage on its first unit and keeps it, so models load once per actor; the next stage reuses
the actors when it needs the same resources and device (the stage it held is then replaced). Units are handed out
as actors free up, one in flight per actor, and manifests stream back as units finish. A unit
that fails, or whose actor dies, is retried on another actor (a dead one is replaced) up to
``retries`` times; then the build stops with the unit's ``UnitFailed``.

``ray.util.ActorPool`` is not used: it does not say which submitted value a result or an error
belongs to, and it keeps handing work to an actor that died.

Every unit commits its shard through ``execute_unit`` as in any executor, so the shards are the
same bytes whichever executor, and however many actors, built them. Ray is imported here only.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import Field

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
from nearid_data.errors import NearidError

log = logging.getLogger("nearid_data")


class RayExecutorConfig(ExecutorConfig):
    address: str | None = None
    """A cluster to join (``auto``: the one this machine belongs to, or ``ray://host:port``);
    None starts a Ray instance on this machine for the build."""
    retries: int = Field(default=2, ge=0, le=100)
    """How many more times a failed unit runs (on another actor) before the build stops."""


class UnitRunner:
    """The actor's body: runs units of one stage on the device the executor gave it; the stage
    itself is cached per process."""

    def __init__(self, device: str) -> None:
        self.device = device

    def run(self, task: StageTask, unit: WorkUnit) -> ShardManifest:
        return execute_unit(task, unit, device=self.device, ran_on=_placement(self.device))


def _placement(device: str) -> str:
    """What this actor runs on, for the manifest: Ray shows the actor only its own GPU (as
    ``cuda``), so name the node's GPU index and the node."""
    import ray

    gpus = ray.get_gpu_ids() if device.startswith("cuda") else []
    where = f"cuda:{','.join(str(g) for g in gpus)}" if gpus else device
    return f"{where} on {ray.util.get_node_ip_address()}"


class RayExecutor(Executor):
    Config = RayExecutorConfig
    config: RayExecutorConfig

    def __init__(
        self, config: RayExecutorConfig | None = None, *, workers: int = 1, device: str = "cpu"
    ) -> None:
        super().__init__(config or RayExecutorConfig(), workers=workers, device=device)
        if device.startswith("cuda:"):
            raise NearidError(
                f"--device {device} with the Ray executor: use --device cuda; Ray gives each "
                "actor its own GPU, which the actor sees as cuda"
            )
        self._started_ray = False
        self._actors: list[Any] = []
        self._shape: tuple[tuple[str, Any], ...] | None = None
        """What the current actors reserve and the device they were given."""
        self._actor_class: Any = None

    def map(self, task: StageTask, units: Sequence[WorkUnit]) -> Iterator[ShardManifest]:
        if not units:
            return
        ray = self._ray()
        from ray.exceptions import RayActorError, RayTaskError

        size = min(self.workers, len(units), self._fits(task))
        idle = self._actors_for(task, size)
        queue = deque(units)
        running: dict[Any, tuple[Any, WorkUnit]] = {}
        failed_on: dict[str, list[Any]] = {}  # unit -> the actors it failed on, in order
        try:
            while queue or running:
                self._dispatch(queue, idle, running, failed_on, task)
                ready, _ = ray.wait(list(running), num_returns=1)
                actor, unit = running.pop(ready[0])
                try:
                    manifest = ray.get(ready[0])
                except RayActorError:
                    failure = UnitFailed(
                        task.stage,
                        unit.name,
                        "its actor died (killed, or out of memory) while running it",
                        unit_input(unit),
                    )
                    replacement = self._new_actor(task)
                    self._discard(actor)
                    idle.append(replacement)
                except RayTaskError as error:
                    cause = error.cause
                    failure = (
                        cause
                        if isinstance(cause, UnitFailed)
                        else UnitFailed(task.stage, unit.name, str(cause), unit_input(unit))
                    )
                    idle.append(actor)
                else:
                    idle.append(actor)
                    yield manifest
                    continue
                tried = failed_on.setdefault(unit.name, [])
                tried.append(actor)
                if len(tried) > self.config.retries:
                    raise UnitFailed(
                        failure.stage,
                        failure.unit,
                        f"{failure.cause} (it failed all {len(tried)} attempts)",
                        failure.input,
                    )
                log.warning("retrying on another actor: %s", failure)
                queue.appendleft(unit)
        except BaseException:
            self._release()
            raise

    def _dispatch(
        self,
        queue: deque[WorkUnit],
        idle: list[Any],
        running: dict[Any, tuple[Any, WorkUnit]],
        failed_on: dict[str, list[Any]],
        task: StageTask,
    ) -> None:
        """Hand queued units to idle actors, a retried unit to an actor it has not failed on
        where there is one."""
        while queue and idle:
            unit = queue.popleft()
            tried = failed_on.get(unit.name, [])
            actor = next((a for a in idle if a not in tried), idle[0])
            idle.remove(actor)
            running[actor.run.remote(task, unit)] = (actor, unit)

    def _fits(self, task: StageTask) -> int:
        """How many of the stage's actors the cluster holds at once: an actor that could never
        start would keep the units handed to it waiting."""
        available = self._ray().cluster_resources()
        needs = {"CPU": task.resources.num_cpus}
        if self.worker_device(task) != "cpu":
            needs["GPU"] = task.resources.num_gpus
        if task.resources.memory is not None:
            needs["memory"] = task.resources.memory
        fits = [int(available.get(name, 0) // amount) for name, amount in needs.items() if amount]
        if min(fits, default=1) < 1:
            raise NearidError(
                f"stage {task.stage!r}: one actor needs {needs} but the Ray cluster has "
                f"{ {name: available.get(name, 0) for name in needs} }; lower the stage's "
                "resources or add nodes"
            )
        return min(fits, default=self.workers)

    def _actors_for(self, task: StageTask, size: int) -> list[Any]:
        """``size`` actors for ``task``'s stage. Actors of the previous stage are reused when
        they reserve the same resources (an actor's start, about a second, is then paid once per
        build rather than once per stage); otherwise they are released first, so their
        resources are free for the new ones."""
        shape = self._options(task)
        if shape != self._shape:
            self._release()
            self._shape = shape
        for extra in self._actors[size:]:
            self._discard(extra)
        return [*self._actors, *(self._new_actor(task) for _ in range(size - len(self._actors)))]

    def _options(self, task: StageTask) -> tuple[tuple[str, Any], ...]:
        resources = task.resources
        options: dict[str, Any] = {"num_cpus": resources.num_cpus}
        device = self.worker_device(task)
        if device != "cpu":
            options["num_gpus"] = resources.num_gpus
        if resources.memory is not None:
            options["memory"] = resources.memory
        return (*sorted(options.items()), ("device", device))

    def _new_actor(self, task: StageTask) -> Any:
        ray = self._ray()
        options = dict(self._options(task))
        device = options.pop("device")
        if self._actor_class is None:
            self._actor_class = ray.remote(UnitRunner)
        actor = self._actor_class.options(**options).remote(device)
        self._actors.append(actor)
        return actor

    def _discard(self, actor: Any) -> None:
        self._ray().kill(actor)
        self._actors.remove(actor)

    def _release(self) -> None:
        """Kill every actor (a failed stage, another shape of actor, the end of the build)."""
        ray = self._ray()
        for actor in self._actors:
            ray.kill(actor)
        self._actors.clear()
        self._shape = None

    def _ray(self) -> Any:
        try:
            import ray
        except ImportError:
            raise NearidError("--executor ray needs Ray: pip install 'nearid-data[ray]'") from None
        if not ray.is_initialized():
            ray.init(address=self.config.address, log_to_driver=False)
            self._started_ray = True
        return ray

    def close(self) -> None:
        if self._started_ray:
            import ray

            self._release()
            ray.shutdown()
            self._started_ray = False
