"""The stanford-cars source reads the devkit's .mat files and Hub parquet mirrors alike: models as
identities, makes as categories, 1-based inclusive devkit boxes made 0-based exclusive.

scipy is optional: without it the devkit tests stand in a reader returning exactly what
``scipy.io.loadmat(path, squeeze_me=True)`` returns for these files; with it,
``test_devkit_round_trip_through_scipy`` reads real .mat files."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nearid_data.engine.catalog import Catalog
from nearid_data.errors import NearidError
from nearid_data.sources import stanford_cars
from nearid_data.sources.stanford_cars import make_of
from tests.source_fixtures import Written, ingest, jpeg, source_of, write_cars_devkit, write_cars_hf

HAS_SCIPY = importlib.util.find_spec("scipy") is not None
REAL_LOADMAT = stanford_cars._loadmat


@pytest.fixture
def devkit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Written:
    written = write_cars_devkit(tmp_path / "cars", n_classes=4, per_split=2)
    if not HAS_SCIPY:
        tables = written.tables
        for relative in tables:  # the files must exist; only their reading is stood in for
            (written.root / relative).parent.mkdir(exist_ok=True)
            (written.root / relative).write_bytes(b"MATLAB 5.0 MAT-file stand-in")
        monkeypatch.setattr(
            stanford_cars,
            "_loadmat",
            lambda path: tables[path.relative_to(written.root).as_posix()],
        )
    return written


def test_devkit_items_are_models_with_their_make(devkit: Written) -> None:
    items = source_of(devkit.source).items()
    assert items == source_of(devkit.source).items()
    assert {i.identity: i.category for i in items} == devkit.categories
    assert len(items) == devkit.n_items
    hummer = [i for i in items if i.identity == "AM General Hummer SUV 2000"]
    assert [i.view for i in hummer] == [0, 1, 2, 3]
    assert [i.ref["split"] for i in hummer] == ["train", "train", "test", "test"]
    assert hummer[0].ref == {
        "path": "cars_train/00001.jpg",
        "split": "train",
        "class_id": 1,
        "bbox": [3, 2, 30, 25],
    }
    test_only = source_of({**devkit.source, "split": "test"}).items()
    assert {i.ref["split"] for i in test_only} == {"test"}
    assert [i.view for i in test_only if i.identity == hummer[0].identity] == [0, 1]
    as_cars = source_of({**devkit.source, "category": "car"}).items()
    assert {i.category for i in as_cars} == {"car"}


def test_devkit_box_becomes_zero_based_exclusive(devkit: Written) -> None:
    source = source_of(devkit.source)
    record = source.load(source.items()[0])
    assert record.box == (2, 1, 30, 25) and record.mask is None


def test_two_word_makes() -> None:
    assert make_of("Aston Martin V8 Vantage Convertible 2012") == "Aston Martin"
    assert make_of("Mercedes-Benz C-Class Sedan 2012") == "Mercedes-Benz"
    assert make_of("Ram C/V Cargo Van Minivan 2012") == "Ram"


def test_test_annotations_are_also_found_in_devkit(devkit: Written) -> None:
    moved = "devkit/cars_test_annos_withlabels.mat"
    devkit.tables[moved] = devkit.tables.pop("cars_test_annos_withlabels.mat")
    (devkit.root / "cars_test_annos_withlabels.mat").rename(devkit.root / moved)
    assert len(source_of(devkit.source).items()) == devkit.n_items


def test_devkit_errors_name_the_file(devkit: Written) -> None:
    annotations = devkit.tables["devkit/cars_train_annos.mat"]["annotations"]
    annotations[0]["class"] = 99
    if HAS_SCIPY:
        from scipy.io import savemat

        savemat(devkit.root / "devkit/cars_train_annos.mat", {"annotations": annotations})
    with pytest.raises(NearidError, match=r"cars_train_annos.mat: annotation 0 has class 99"):
        source_of(devkit.source).items()
    (devkit.root / "cars_test_annos_withlabels.mat").unlink(missing_ok=True)
    devkit.tables.pop("cars_test_annos_withlabels.mat")
    with pytest.raises(NearidError, match=r"cars_test_annos_withlabels\.mat is missing"):
        source_of({**devkit.source, "split": "test"}).items()


def test_devkit_without_scipy_says_how_to_install_it(
    devkit: Written, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stanford_cars, "_loadmat", REAL_LOADMAT)
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    with pytest.raises(
        NearidError,
        match=r"Stanford Cars devkit .* needs .*scipy.* pip install .nearid-data\[sources\]",
    ):
        source_of(devkit.source).items()


def test_devkit_round_trip_through_scipy(tmp_path: Path) -> None:
    pytest.importorskip("scipy")
    written = write_cars_devkit(tmp_path / "cars", n_classes=3, per_split=1)
    items = source_of(written.source).items()
    assert {i.identity: i.category for i in items} == written.categories
    assert items[0].ref["bbox"] == [3, 2, 30, 25]


def test_devkit_build_accounts_for_every_image(devkit: Written, tmp_path: Path) -> None:
    devkit.files[0].unlink()
    rows = ingest(devkit.source, tmp_path / "build")
    assert len(rows) == devkit.n_items
    assert [r.reason for r in rows if r.status == "rejected"] == ["missing_file"]
    catalog = Catalog(tmp_path / "build" / "ingest")
    sample = catalog.fetch(catalog.by_identity["Acura RL Sedan 2012"][0])
    assert sample["json"]["box"] == [2, 1, 30, 25]
    assert sample["json"]["source"]["class_id"] == 2


def test_hf_items_follow_files_and_rows(tmp_path: Path) -> None:
    written = write_cars_hf(tmp_path / "cars", n_classes=3, per_split=3, rows_per_group=2)
    items = source_of(written.source).items()
    assert {i.identity: i.category for i in items} == written.categories
    assert [(i.ref["split"], i.ref["row"]) for i in items] == [
        (split, row) for split in ("train", "test") for row in range(9)
    ]
    assert [i.view for i in items if i.ref["label"] == 0] == list(range(6))
    rows = ingest(written.source, tmp_path / "build")
    assert len(rows) == written.n_items and {r.status for r in rows} == {"kept"}


def test_hf_label_names_and_errors(tmp_path: Path) -> None:
    root = tmp_path / "cars"
    root.mkdir()
    image = {"bytes": jpeg(0), "path": None}
    pq.write_table(
        pa.table({"image": [image], "label": ["BMW M3 Coupe 2012"]}), root / "train.parquet"
    )
    items = source_of(
        {"name": "stanford-cars", "root": str(root), "layout": "hf", "split": "train"}
    ).items()
    assert [(i.identity, i.category) for i in items] == [("BMW M3 Coupe 2012", "BMW")]
    source = {"name": "stanford-cars", "root": str(root), "layout": "hf"}
    with pytest.raises(NearidError, match=r"no parquet files for split\(s\) test \(found: train\)"):
        source_of(source).items()
    pq.write_table(pa.table({"image": [image], "label": [3]}), root / "test.parquet")
    with pytest.raises(NearidError, match="integer label without class names"):
        source_of(source).items()
    pq.write_table(pa.table({"picture": [image], "label": [3]}), root / "test.parquet")
    with pytest.raises(NearidError, match=r"missing column\(s\) image"):
        source_of(source).items()


def test_hf_empty_image_cell_is_a_rejection(tmp_path: Path) -> None:
    root = tmp_path / "cars"
    root.mkdir()
    cells = [{"bytes": jpeg(0), "path": None}, {"bytes": None, "path": None}, None]
    pq.write_table(
        pa.table({"image": cells, "label": ["Geo Metro Convertible 1993"] * 3}),
        root / "train.parquet",
    )
    rows = ingest(
        {"name": "stanford-cars", "root": str(root), "layout": "hf", "split": "train"},
        tmp_path / "b",
    )
    assert [r.reason for r in rows] == [None, "missing_file", "missing_file"]
    assert np.all([r.category == "Geo" for r in rows])
