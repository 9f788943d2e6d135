"""Every file-based source's raw layout, by name: each writes the dataset's files under a root
and returns the source config that reads them. Tests that must hold for every adapter take their
cases from here, adding the variants they need."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.history_layouts import write_flickr, write_pog, write_ser
from tests.source_fixtures import (
    write_cars_devkit,
    write_cars_hf,
    write_cub,
    write_nearid,
    write_pods_folders,
    write_pods_parquet,
    write_syncd,
    write_wildlife,
)

Layout = Callable[[Path], dict[str, Any]]

SOURCE_LAYOUTS: dict[str, Layout] = {
    "cub": lambda root: write_cub(root).source,  # segmentations: a second location
    "cars-devkit": lambda root: write_cars_devkit(root).source,
    "cars-hf": lambda root: write_cars_hf(root).source,
    "wildlife": lambda root: write_wildlife(root).source,
    "pods-folders": lambda root: write_pods_folders(root).source,
    "pods-hf": lambda root: write_pods_parquet(root).source,
    "nearid": lambda root: write_nearid(root).source,
    "syncd": lambda root: write_syncd(root).source,
    "flickr-aes": lambda root: write_flickr(root)[0],
    "pog": lambda root: write_pog(root)[0],
    "ser30k": lambda root: write_ser(root)[0],
}
