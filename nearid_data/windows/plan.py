"""User-history windows and their splits, from sequences alone (no pixels): pure and deterministic.

A window is ``num_interactions`` consecutive history items of one user and the item after them
(the target), starting every ``stride`` items. Splits never leak:

- ``user``: users are split by ``fractions`` (seeded), so no user is in two splits;
- ``time``: each user's last ``test_windows`` windows go to test and the ``val_windows`` before
  them to val; any earlier window holding an evaluation target of the same user (as history or
  target: a repeated item) is rejected as ``leaks_eval_target``. Users with too few windows for
  that stay whole in train.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from nearid_data.sample import slug
from nearid_data.sources.histories import Histories, Interaction, Item
from nearid_data.splits.assign import assign_splits

TRAIN, VAL, TEST = "train", "val", "test"
LEAKS_EVAL_TARGET = "leaks_eval_target"
SplitRule = Literal["user", "time"]


@dataclass(frozen=True)
class WindowRules:
    num_interactions: int
    stride: int
    min_sequence_length: int
    min_score: float | None
    split_by: SplitRule
    fractions: dict[str, float]
    val_windows: int
    test_windows: int


@dataclass(frozen=True)
class Window:
    key: str
    user: str
    position: int
    """Index of the first history item in the user's (filtered) sequence."""
    history: tuple[Interaction, ...]
    target: Interaction
    sequence_length: int
    split: str
    rejected: str | None = None
    """A rejection reason (the window is recorded, not exported)."""
    detail: str = ""


@dataclass
class WindowPlan:
    windows: list[Window]
    dropped: Counter[str] = field(default_factory=Counter)
    """Interactions removed from sequences before windowing, by reason."""
    users_too_short: int = 0
    users_train_only: int = 0


def window_key(user: str, position: int) -> str:
    return f"{slug(user)}_w{position:05d}"


def plan_windows(
    histories: Histories, has_image: set[str], rules: WindowRules, *, seed: int
) -> WindowPlan:
    """Every window of every user, split; ``has_image`` holds the item ids ingest kept."""
    plan = WindowPlan([])
    per_user: dict[str, list[tuple[int, tuple[Interaction, ...], Interaction, int]]] = {}
    for user, sequence in histories.sequences.items():
        kept = _filtered(sequence, has_image, rules.min_score, plan.dropped)
        n = rules.num_interactions
        if len(kept) < rules.min_sequence_length or len(kept) <= n:
            plan.users_too_short += 1
            continue
        per_user[user] = [
            (start, tuple(kept[start : start + n]), kept[start + n], len(kept))
            for start in range(0, len(kept) - n, rules.stride)
        ]
    if rules.split_by == "user":
        users = sorted(per_user)
        assignment = assign_splits({"users": users}, seed=seed, fractions=rules.fractions)
        for user in users:
            for start, history, target, length in per_user[user]:
                plan.windows.append(
                    Window(
                        window_key(user, start),
                        user,
                        start,
                        history,
                        target,
                        length,
                        assignment[user],
                    )
                )
        return plan
    for user in sorted(per_user):
        plan.windows += _time_split(user, per_user[user], rules, plan)
    return plan


def _filtered(
    sequence: list[Interaction], has_image: set[str], min_score: float | None, dropped: Counter[str]
) -> list[Interaction]:
    kept = []
    for interaction in sequence:
        if min_score is not None and (interaction.score is None or interaction.score < min_score):
            dropped["below_min_score"] += 1
        elif interaction.item_id not in has_image:
            dropped["item_without_image"] += 1
        else:
            kept.append(interaction)
    return kept


def _time_split(
    user: str,
    windows: list[tuple[int, tuple[Interaction, ...], Interaction, int]],
    rules: WindowRules,
    plan: WindowPlan,
) -> list[Window]:
    n_eval = rules.val_windows + rules.test_windows
    if len(windows) <= n_eval:
        plan.users_train_only += 1
        splits = [TRAIN] * len(windows)
    else:
        head = len(windows) - n_eval
        splits = [TRAIN] * head + [VAL] * rules.val_windows + [TEST] * rules.test_windows
    eval_targets = {w[2].item_id for w, s in zip(windows, splits, strict=True) if s != TRAIN}
    out = []
    for (start, history, target, length), split in zip(windows, splits, strict=True):
        leaked = sorted(eval_targets & {i.item_id for i in (*history, target)})
        rejected = LEAKS_EVAL_TARGET if split == TRAIN and leaked else None
        out.append(
            Window(
                window_key(user, start),
                user,
                start,
                history,
                target,
                length,
                split,
                rejected,
                ", ".join(leaked) if rejected else "",
            )
        )
    return out


def window_record(
    window: Window, histories: Histories, image_path: Any, num_interactions: int
) -> dict[str, Any]:
    """The benchmark's unified record of ``window``; ``image_path(item)`` gives an item's path."""
    flickr = histories.dataset == "FLICKR"
    record: dict[str, Any] = {"user_id": window.user}
    if flickr:
        record["worker_id"] = window.user
    record["history_item_ids"] = [i.item_id for i in window.history]
    record["history_items_info"] = [
        _item_info(histories.items[i.item_id], i, image_path, flickr) for i in window.history
    ]
    record["target_item_id"] = window.target.item_id
    record["target_item_info"] = _item_info(
        histories.items[window.target.item_id], window.target, image_path, flickr
    )
    style = histories.styles.get(window.user, "")
    record["worker_style" if flickr else "user_style"] = style
    record["num_interactions"] = num_interactions
    if histories.dataset in ("FLICKR", "POG"):
        record["window_position"] = window.position
        record["total_sequence_length"] = window.sequence_length
    return record


def _item_info(
    item: Item, interaction: Interaction, image_path: Any, flickr: bool
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "item_id": item.item_id,
        "caption": item.caption,
        "image_path": image_path(item),
    }
    if flickr:
        score = interaction.score
        # The ratings are whole stars: write 4, as the benchmark's records do, not 4.0.
        info["score"] = int(score) if score is not None and score.is_integer() else score
        info["aesthetic_score"] = item.aesthetic_score
    return info
