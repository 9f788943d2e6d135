"""Fuzz: any identity and file names (unicode, dots, spaces, '..' in names, very long names,
case-only differences) list without a crash, without reading outside the root, with every file
accounted for and every key unique."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import cv2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nearid_data.errors import NearidError, Rejection
from nearid_data.sample import check_key, make_key
from nearid_data.sources.ingest import check_unique_keys
from tests.badimages import valid_image
from tests.source_fixtures import source_of

PNG = cv2.imencode(".png", valid_image(0))[1].tobytes()
_ALPHABET = st.sampled_from([*list("aAbB.-_ ~'é߀日́"), "..", "x" * 60])
_NAME = (
    st.lists(_ALPHABET, min_size=1, max_size=6)
    .map("".join)
    .filter(lambda n: n not in (".", "..") and "/" not in n and len(n.encode()) <= 240)
)
_FILE = st.tuples(_NAME, st.sampled_from([".png", ".PNG", ".txt", ".mask.png", ""])).map("".join)
_TREE = st.dictionaries(_NAME, st.lists(_FILE, max_size=4), min_size=1, max_size=5).map(
    lambda tree: {**tree, **{k.upper(): v for k, v in list(tree.items())[:1]}}
)


def _write(root: Path, tree: dict[str, list[str]]) -> int:
    """Write the tree (plus a file at the root); the number of files written."""
    for folder, files in tree.items():
        (root / folder).mkdir(exist_ok=True)
        for name in files:
            (root / folder / name).write_bytes(PNG)
    (root / "stray.png").write_bytes(PNG)
    return sum(1 for _, _, names in os.walk(root) for _ in names)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_TREE)
def test_any_names_are_accounted_for_with_unique_keys(tree: dict[str, list[str]]) -> None:
    root = Path(tempfile.mkdtemp(prefix="fuzz"))
    try:
        n_files = _write(root, tree)
        source = source_of({"name": "imagefolder", "root": str(root)})
        try:
            items = source.items()
        except NearidError as error:  # only when no folder is an identity folder
            assert "no identity folders" in str(error)
            assert all(name.startswith(".") for name in tree)
            return
        check_unique_keys(items)
        for item in items:
            check_key(make_key(item.identity, item.view))
            assert (root / item.ref["path"]).resolve().is_relative_to(root.resolve())
            with contextlib.suppress(Rejection):
                source.load(item)
        paths = {item.ref["path"] for item in items}
        masks_with_image = sum(
            1
            for folder, files in tree.items()
            for name in set(files)
            if not folder.startswith(".")
            and not name.startswith(".")
            and name.endswith(".mask.png")
            and {name.removesuffix(".mask.png") + ext for ext in (".png", ".PNG")} & set(files)
        )
        assert len(paths) == len(items) == n_files - masks_with_image
    finally:
        shutil.rmtree(root)
