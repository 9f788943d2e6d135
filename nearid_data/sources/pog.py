"""``pog``: POG (Alibaba iFashion) user click histories.

    root/
      user_data.txt       user_id,item;item;...,outfit_id    (items in click order)
      outfit_data.txt     outfit_id,item;item;...            (optional; checked, see below)
      item_data.txt       item_id,cate_id,pic_url,title      (the title may hold commas)
      images_sampled/<item_id>.jpg                           (the benchmark's image sample)
    extras (default: root)/
      captions_sampled.json   {item_id: caption} or [{item_id, caption}]   (optional)
      user_styles.json        [{user, style}] or {user: style}             (optional)

A user's sequence is the items of their lines in file order (a user on several lines: the lines
in order). Items are listed whether or not the image sample holds them: ingest records those
without an image as ``missing_file``. Rows left out, each recorded with its line: a sequence item
not in ``item_data.txt`` (``unknown_item``), an item row repeating an earlier one (``duplicate_item``), a user line whose outfit is not in
``outfit_data.txt`` (``unknown_outfit``: its items are still used), and one entry counting the
item rows no sequence uses (``item_not_in_any_history``).
"""

from __future__ import annotations

from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError
from nearid_data.sources.formats import read_text
from nearid_data.sources.histories import (
    Histories,
    HistoryConfig,
    HistorySource,
    Interaction,
    Item,
    UnusedRow,
    text_table,
)

USERS = "user_data.txt"
OUTFITS = "outfit_data.txt"
ITEMS = "item_data.txt"
CAPTIONS = "captions_sampled.json"
STYLES = "user_styles.json"
IMAGE_DIR = "images_sampled"


class PogConfig(HistoryConfig):
    image_suffix: str = ".jpg"


class PogSource(HistorySource):
    Config = PogConfig
    config: PogConfig
    label = "pog"

    def read_histories(self) -> Histories:
        notes: list[str] = []
        unused: list[UnusedRow] = []
        items_where: dict[str, str] = {}
        items_file = self.annotation(ITEMS)
        for where, fields in _lines(items_file, 4, split_last=False):
            if items_where.setdefault(fields[0], where) != where:
                unused.append(UnusedRow(where, "duplicate_item", fields[0]))
        outfits = self._outfits(notes)
        sequences: dict[str, list[Interaction]] = {}
        for where, (user, clicked, outfit) in _lines(self.annotation(USERS), 3, split_last=True):
            if outfits is not None and outfit not in outfits:
                unused.append(UnusedRow(where, "unknown_outfit", outfit))
            sequence = sequences.setdefault(user, [])
            for item_id in _item_list(clicked, where):
                if item_id not in items_where:
                    unused.append(UnusedRow(where, "unknown_item", item_id))
                    continue
                sequence.append(Interaction(item_id))
        used = {i.item_id for seq in sequences.values() for i in seq}
        not_used = len(items_where.keys() - used)
        if not_used:
            # POG lists millions of items and the benchmark samples few: one row says how many.
            unused.append(
                UnusedRow(str(items_file), "item_not_in_any_history", f"{not_used} items")
            )
        captions = text_table(
            self.extras_file(CAPTIONS, notes, "captions are empty"), ("item_id", "item"), "caption"
        )
        styles = text_table(
            self.extras_file(STYLES, notes, "user styles are empty"), ("user", "user_id"), "style"
        )
        items = {
            item_id: Item(
                item_id,
                f"{IMAGE_DIR}/{item_id}{self.config.image_suffix}",
                captions.get(item_id, ""),
            )
            for item_id in sorted(used)
        }
        return Histories("POG", items, dict(sorted(sequences.items())), styles, unused, notes)

    def _outfits(self, notes: list[str]) -> set[str] | None:
        path = self.annotation(OUTFITS)
        if not path.is_file():
            notes.append(f"no {path}: outfit ids are not checked")
            return None
        return {fields[0] for _, fields in _lines(path, 2, split_last=False)}


def _lines(path: Location, n_fields: int, *, split_last: bool) -> list[tuple[str, list[str]]]:
    """(file:line, fields) of a comma-separated file without a header. With ``split_last`` the
    last field is split off from the right (user lines: the item list sits in the middle), else
    the rest of the line after ``n_fields - 1`` commas is the last field (item titles)."""
    rows = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        if split_last:
            head, _, last = line.rpartition(",")
            fields = [*head.split(",", n_fields - 2), last] if head else [line]
        else:
            fields = line.split(",", n_fields - 1)
        if len(fields) != n_fields:
            raise NearidError(
                f"{where}: expected {n_fields} comma-separated fields, got {len(fields)}"
            )
        for column, value in enumerate(fields, start=1):
            if not value.strip():
                raise NearidError(f"{where}: column {column} is empty")
        rows.append((where, [value.strip() for value in fields]))
    return rows


def _item_list(text: str, where: str) -> list[str]:
    items = text.split(";")
    if any(not item.strip() for item in items):
        raise NearidError(f"{where}: column 2: empty item id in {text!r}")
    return [item.strip() for item in items]
