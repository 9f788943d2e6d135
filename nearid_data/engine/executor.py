"""Executors run work units somewhere; every executor runs the same ``execute_unit``.

``execute_unit`` rebuilds the stage from a picklable ``StageTask`` (once per worker process, so
models load once), runs one unit and commits it: tar first (atomic), then its manifest, the
completion marker. An executor decides where that function runs (in this process, in local worker
processes, or on a Ray cluster) and which device each worker gets: the task names no device, the
executor hands one to ``execute_unit``. The task carries a stage factory (a top-level function
and plain data) rather than a pipeline, so the engine depends on nothing that configures it.
"""

from __future__ import annotations

import gc
import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from nearid_data.engine.catalog import Catalog
from nearid_data.engine.manifest import (
    FieldPatch,
    SampleRow,
    ShardManifest,
    manifest_path,
    tar_path,
    write_model,
)
from nearid_data.engine.patches import make_patch, patch_member, patchable
from nearid_data.engine.prefetch import prefetch
from nearid_data.engine.shared import read_shared
from nearid_data.engine.stage import Kept, Resources, Stage, WorkUnit
from nearid_data.engine.storage import Location, location, relative
from nearid_data.engine.tario import ShardError, ShardWriter, field_bytes
from nearid_data.sample import JSON_FIELD, KEY_FIELD, meta, source_locator
from nearid_data.seeding import derive_seed
from nearid_data.strict import StrictModel

V = TypeVar("V")

StageFactory = Callable[[str, Location, "str | None", str], Stage]
"""Builds stage ``name`` for ``(name, build_dir, upstream, device)``. Picklable (a top-level
function, or a ``functools.partial`` of one over plain data), so any worker can call it."""


@dataclass(frozen=True)
class StageTask:
    """Everything a worker needs to rebuild a stage: picklable."""

    stage: str
    factory: StageFactory
    build_dir: str
    upstream: str | None
    fingerprint: str
    resources: Resources = field(default_factory=lambda: Resources())
    shared_sha256: str | None = None
    """The stage's shared artifact (``engine.shared``) workers read, if it has one."""

    def unit_fingerprint(self, unit: WorkUnit) -> str:
        return f"{derive_seed(self.fingerprint, sorted(unit.payload.items())):016x}"


class UnitFailed(Exception):
    """A unit failed: stage, unit, its input and the cause as text. Plain strings, so it pickles
    and a worker process's failure reads exactly like one in this process."""

    def __init__(self, stage: str, unit: str, cause: str, input: str | None = None) -> None:
        of_input = f", input {input!r}" if input is not None else ""
        super().__init__(f"stage {stage!r}, unit {unit!r}{of_input}: {cause}")
        self.stage, self.unit, self.cause, self.input = stage, unit, cause, input

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.stage, self.unit, self.cause, self.input))


_WORKER_STAGES: dict[tuple[str, str, str, str | None], Stage] = {}


def worker_stage(task: StageTask, device: str) -> Stage:
    """The stage for ``task`` on ``device`` (the one the executor gave this worker) in this
    process, built and set up once."""
    # The build directory is part of the key: the same config built elsewhere reads other inputs.
    cache_key = (task.fingerprint, task.build_dir, device, task.shared_sha256)
    stage = _WORKER_STAGES.get(cache_key)
    if stage is None:
        # One stage's models at a time per worker: the previous stage's are let go before the
        # next one loads its own, so a GPU never holds both.
        _WORKER_STAGES.clear()
        gc.collect()
        stage = task.factory(task.stage, location(task.build_dir), task.upstream, device)
        if task.shared_sha256 is not None:
            stage_dir = location(task.build_dir) / task.stage
            stage.use_shared(read_shared(stage_dir, task.shared_sha256))
        stage.setup()
        _WORKER_STAGES[cache_key] = stage
    return stage


def execute_unit(
    task: StageTask, unit: WorkUnit, *, device: str, ran_on: str | None = None
) -> ShardManifest:
    """Run and commit ``unit`` with the stage built for ``device``, the device the executor gave
    this worker; the manifest records ``ran_on`` (default: ``device``), where the executor knows
    more, such as which GPU of which node."""
    try:
        return _execute(task, unit, device, ran_on or device)
    except Exception as exc:
        cause = _cause(task, unit, device, exc)
        raise UnitFailed(task.stage, unit.name, cause, unit_input(unit)) from exc


def unit_input(unit: WorkUnit) -> str | None:
    """The upstream shard a unit reads, for failure reports; None for a source's unit."""
    source = unit.payload.get("input")
    return source if isinstance(source, str) else None


def _cause(task: StageTask, unit: WorkUnit, device: str, exc: Exception) -> str:
    """What made the unit fail: a corrupt input shard if there is one, else the exception."""
    try:
        worker_stage(task, device).check_input(unit)
    except ShardError as corrupt:
        return f"{corrupt} (it made the stage fail with {type(exc).__name__}: {exc})"
    except Exception:  # the stage cannot even be rebuilt: the original error says why
        pass
    return f"{type(exc).__name__}: {exc}"


