"""The streaming loader: tuple properties, determinism per (seed, epoch), exactly-once under DDP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nearid_data.loaders.streaming import NearIDStream, export_shards
from nearid_data.loaders.tuples import NearIDTuple, collate
from tests.loaders.checks import check_tuple
from tests.loaders.conftest import GENERATORS


def _signature(tuples: list[NearIDTuple]) -> list[tuple[str, ...]]:
    return [(t.key, t.positive_key, t.negative_key, t.generator) for t in tuples]


def _train_keys(truth: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(k for k, s in truth.items() if s["json"]["split"] == "train")


def test_tuples_hold_the_nearid_relations(export_dir: Path, truth: dict) -> None:
    tuples = list(NearIDStream(export_shards(export_dir, "train"), seed=3))
    assert sorted(t.key for t in tuples) == _train_keys(truth)
    for t in tuples:
        check_tuple(t, truth)
    assert {t.generator for t in tuples} == set(GENERATORS)  # "random" draws across generators


def test_one_generator_and_an_unknown_one(export_dir: Path) -> None:
    shards = export_shards(export_dir, "val")
    assert {t.generator for t in NearIDStream(shards, generator="jitter")} == {"jitter"}
    with pytest.raises(ValueError, match=r"'flux'.*\['cut_paste', 'jitter'\]"):
        list(NearIDStream(shards, generator="flux"))


def test_same_seed_and_epoch_same_tuples_another_epoch_others(export_dir: Path) -> None:
    shards = export_shards(export_dir, "train")
    first = list(NearIDStream(shards, seed=5, shuffle_buffer=8))
    again = list(NearIDStream(shards, seed=5, shuffle_buffer=8))
    assert _signature(first) == _signature(again)
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.distractor, b.distractor) and np.array_equal(a.negative, b.negative)
    stream = NearIDStream(shards, seed=5, shuffle_buffer=8)
    stream.set_epoch(1)
    later = list(stream)
    assert _signature(later) != _signature(first)
    assert sorted(t.key for t in later) == sorted(t.key for t in first)


def _keys(batch: list[NearIDTuple]) -> list[str]:
    return [t.key for t in batch]


def test_every_sample_once_per_epoch_across_ranks_and_workers(
    export_dir: Path, truth: dict
) -> None:
    from torch.utils.data import DataLoader

    shards = export_shards(export_dir, "train")
    assert len(shards) == 4  # = 2 ranks x 2 workers
    for epoch in (0, 1):
        seen: list[str] = []
        for rank in (0, 1):
            stream = NearIDStream(shards, seed=1, rank=rank, world_size=2)
            stream.set_epoch(epoch)
            loader: DataLoader[NearIDTuple] = DataLoader(
                stream, batch_size=2, num_workers=2, collate_fn=_keys
            )
            seen += [key for batch in loader for key in batch]
        assert sorted(seen) == _train_keys(truth), epoch


def test_collate_stacks_a_batch_for_torch(export_dir: Path) -> None:
    from torch.utils.data import DataLoader

    stream = NearIDStream(export_shards(export_dir, "test"), image_size=32)
    batch = next(iter(DataLoader(stream, batch_size=3, collate_fn=collate)))
    assert (
        tuple(batch["anchor"].shape) == (3, 3, 32, 32)
        and str(batch["anchor"].dtype) == "torch.uint8"
    )
    assert (
        tuple(batch["inpaint_mask"].shape) == (3, 32, 32)
        and str(batch["inpaint_mask"].dtype) == "torch.bool"
    )
    assert len(batch["key"]) == 3 and len(batch["info"]) == 3


def test_rank_needs_a_world_size(export_dir: Path) -> None:
    with pytest.raises(ValueError, match="both rank and world_size"):
        list(NearIDStream(export_shards(export_dir, "val"), rank=1))
