"""Source adapters: one module per raw dataset format, registered by name."""

from __future__ import annotations

from nearid_data.registry import Registry
from nearid_data.sources.base import Source

SOURCES: Registry[Source] = Registry(
    "source",
    {
        "cub": "nearid_data.sources.cub:CubSource",
        "demo": "nearid_data.sources.demo:DemoSource",
        "imagefolder": "nearid_data.sources.imagefolder:ImageFolderSource",
        "nearid": "nearid_data.sources.nearid:NearIdSource",
        "pods": "nearid_data.sources.pods:PodsSource",
        "stanford-cars": "nearid_data.sources.stanford_cars:StanfordCarsSource",
        "syncd": "nearid_data.sources.syncd:SyncdSource",
        "wildlife": "nearid_data.sources.wildlife:WildlifeSource",
    },
)
