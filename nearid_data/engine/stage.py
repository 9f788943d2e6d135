"""The stage contract: a named unit with a typed config that maps work units to outcomes.

A stage knows nothing about files, processes or GPUs beyond the device it is handed: the runner
plans, skips, commits and counts; the executor decides where units run. A map stage only
implements ``process`` (a batch of samples in, an outcome per sample out); stages that need a
global view (donors, splits, regrouping) read the upstream ``Catalog`` in ``setup`` or ``plan``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from nearid_data.engine.catalog import JOIN_BATCH, Catalog, batched
from nearid_data.engine.manifest import tar_path
from nearid_data.engine.prefetch import prefetch
from nearid_data.engine.storage import Location
from nearid_data.engine.tario import check_sha256, read_samples
from nearid_data.errors import Rejection
from nearid_data.sample import JSON_FIELD, KEY_FIELD, Sample, meta, source_locator
from nearid_data.strict import StrictModel

if TYPE_CHECKING:
    from nearid_data.config import PipelineConfig


@dataclass(frozen=True)
class WorkUnit:
    """One output shard to produce. ``name`` is its path stem inside the stage directory;
    ``payload`` (JSON-able) tells the stage what goes in, and is part of the unit fingerprint."""

    name: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Kept:
    sample: Sample
    qa: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    key: str
    identity: str
    category: str
    view: int
    reason: str
    detail: str = ""
    qa: dict[str, Any] = field(default_factory=dict)
    locator: str | None = None

    @classmethod
    def of(cls, sample: Sample, rejection: Rejection, qa: dict[str, Any] | None = None) -> Rejected:
        info = meta(sample)
        return cls(
            key=sample[KEY_FIELD],
            identity=info["identity"],
            category=info["category"],
            view=info["view"],
            reason=rejection.reason,
            detail=rejection.detail,
            qa=qa or {},
            locator=source_locator(info.get("source", {})),
        )


Outcome = Kept | Rejected


@dataclass(frozen=True)
class StageContext:
    """What a stage is handed: where the build lives, the pipeline, its upstream, its device."""

    build_dir: Location
    pipeline: PipelineConfig
    upstream: str | None
    device: str = "cpu"

    def stage_dir(self, name: str) -> Location:
        return self.build_dir / name


class Resources(StrictModel):
    """What one worker of a stage needs: a Ray actor reserves it; the local executor runs at most
    one worker per GPU for a stage that takes one."""

    num_cpus: float = Field(default=1, ge=0)
    num_gpus: float = Field(default=0, ge=0)
    memory: int | None = Field(default=None, ge=0)
    """Heap bytes to reserve per worker (Ray schedules by it); None: no reservation."""

    @classmethod
    def for_device(cls, device: str) -> Resources:
        """A model stage's worker: one GPU when the device is CUDA, else a CPU."""
        return cls(num_gpus=1 if device.startswith("cuda") else 0)


class StageConfig(StrictModel):
    """Settings every stage has."""

    batch_size: int = Field(16, ge=1, le=4096)
    resources: Resources | None = Field(None, exclude=True)
    """Overrides what the stage declares one worker needs (``{num_gpus: 1}``). Where a unit runs
    never changes what it produces, so this is left out of the fingerprint."""


