"""PODS-style instance splits: per instance a few reference images and shift-tagged test images.

PODS (Sundaram, Chae et al.) gives each of its 100 instances 3 reference (train) images; the
other images are queries tagged by distribution shift (``in_distribution``, ``pose``,
``distractors``, ``pose_and_distractors``), and instances are split class-wise into ``val`` and
``test`` within each category (6 and 14 of 20). The negatives of an instance are the other
instances of its category.

What the source says comes first, so that the PODS source reproduces PODS (its sample json has
``source.pods_split``, ``source.test_split`` and ``source.class_split``):

- references are drawn at random (seeded per instance) from the images the source put in its
  train split, then from those without a shift tag, then from the rest;
- a test image keeps the source's shift tag, or is ``in_distribution`` when it has none;
- a category whose instances all carry a source class split keeps it (``keep_source_class_split``);
  otherwise ``val_per_category`` (or ``val_fraction``) of its instances go to ``val`` by seed.

Instances with fewer than ``references + 1`` views have no test image; their views are rejected
with ``too_few_images``.

Json added to each kept view: ``role`` (``reference`` or ``test``), ``class_split`` (``val`` or
``test``), ``test_split`` (the shift tag; null for references) and ``negatives`` (the other
instances of the category, sorted).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import Field

from nearid_data.engine.catalog import committed_samples
from nearid_data.engine.stage import Kept, Outcome, Rejected, Stage, StageConfig
from nearid_data.errors import Rejection
from nearid_data.sample import JSON_FIELD, KEY_FIELD, Sample, meta, with_fields
from nearid_data.seeding import rng_for
from nearid_data.splits.assign import assign_splits

DEFAULT_SHIFT = "in_distribution"


@dataclass(frozen=True)
class View:
    key: str
    test_split: str | None = None
    """The shift tag the source gave this image, if any."""
    source_split: str | None = None
    """The split the source put this image in (PODS: ``train`` or ``test``), if any."""


@dataclass(frozen=True)
class Instance:
    category: str
    views: tuple[View, ...]
    class_split: str | None = None
    """The class-level split the source gave this instance, if any."""


@dataclass(frozen=True)
class ViewRole:
    role: Literal["reference", "test"]
    test_split: str | None


@dataclass(frozen=True)
class InstancePlan:
    class_split: str
    negatives: tuple[str, ...]
    views: dict[str, ViewRole]
    """key -> its role."""


def assign_instances(
    instances: Mapping[str, Instance],
    *,
    seed: int,
    references: int = 3,
    val_per_category: int | None = None,
    val_fraction: float = 0.3,
    keep_source_class_split: bool = True,
) -> dict[str, InstancePlan]:
    """instance -> its plan, for every instance with more than ``references`` views.

    A seeded class-level split reuses ``assign_splits`` one category at a time: ``val_per_category``
    instances (or ``val_fraction`` of them, largest remainder) go to ``val``, the rest to ``test``.
    """
    eligible = {name: i for name, i in sorted(instances.items()) if len(i.views) > references}
    by_category: dict[str, list[str]] = {}
    for name, instance in eligible.items():
        by_category.setdefault(instance.category, []).append(name)
    sizes = None if val_per_category is None else {"val": val_per_category}
    fractions = {"val": val_fraction, "test": 1 - val_fraction} if sizes is None else None
    class_split: dict[str, str] = {}
    for category, members in by_category.items():
        given = {name: eligible[name].class_split for name in members}
        if keep_source_class_split and all(given.values()):
            class_split |= {name: str(split) for name, split in given.items()}
            continue
        class_split |= assign_splits(
            {category: members}, seed=seed, sizes=sizes, fractions=fractions, remainder="test"
        )
    return {
        name: InstancePlan(
            class_split=class_split[name],
            negatives=tuple(n for n in by_category[instance.category] if n != name),
            views=_roles(name, instance, seed=seed, references=references),
        )
        for name, instance in eligible.items()
    }


def _roles(name: str, instance: Instance, *, seed: int, references: int) -> dict[str, ViewRole]:
    views = instance.views
    rank = rng_for(seed, "pods-splits", name).permutation(len(views))
    # The source's own references first: its train images, then images without a shift tag.
    order = sorted(
        range(len(views)),
        key=lambda i: (views[i].source_split != "train", views[i].test_split is not None, rank[i]),
    )
    chosen = set(order[:references])
    return {
        view.key: ViewRole("reference", None)
        if i in chosen
        else ViewRole("test", view.test_split or DEFAULT_SHIFT)
        for i, view in enumerate(views)
    }


class PodsSplitsConfig(StageConfig):
    references: int = Field(3, ge=1)
    val_per_category: int | None = Field(None, ge=0)
    """Instances per category in ``val`` (PODS: 6 of 20); when unset, ``val_fraction`` decides."""
    val_fraction: float = Field(0.3, ge=0, le=1)
    keep_source_class_split: bool = True
    """Keep the source's class-level split (PODS's official one) where it covers a category."""


class PodsSplitsStage(Stage):
    name = "pods-splits"
    Config = PodsSplitsConfig
    config: PodsSplitsConfig

    def prepare_shared(self) -> dict[str, Any]:
        """The plan of every instance, from the whole upstream: once, not per worker."""
        catalog = self.upstream_catalog
        # What the source says lives in the json only; read it alone, not the pixels.
        units = [entry.unit for entry in catalog.summary.shards]
        source = {
            s[KEY_FIELD]: meta(s).get("source", {})
            for s in committed_samples(catalog.stage_dir, units, fields=())
        }
        instances = {}
        for identity, rows in catalog.by_identity.items():
            keys = [r.key for r in sorted(rows, key=lambda r: r.view)]
            views = tuple(
                View(k, source[k].get("test_split"), source[k].get("pods_split")) for k in keys
            )
            instances[identity] = Instance(
                rows[0].category, views, source[keys[0]].get("class_split")
            )
        plans = assign_instances(
            instances,
            seed=self.ctx.pipeline.seed,
            references=self.config.references,
            val_per_category=self.config.val_per_category,
            val_fraction=self.config.val_fraction,
            keep_source_class_split=self.config.keep_source_class_split,
        )
        return {
            "view_counts": {name: len(i.views) for name, i in instances.items()},
            "plans": {name: asdict(plan) for name, plan in plans.items()},
        }

    def use_shared(self, shared: dict[str, Any]) -> None:
        self.view_counts: dict[str, int] = shared["view_counts"]
        self.plans = {
            name: InstancePlan(
                class_split=plan["class_split"],
                negatives=tuple(plan["negatives"]),
                views={key: ViewRole(**role) for key, role in plan["views"].items()},
            )
            for name, plan in shared["plans"].items()
        }

    def reads(self) -> frozenset[str]:
        return frozenset({JSON_FIELD})  # a split is decided from metadata; pixels pass on unread

    def process(self, samples: Sequence[Sample]) -> Iterable[Outcome]:
        for sample in samples:
            identity = meta(sample)["identity"]
            plan = self.plans.get(identity)
            if plan is None:
                found, needed = self.view_counts.get(identity, 0), self.config.references + 1
                yield Rejected.of(sample, Rejection("too_few_images", f"{found} < {needed}"))
                continue
            view = plan.views[sample[KEY_FIELD]]
            yield Kept(
                with_fields(
                    sample,
                    {},
                    role=view.role,
                    class_split=plan.class_split,
                    test_split=view.test_split,
                    negatives=list(plan.negatives),
                )
            )
