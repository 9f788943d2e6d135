"""PODS-style instance splits: references, shift tags, class-level val/test, negatives."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

from nearid_data.build import build
from nearid_data.engine.manifest import read_summary
from nearid_data.engine.tario import read_samples
from nearid_data.splits.pods import Instance, View, assign_instances
from tests.conftest import TINY_DEMO, tiny_pipeline

SHIFTS = ("pose", "distractors", "pose_and_distractors", "in_distribution")


def _pods_like(per_category: int = 20, tests: int = 8) -> dict[str, Instance]:
    """5 categories of instances as the PODS source gives them: 3 train images, tagged test
    images, and one test image whose tag the source could not match."""
    instances = {}
    for category in ("mug", "tote", "bottle", "screwdriver", "shoe"):
        for n in range(per_category):
            name = f"{category}_{n:02d}"
            train = [View(f"{name}_train{i}", None, "train") for i in range(3)]
            test = [View(f"{name}_test{i}", SHIFTS[i % len(SHIFTS)], "test") for i in range(tests)]
            untagged = View(f"{name}_test{tests}", None, "test")
            instances[name] = Instance(category, (*test, untagged, *train))
    return instances


def test_three_references_per_instance_and_the_rest_test() -> None:
    plans = assign_instances(_pods_like(), seed=0)
    assert len(plans) == 100
    for name, plan in plans.items():
        roles = Counter(role.role for role in plan.views.values())
        assert roles == {"reference": 3, "test": 9}
        # the source's train images are its references, even beside an untagged test image
        references = {k for k, r in plan.views.items() if r.role == "reference"}
        assert references == {f"{name}_train{i}" for i in range(3)}


def test_shift_tags_come_from_the_source_else_in_distribution() -> None:
    instances = _pods_like(per_category=2)
    instances["plain"] = Instance("lamp", tuple(View(f"plain_{i}") for i in range(5)))
    instances["other"] = Instance("lamp", tuple(View(f"other_{i}") for i in range(5)))
    plans = assign_instances(instances, seed=1)
    for name, plan in plans.items():
        for key, role in plan.views.items():
            if role.role == "reference":
                assert role.test_split is None
            elif name in ("plain", "other") or key.endswith("test8"):
                assert role.test_split == "in_distribution"
            else:
                assert role.test_split == SHIFTS[int(key.rsplit("test", 1)[1]) % len(SHIFTS)]
    assert Counter(r.role for r in plans["plain"].views.values()) == {"reference": 3, "test": 2}


def test_class_level_split_per_category() -> None:
    for rule in ({"val_per_category": 6}, {"val_fraction": 0.3}):
        plans = assign_instances(_pods_like(), seed=2, **rule)
        per = Counter((name.split("_")[0], plan.class_split) for name, plan in plans.items())
        for category in ("mug", "tote", "bottle", "screwdriver", "shoe"):
            assert per[category, "val"] == 6 and per[category, "test"] == 14


def test_the_sources_class_split_is_kept_where_it_covers_a_category() -> None:
    instances = _pods_like(per_category=4)
    official = {name: "val" if name.endswith("_03") else "test" for name in instances}
    for name in instances:
        if not name.startswith("shoe"):
            instances[name] = replace(instances[name], class_split=official[name])
    plans = assign_instances(instances, seed=0, val_per_category=2)
    for name, plan in plans.items():
        if not name.startswith("shoe"):
            assert plan.class_split == official[name]
    shoes = Counter(p.class_split for n, p in plans.items() if n.startswith("shoe"))
    assert shoes == {"val": 2, "test": 2}
    ignored = assign_instances(instances, seed=0, val_per_category=2, keep_source_class_split=False)
    assert Counter(p.class_split for p in ignored.values()) == {"val": 10, "test": 10}


def test_negatives_are_the_other_eligible_instances_of_the_category() -> None:
    instances = _pods_like(per_category=4)
    instances["mug_short"] = Instance("mug", tuple(View(f"mug_short_{i}") for i in range(3)))
    plans = assign_instances(instances, seed=3)
    assert "mug_short" not in plans  # 3 images: no test image after 3 references
    for name, plan in plans.items():
        category = name.split("_")[0]
        expected = sorted(n for n in plans if n.split("_")[0] == category and n != name)
        assert list(plan.negatives) == expected


def test_deterministic_for_a_seed() -> None:
    untagged = {
        f"{c}{n}": Instance(c, tuple(View(f"{c}{n}_{v}") for v in range(6)))
        for c in "ab"
        for n in range(10)
    }
    first = assign_instances(untagged, seed=4)
    assert first == assign_instances(dict(reversed(untagged.items())), seed=4)
    other = assign_instances(untagged, seed=5)
    assert [p.views for p in first.values()] != [p.views for p in other.values()]
    assert [p.class_split for p in first.values()] != [p.class_split for p in other.values()]


def test_stage_rejects_instances_without_a_test_image(tmp_path: Path) -> None:
    stages = {"ingest": TINY_DEMO["stages"]["ingest"], "pods-splits": {"references": 2}}
    source = {**TINY_DEMO["source"], "image_size": 64}
    build(tiny_pipeline(stages=stages, source=source), out=tmp_path)
    kept = read_summary(tmp_path / "pods-splits")
    assert kept is not None and (kept.n_kept, kept.n_rejected) == (24, 0)
    infos = [
        s["json"] for tar in (tmp_path / "pods-splits").glob("*.tar") for s in read_samples(tar)
    ]
    roles = Counter((i["identity"], i["role"], i["test_split"]) for i in infos)
    for identity in {i["identity"] for i in infos}:
        assert roles[identity, "reference", None] == 2
        assert roles[identity, "test", "in_distribution"] == 1
    for info in infos:
        assert info["identity"] not in info["negatives"] and info["class_split"] in ("val", "test")
    pipeline = tiny_pipeline(stages={**stages, "pods-splits": {"references": 3}}, source=source)
    build(pipeline, out=tmp_path)
    rejected = read_summary(tmp_path / "pods-splits")
    assert rejected is not None and rejected.rejected_by_reason == {"too_few_images": 24}
