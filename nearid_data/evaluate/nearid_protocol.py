"""NearID's protocol: SSR and PA per distractor generator, and pooled over generators, on the
toolkit's WebDataset export or on NearID's Arrow layout (the release's folders, or
``export-nearid``; read by ``nearid_arrow_input``). A directory with a WebDataset export is read
as one; otherwise the Arrow layout is looked for.

An identity's views p_i are its samples (sorted by ``view``); n_i is the sample's
``distractor_<id>.png``, painted into p_i's background. Each generator scores every identity
with ``nearid_margins``; pooled treats each (identity, generator) as one sample, as NearID pools
its 7 sources. Shards are read one at a time (an identity never spans shards: the export cuts
between identities), and each shard's images are embedded through the cache as one bucket.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from nearid_data.engine.tario import UniqueKeys, read_samples
from nearid_data.errors import NearidError
from nearid_data.evaluate import nearid_arrow_input
from nearid_data.evaluate.images import ImageRef, png_ref
from nearid_data.evaluate.metrics import nearid_margins, ssr_pa
from nearid_data.evaluate.protocols import Context, Options, locate, markdown_table, percent
from nearid_data.sample import KEY_FIELD, Sample, meta

IMAGE = "image.png"
MASK = "mask.png"
_DISTRACTOR = re.compile(r"^distractor_(.+)\.png$")


def evaluate(directory: Path, context: Context, options: Options) -> dict[str, Any]:
    arrow = nearid_arrow_input.find_root(directory)
    if arrow is not None and not any((directory / c / "data").is_dir() for c in (".", "export")):
        rows, by_set = nearid_arrow_input.margins_by_set(arrow, context, options.split)
        return {
            "layout": "arrow",
            "identities": rows,
            "splits": [options.split] if options.split else [],
            **_scores(by_set, context),
        }
    what = "WebDataset export (data/<split>/*.tar) or NearID Arrow layout (NearID/, NearID-*/)"
    export = locate(directory, (".", "export"), "data", what)
    shards = sorted((export / "data").glob("*/*.tar"))
    if options.split is not None:
        shards = [p for p in shards if p.parent.name == options.split]
    if not shards:
        raise NearidError(f"no shards in {export / 'data'} (split: {options.split or 'any'})")
    margins: dict[str, list[np.ndarray]] = {}
    done: set[str] = set()
    keys = UniqueKeys()
    for shard in shards:
        identities = _shard_margins(shard, export, context, margins, keys)
        repeated = sorted(done & identities)
        if repeated:
            raise NearidError(f"identity {repeated[0]!r} spans shards: {shard} is not our export")
        done |= identities
    if not margins:
        raise NearidError(f"the samples in {export / 'data'} have no distractor_<id>.png field")
    return {
        "layout": "webdataset",
        "identities": len(done),
        "splits": sorted({p.parent.name for p in shards}),
        **_scores(margins, context),
    }


def _scores(margins: dict[str, list[np.ndarray]], context: Context) -> dict[str, Any]:
    convention = context.convention
    return {
        "generators": {gid: asdict(ssr_pa(m, convention)) for gid, m in sorted(margins.items())},
        "pooled": asdict(ssr_pa((m for per in margins.values() for m in per), convention)),
    }


def _shard_margins(
    shard: Path,
    export: Path,
    context: Context,
    margins: dict[str, list[np.ndarray]],
    keys: UniqueKeys,
) -> set[str]:
    """Append each identity's margins per generator to ``margins``; returns the identities."""
    samples = list(read_samples(shard))
    for sample in samples:
        keys.add(sample[KEY_FIELD], shard)
    fields = sorted({f for s in samples for f in s if f == IMAGE or _DISTRACTOR.match(f)})
    refs: list[ImageRef] = []
    rows: dict[tuple[str, str], int] = {}
    for sample in samples:
        if context.masked and MASK not in sample:
            raise NearidError(f"{shard}: sample {sample[KEY_FIELD]!r} has no {MASK} to mask with")
        mask = sample[MASK] if context.masked else None
        for field in fields:
            if field in sample:
                rows[sample[KEY_FIELD], field] = len(refs)
                clean = context.clean_masks()
                refs.append(png_ref(sample[KEY_FIELD], field, sample[field], mask, clean=clean))
    vectors = context.cache.embed(refs, bucket=shard.relative_to(export).with_suffix("").as_posix())
    missing = np.full(vectors.shape[1:], np.nan)  # a view without the field: no margin uses it

    def stack(views: list[Sample], field: str) -> np.ndarray:
        found = [rows.get((view[KEY_FIELD], field)) for view in views]
        return np.stack([missing if i is None else vectors[i] for i in found])

    by_identity: dict[str, list[Sample]] = {}
    for sample in samples:
        by_identity.setdefault(meta(sample)["identity"], []).append(sample)
    for views in by_identity.values():
        views.sort(key=lambda s: meta(s)["view"])
        positives = stack(views, IMAGE)
        for field in fields:
            if (match := _DISTRACTOR.match(field)) is not None:
                per_gid = margins.setdefault(match.group(1), [])
                per_gid.append(nearid_margins(positives, stack(views, field)))
    return set(by_identity)


def table(results: dict[str, Any]) -> str:
    scores = {**results["generators"], "pooled": results["pooled"]}
    rows = [
        [name, s["n_samples"], s["n_margins"], percent(s["ssr"]), percent(s["pa"])]
        for name, s in scores.items()
    ]
    return markdown_table(["generator", "identities", "margins", "SSR %", "PA %"], rows)
