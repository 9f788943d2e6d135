"""Streaming NearID tuples: a webdataset pipeline over an export's shards, DDP- and worker-aware.

    stream = NearIDStream(export_shards("build/demo/export", "train"), seed=0)
    loader = torch.utils.data.DataLoader(stream, batch_size=32, num_workers=4, collate_fn=collate)
    for epoch in range(epochs):
        stream.set_epoch(epoch)
        for batch in loader: ...

Each epoch the shard list is shuffled with (seed, epoch), the same way in every process, and
slot ``rank * num_workers + worker`` reads shards ``slot, slot + slots, ...``. Slots therefore
partition the shards, and every sample is an anchor exactly once per epoch across all ranks and
workers (views of single-view identities never are: they have no positive). Balance is another
matter: with fewer shards than ranks x workers some slots read nothing, and shards differ in
size, so under DDP keep shards >= ranks x workers (ideally a multiple) and give every rank the
same number of steps (e.g. stop at the smallest rank's count).

The export keeps an identity's views contiguous in one shard, so positives come from the
identity's own group; negatives from a bounded buffer of the slot's recent samples (the first
identity of a slot waits for the second one; a slot holding a single identity borrows negatives
from the other shards), so the same seed and epoch give the same tuples for the same number of
ranks x workers. ``set_epoch`` must be called before iterating; with ``persistent_workers=True``
workers keep the epoch they started with.

Shards are opened through the engine's storage (local paths and fsspec URLs such as
``s3://bucket/build/export/data/train/train-00000.tar``, read as a stream), or with webdataset's
``gopen`` for ``pipe:`` commands; either way their members are read
by the engine's tar rules (``nearid_data.engine.tario``), as every reader's are: no sparse or
non-regular member, a size cap per member, valid keys, and a key at most once in a slot's shards.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import webdataset as wds

from nearid_data.engine import storage
from nearid_data.engine.tario import (
    DEFAULT_RULES,
    TarRules,
    UniqueKeys,
    group_samples,
    iter_members,
)
from nearid_data.loaders.distributed import current_slot
from nearid_data.loaders.tuples import (
    RANDOM,
    NearIDTuple,
    Pick,
    Record,
    assemble,
    choose_generator,
    pick_rng,
)
from nearid_data.seeding import derive_seed, rng_for


def export_shards(export_dir: str | Path, split: str) -> list[str]:
    """The non-empty shards of one split of an export (a folder or an fsspec URL such as
    ``s3://bucket/build/export``), from its ``<split>.wids.json``."""
    index = storage.location(export_dir) / f"{split}.wids.json"
    shardlist = json.loads(storage.read_bytes(index))["shardlist"]
    return [str(index.parent / shard["url"]) for shard in shardlist]


def open_shard(url: str) -> IO[bytes]:
    """A shard as a byte stream: ``pipe:`` commands through webdataset, anything else (a path,
    an fsspec URL) through the engine's storage."""
    if url.startswith("pipe:"):
        return wds.gopen(url)  # type: ignore[no-any-return]
    return storage.open_read(storage.location(url))


class NearIDStream(wds.DataPipeline):
    """An iterable of ``NearIDTuple``s (a torch ``IterableDataset``).

    ``shards``: tar paths or URLs webdataset can open (``pipe:curl -sL https://...``).
    ``generator``: a distractor generator id, or ``"random"`` (drawn per anchor and epoch).
    ``shuffle``: shuffle shards per epoch; ``shuffle_buffer``: tuples shuffled within a buffer of
    that many picks (undecoded, so a buffer costs the samples' bytes). ``negative_buffer``: how
    many recent samples negatives are drawn from. ``rank``/``world_size``: default to
    ``torch.distributed`` when initialised. ``image_size``: resize images and masks to a square.
    ``tar_rules``: limits on shard members (default: the engine's).
    """

    def __init__(
        self,
        shards: Sequence[str],
        *,
        generator: str = RANDOM,
        seed: int = 0,
        epoch: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        shuffle: bool = True,
        shuffle_buffer: int = 0,
        negative_buffer: int = 64,
        image_size: int | None = None,
        tar_rules: TarRules = DEFAULT_RULES,
    ) -> None:
        if not shards:
            raise ValueError("NearIDStream needs at least one shard")
        if negative_buffer < 1:
            raise ValueError(f"negative_buffer must be at least 1, got {negative_buffer}")
        self.shards = [str(s) for s in shards]
        self.generator, self.seed, self.epoch = generator, seed, epoch
        self.rank, self.world_size = rank, world_size
        self.shuffle, self.shuffle_buffer = shuffle, shuffle_buffer
        self.negative_buffer, self.image_size = negative_buffer, image_size
        self.tar_rules = tar_rules
        super().__init__(
            self._slot_shards,
            self._samples,
            self._picks,
            self._shuffled,
            wds.map(self._assemble),
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _epoch_order(self) -> list[str]:
        """This epoch's shard order: the same in every process, so slots partition it."""
        order = list(self.shards)
        if self.shuffle:
            rng_for("loaders-shards", self.seed, self.epoch).shuffle(order)
        return order

    def _slot_shards(self) -> list[dict[str, str]]:
        slot = current_slot(self.rank, self.world_size)
        return [{"url": url} for url in self._epoch_order()[slot.index :: slot.count]]

    def _picks(self, samples: Iterator[dict[str, Any]]) -> Iterator[Pick]:
        recent: deque[Record] = deque(maxlen=self.negative_buffer)
        waiting: list[Record] | None = None  # the slot's first identity, until a second one comes
        for group in _identity_groups(samples):
            if recent:
                yield from self._group_picks(group, recent)
            else:
                waiting = group
            recent.extend(group)
            if waiting is not None and waiting is not group:
                yield from self._group_picks(waiting, recent)
                waiting = None
        if waiting is not None:
            recent.extend(self._borrowed_negatives(waiting))
            yield from self._group_picks(waiting, recent)

    def _group_picks(self, group: list[Record], recent: deque[Record]) -> Iterator[Pick]:
        if len(group) < 2:  # no positive: these views serve only as negatives
            return
        for anchor in group:
            rng = pick_rng(self.seed, self.epoch, anchor.key)
            generator = choose_generator(anchor, self.generator, rng)
            others = [r for r in group if r is not anchor]
            negatives = [r for r in recent if r.identity != anchor.identity]
            yield Pick(
                anchor,
                others[int(rng.integers(len(others)))],
                negatives[int(rng.integers(len(negatives)))],
                generator,
            )

    def _borrowed_negatives(self, waiting: list[Record]) -> list[Record]:
        """One identity's views from the shards of other slots (read, never used as anchors)."""
        mine = {shard["url"] for shard in self._slot_shards()}
        others = [{"url": url} for url in self._epoch_order() if url not in mine]
        samples = self._samples(iter(others))
        for group in _identity_groups(samples):
            if group[0].identity != waiting[0].identity:
                return group
        raise ValueError(
            f"no identity besides {waiting[0].identity!r} in {len(self.shards)} shards: "
            "NearID tuples need negatives of another identity"
        )

    def _samples(self, sources: Iterator[dict[str, str]]) -> Iterator[dict[str, Any]]:
        """webdataset-style samples (``__key__``, ``__url__``, field -> bytes) of each shard."""
        keys = UniqueKeys()
        for source in sources:
            url = source["url"]
            with open_shard(url) as stream:
                for key, fields in group_samples(iter_members(stream, url, self.tar_rules), url):
                    keys.add(key, url)
                    yield {"__key__": key, "__url__": url, **fields}

    def _shuffled(self, picks: Iterator[Pick]) -> Iterator[Pick]:
        if self.shuffle_buffer <= 1:
            return picks
        slot = current_slot(self.rank, self.world_size)
        seed = derive_seed("loaders-shuffle", self.seed, self.epoch, slot.index)
        return wds.shuffle(self.shuffle_buffer, initial=self.shuffle_buffer, seed=seed)(picks)

    def _assemble(self, pick: Pick) -> NearIDTuple:
        return assemble(pick, self.image_size)


def _identity_groups(samples: Iterator[dict[str, Any]]) -> Iterator[list[Record]]:
    """Consecutive views of one identity within one shard."""
    group: list[Record] = []
    url = None
    for sample in samples:
        record = Record.from_sample(sample)
        if group and (record.identity != group[0].identity or sample.get("__url__") != url):
            yield group
            group = []
        group.append(record)
        url = sample.get("__url__")
    if group:
        yield group
