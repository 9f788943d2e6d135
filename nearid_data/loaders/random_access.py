"""Random-access NearID tuples: a map-style dataset over one split's ``wids`` index.

    dataset = NearIDMapDataset("build/demo/export/train.wids.json", seed=0)
    sampler = distributed_sampler(dataset)          # this rank's share, shuffled in chunks
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, sampler=sampler,
                                         num_workers=4, collate_fn=collate)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        for batch in loader: ...

Item ``i`` is the ``i``-th view that has a positive (its identity has another view). The shard
manifests beside the tars give every view's identity, and an identity's views are consecutive
indexes, so the positive and the negative are found by index arithmetic, with a generator seeded
by (seed, epoch, anchor key). Reads a local export's shards in place. ``wids`` needs shards on
disk, so an index at an fsspec URL (``s3://bucket/build/export/train.wids.json``) is first copied
with its split's shards and manifests to a local folder (``cache_dir``; see ``shard_cache``),
and copied again only where a file changed; a Hub copy is downloaded first (``hf download
OWNER/NAME --repo-type dataset --local-dir ...``). Needs torch, as wids does. Before wids opens a shard, its headers pass the engine's tar rules (as every reader's do), and
a key listed twice in the split's manifests is an error, never a merge.
"""

from __future__ import annotations

import bisect
import json
import math
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from nearid_data.engine import storage
from nearid_data.engine.manifest import MANIFEST_SUFFIX, read_manifest
from nearid_data.engine.tario import (
    DEFAULT_RULES,
    ShardError,
    TarRules,
    UniqueKeys,
    index_shard,
)
from nearid_data.loaders.distributed import resolve_rank
from nearid_data.loaders.shard_cache import local_split
from nearid_data.loaders.tuples import (
    RANDOM,
    NearIDTuple,
    Pick,
    Record,
    assemble,
    choose_generator,
    pick_rng,
)


class NearIDMapDataset(Dataset[NearIDTuple]):
    """``dataset[i]`` is a ``NearIDTuple``; ``len(dataset)`` the number of views with a positive."""

    def __init__(
        self,
        index: str | Path,
        *,
        generator: str = RANDOM,
        seed: int = 0,
        epoch: int = 0,
        image_size: int | None = None,
        lru_size: int = 10,
        tar_rules: TarRules = DEFAULT_RULES,
        cache_dir: str | Path | None = None,
    ) -> None:
        import wids

        where = storage.location(index)
        if isinstance(where, Path):
            self.index = where
        else:  # wids reads files on disk: a copy of the split, refreshed where it changed
            self.index = local_split(where, Path(cache_dir) if cache_dir is not None else None)
        self.generator, self.seed, self.epoch, self.image_size = generator, seed, epoch, image_size
        self.keys, self.runs = _views(self.index, tar_rules)
        self.samples = wids.ShardListDataset(
            str(self.index), transformations=[], localname=_in_place, lru_size=lru_size
        )
        if len(self.keys) != len(self.samples):
            raise ValueError(
                f"{self.index}: the index lists {len(self.samples)} samples, its shard "
                f"manifests {len(self.keys)} (rebuild the export)"
            )
        if len(self.runs) < 2:
            raise ValueError(f"{self.index}: NearID tuples need at least two identities")
        self.anchors = [i for lo, hi in self.runs if hi - lo > 1 for i in range(lo, hi)]
        self.starts = [lo for lo, _ in self.runs]

    def __len__(self) -> int:
        return len(self.anchors)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, item: int) -> NearIDTuple:
        index = self.anchors[item]
        anchor = self._record(index)
        rng = pick_rng(self.seed, self.epoch, anchor.key)
        generator = choose_generator(anchor, self.generator, rng)
        lo, hi = self.runs[bisect.bisect_right(self.starts, index) - 1]
        # Another index of the same run, then any index outside it: one draw each.
        positive = lo + int(rng.integers(hi - lo - 1))
        if positive >= index:  # skip the anchor itself
            positive += 1
        negative = int(rng.integers(len(self.keys) - (hi - lo)))
        if negative >= lo:  # skip the anchor's run
            negative += hi - lo
        return assemble(
            Pick(anchor, self._record(positive), self._record(negative), generator),
            self.image_size,
        )

    def _record(self, index: int) -> Record:
        record = Record.from_sample(self.samples[index])
        if record.key != self.keys[index]:
            raise ValueError(
                f"{self.index}: sample {index} is {record.key} in its shard but "
                f"{self.keys[index]} in the manifest (rebuild the export)"
            )
        return record


def distributed_sampler(
    dataset: NearIDMapDataset,
    *,
    rank: int | None = None,
    world_size: int | None = None,
    seed: int = 0,
    chunksize: int = 1000,
) -> Any:
    """A ``wids.ChunkedSampler`` over this rank's contiguous share of the indexes.

    Shares partition the indexes, so each anchor is drawn once per epoch over all ranks (the
    DataLoader's workers split a rank's batches, never duplicating them); the last rank may have
    up to ``world_size - 1`` fewer. ``wids.DistributedChunkedSampler`` does the same but takes
    rank and world size only from an initialised ``torch.distributed`` and ignores the arguments
    otherwise; this one honours them. Chunks of ``chunksize`` consecutive indexes are shuffled,
    then indexes within a chunk, so reads stay within a few shards at a time.
    """
    import wids

    rank, world_size = resolve_rank(rank, world_size)
    share = math.ceil(len(dataset) / world_size)
    lo = min(rank * share, len(dataset))
    hi = min(lo + share, len(dataset))
    return wids.ChunkedSampler(
        dataset, num_samples=(lo, hi), chunksize=chunksize, seed=seed, shufflefirst=True
    )


def _views(index: Path, rules: TarRules) -> tuple[list[str], list[tuple[int, int]]]:
    """Every sample's key in index order, and each identity's [start, end) range of indexes;
    each shard's headers checked by the tar rules and its keys against its manifest, each key
    once in the split."""
    keys: list[str] = []
    runs: list[tuple[int, int]] = []
    unique = UniqueKeys()
    last = None
    for shard in json.loads(index.read_text(encoding="utf-8"))["shardlist"]:
        tar = index.parent / shard["url"]
        path = index.parent / (shard["url"].removesuffix(".tar") + MANIFEST_SUFFIX)
        kept = [row for row in read_manifest(path).rows if row.status == "kept"]
        if list(index_shard(tar, rules)) != [row.key for row in kept]:
            raise ShardError(f"{tar}: its samples differ from {path.name} (rebuild the export)")
        for row in kept:
            unique.add(row.key, path)
            if row.identity != last:
                runs.append((len(keys), len(keys)))
                last = row.identity
            keys.append(row.key)
            runs[-1] = (runs[-1][0], len(keys))
    return keys, runs


def _in_place(path: str) -> str:
    """Where wids reads a shard: where it is. Its default cache copies local shards to /tmp keyed
    by path alone, so a rebuilt export would be read from a stale copy."""
    return path