def _execute(task: StageTask, unit: WorkUnit, device: str, ran_on: str) -> ShardManifest:
    stage = worker_stage(task, device)
    stage_dir = location(task.build_dir) / task.stage
    started = time.perf_counter()
    rows: list[SampleRow] = []
    tar = tar_path(stage_dir, unit.name)
    upstream = None if stage.whole_samples or task.upstream is None else stage.upstream_catalog
    with ShardWriter(tar) as writer:
        # The stage runs a little ahead on its own thread, so writing and hashing overlap its work.
        for outcome in prefetch(stage.run(unit), depth=64):
            if isinstance(outcome, Kept):
                encoded = field_bytes(outcome.sample)
                key = outcome.sample[KEY_FIELD]
                fields = _fields_of(stage, upstream, unit, key, encoded)
                stored = {n: data for n, data in encoded.items() if n not in fields.inherited}
                patches = _patches(stage, encoded, stored)
                for name, (_, region) in patches.items():
                    del stored[name]
                    stored[patch_member(name)] = region
                writer.write_fields(key, stored)
                info = meta(outcome.sample)
                rows.append(
                    SampleRow(
                        key=key,
                        identity=info["identity"],
                        category=info["category"],
                        view=info["view"],
                        caption=info.get("caption", ""),
                        status="kept",
                        locator=source_locator(info.get("source", {})),
                        split=info.get("split"),
                        qa=outcome.qa,
                        fields=fields.hashes,
                        inherited=fields.inherited,
                        patches={name: patch for name, (patch, _) in patches.items()},
                        sizes=fields.sizes,
                        bytes=sum(fields.sizes.values()),
                    )
                )
            else:
                rows.append(SampleRow(status="rejected", **_rejected_fields(outcome)))
    manifest = ShardManifest(
        stage=task.stage,
        unit=unit.name,
        fingerprint=task.unit_fingerprint(unit),
        tar=relative(tar, stage_dir),
        bytes=writer.result.bytes,
        sha256=writer.result.sha256,
        n_in=len(rows),
        n_kept=sum(row.status == "kept" for row in rows),
        n_rejected=sum(row.status == "rejected" for row in rows),
        wall_s=round(time.perf_counter() - started, 4),
        device=ran_on,
        rows=rows,
    )
    write_model(manifest_path(stage_dir, unit.name), manifest)
    return manifest


@dataclass(frozen=True)
class _Fields:
    """What a kept sample's manifest row records of its fields: sha256 and size of each, and the
    inherited ones with the stage whose shard holds them."""

    hashes: dict[str, str]
    sizes: dict[str, int]
    inherited: dict[str, str]


def _fields_of(
    stage: Stage, upstream: Catalog | None, unit: WorkUnit, key: str, encoded: dict[str, bytes]
) -> _Fields:
    """Fields whose bytes equal those the upstream row records are inherited (``json`` is always
    written: it carries the metadata stages extend); for a stage that ``reads`` only some
    fields, so is every upstream field it did not hand back, with the upstream's hash and size."""
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in encoded.items()}
    sizes = {name: len(data) for name, data in encoded.items()}
    row = upstream.row(key, unit_input(unit)) if upstream is not None else None
    if upstream is None or row is None:
        return _Fields(hashes, sizes, {})
    holder = upstream.stage_dir.name
    inherited = {
        name: row.inherited.get(name, holder)
        for name, digest in hashes.items()
        if name != JSON_FIELD and row.fields.get(name) == digest
    }
    if stage.reads() is not None:
        for name in sorted((row.fields.keys() - encoded.keys()) & row.sizes.keys()):
            inherited[name] = row.inherited.get(name, holder)
            hashes[name], sizes[name] = row.fields[name], row.sizes[name]
    return _Fields(_sorted(hashes), _sorted(sizes), _sorted(inherited))


def _sorted(mapping: dict[str, V]) -> dict[str, V]:
    return dict(sorted(mapping.items()))


def _patches(
    stage: Stage, encoded: dict[str, bytes], stored: dict[str, bytes]
) -> dict[str, tuple[FieldPatch, bytes]]:
    """The stored fields the stage painted over another field of the sample, with the region to
    store instead where that is smaller and rebuilds them exactly (``engine.patches``)."""
    if stage.whole_samples:  # a product read outside the build holds whole fields
        return {}
    found = {}
    for name in stored:
        base = stage.patch_base(name)
        if base is None or base not in encoded or not patchable(name):
            continue
        if stage.patch_base(base) is not None:  # one level: a base is always stored whole
            continue
        made = make_patch(encoded[base], encoded[name])
        if made is not None:
            box, region = made
            digest = hashlib.sha256(region).hexdigest()
            found[name] = (FieldPatch(base=base, box=box, sha256=digest), region)
    return found


def _rejected_fields(outcome: Any) -> dict[str, Any]:
    return {
        "key": outcome.key,
        "identity": outcome.identity,
        "category": outcome.category,
        "view": outcome.view,
        "reason": outcome.reason,
        "detail": outcome.detail or None,
        "locator": outcome.locator,
        "qa": outcome.qa,
    }


class ExecutorConfig(StrictModel):
    """An executor's settings from the pipeline's ``executor`` section (beside its ``name``)."""


class Executor(ABC):
    """Runs ``execute_unit`` for each unit; yields manifests in any order.

    ``workers`` is how many units may run at once; ``device`` the device the build asked for
    (``--device``). The executor alone decides which device each worker gets (one GPU of
    several, or ``cpu`` for a stage whose worker takes no GPU) and passes it to ``execute_unit``;
    the stage is built in the worker for that device."""

    Config: ClassVar[type[ExecutorConfig]] = ExecutorConfig

    def __init__(self, config: ExecutorConfig, *, workers: int = 1, device: str = "cpu") -> None:
        self.config = config
        self.workers = max(1, workers)
        self.device = device

    @abstractmethod
    def map(self, task: StageTask, units: Sequence[WorkUnit]) -> Iterator[ShardManifest]: ...

    def worker_device(self, task: StageTask) -> str:
        """The device a worker of ``task``'s stage is given, before any choice among several GPUs:
        the requested one when the stage's worker takes a GPU (``Resources.num_gpus``), else
        ``cpu``, so a stage that reserves no GPU never loads a model onto one."""
        if task.resources.num_gpus > 0 and self.device.startswith("cuda"):
            return self.device
        return "cpu"

    def close(self) -> None:
        """Release workers; an executor without any has nothing to do."""
        return None
