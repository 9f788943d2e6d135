"""The ``windows`` stage: user-history windows of a history source (``flickr-aes``, ``pog``,
``ser30k``), split without leakage, exported as WebDataset shards and as the benchmark's JSON.

It runs right after ``ingest``, which holds one image per item. The windows are planned once from
the source's sequences and the ingest catalog (``plan.py``); units are ``data/<split>/<split>-NNNNN``
of ``max_shard_windows`` windows in (user, position) order. A sample is one window: ``target.png``,
``history_<i>.png`` for i < ``num_interactions``, and ``json`` holding the benchmark's unified record
plus its key, split, user (identity), dataset (category) and position (view). A window rejected
for leakage is recorded in its unit's manifest. ``finalize`` writes beside the shards:

    json/<split>.json      the unified records of the split, in shard order
    json/<split>.keys.json their window keys, in the same order (generated images are named by them)
    unused_rows.json       every annotation row the source left out, with file:line and reason
    <split>.wids.json      wids indexes;  README.md   a dataset card with the split rule

The summary (``describe``) has the split rule, windows and users per split, interactions dropped
before windowing (``below_min_score``, ``item_without_image``), users too short, the source's
unused rows by reason and its notes (missing benchmark files).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from functools import cached_property
from typing import Any, Literal

from pydantic import Field, model_validator

from nearid_data.engine import storage
from nearid_data.engine.stage import Kept, Outcome, Rejected, Stage, StageConfig, WorkUnit
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError
from nearid_data.export.stage import _split_rank
from nearid_data.export.wids_index import write_wids_indexes
from nearid_data.sample import JSON_FIELD, KEY_FIELD
from nearid_data.sources.histories import Histories, HistorySource, Item
from nearid_data.windows.card import write_windows_card
from nearid_data.windows.plan import WindowPlan, WindowRules, plan_windows, window_record

TARGET_FIELD = "target.png"


def history_field(index: int) -> str:
    return f"history_{index}.png"


class WindowsConfig(StageConfig):
    num_interactions: int = Field(3, ge=1)
    stride: int = Field(1, ge=1)
    min_sequence_length: int | None = Field(None, ge=2)
    """Users with fewer usable interactions are left out (default: num_interactions + 1)."""
    min_score: float | None = Field(None, ge=0)
    """FLICKR-AES: keep only the items a worker scored at least this."""
    split_by: Literal["user", "time"] = "user"
    fractions: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1}
    )
    """split_by user: shares of users per split."""
    val_windows: int = Field(1, ge=0)
    test_windows: int = Field(1, ge=1)
    """split_by time: each user's last windows for test, and the ones before them for val."""
    max_shard_windows: int = Field(500, ge=1)
    license: str = "other"
    pretty_name: str | None = None

    @model_validator(mode="after")
    def _fractions(self) -> WindowsConfig:
        if abs(sum(self.fractions.values()) - 1) > 1e-6 or any(
            v < 0 for v in self.fractions.values()
        ):
            raise ValueError(f"fractions must be >= 0 and sum to 1 (got {self.fractions})")
        if (
            self.min_sequence_length is not None
            and self.min_sequence_length <= self.num_interactions
        ):
            raise ValueError(
                "min_sequence_length must exceed num_interactions (a window needs a target)"
            )
        return self

    def rules(self) -> WindowRules:
        return WindowRules(
            num_interactions=self.num_interactions,
            stride=self.stride,
            min_sequence_length=self.min_sequence_length or self.num_interactions + 1,
            min_score=self.min_score,
            split_by=self.split_by,
            fractions=self.fractions,
            val_windows=self.val_windows,
            test_windows=self.test_windows,
        )


