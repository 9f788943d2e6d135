"""The ingest stage: read a source into samples (lossless PNG pixels, exact masks, metadata)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import cv2
import numpy as np
from pydantic import Field

from nearid_data.engine.stage import Kept, Outcome, Rejected, Stage, StageConfig, WorkUnit
from nearid_data.errors import NearidError, Rejection, input_failure
from nearid_data.imageio import encode_png
from nearid_data.sample import JSON_FIELD, KEY_FIELD, Sample, make_key, source_locator
from nearid_data.sources.base import Source, SourceItem, SourceRecord


class IngestConfig(StageConfig):
    shard_size: int = Field(64, ge=1, le=100_000)
    max_side: int | None = Field(None, ge=1)
    """Downscale images whose long side exceeds this (None: keep the source resolution)."""
    min_side: int = Field(32, ge=1)
    """Reject images whose short side is below this (``too_small``): nothing can be segmented
    or painted in a few pixels."""


class IngestStage(Stage):
    name = "ingest"
    Config = IngestConfig
    config: IngestConfig

    def adds(self) -> frozenset[str]:
        return frozenset({"image.png", JSON_FIELD})

    def fingerprint_inputs(self) -> dict[str, Any]:
        # What the source is, not where it lies: items are referenced relative to its locations.
        config = self.ctx.pipeline.source_config()
        moved = type(config).location_fields
        source = {k: v for k, v in self.ctx.pipeline.source.items() if k not in moved}
        return {**super().fingerprint_inputs(), "source": source}

    def describe(self) -> dict[str, Any]:
        """The source as read (``follow_symlinks`` among its settings)."""
        settings = self.ctx.pipeline.source_config().model_dump(mode="json")
        return {"source": {"name": self.ctx.pipeline.source["name"], **settings}}

    def _source(self) -> Source:
        from nearid_data.sources import SOURCES

        source_cls = SOURCES.load(self.ctx.pipeline.source["name"])
        return source_cls(self.ctx.pipeline.source_config(), seed=self.ctx.pipeline.seed)

    def plan(self) -> list[WorkUnit]:
        items = self._source().items()
        check_unique_keys(items)
        size = self.config.shard_size
        return [
            WorkUnit(
                f"shard-{start // size:05d}",
                {"items": [asdict(i) for i in items[start : start + size]]},
            )
            for start in range(0, len(items), size)
        ]

    def setup(self) -> None:
        self.source = self._source()

    def run(self, unit: WorkUnit) -> Iterator[Outcome]:
        for raw in unit.payload["items"]:
            item = SourceItem(**raw)
            key = make_key(item.identity, item.view)
            try:
                record = self._load(item)
            except Rejection as rejection:
                yield Rejected(
                    key,
                    item.identity,
                    item.category,
                    item.view,
                    rejection.reason,
                    rejection.detail,
                    locator=source_locator(item.ref),
                )
                continue
            yield Kept(self._sample(key, item, record), {"notes": list(record.notes)})

    def _load(self, item: SourceItem) -> SourceRecord:
        if item.rejection is not None:
            raise Rejection(*item.rejection)
        try:
            record = self.source.load(item)
        except Rejection:
            raise
        except Exception as exc:  # a decoder choking on this input's bytes, not the source
            raise input_failure(exc, "load_failed") from None
        height, width = record.image.shape[:2]
        if min(height, width) < self.config.min_side:
            raise Rejection(
                "too_small", f"{width}x{height}: short side below min_side {self.config.min_side}"
            )
        return record

    def _sample(self, key: str, item: SourceItem, record: SourceRecord) -> Sample:
        image, mask = self._resized(record.image), record.mask
        height, width = image.shape[:2]
        sample: Sample = {KEY_FIELD: key, "image.png": encode_png(image)}
        if mask is not None:
            sample["mask.png"] = encode_png(self._resized_mask(mask, (width, height)))
        sample[JSON_FIELD] = {
            "identity": item.identity,
            "category": item.category,
            "view": item.view,
            "caption": record.caption,
            "size": [width, height],
            "box": self._resized_box(record.box, record.image.shape[1], width),
            "source": {"name": self.ctx.pipeline.source["name"], **item.ref, **record.extra},
            "notes": list(record.notes),
        }
        return sample

    def _resized(self, image: np.ndarray) -> np.ndarray:
        limit = self.config.max_side
        height, width = image.shape[:2]
        if limit is None or max(height, width) <= limit:
            return image
        scale = limit / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    @staticmethod
    def _resized_box(
        box: tuple[int, int, int, int] | None, source_width: int, width: int
    ) -> list[int] | None:
        if box is None:
            return None
        return [round(v * width / source_width) for v in box]

    @staticmethod
    def _resized_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        if mask.shape[::-1] == size:
            return mask
        return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0


def check_unique_keys(items: list[SourceItem]) -> None:
    """Two inputs with one key would overwrite each other downstream: refuse the plan."""
    first: dict[str, SourceItem] = {}
    for item in items:
        key = make_key(item.identity, item.view)
        other = first.setdefault(key, item)
        if other is not item:
            raise NearidError(
                f"two inputs get the sample key {key!r}: {_described(other)} and {_described(item)}"
            )


def _described(item: SourceItem) -> str:
    where = source_locator(item.ref)
    return f"identity {item.identity!r} view {item.view}" + (f" ({where})" if where else "")
