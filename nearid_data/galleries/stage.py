"""The galleries stage: Finer-Personalization Rank retrieval roles, per group of similar subjects.

Each kept sample gets ``role`` (reference, gallery or extra) and ``group`` in its json; the rest
are rejected as ``too_few_images``, ``near_duplicate`` (the detail names the reference it
copies) or ``unused`` (beyond the sizes, in no group, a cluster already among the references).

``draw`` picks who assigns: ``stratified`` (``assign``: this toolkit's rules and guards) or
``fpr`` (``fpr_draw``: the roles the paper's loader for the source draws, image for image, with
each image's position among its identity's images of its role in ``qa.position``; the guards do
not apply). A group in which no identity has enough images is an error naming the counts.

Like ``splits``, the assignment is global: computed from the upstream catalog once, before the
units run, as the stage's shared artifact that every worker reads (``prepare_shared``). The
guards need pixels: every image of a subject (and of a distractor identity) is fetched and
decoded for its 64-bit dHash, its cluster id (``json.source[cluster_key]``) and,
for k-means selection, its embedding. That is a few ms per image, seconds for FPR's thousands
of images; the other identities are assigned from the catalog alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any, Literal

from pydantic import model_validator

from nearid_data.engine.catalog import CatalogRow
from nearid_data.engine.manifest import SampleRow, manifest_path, read_manifest
from nearid_data.engine.stage import Kept, Outcome, Rejected, Stage, StageConfig, StageContext
from nearid_data.errors import NearidError, Rejection
from nearid_data.galleries import fpr_draw
from nearid_data.galleries.assign import (
    NEAR_DUPLICATE,
    UNUSED,
    Decision,
    GalleryRules,
    Image,
    assign_group,
    group_identities,
    plan_group,
)
from nearid_data.galleries.embed import embedding
from nearid_data.galleries.phash import dhash
from nearid_data.imageio import decode_png
from nearid_data.sample import JSON_FIELD, KEY_FIELD, Sample, meta, with_fields
from nearid_data.strict import SafeName


class GalleriesConfig(StageConfig, GalleryRules):
    draw: Literal["stratified", "fpr"] = "stratified"
    """``fpr``: the paper's loader for the source (cub, stanford-cars, wildlife) draws the roles."""
    groups: dict[SafeName, list[str]] | None = None
    """group -> identities; None: one group per category with all its identities."""
    cluster_key: str | None = "cluster_id"
    """Key of ``json.source`` naming near-duplicate frames (WildlifeReID-10k's ``cluster_id``)."""

    @model_validator(mode="after")
    def _groups_disjoint(self) -> GalleriesConfig:
        owner: dict[str, str] = {}
        for group, identities in (self.groups or {}).items():
            for identity in identities:
                if owner.setdefault(identity, group) != group:
                    raise ValueError(
                        f"identity {identity!r} is in groups {owner[identity]!r} and {group!r}"
                    )
        return self


