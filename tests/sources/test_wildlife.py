"""The wildlife source reads wildlife-datasets' metadata.csv: animals as identities (prefixed by
their dataset), species as categories, near-duplicate clusters carried to the sample json."""

from __future__ import annotations

from pathlib import Path

import pytest

from nearid_data.engine.catalog import Catalog
from nearid_data.errors import NearidError
from tests.source_fixtures import ingest, source_of, write_wildlife


def test_items_are_animals_of_each_dataset(tmp_path: Path) -> None:
    written = write_wildlife(tmp_path / "wild")
    items = source_of(written.source).items()
    assert items == source_of(written.source).items()
    assert {i.identity: i.category for i in items} == written.categories
    assert {i.identity for i in items} == {
        "ZebraFish/0",
        "ZebraFish/1",
        "SeaTurtleID/0",
        "SeaTurtleID/1",
    }
    assert [i.view for i in items if i.identity == "SeaTurtleID/1"] == [0, 1, 2]
    metadata = items[1].ref.pop("metadata")
    assert items[1].ref == {
        "path": "images/ZebraFish/0/1.jpg",
        "image_id": "1",
        "identity": "0",  # the file's value: FPR's Re-ID name
        "cluster_id": "0-0",
        "date": "2020-01-02",
        "orientation": "left",
        "split": "train",
    }
    # the whole row, in the file's column order: FPR's Re-ID CSVs carry every column
    assert [column for column, _ in metadata] == [
        "image_id",
        "identity",
        "path",
        "species",
        "dataset",
        "split",
        "date",
        "orientation",
        "cluster_id",
    ]
    assert dict(metadata)["path"] == "images/ZebraFish/0/1.jpg"


def test_unknown_animals_are_left_out_unless_kept(tmp_path: Path) -> None:
    written = write_wildlife(tmp_path / "wild", unknown_rows=2)
    kept = source_of({**written.source, "keep_unknown": True}).items()
    assert len(kept) == written.n_items + 4
    assert [i.view for i in kept if i.identity == "ZebraFish/unknown"] == [0, 1]


def test_filters_keep_listed_species_and_datasets(tmp_path: Path) -> None:
    written = write_wildlife(tmp_path / "wild", species={"A": "fish", "B": "fish", "C": "turtle"})
    fish = source_of({**written.source, "species": ["fish"]}).items()
    assert {i.identity.split("/")[0] for i in fish} == {"A", "B"}
    only_b = source_of({**written.source, "species": ["fish"], "dataset": ["B", "C"]}).items()
    assert {i.identity.split("/")[0] for i in only_b} == {"B"}
    with pytest.raises(
        NearidError, match=r"wildlife species: zebra not in .*metadata.csv \(it has: fish, turtle\)"
    ):
        source_of({**written.source, "species": ["fish", "zebra"]}).items()


def test_older_id_column_and_no_dataset_column(tmp_path: Path) -> None:
    written = write_wildlife(tmp_path / "wild", old_id_column=True)
    assert source_of(written.source).items()[0].ref["image_id"] == "0"
    metadata = written.root / "metadata.csv"
    lines = metadata.read_text().splitlines()
    # Drop the dataset column (the fifth): identities are then the bare names.
    metadata.write_text(
        "\n".join(",".join(line.split(",")[:4] + line.split(",")[5:]) for line in lines)
    )
    assert {i.identity for i in source_of(written.source).items()} == {"0", "1"}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("image_id,name,path", r"metadata.csv: missing column\(s\) identity"),
        ("identity,file", r"missing column\(s\) path, image_id"),
    ],
)
def test_missing_columns_are_named(tmp_path: Path, header: str, message: str) -> None:
    (tmp_path / "metadata.csv").write_text(header + "\n")
    with pytest.raises(NearidError, match=message):
        source_of({"name": "wildlife", "root": str(tmp_path)}).items()


def test_malformed_metadata_is_a_clear_error(tmp_path: Path) -> None:
    source = {"name": "wildlife", "root": str(tmp_path)}
    with pytest.raises(NearidError, match=r"metadata.csv is missing"):
        source_of(source).items()
    (tmp_path / "metadata.csv").write_text("image_id,identity,path\n1,a,a.jpg\n2,b\n")
    with pytest.raises(NearidError, match=r"metadata.csv:3: not as many fields"):
        source_of(source).items()
    with pytest.raises(NearidError, match="not a directory"):
        source_of({**source, "root": str(tmp_path / "nope")}).items()


def test_build_accounts_for_every_row(tmp_path: Path) -> None:
    written = write_wildlife(tmp_path / "wild")
    written.files[0].unlink()
    written.files[1].write_bytes(b"not an image")
    rows = ingest(written.source, tmp_path / "build")
    assert len(rows) == written.n_items
    assert sorted(r.reason for r in rows if r.status == "rejected") == [
        "missing_file",
        "not_an_image",
    ]
    catalog = Catalog(tmp_path / "build" / "ingest")
    sample = catalog.fetch(catalog.by_identity["ZebraFish/0"][0])
    assert sample["json"]["source"]["cluster_id"] == "0-1"
    assert sample["json"]["category"] == "fish" and sample["json"]["view"] == 2
