"""Manifests: what every committed shard and every stage holds, as typed records.

A shard manifest (``<unit>.manifest.json``) accounts for every input of its work unit: kept or
rejected with a reason. It is written after the shard's tar and is the unit's completion marker.
A stage summary (``_summary.json``) aggregates the shard manifests of one stage run. The JSON
Schemas in ``manifests/`` are generated from these models (``python -m nearid_data schemas``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError

from nearid_data.engine.atomic import dump_json
from nearid_data.engine.names import check_safe_name
from nearid_data.engine.patches import patch_member
from nearid_data.engine.storage import Location, write_bytes
from nearid_data.errors import NearidError
from nearid_data.strict import StrictModel

MANIFEST_SUFFIX = ".manifest.json"
SUMMARY_NAME = "_summary.json"
RecordT = TypeVar("RecordT", bound=StrictModel)


class FieldPatch(StrictModel):
    """A field stored as the region where it differs from another field (``engine.patches``)."""

    base: str = Field(description="the field it was painted over, rebuilt into on read")
    box: tuple[int, int, int, int] = Field(description="x0, y0, x1, y1 of the stored region")
    sha256: str = Field(description="sha256 of the stored region's PNG")


class SampleRow(StrictModel):
    """One input of a stage: what became of it."""

    key: str
    identity: str
    category: str
    view: int
    caption: str = ""
    status: Literal["kept", "rejected"]
    reason: str | None = None
    detail: str | None = None
    locator: str | None = Field(
        None, description="where the input is in the source: file path, parquet row or index"
    )
    split: str | None = None
    qa: dict[str, Any] = Field(default_factory=dict)
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="field name -> sha256 of its bytes, for every field of the sample",
    )
    inherited: dict[str, str] = Field(
        default_factory=dict,
        description="field name -> the earlier stage whose shard holds it: a field passed on "
        "unchanged is not written again; readers join it by key",
    )
    patches: dict[str, FieldPatch] = Field(
        default_factory=dict,
        description="field name -> the region this stage's shard holds for it, as member "
        "'<field stem>.patch.png'; readers paste it into the base field",
    )
    sizes: dict[str, int] = Field(
        default_factory=dict,
        description="field name -> bytes of the field (whole, wherever it is stored)",
    )
    bytes: int = Field(0, description="bytes of all the sample's fields, inherited ones included")

    def stored(self) -> dict[str, str]:
        """The members (name -> sha256) this stage's shard holds for the sample."""
        return {
            **{
                name: digest
                for name, digest in self.fields.items()
                if name not in self.inherited and name not in self.patches
            },
            **{patch_member(name): patch.sha256 for name, patch in self.patches.items()},
        }


class ShardManifest(StrictModel):
    """One committed work unit."""

    stage: str
    unit: str
    fingerprint: str = Field(description="unit fingerprint: stage fingerprint + unit payload")
    tar: str | None = Field(description="tar path relative to the stage directory")
    bytes: int
    sha256: str
    n_in: int
    n_kept: int
    n_rejected: int
    wall_s: float
    device: str = Field(
        "cpu", description="what the unit ran on: cuda:1; on Ray, the GPU and the node's address"
    )
    rows: list[SampleRow]

    def rejected_by_reason(self) -> Counter[str]:
        return Counter(row.reason or "" for row in self.rows if row.status == "rejected")


class ShardEntry(StrictModel):
    unit: str
    tar: str | None
    bytes: int
    sha256: str
    n_kept: int


class StageSummary(StrictModel):
    """One stage of a build: counts, config, provenance."""

    stage: str
    fingerprint: str
    upstream: str | None
    upstream_fingerprint: str | None
    config: dict[str, Any]
    seed: int
    n_in: int
    n_kept: int
    n_rejected: int
    rejected_by_reason: dict[str, int]
    shards: list[ShardEntry]
    bytes: int
    models: dict[str, Any] = Field(default_factory=dict)
    device: str = Field("cpu", description="the device the build asked for (--device)")
    devices: list[str] = Field(
        default_factory=list,
        description="what the units run this time ran on; GPU kernels may change bytes",
    )
    versions: dict[str, str]
    wall_s: float
    units_run: int
    units_skipped: int
    shared: str | None = Field(
        None, description="sha256 of the stage's shared artifact (_shared.json), if it has one"
    )
    warnings: list[str] = Field(
        default_factory=list, description="what looks wrong without failing: empty stage or split"
    )

    def fingerprint_of_content(self) -> str:
        """Changes when the stage's config or any of its shards' bytes change."""
        digest = hashlib.sha256(self.fingerprint.encode())
        for shard in self.shards:
            digest.update(shard.sha256.encode())
        return digest.hexdigest()[:16]


def unit_path(stage_dir: Location, unit: str, suffix: str) -> Location:
    """The one place a unit name becomes a path: refuses names that would leave ``stage_dir``."""
    check_safe_name(unit, "unit name")
    path = stage_dir / f"{unit}{suffix}"
    # Object keys have no links; a safe name cannot leave its folder there.
    if isinstance(stage_dir, Path) and not (stage_dir / f"{unit}{suffix}").resolve().is_relative_to(
        stage_dir.resolve()
    ):
        raise NearidError(f"unit {unit!r} resolves outside its stage folder {stage_dir}")
    return path


def manifest_path(stage_dir: Location, unit: str) -> Location:
    return unit_path(stage_dir, unit, MANIFEST_SUFFIX)


def tar_path(stage_dir: Location, unit: str) -> Location:
    return unit_path(stage_dir, unit, ".tar")


class MalformedRecord(NearidError):
    """A manifest or summary that is not valid JSON of its schema; the message names the file."""


def _read_record(path: Location, model: type[RecordT]) -> RecordT:
    try:
        return model.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        raise MalformedRecord(
            f"{path}: malformed {model.__name__} ({exc.error_count()} errors; first at {where}: "
            f"{first['msg']})"
        ) from None


def read_manifest(path: Location) -> ShardManifest:
    return _read_record(path, ShardManifest)


def read_summary(stage_dir: Location) -> StageSummary | None:
    path = stage_dir / SUMMARY_NAME
    return _read_record(path, StageSummary) if path.exists() else None


def write_model(path: Location, record: StrictModel) -> None:
    write_bytes(path, dump_json(record.model_dump(mode="json")))


def summarize(manifests: list[ShardManifest], **provenance: Any) -> StageSummary:
    reasons: Counter[str] = Counter()
    for manifest in manifests:
        reasons.update(manifest.rejected_by_reason())
    shards = [
        ShardEntry(unit=m.unit, tar=m.tar, bytes=m.bytes, sha256=m.sha256, n_kept=m.n_kept)
        for m in manifests
    ]
    return StageSummary(
        n_in=sum(m.n_in for m in manifests),
        n_kept=sum(m.n_kept for m in manifests),
        n_rejected=sum(m.n_rejected for m in manifests),
        rejected_by_reason=dict(sorted(reasons.items())),
        shards=shards,
        bytes=sum(m.bytes for m in manifests),
        **provenance,
    )
