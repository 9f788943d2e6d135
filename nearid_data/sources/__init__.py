"""Source adapters: one module per raw dataset format, registered by name."""

from __future__ import annotations

from nearid_data.registry import Registry
from nearid_data.sources.base import Source

SOURCES: Registry[Source] = Registry(
    "source",
    {
        "cub": "nearid_data.sources.cub:CubSource",
        "demo": "nearid_data.sources.demo:DemoSource",
        "flickr-aes": "nearid_data.sources.flickr_aes:FlickrAesSource",
        "imagefolder": "nearid_data.sources.imagefolder:ImageFolderSource",
        "nearid": "nearid_data.sources.nearid:NearIdSource",
        "pods": "nearid_data.sources.pods:PodsSource",
        "pog": "nearid_data.sources.pog:PogSource",
        "ser30k": "nearid_data.sources.ser30k:Ser30kSource",
        "stanford-cars": "nearid_data.sources.stanford_cars:StanfordCarsSource",
        "syncd": "nearid_data.sources.syncd:SyncdSource",
        "wildlife": "nearid_data.sources.wildlife:WildlifeSource",
    },
)
