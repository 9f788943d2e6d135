"""Source adapters: one module per raw dataset format, registered by name."""

from __future__ import annotations

from nearid_data.registry import Registry
from nearid_data.sources.base import Source

SOURCES: Registry[Source] = Registry(
    "source",
    {
        "demo": "nearid_data.sources.demo:DemoSource",
        "imagefolder": "nearid_data.sources.imagefolder:ImageFolderSource",
    },
)