class Stage:
    name: ClassVar[str]
    Config: ClassVar[type[StageConfig]] = StageConfig
    needs: ClassVar[frozenset[str]] = frozenset()
    whole_samples: ClassVar[bool] = False
    """Its shards are a product read outside the build (loaders, indexes): every sample is
    written whole. Otherwise a shard holds ``json`` and only the fields the stage added or
    changed; fields passed on unchanged stay in the earlier stage's shards, joined by key."""

    def __init__(self, config: StageConfig, ctx: StageContext) -> None:
        self.config = config
        self.ctx = ctx

    # -- declared shape -------------------------------------------------------------------------
    def adds(self) -> frozenset[str]:
        """Fields this stage guarantees on every kept sample (checked before any work starts)."""
        return frozenset()

    def reads(self) -> frozenset[str] | None:
        """The only upstream fields ``run`` looks at (``json`` always comes); every other field
        is passed on unread, as if the stage had kept it unchanged. None: all fields are read."""
        return None

    def keeps(self) -> frozenset[str] | None:
        """The only received fields a kept sample carries on (an export's subset); None: all."""
        return None

    def fingerprint_inputs(self) -> dict[str, Any]:
        """Everything besides upstream content that determines this stage's output."""
        return {"config": self.config.model_dump(mode="json"), "seed": self.ctx.pipeline.seed}

    def describe(self) -> dict[str, Any]:
        """Models and backends used, for the stage summary."""
        return {}

    def resources(self) -> Resources:
        """What one worker needs; the pipeline's ``resources`` overrides it key by key."""
        declared = self.declared_resources()
        override = self.config.resources
        if override is None:
            return declared
        return declared.model_copy(update=override.model_dump(exclude_unset=True))

    def declared_resources(self) -> Resources:
        """Default: one CPU. A model stage takes a GPU when its device is one."""
        return Resources()

    def patch_base(self, name: str) -> str | None:
        """The field that field ``name`` was painted over (a distractor: ``image.png``), so only
        the region where they differ is stored (``engine.patches``); None: stored whole."""
        return None

    def declared_splits(self) -> frozenset[str]:
        """Splits this stage assigns samples to; one left empty is a warning in its summary."""
        return frozenset()

    # -- work ------------------------------------------------------------------------------------
    @cached_property
    def upstream_catalog(self) -> Catalog:
        if self.ctx.upstream is None:
            raise RuntimeError(f"stage {self.name!r} has no upstream stage")
        return Catalog(self.ctx.stage_dir(self.ctx.upstream))

    def plan(self) -> list[WorkUnit]:
        """Default: one unit per upstream shard, named like it."""
        return [
            WorkUnit(entry.unit, {"input": entry.unit, "input_sha256": entry.sha256})
            for entry in self.upstream_catalog.summary.shards
        ]

    def prepare_shared(self) -> Any:
        """Work that every worker's ``setup`` would repeat (a plan over the whole upstream,
        embeddings of every identity), done once by the runner before the units run. Returns
        JSON-able data, stored as the stage's shared artifact (``engine.shared``) and handed to
        ``use_shared`` in every worker; None (the default): nothing to share."""
        return None

    def use_shared(self, shared: Any) -> None:
        """Take what ``prepare_shared`` computed, as read back from the artifact; before
        ``setup``. Called only for a stage whose ``prepare_shared`` returned data."""

    def setup(self) -> None:
        """Load models and per-worker state, once per worker."""

    def run(self, unit: WorkUnit) -> Iterator[Outcome]:
        """Default: stream the upstream shard (``upstream_samples``) through ``prepare`` (on a
        background thread, a batch ahead) and ``process`` (in batches)."""
        prepared = (self.prepare(sample) for sample in self.upstream_samples(unit))
        for batch in prefetch(batched(prepared, self.config.batch_size)):
            yield from self.process(batch)

    def upstream_samples(self, unit: WorkUnit) -> Iterator[Sample]:
        """The samples of the unit's upstream shard (``payload["input"]``), in order, whole or
        with the fields ``reads`` names: the shard is hashed as it is read and checked against
        the sha256 its manifest recorded, and inherited fields are joined from the stages that
        hold them, a batch at a time."""
        catalog = self.upstream_catalog
        path = tar_path(catalog.stage_dir, unit.payload["input"])
        samples = read_samples(path, sha256=unit.payload.get("input_sha256"))
        reads = self.reads()
        wanted = None if reads is None else {*reads, JSON_FIELD}
        for chunk in batched(samples, JOIN_BATCH):
            yield from catalog.joined_many(chunk, wanted, unit.payload["input"])

    def check_input(self, unit: WorkUnit) -> None:
        """Raise ``ShardError`` if the unit's upstream shard differs from its manifest. Called when
        a unit fails, so that a corrupt input is named as the cause rather than what it broke."""
        expected = unit.payload.get("input_sha256")
        if self.ctx.upstream is not None and isinstance(expected, str):
            path = tar_path(self.ctx.stage_dir(self.ctx.upstream), unit.payload["input"])
            check_sha256(path, expected)

    def prepare(self, sample: Sample) -> Any:
        """Per-sample CPU work before ``process`` (decoding), overlapped with the previous batch's
        model work. Default: the sample as it is."""
        return sample

    def process(self, items: Sequence[Any]) -> Iterable[Outcome]:
        """Outcomes for a batch of prepared samples, one per input."""
        raise NotImplementedError(f"stage {self.name!r} must implement process() or run()")

    def finalize(self, build_dir: Location) -> None:
        """After all units are committed, in the coordinating process (indexes, cards)."""


def each(samples: Iterable[Sample], transform: Any) -> Iterator[Outcome]:
    """Apply a per-sample ``transform`` (returns Kept or raises Rejection) to every sample."""
    for sample in samples:
        try:
            yield transform(sample)
        except Rejection as rejection:
            yield Rejected.of(sample, rejection)