class WindowsStage(Stage):
    name = "windows"
    whole_samples = True
    Config = WindowsConfig
    config: WindowsConfig
    needs = frozenset({"image.png"})

    def fields(self) -> list[str]:
        return [
            TARGET_FIELD,
            *(history_field(i) for i in range(self.config.num_interactions)),
            JSON_FIELD,
        ]

    def adds(self) -> frozenset[str]:
        return frozenset(self.fields())

    def fingerprint_inputs(self) -> dict[str, Any]:
        return {**super().fingerprint_inputs(), "source": self.ctx.pipeline.source}

    @cached_property
    def source(self) -> HistorySource:
        from nearid_data.sources import SOURCES

        name = self.ctx.pipeline.source["name"]
        source_cls = SOURCES.load(name)
        if not issubclass(source_cls, HistorySource):
            raise NearidError(
                f"the windows stage needs a history source (flickr-aes, pog, ser30k), not {name!r}"
            )
        return source_cls(self.ctx.pipeline.source_config(), seed=self.ctx.pipeline.seed)  # type: ignore[arg-type]

    @cached_property
    def histories(self) -> Histories:
        histories = self.source.histories()
        if self.config.min_score is not None and histories.dataset != "FLICKR":
            raise NearidError(f"windows min_score: {histories.dataset} has no per-user scores")
        return histories

    @cached_property
    def item_rows(self) -> dict[str, Any]:
        """item id -> its ingest catalog row (items whose image ingest kept)."""
        return {row.identity: row for row in self.upstream_catalog.rows}

    @cached_property
    def window_plan(self) -> WindowPlan:
        return plan_windows(
            self.histories, set(self.item_rows), self.config.rules(), seed=self.ctx.pipeline.seed
        )

    def _image_path(self, item: Item) -> str:
        # Relative to the source root: the records (and the units' fingerprints) stay the same
        # when the dataset moves.
        return item.path

    def plan(self) -> list[WorkUnit]:
        by_split: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for window in self.window_plan.windows:
            by_split[window.split].append(
                {
                    "key": window.key,
                    "position": window.position,
                    "rejected": window.rejected,
                    "detail": window.detail,
                    "record": window_record(
                        window, self.histories, self._image_path, self.config.num_interactions
                    ),
                }
            )
        size = self.config.max_shard_windows
        units = []
        for split in sorted(by_split, key=_split_rank):
            windows = by_split[split]
            for index, start in enumerate(range(0, len(windows), size)):
                payload = {
                    "split": split,
                    "dataset": self.histories.dataset,
                    "windows": windows[start : start + size],
                }
                units.append(WorkUnit(f"data/{split}/{split}-{index:05d}", payload))
        return units

    def run(self, unit: WorkUnit) -> Iterator[Outcome]:
        catalog = self.upstream_catalog
        dataset = unit.payload["dataset"]
        for window in unit.payload["windows"]:
            record = window["record"]
            user, position = record["user_id"], window["position"]
            if window["rejected"]:
                yield Rejected(
                    window["key"], user, dataset, position, window["rejected"], window["detail"]
                )
                continue
            items = [record["target_item_id"], *record["history_item_ids"]]
            images = [catalog.fetch(self.item_rows[i])["image.png"] for i in items]
            sample = {
                KEY_FIELD: window["key"],
                **dict(zip(self.fields()[:-1], images, strict=True)),
                JSON_FIELD: {
                    **record,
                    "identity": user,
                    "category": dataset,
                    "view": position,
                    "caption": record["target_item_info"]["caption"],
                    "split": unit.payload["split"],
                },
            }
            yield Kept(sample, {"target": record["target_item_id"]})

    def finalize(self, build_dir: Location) -> None:
        out = self.ctx.stage_dir(self.name)
        records: dict[str, list[dict[str, Any]]] = defaultdict(list)
        keys: dict[str, list[str]] = defaultdict(list)
        for unit in self.plan():
            kept = [w for w in unit.payload["windows"] if not w["rejected"]]
            records[unit.payload["split"]] += [w["record"] for w in kept]
            keys[unit.payload["split"]] += [w["key"] for w in kept]
        written = set()
        for split, split_records in records.items():
            storage.write_json(out / "json" / f"{split}.json", split_records)
            storage.write_json(out / "json" / f"{split}.keys.json", keys[split])
            written |= {f"{split}.json", f"{split}.keys.json"}
        # A split an earlier run had and this one has not (other settings) must not linger.
        for stale in storage.glob(out / "json", "*.json"):
            if stale.name not in written:
                storage.delete(stale)
        for stale in storage.glob(out, "*.wids.json"):
            if stale.name.removesuffix(".wids.json") not in records:
                storage.delete(stale)
        storage.write_json(out / "unused_rows.json", [vars(row) for row in self.histories.unused])
        write_wids_indexes(out)
        write_windows_card(out, self.ctx.pipeline, self.config, self.fields(), self.describe())

    def describe(self) -> dict[str, Any]:
        plan = self.window_plan
        kept = [w for w in plan.windows if w.rejected is None]
        rule: dict[str, Any] = {"by": self.config.split_by}
        if self.config.split_by == "user":
            rule["fractions"] = self.config.fractions
        else:
            rule.update(val_windows=self.config.val_windows, test_windows=self.config.test_windows)
        return {
            "dataset": self.histories.dataset,
            "split_rule": rule,
            "windows": dict(
                sorted(Counter(w.split for w in kept).items(), key=lambda kv: _split_rank(kv[0]))
            ),
            "users": {
                split: len({w.user for w in kept if w.split == split})
                for split in sorted({w.split for w in kept}, key=_split_rank)
            },
            "rejected_windows": dict(Counter(w.rejected for w in plan.windows if w.rejected)),
            "interactions_dropped": dict(sorted(plan.dropped.items())),
            "users_too_short": plan.users_too_short,
            "users_train_only": plan.users_train_only,
            "unused_rows": self.histories.unused_by_reason(),
            "source_notes": self.histories.notes,
        }
