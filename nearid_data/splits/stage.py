"""The splits stage: identity-disjoint train/val/test, stratified by category.

Identities with fewer kept views than ``min_views`` cannot give an (anchor, positive) pair; their
views are rejected with ``too_few_views``. Every other view gets its identity's split.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Literal

from pydantic import Field, model_validator

from nearid_data.engine.stage import Kept, Outcome, Rejected, Stage, StageConfig
from nearid_data.errors import Rejection
from nearid_data.sample import JSON_FIELD, Sample, meta, with_fields
from nearid_data.splits.assign import assign_splits
from nearid_data.strict import SafeName


class SplitsConfig(StageConfig):
    fractions: dict[SafeName, Annotated[float, Field(ge=0, le=1)]] | None = None
    sizes: dict[SafeName, Annotated[int, Field(ge=0)]] | None = None
    remainder: SafeName = "train"
    sizes_mode: Literal["exact", "cap"] = "exact"
    """``sizes`` larger than the identities available: an error (``exact``), or scaled down."""
    min_views: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _one_rule(self) -> SplitsConfig:
        if (self.fractions is None) == (self.sizes is None):
            raise ValueError("give exactly one of 'fractions' or 'sizes'")
        if self.fractions is not None and abs(sum(self.fractions.values()) - 1) > 1e-6:
            raise ValueError(f"fractions must sum to 1 (got {sum(self.fractions.values())})")
        return self


class SplitsStage(Stage):
    name = "splits"
    Config = SplitsConfig
    config: SplitsConfig

    def setup(self) -> None:
        eligible: dict[str, list[str]] = {}
        self.view_counts = {i: len(rows) for i, rows in self.upstream_catalog.by_identity.items()}
        for category, identities in self.upstream_catalog.identities_by_category.items():
            kept = [i for i in identities if self.view_counts[i] >= self.config.min_views]
            eligible[category] = kept
        self.assignment = assign_splits(
            eligible,
            seed=self.ctx.pipeline.seed,
            fractions=self.config.fractions,
            sizes=self.config.sizes,
            remainder=self.config.remainder,
            cap=self.config.sizes_mode == "cap",
        )

    def declared_splits(self) -> frozenset[str]:
        if self.config.fractions is not None:
            return frozenset(name for name, share in self.config.fractions.items() if share > 0)
        sizes = self.config.sizes or {}
        return frozenset(name for name, size in sizes.items() if size > 0) | {self.config.remainder}

    def reads(self) -> frozenset[str]:
        return frozenset({JSON_FIELD})  # a split is decided from metadata; pixels pass on unread

    def process(self, samples: Sequence[Sample]) -> Iterable[Outcome]:
        for sample in samples:
            identity = meta(sample)["identity"]
            split = self.assignment.get(identity)
            if split is None:
                found = self.view_counts.get(identity, 0)
                yield Rejected.of(
                    sample, Rejection("too_few_views", f"{found} < {self.config.min_views}")
                )
                continue
            yield Kept(with_fields(sample, {}, split=split, n_views=self.view_counts[identity]), {})
