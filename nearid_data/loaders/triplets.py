"""(anchor, positive, negative) triplets from the synthetic export, for contrastive training.

Per identity (the export keeps an identity's samples contiguous in one shard): every ``real``
view is an anchor once; its positive is drawn from the identity's ``synthetic_positive`` and
``cut_paste`` images (or the kinds passed as ``positives``), its negative from the identity's
``synthetic_negative`` images (category negatives: same kind of object, not this instance).
Choices come from ``pick_rng(seed, epoch, anchor key)``, as in the NearID loaders, so they do not
depend on worker count or arrival order. An identity lacking anchors, positives or negatives
yields no triplet and is counted in ``TripletStream.skipped``.

    stream = TripletStream(sorted(Path("build/x/export-synthetic/data/train").glob("*.tar")))
    for triplet in stream: ...
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nearid_data.imageio import decode_png
from nearid_data.loaders.tuples import Record, pick_rng

POSITIVE_KINDS = ("synthetic_positive", "cut_paste")
NEGATIVE_KINDS = ("synthetic_negative",)


@dataclass(frozen=True)
class Triplet:
    """Images are (H, W, 3) uint8 RGB."""

    anchor: np.ndarray
    positive: np.ndarray
    negative: np.ndarray
    identity: str
    keys: tuple[str, str, str]
    positive_kind: str


def identity_groups(records: Iterable[Record]) -> Iterator[list[Record]]:
    group: list[Record] = []
    for record in records:
        if group and record.identity != group[0].identity:
            yield group
            group = []
        group.append(record)
    if group:
        yield group


class TripletStream:
    def __init__(
        self,
        shards: Sequence[str | Path],
        *,
        seed: int = 0,
        positives: Sequence[str] = POSITIVE_KINDS,
        negatives: Sequence[str] = NEGATIVE_KINDS,
    ) -> None:
        self.shards = [str(s) for s in shards]
        self.seed, self.epoch = seed, 0
        self.positives, self.negatives = tuple(positives), tuple(negatives)
        self.skipped: list[str] = []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[Triplet]:
        import webdataset as wds

        samples = wds.WebDataset(self.shards, shardshuffle=False, empty_check=False)
        yield from self.triplets(Record.from_sample(s) for s in samples)

    def triplets(self, records: Iterable[Record]) -> Iterator[Triplet]:
        self.skipped = []
        for group in identity_groups(records):
            anchors = [r for r in group if r.info["kind"] == "real"]
            positives = [r for r in group if r.info["kind"] in self.positives]
            negatives = [r for r in group if r.info["kind"] in self.negatives]
            if not (anchors and positives and negatives):
                self.skipped.append(group[0].identity)
                continue
            for anchor in anchors:
                rng = pick_rng(self.seed, self.epoch, anchor.key)
                positive = positives[int(rng.integers(len(positives)))]
                negative = negatives[int(rng.integers(len(negatives)))]
                yield _decoded(anchor, positive, negative)


def _decoded(anchor: Record, positive: Record, negative: Record) -> Triplet:
    return Triplet(
        anchor=decode_png(anchor.fields["image.png"]),
        positive=decode_png(positive.fields["image.png"]),
        negative=decode_png(negative.fields["image.png"]),
        identity=anchor.identity,
        keys=(anchor.key, positive.key, negative.key),
        positive_kind=str(positive.info["kind"]),
    )