class GalleriesStage(Stage):
    name = "galleries"
    whole_samples = True
    Config = GalleriesConfig
    config: GalleriesConfig
    needs = frozenset({"image.png"})

    def __init__(self, config: GalleriesConfig, ctx: StageContext) -> None:
        super().__init__(config, ctx)
        source = ctx.pipeline.source.get("name")
        if config.draw == "fpr" and source not in fpr_draw.LOADERS:
            raise NearidError(
                f"galleries draw: fpr follows the paper's loader for the source, and there is "
                f"none for {source!r} (known: {', '.join(fpr_draw.LOADERS)}); use draw: stratified"
            )

    def prepare_shared(self) -> dict[str, Any]:
        """Every image's decision, from the whole upstream (hashing the images it inspects):
        once for all workers."""
        self._decide()
        return {key: [group, asdict(decision)] for key, (group, decision) in self.decisions.items()}

    def use_shared(self, shared: dict[str, Any]) -> None:
        self.decisions: dict[str, tuple[str | None, Decision]] = {
            key: (group, Decision(**decision)) for key, (group, decision) in shared.items()
        }

    def _decide(self) -> None:
        catalog = self.upstream_catalog
        seed = self.ctx.pipeline.seed
        groups = group_identities(catalog.identities_by_category, self.config.groups)
        grouped = {identity for identities in groups.values() for identity in identities}
        self.decisions = {
            row.key: (None, Decision(None, UNUSED, f"{identity} is in no group"))
            for identity, rows in catalog.by_identity.items()
            if identity not in grouped
            for row in rows
        }
        for group, identities in sorted(groups.items()):
            if self.config.draw == "fpr":
                self._draw_fpr(group, identities)
                continue
            counts = {i: len(catalog.by_identity[i]) for i in identities}
            plan = plan_group(group, counts, self.config, seed)
            if not plan.subjects:
                listed = ", ".join(f"{i} ({n})" for i, n in sorted(counts.items()))
                raise NearidError(
                    f"galleries: no identity of group {group!r} has the {self.config.min_images} "
                    f"images min_images asks for: {listed}"
                )
            inspected = {*plan.subjects, *plan.distractors}
            images = {
                i: [self._image(row, i in inspected) for row in catalog.by_identity[i]]
                for i in identities
            }
            for key, decision in assign_group(group, plan, images, self.config, seed).items():
                self.decisions[key] = (group, decision)

    def _draw_fpr(self, group: str, identities: Sequence[str]) -> None:
        source = self.ctx.pipeline.source["name"]
        views = {
            i: [row.key for row in sorted(self.upstream_catalog.by_identity[i], key=_view_order)]
            for i in identities
        }
        sizes = fpr_draw.Sizes(
            references=self.config.references_per_subject,
            gallery=self.config.gallery_per_subject,
            min_images=self.config.min_images,
            subjects=self.config.subjects_per_group,
        )
        drawn = fpr_draw.draw(source, views, sizes, self.ctx.pipeline.seed, group)
        not_drawn = Decision(None, UNUSED, f"not drawn by {fpr_draw.LOADERS[source]}")
        for keys in views.values():
            for key in keys:
                if key not in drawn:
                    self.decisions[key] = (group, not_drawn)
                elif drawn[key].role == fpr_draw.EXTRA and not self.config.extra_pool:
                    self.decisions[key] = (group, Decision(None, UNUSED, "extra_pool is off"))
                else:
                    qa = {"position": drawn[key].position}
                    self.decisions[key] = (group, Decision(drawn[key].role, qa=qa))

    def _image(self, row: CatalogRow, inspect: bool) -> Image:
        if not inspect:
            return Image(row.key, row.view)
        sample = self.upstream_catalog.fetch(row, {"image.png", JSON_FIELD})
        rgb = decode_png(sample["image.png"])
        key = self.config.cluster_key
        cluster = meta(sample).get("source", {}).get(key) if key is not None else None
        return Image(
            row.key,
            row.view,
            cluster=None if cluster in (None, "") else str(cluster),
            dhash=None if self.config.near_duplicate_hamming is None else dhash(rgb),
            features=embedding(rgb) if self.config.selection == "kmeans" else None,
        )

    def process(self, samples: Sequence[Sample]) -> Iterable[Outcome]:
        for sample in samples:
            group, decision = self.decisions[sample[KEY_FIELD]]
            qa = {**decision.qa, "group": group}
            if decision.role is None:
                yield Rejected.of(sample, Rejection(decision.reason, decision.detail), qa)
            else:
                drawn = {k: decision.qa[k] for k in ("position",) if k in decision.qa}
                updated = with_fields(sample, {}, role=decision.role, group=group, **drawn)
                yield Kept(updated, {**qa, "role": decision.role})

    def describe(self) -> dict[str, Any]:
        """Roles kept and what the near-duplicate guard removed, read back from the manifests."""
        rows = self._own_rows()
        removed = [row for row in rows if row.reason == NEAR_DUPLICATE]
        guarded = [row for row in rows if row.qa.get("cluster_guard")]
        described: dict[str, Any] = {
            "draw": self.config.draw,
            "roles": dict(
                sorted(Counter(r.qa["role"] for r in rows if r.status == "kept").items())
            ),
            "cluster_guard": {
                "cluster_key": self.config.cluster_key,
                "images_left_out": len(guarded),
                "by_reason": dict(sorted(Counter(r.reason for r in guarded).items())),
            },
            "near_duplicates": {
                "hash": "dhash-64",
                "max_hamming": self.config.near_duplicate_hamming,
                "removed": len(removed),
                "by_group": dict(sorted(Counter(r.qa["group"] for r in removed).items())),
            },
        }
        if self.config.selection == "kmeans":
            described["embedding"] = "colour histogram + 8x8 thumbnail (galleries.embed)"
        return described

    def _own_rows(self) -> list[SampleRow]:
        stage_dir = self.ctx.stage_dir(self.name)
        return [
            row
            for unit in self.plan()
            for row in read_manifest(manifest_path(stage_dir, unit.name)).rows
        ]


def _view_order(row: CatalogRow) -> tuple[int, str]:
    return row.view, row.key
