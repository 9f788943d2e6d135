"""``flickr-aes``: FLICKR-AES personal aesthetics ratings, one history per worker.

    root/
      FLICKR-AES_image_labeled_by_each_worker.csv   worker, imagePair, score   (1-5; spaces after commas)
      FLICKR-AES_image_score.txt                    <file> <mean score>        (optional)
      40K/<file>                                    the images
    extras (default: root)/
      FLICKR_captions.json    {file or stem: caption} or [{image, caption}]     (optional)
      FLICKR_styles.json      [{worker, style}] or {worker: style}             (optional)

A worker's sequence is their ratings in file order (the dataset has no timestamps); the item id
is the file name without ``.jpg``. ``aesthetic_score`` is the image's mean score from
``FLICKR-AES_image_score.txt``. Rows left out, each recorded with its line: a score outside 1-5
(``score_out_of_range``) and a worker's second rating of one image (``duplicate_rating``).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError
from nearid_data.sources.formats import parse_number, read_csv, read_text_rows, require_columns
from nearid_data.sources.histories import (
    Histories,
    HistoryConfig,
    HistorySource,
    Interaction,
    Item,
    UnusedRow,
    text_table,
)

RATINGS = "FLICKR-AES_image_labeled_by_each_worker.csv"
IMAGE_SCORES = "FLICKR-AES_image_score.txt"
CAPTIONS = "FLICKR_captions.json"
STYLES = "FLICKR_styles.json"
IMAGE_DIR = "40K"
SCORE_RANGE = (1.0, 5.0)


class FlickrAesConfig(HistoryConfig):
    pass


class FlickrAesSource(HistorySource):
    Config = FlickrAesConfig
    config: FlickrAesConfig
    label = "flickr-aes"

    def read_histories(self) -> Histories:
        notes: list[str] = []
        unused: list[UnusedRow] = []
        path = self.annotation(RATINGS)
        header, rows = read_csv(path)
        header = [name.strip() for name in header]
        require_columns(path, header, ["worker", "imagePair", "score"])
        sequences: dict[str, list[Interaction]] = {}
        rated: set[tuple[str, str]] = set()
        files: dict[str, str] = {}  # item id -> file name
        for index, raw in enumerate(rows):
            row = {name.strip(): value.strip() for name, value in raw.items()}
            where = f"{path}:{index + 2}"  # line 1 is the header
            worker, file_name = row["worker"], row["imagePair"]
            for column in ("worker", "imagePair"):
                if not row[column]:
                    raise NearidError(f"{where}: column {column} is empty")
            score = parse_number(row["score"], float, f"{where}: column score")
            item_id = PurePosixPath(file_name).stem
            if not SCORE_RANGE[0] <= score <= SCORE_RANGE[1]:
                unused.append(UnusedRow(where, "score_out_of_range", f"{score:g}"))
                continue
            if (worker, item_id) in rated:
                unused.append(UnusedRow(where, "duplicate_rating", f"{worker} {file_name}"))
                continue
            rated.add((worker, item_id))
            files[item_id] = file_name
            sequences.setdefault(worker, []).append(Interaction(item_id, score))
        mean_scores = _image_scores(self.annotation(IMAGE_SCORES), notes)
        captions = text_table(
            self.extras_file(CAPTIONS, notes, "captions are empty"),
            ("image", "imagePair", "item_id"),
            "caption",
        )
        styles = text_table(
            self.extras_file(STYLES, notes, "worker styles are empty"), ("worker",), "style"
        )
        items = {
            item_id: Item(
                item_id,
                f"{IMAGE_DIR}/{file_name}",
                captions.get(file_name, captions.get(item_id, "")),
                mean_scores.get(item_id),
            )
            for item_id, file_name in files.items()
        }
        return Histories("FLICKR", items, dict(sorted(sequences.items())), styles, unused, notes)


def _image_scores(path: Location, notes: list[str]) -> dict[str, float]:
    """item id -> mean aesthetic score; an absent file is noted, a malformed line is an error."""
    if not path.is_file():
        notes.append(f"no {path}: aesthetic scores are unknown")
        return {}
    return {
        PurePosixPath(fields[0]).stem: parse_number(fields[1], float, f"{path}:{line}: column 2")
        for line, fields in read_text_rows(path, 2)
    }
