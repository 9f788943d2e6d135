"""The random-access loader: the same tuple relations, seeded per (epoch, anchor), DDP sampler."""

from __future__ import annotations

from pathlib import Path

from nearid_data.loaders.random_access import NearIDMapDataset, distributed_sampler
from nearid_data.loaders.tuples import NearIDTuple
from tests.loaders.checks import check_tuple
from tests.loaders.conftest import GENERATORS


def test_tuples_hold_the_nearid_relations(export_dir: Path, truth: dict) -> None:
    dataset = NearIDMapDataset(export_dir / "train.wids.json", seed=3)
    tuples = [dataset[i] for i in range(len(dataset))]
    train = sorted(k for k, s in truth.items() if s["json"]["split"] == "train")
    assert [t.key for t in tuples] == train  # index order is export order: sorted by identity
    for t in tuples:
        check_tuple(t, truth)
    assert {t.generator for t in tuples} == set(GENERATORS)


def _picks(dataset: NearIDMapDataset) -> list[tuple[str, ...]]:
    return [
        (t.positive_key, t.negative_key, t.generator)
        for t in (dataset[i] for i in range(len(dataset)))
    ]


def test_same_seed_and_epoch_same_tuples_another_epoch_others(export_dir: Path) -> None:
    index = export_dir / "train.wids.json"
    first, again = NearIDMapDataset(index, seed=5), NearIDMapDataset(index, seed=5)
    assert _picks(first) == _picks(again)
    epoch_zero = _picks(first)
    first.set_epoch(1)
    assert _picks(first) != epoch_zero


def _keys(batch: list[NearIDTuple]) -> list[str]:
    return [t.key for t in batch]


def test_every_anchor_once_per_epoch_across_ranks_and_workers(export_dir: Path) -> None:
    from torch.utils.data import DataLoader

    dataset = NearIDMapDataset(export_dir / "train.wids.json", seed=1)
    for epoch in (0, 1):
        seen: list[str] = []
        for rank in (0, 1):
            sampler = distributed_sampler(dataset, rank=rank, world_size=2, seed=1, chunksize=4)
            sampler.set_epoch(epoch)
            dataset.set_epoch(epoch)
            loader: DataLoader[NearIDTuple] = DataLoader(
                dataset, batch_size=2, sampler=sampler, num_workers=2, collate_fn=_keys
            )
            seen += [key for batch in loader for key in batch]
        assert sorted(seen) == sorted(dataset.keys), epoch
