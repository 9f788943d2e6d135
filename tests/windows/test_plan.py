"""Window planning: sliding windows per user, filters, and splits without leakage."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from nearid_data.sources.histories import Histories, Interaction, Item
from nearid_data.windows.plan import LEAKS_EVAL_TARGET, WindowRules, plan_windows, window_record

RULES = WindowRules(
    num_interactions=3,
    stride=1,
    min_sequence_length=4,
    min_score=None,
    split_by="time",
    fractions={"train": 0.5, "val": 0.25, "test": 0.25},
    val_windows=1,
    test_windows=1,
)


def histories(
    sequences: dict[str, list[str]], dataset: str = "POG", scores: dict | None = None
) -> Histories:
    items = {i: Item(i, f"img/{i}.jpg", f"cap {i}") for seq in sequences.values() for i in seq}
    return Histories(
        dataset,  # type: ignore[arg-type]
        items,
        {u: [Interaction(i, (scores or {}).get(i)) for i in seq] for u, seq in sequences.items()},
        {u: f"{u} likes" for u in sequences},
    )


def every_item(h: Histories) -> set[str]:
    return set(h.items)


def test_sliding_windows_with_stride_and_positions() -> None:
    h = histories({"u": list("abcdefgh")})
    plan = plan_windows(h, every_item(h), replace(RULES, stride=2), seed=0)
    assert [
        (w.position, "".join(i.item_id for i in w.history), w.target.item_id) for w in plan.windows
    ] == [
        (0, "abc", "d"),
        (2, "cde", "f"),
        (4, "efg", "h"),
    ]
    assert [w.split for w in plan.windows] == ["train", "val", "test"]
    assert {w.sequence_length for w in plan.windows} == {8}


def test_short_users_filters_and_items_without_images() -> None:
    h = histories(
        {"short": list("abc"), "u": list("defghi")},
        dataset="FLICKR",
        scores=dict(zip("abcdefghi", [5, 5, 5, 5, 1, 5, 5, 5, 5], strict=True)),
    )
    has_image = every_item(h) - {"i"}
    plan = plan_windows(h, has_image, replace(RULES, min_score=3), seed=0)
    assert plan.users_too_short == 1
    assert plan.dropped == {"below_min_score": 1, "item_without_image": 1}
    assert [[i.item_id for i in (*w.history, w.target)] for w in plan.windows] == [list("dfgh")]
    assert plan.users_train_only == 1 and plan.windows[0].split == "train"
    longer = plan_windows(h, every_item(h), replace(RULES, min_sequence_length=7), seed=0)
    assert longer.users_too_short == 2 and longer.windows == []


def test_time_split_rejects_train_windows_holding_an_eval_target() -> None:
    # "x" is clicked early and is the target of the last (test) window again.
    h = histories({"u": list("xabcdefx")})
    plan = plan_windows(h, every_item(h), RULES, seed=0)
    by_position = {w.position: w for w in plan.windows}
    assert by_position[4].split == "test" and by_position[4].target.item_id == "x"
    assert by_position[0].rejected == LEAKS_EVAL_TARGET and by_position[0].detail == "x"
    assert by_position[1].rejected is None


@settings(max_examples=60, deadline=None)
@given(
    sequences=st.dictionaries(
        st.sampled_from(["u1", "u2", "u3", "u4", "u5"]),
        st.lists(st.sampled_from("abcdefghij"), min_size=0, max_size=14),
        min_size=1,
    ),
    split_by=st.sampled_from(["time", "user"]),
    stride=st.integers(1, 3),
)
def test_no_split_leaks(sequences: dict[str, list[str]], split_by: str, stride: int) -> None:
    h = histories(sequences)
    rules = replace(RULES, split_by=split_by, stride=stride)  # type: ignore[arg-type]
    plan = plan_windows(h, every_item(h), rules, seed=3)
    assert plan == plan_windows(h, every_item(h), rules, seed=3)
    kept = [w for w in plan.windows if w.rejected is None]
    assert len({w.key for w in plan.windows}) == len(plan.windows)
    if split_by == "user":
        owners: dict[str, set[str]] = {}
        for w in kept:
            owners.setdefault(w.user, set()).add(w.split)
        assert all(len(splits) == 1 for splits in owners.values())
        return
    for user in {w.user for w in kept}:
        mine = [w for w in kept if w.user == user]
        eval_targets = {w.target.item_id for w in mine if w.split != "train"}
        for w in mine:
            if w.split == "train":
                assert not eval_targets & {i.item_id for i in (*w.history, w.target)}
        splits = [w.split for w in sorted(mine, key=lambda w: w.position)]
        assert splits == sorted(
            splits, key=["train", "val", "test"].index
        )  # later windows evaluate


def test_record_has_the_benchmark_schema_per_dataset() -> None:
    pog = histories({"u": list("abcd")})
    window = plan_windows(pog, every_item(pog), RULES, seed=0).windows[0]
    record = window_record(window, pog, lambda item: f"/data/{item.path}", 3)
    assert record == {
        "user_id": "u",
        "history_item_ids": ["a", "b", "c"],
        "history_items_info": [
            {"item_id": i, "caption": f"cap {i}", "image_path": f"/data/img/{i}.jpg"} for i in "abc"
        ],
        "target_item_id": "d",
        "target_item_info": {"item_id": "d", "caption": "cap d", "image_path": "/data/img/d.jpg"},
        "user_style": "u likes",
        "num_interactions": 3,
        "window_position": 0,
        "total_sequence_length": 4,
    }
    flickr = histories({"w": list("abcd")}, dataset="FLICKR", scores={"a": 4.0, "b": 3.5})
    record = window_record(
        plan_windows(flickr, every_item(flickr), RULES, seed=0).windows[0], flickr, str, 3
    )
    assert record["worker_id"] == "w" and record["worker_style"] == "w likes"
    assert "user_style" not in record
    assert [(i["score"], i["aesthetic_score"]) for i in record["history_items_info"]] == [
        (4, None),
        (3.5, None),
        (None, None),
    ]
    ser = histories({"t": list("abcd")}, dataset="SER")
    record = window_record(
        plan_windows(ser, every_item(ser), RULES, seed=0).windows[0], ser, str, 3
    )
    assert "window_position" not in record and "worker_id" not in record
